//! The pipeline source and sink for columnar batches (`weir-formats` chunks): the same options
//! and files as the row source and sink of [`super::FilesFactory`].

use std::sync::Arc;

use weir_connector_api::columnar::{
    ChunkSinkFactory, ChunkSinkParts, ChunkSourceFactory, Columnar,
};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::erased::{BoxedSink, BoxedSource};
use weir_connector_api::error::Result;
use weir_connector_api::factory::{FactoryContext, JobContext};
use weir_formats::chunk::Chunk;
use weir_formats::columnar::{chunk_decoder, JsonChunkEncoder};
use weir_formats::CsvFormat;

use super::{
    bulk_sink, default_config, sink_parts, source_parts, FilesFactory, MessageFormat, RowsFormat,
    SinkParts, SourceParts, FORMAT,
};
use crate::config::{CompactorKind, FileFormatKind};
use crate::format::{ChunkBatches, ChunkFromBatches, ChunkMessages, CsvChunks, JsonChunks};
use crate::sink::ChunkBuckets;
use crate::{FileSink, FileSource};

/// The source of a pipeline's `files` options for chunks — the same rows, in the same order
/// and with the same split positions, as [`FilesFactory`](super::FilesFactory)'s row source
/// reads (a checkpoint of one restores on the other) — or `None` when the format has no
/// columnar reader (`text`, and row formats without a `weir-formats` columnar decoder, i.e.
/// `raw`: the pipeline then reads rows). Parquet and ORC batches become chunks column by
/// column; `csv`, `json`, `debezium-json` and `canal-json` files are decoded many lines at
/// once into columns ([`ChunkMessages`]), every type included. The options are checked as
/// for the row source.
///
/// API line 1.1 and newer only (line 1.0's platform has no chunks).
pub fn create_chunk_source(
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
) -> Result<Option<BoxedSource<Chunk>>> {
    let SourceParts {
        fs,
        paths,
        format,
        options: o,
        ..
    } = source_parts(config, ctx)?;
    let builder = match format {
        RowsFormat::Parquet => FileSource::parquet(fs, paths, ChunkFromBatches::new(ctx.schema)),
        RowsFormat::Orc => FileSource::orc(fs, paths, ChunkFromBatches::new(ctx.schema)),
        RowsFormat::Messages(messages, MessageFormat { id, config }) => {
            // A schema the format's decoder refuses (csv with a nested field) reads rows,
            // whose decoder reports it.
            match chunk_decoder(id, ctx.schema, &config) {
                Ok(Some(decoder)) => {
                    FileSource::row(fs, paths, ChunkMessages::new(messages, decoder))
                }
                Ok(None) | Err(_) => return Ok(None),
            }
        }
        RowsFormat::Text(_) => return Ok(None),
    };
    // A poll of a few chunks: about the rows of a row source's poll.
    let builder = builder
        .with_options(&o)?
        .max_records_per_poll(4)
        .rows_per_record(|chunk: &Chunk| chunk.num_rows() as u64);
    Ok(Some(BoxedSource::new(builder.build()?)))
}

/// The `files` sink of a columnar pipeline: chunks written as they are.
///
/// API line 1.1 and newer only (line 1.0's platform has no chunks).
pub struct ChunkSink {
    /// The sink of chunks.
    pub sink: BoxedSink<Chunk>,
    /// With date-time buckets by a time field: cut every chunk with
    /// [`ChunkBuckets::split`] before the sink, so that each chunk it gets has rows of one
    /// bucket.
    pub buckets: Option<ChunkBuckets>,
}

