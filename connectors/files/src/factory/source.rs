//! The `files` source of pipeline rows: its options checked against the schema
//! ([`source_parts`], shared with the columnar source of `chunks`) and the row source.

use std::sync::Arc;

use weir_connector_api::config::{ConfigError, ConfigErrors, OptionSet, ValidatedConfig};
use weir_connector_api::erased::BoxedSource;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::factory::{FactoryContext, SourceFactory};
use weir_connector_api::row::Row;

use super::{
    format_conflict, local_fs, resolve_path, row_source_options, rows_format, FilesFactory,
    RowsFormat, SOURCE_SET_NAME,
};
use crate::config::{FileSourceOptions, EXCLUDE, INCLUDE, PATHS};
use crate::format::RowBatches;
use crate::{FileSource, FileSystem};

/// Reports the globs that do not parse.
fn check_globs(key: &str, globs: &[String], errors: &mut Vec<ConfigError>) {
    for g in globs {
        if let Err(e) = glob::Pattern::new(g) {
            errors.push(ConfigError::Rejected {
                key: key.to_owned(),
                value: g.clone(),
                reason: format!("not a valid glob pattern: {e}"),
            });
        }
    }
}

impl SourceFactory for FilesFactory {
    fn source_options(&self) -> OptionSet {
        row_source_options()
    }

    fn create_source(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSource<Row>> {
        let SourceParts {
            fs,
            paths,
            format,
            rows,
            options: o,
        } = source_parts(config, ctx)?;
        let builder = match format {
            RowsFormat::Parquet => FileSource::parquet(fs, paths, rows),
            RowsFormat::Orc => FileSource::orc(fs, paths, rows),
            RowsFormat::Text(text) => FileSource::row(fs, paths, text),
            RowsFormat::Messages(messages, _) => FileSource::row(fs, paths, messages),
        };
        Ok(BoxedSource::new(builder.with_options(&o)?.build()?))
    }
}

/// A validated pipeline source, before its records' type is chosen.
pub(super) struct SourceParts {
    pub(super) fs: Arc<dyn FileSystem>,
    pub(super) paths: Vec<String>,
    pub(super) format: RowsFormat,
    pub(super) rows: RowBatches,
    pub(super) options: FileSourceOptions,
}

/// Validates a pipeline source's options against its schema: every problem, or the parts.
pub(super) fn source_parts(
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
) -> Result<SourceParts> {
    let mut errors = Vec::new();
    let o = FileSourceOptions::from_config(config);
    let resolved: Vec<(Arc<dyn FileSystem>, String, String)> = o
        .paths
        .iter()
        .filter_map(|p| resolve_path(PATHS.key(), p, &mut errors))
        .collect();
    let mut roots: Vec<&str> = resolved.iter().map(|(_, root, _)| root.as_str()).collect();
    roots.dedup();
    if roots.len() > 1 {
        errors.push(ConfigError::Rejected {
            key: PATHS.key().to_owned(),
            value: o.paths.join(";"),
            reason: format!(
                "all paths of one source must be on one filesystem, not {}: use one source \
                 per filesystem",
                roots.join(", ")
            ),
        });
    }
    let fs = resolved
        .first()
        .map_or_else(local_fs, |(fs, _, _)| Arc::clone(fs));
    let paths: Vec<String> = resolved.into_iter().map(|(_, _, p)| p).collect();
    if o.paths.is_empty() {
        errors.push(ConfigError::Rejected {
            key: PATHS.key().to_owned(),
            value: String::new(),
            reason: "must name at least one file or directory".to_owned(),
        });
    }
    check_globs(INCLUDE.key(), &o.include, &mut errors);
    check_globs(EXCLUDE.key(), &o.exclude, &mut errors);
    let format = rows_format(config, ctx, &o.format_options, &mut errors);
    let rows = match RowBatches::try_new(ctx.schema) {
        Ok(rows) => Some(rows),
        Err(e) => {
            if matches!(format, Some(RowsFormat::Parquet | RowsFormat::Orc)) {
                errors.push(format_conflict(e.to_string()));
            }
            None
        }
    };
    let (Some(format), true) = (format, errors.is_empty()) else {
        return Err(ConnectorError::Config(ConfigErrors::new(
            SOURCE_SET_NAME,
            errors,
        )));
    };
    let rows = rows.unwrap_or_else(|| RowBatches::new(ctx.schema));
    Ok(SourceParts {
        fs,
        paths,
        format,
        rows,
        options: o,
    })
}
