//! `weir connectors`: the connectors and formats linked into this build of `weir`, and their
//! options tables, generated from the same [`OptionSet`](weir_connector_api::config::OptionSet)s
//! that validate pipeline files.

use std::fmt::Write as _;

use weir_connector_api::factory::{connectors, find_connector, ConnectorFactory};
use weir_connector_api::format::{find_format, formats, FormatFactory};

use crate::pipeline::diag::hint;
use crate::Exit;

/// Links the connector and format crates, so that their registrations are in the binary.
/// Adding a connector to `weir` is a dependency in `cli/Cargo.toml` plus one line here.
pub fn link() {
    use weir_connector_blackhole as _;
    use weir_connector_datagen as _;
    use weir_connector_elasticsearch as _;
    use weir_connector_files as _;
    use weir_connector_kafka as _;
    use weir_connector_s3 as _;
    weir_formats::link();
    std::hint::black_box((
        &weir_connector_datagen::factory::DATAGEN,
        &weir_connector_blackhole::factory::BLACKHOLE,
        &weir_connector_files::factory::FILES,
        &weir_connector_kafka::factory::KAFKA,
        &weir_connector_elasticsearch::factory::ELASTICSEARCH,
        &weir_connector_s3::factory::S3_SCHEME,
    ));
}

fn kind(f: &dyn ConnectorFactory) -> &'static str {
    match (f.as_source().is_some(), f.as_sink().is_some()) {
        (true, true) => "source, sink",
        (true, false) => "source",
        (false, true) => "sink",
        (false, false) => "-",
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let width = widths.get(c).copied().unwrap_or(0);
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The list of connectors and formats.
pub fn list() -> String {
    let mut rows = vec![vec![
        "CONNECTOR".to_owned(),
        "KIND".to_owned(),
        "CRATE".to_owned(),
        "VERSION".to_owned(),
        "API".to_owned(),
        "DESCRIPTION".to_owned(),
    ]];
    for f in connectors() {
        let info = f.info();
        rows.push(vec![
            info.identifier.to_owned(),
            kind(f).to_owned(),
            info.crate_name.to_owned(),
            info.version.to_owned(),
            info.api_line().to_owned(),
            info.description.to_owned(),
        ]);
    }
    let mut out = table(&rows);
    out.push('\n');
    let mut rows = vec![vec!["FORMAT".to_owned(), "DESCRIPTION".to_owned()]];
    let mut all: Vec<&dyn FormatFactory> = formats().collect();
    all.sort_by_key(|f| f.identifier());
    for f in all {
        rows.push(vec![f.identifier().to_owned(), f.description().to_owned()]);
    }
    out.push_str(&table(&rows));
    let _ = write!(
        out,
        "\nconnector API line {}; `weir connectors <name>` shows the options.\n",
        weir_connector_api::API_LINE
    );
    out
}

/// The options of one connector (or format), as Markdown.
pub fn show(name: &str) -> Result<String, String> {
    if let Some(f) = find_connector(name) {
        let info = f.info();
        let mut out = format!(
            "# {} ({})\n\n{}.\n\nCrate `{}` {}, API line {}.\n",
            info.identifier,
            kind(f),
            info.description,
            info.crate_name,
            info.version,
            info.api_line()
        );
        if let Some(source) = f.as_source() {
            let _ = write!(
                out,
                "\n## Source options\n\n{}",
                source.source_options().to_markdown()
            );
        }
        if let Some(sink) = f.as_sink() {
            let _ = write!(
                out,
                "\n## Sink options\n\n{}",
                sink.sink_options().to_markdown()
            );
        }
        return Ok(out);
    }
    if let Some(f) = find_format(name) {
        return Ok(format!(
            "# format {}\n\n{}.\n\n## Options\n\n{}",
            f.identifier(),
            f.description(),
            f.options().to_markdown()
        ));
    }
    let names: Vec<&str> = connectors()
        .iter()
        .map(|f| f.info().identifier)
        .chain(formats().map(FormatFactory::identifier))
        .collect();
    Err(format!(
        "no connector or format `{name}` in this build of weir{}; `weir connectors` lists them",
        hint(name, names)
    ))
}

/// `weir connectors [name]`.
pub fn command(name: Option<&str>) -> Exit {
    match name {
        None => {
            print!("{}", list());
            Exit::Ok
        }
        Some(name) => match show(name) {
            Ok(text) => {
                print!("{text}");
                Exit::Ok
            }
            Err(e) => {
                eprintln!("weir: {e}");
                Exit::Invalid
            }
        },
    }
}