/// The sink of a pipeline's `files` options for chunks — the same files, bucket for bucket, as
/// [`FilesFactory`](super::FilesFactory)'s row sink writes from the same rows — or `None` when the format encodes
/// rows one by one (`text` and the pipeline's row formats other than `json`: the pipeline then
/// hands the sink rows). Parquet and ORC take the chunks' columns as they are; `csv` and `json`
/// write each chunk's rows column by column (a row-format part file then rolls by size after a whole chunk, not
/// after a row), except with record-wise compaction, which decodes the rows again. The options are checked as for the row sink.
///
/// API line 1.1 and newer only (line 1.0's platform has no chunks).
pub fn create_chunk_sink(
    config: &ValidatedConfig,
    ctx: &FactoryContext<'_>,
) -> Result<Option<ChunkSink>> {
    let SinkParts {
        fs,
        path,
        format,
        rows,
        options: o,
        time_field,
    } = sink_parts(config, ctx)?;
    let f = &o.format_options;
    let chunks = ChunkBatches::new(rows.arrow_schema());
    let builder = match format {
        RowsFormat::Parquet | RowsFormat::Orc => {
            let to_batches = chunks.to_batches();
            bulk_sink(&format, fs, path, to_batches, rows.arrow_schema(), f)
        }
        // Record-wise compaction reads the part files back with the format's decoder, which
        // the chunk encoder has not: such a sink takes rows.
        RowsFormat::Messages(messages, _)
            if config.get_optional(&FORMAT) == Some(FileFormatKind::Csv)
                && o.compaction
                    .as_ref()
                    .is_none_or(|c| c.compactor != CompactorKind::RecordWise) =>
        {
            // The same dialect the row sink validated (`sink_parts`) for the registered `csv`.
            let delimiter = char::from(f.csv_delimiter).to_string();
            let given = [("field-delimiter", delimiter.as_str())];
            let Some(csv_config) = default_config(&CsvFormat, &given, &mut Vec::new()) else {
                return Ok(None); // the row sink reports it
            };
            FileSink::row(
                fs,
                path,
                CsvChunks::new(
                    CsvFormat::codec(ctx.schema, &csv_config),
                    messages.header().cloned(),
                ),
            )
        }
        // `json` lines, from `format = "json"` or the pipeline's `format = "json"` (with its
        // options), as the row sink writes them.
        RowsFormat::Messages(_, MessageFormat { id: "json", config })
            if o.compaction
                .as_ref()
                .is_none_or(|c| c.compactor != CompactorKind::RecordWise) =>
        {
            FileSink::row(
                fs,
                path,
                JsonChunks::new(JsonChunkEncoder::new(ctx.schema, &config)),
            )
        }
        RowsFormat::Text(_) | RowsFormat::Messages(..) => return Ok(None),
    };
    let mut builder = builder
        .with_options(&o)
        .rows_per_record(|chunk: &Chunk| chunk.num_rows() as u64);
    let buckets = time_field.map(|index| ChunkBuckets::new(&o.bucket_format, index));
    if let Some(b) = &buckets {
        builder = builder.bucket_assigner(b.clone());
    }
    Ok(Some(ChunkSink {
        sink: BoxedSink::new(builder.build()?),
        buckets,
    }))
}

/// Columns natively (API line 1.1): [`create_chunk_sink`], with its bucket cut before the
/// writer; the formats that encode rows one by one take rows.
impl ChunkSinkFactory for FilesFactory {
    fn create_chunk_sink(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        _job: &JobContext,
    ) -> Result<Columnar<ChunkSinkParts>> {
        Ok(match create_chunk_sink(config, ctx)? {
            Some(ChunkSink { sink, buckets }) => {
                let parts = ChunkSinkParts::new(sink);
                Columnar::Chunks(match buckets {
                    Some(b) => parts.with_split(Arc::new(move |chunk| b.split(chunk))),
                    None => parts,
                })
            }
            None => Columnar::RowsOnly(
                "its format encodes rows one by one (`text`, the pipeline's row formats other \
                 than `json`, or `csv` and `json` with record-wise compaction)"
                    .to_owned(),
            ),
        })
    }
}

/// Columns natively (API line 1.1): [`create_chunk_source`]; `text` and the row formats
/// without a columnar decoder read rows.
impl ChunkSourceFactory for FilesFactory {
    fn create_chunk_source(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        _job: &JobContext,
    ) -> Result<Columnar<BoxedSource<Chunk>>> {
        Ok(match create_chunk_source(config, ctx)? {
            Some(source) => Columnar::Chunks(source),
            None => Columnar::RowsOnly(
                "it reads its format row by row (`text`, `raw` and formats of other crates; \
                 `parquet`, `orc`, `csv`, `json`, `debezium-json` and `canal-json` are read \
                 into columns unless the format refuses the schema, as `csv` refuses a nested \
                 field)"
                    .to_owned(),
            ),
        })
    }
}
