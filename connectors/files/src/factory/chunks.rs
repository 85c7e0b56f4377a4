//! The pipeline sink for columnar batches (`weir-formats` chunks): the same options and files
//! as the row sink of [`super::FilesFactory`].

use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::error::Result;
use weir_connector_api::factory::FactoryContext;
use weir_connector_api::format::find_format;
use weir_formats::chunk::Chunk;
use weir_formats::CsvFormat;

use super::{sink_parts, RowsFormat, SinkParts, FORMAT};
use crate::config::{CompactorKind, FileFormatKind};
use crate::format::{ChunkBatches, CsvChunks};
use crate::sink::ChunkBuckets;
use crate::{FileSink, OrcFormat, ParquetFormat};

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
/// [`FilesFactory`]'s row sink writes from the same rows — or `None` when the format encodes
/// rows one by one (`json`, `text` and the pipeline's row formats: the pipeline then hands the
/// sink rows). Parquet and ORC take the chunks' columns as they are; `csv` writes each chunk's
/// rows column by column (a row-format part file then rolls by size after a whole chunk, not
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
        RowsFormat::Parquet => FileSink::bulk(
            fs,
            path,
            ParquetFormat::new(chunks.to_batches())
                .with_schema(rows.arrow_schema())
                .codec(f.codec)
                .row_group_rows(f.row_group_rows),
        ),
        RowsFormat::Orc => FileSink::bulk(
            fs,
            path,
            OrcFormat::new(chunks.to_batches())
                .with_schema(rows.arrow_schema())
                .codec(f.codec)
                .stripe_bytes(f.stripe_size.bytes() as usize),
        ),
        // Record-wise compaction reads the part files back with the format's decoder, which
        // the chunk encoder has not: such a sink takes rows.
        RowsFormat::Messages(messages)
            if config.get_optional(&FORMAT) == Some(FileFormatKind::Csv)
                && o.compaction
                    .as_ref()
                    .is_none_or(|c| c.compactor != CompactorKind::RecordWise) =>
        {
            let csv = find_format("csv").map(|csv| {
                let delimiter = char::from(f.csv_delimiter).to_string();
                csv.options()
                    .validate(&[("field-delimiter".to_owned(), delimiter)].into())
            });
            let Some(Ok(csv_config)) = csv else {
                return Ok(None); // not linked: the row sink says so
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
        RowsFormat::Text(_) | RowsFormat::Messages(_) => return Ok(None),
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
