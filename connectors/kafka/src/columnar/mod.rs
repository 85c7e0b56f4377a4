//! Columns natively (API line 1.1): the `kafka` connector's [`ChunkSourceFactory`] and
//! [`ChunkSinkFactory`], so a columnar pipeline reads and writes Kafka without turning records
//! into rows and back.
//!
//! **Source.** The same [`KafkaSource`] as the row source — same splits, offsets, bounded
//! modes, discovery, per-partition watermarks, consumer-group commits and
//! `scan.malformed-records` — decoding differently: the records of one partition that one
//! fetch brought are decoded [`CHUNK_RECORDS`] at a time into one chunk by the format's
//! columnar decoder (`weir_formats::columnar`: `json`, `csv`, `debezium-json`, `canal-json`),
//! emitted with the latest of their timestamps. The split's position after a chunk is the
//! offset after its last record, exactly as after emitting those records one by one, and the
//! split state is the row source's, so a checkpoint taken on rows restores on columns and
//! back. A record the columnar decoder refuses is cut out of its chunk and handled as the row
//! source handles it (the job fails naming its partition and offset, or with `skip` it is
//! counted and skipped); tombstones hold no row, as on rows. Other formats (`raw`, ...) and
//! schemas the columnar decoder has no column for read rows ([`Columnar::RowsOnly`] with the
//! reason).
//!
//! **Sink.** The same [`KafkaSink`] as the row sink — same delivery guarantees, transactions,
//! writer state and committables (a checkpoint restores on either) — writing one record per
//! row of each chunk: values (and `key.fields` keys, encoded with the value's format) encoded
//! a chunk at a time, `json` by `JsonChunkEncoder` and `csv` by `CsvCodec::encode_chunk_lines`,
//! the row encoders' exact bytes. Records carry no timestamp on either path (the broker's
//! time). A chunk the column encoders refuse (a changelog row in `json`, a csv cell with a
//! line break) goes through the row sink's serializer row by row, with the row sink's records
//! and errors. Other formats write rows ([`Columnar::RowsOnly`]).
//!
//! [`KafkaSource`]: crate::KafkaSource
//! [`KafkaSink`]: crate::KafkaSink

mod sink;
mod source;

use std::sync::Arc;

use weir_connector_api::columnar::{
    ChunkSinkFactory, ChunkSinkParts, ChunkSourceFactory, Columnar,
};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::erased::{BoxedSink, BoxedSource};
use weir_connector_api::error::Result;
use weir_connector_api::factory::{FactoryContext, JobContext};
use weir_connector_api::format::find_format;
use weir_connector_api::row::Schema;
use weir_formats::chunk::Chunk;
use weir_formats::columnar::chunk_decoder;

use crate::config::KafkaSinkOptions;
use crate::factory::{missing_format, row_serializer, unknown_format, KafkaFactory};
use crate::{KafkaSink, KafkaSource};
use sink::{ChunkRecords, LineEncoder};
use source::ChunkRuns;

/// The most records the columnar source decodes into one chunk (the chunk size of the `files`
/// and `datagen` sources): a fetch's records of a partition make chunks of this many.
pub const CHUNK_RECORDS: usize = 1024;

/// Chunks per poll of the columnar source's reader: the records of a row source's poll (8192).
pub const CHUNKS_PER_POLL: usize = 8;

impl ChunkSourceFactory for KafkaFactory {
    fn create_chunk_source(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        _job: &JobContext,
    ) -> Result<Columnar<BoxedSource<Chunk>>> {
        let (id, format_config) = ctx.format.ok_or_else(|| missing_format("kafka source"))?;
        let format = find_format(id).ok_or_else(|| unknown_format(id))?;
        // The row decoder's checks first: the same errors on both paths (and the columnar
        // decoder falls back to it for input it cannot read).
        format.decoder(ctx.schema, format_config)?;
        let decoder = match chunk_decoder(id, ctx.schema, format_config) {
            Ok(Some(decoder)) => decoder,
            Ok(None) => {
                return Ok(Columnar::RowsOnly(format!(
                    "format `{id}` has no columnar decoder (`json`, `csv`, `debezium-json` and \
                     `canal-json` have one)"
                )))
            }
            Err(e) => {
                return Ok(Columnar::RowsOnly(format!(
                    "the columnar decoder of `{id}` has no column for this schema: {e}"
                )))
            }
        };
        let source = KafkaSource::from_config_decoding(
            config,
            Arc::new(ChunkRuns { decoder }),
            CHUNKS_PER_POLL,
        )?;
        Ok(Columnar::Chunks(BoxedSource::new(source)))
    }
}

impl ChunkSinkFactory for KafkaFactory {
    fn create_chunk_sink(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
        job: &JobContext,
    ) -> Result<Columnar<ChunkSinkParts>> {
        // The row sink's checks (format, `key.fields`), and its serializer for the chunks the
        // column encoders refuse.
        let rows = row_serializer(config, ctx)?;
        let (id, format_config) = ctx.format.ok_or_else(|| missing_format("kafka sink"))?;
        let Some(value) = LineEncoder::of(id, ctx.schema, format_config) else {
            return Ok(Columnar::RowsOnly(format!(
                "format `{id}` encodes rows one by one (`json` and `csv` encode columns)"
            )));
        };
        let key = match &rows.key {
            None => None,
            Some((_, positions)) => {
                let fields = positions
                    .iter()
                    .filter_map(|&i| ctx.schema.fields.get(i).cloned())
                    .collect();
                LineEncoder::of(id, &Schema::new(fields), format_config)
                    .map(|encoder| (encoder, Arc::from(positions.as_slice())))
            }
        };
        let records = ChunkRecords { value, key, rows };
        let mut builder = KafkaSinkOptions::from_config(config)
            .configure(KafkaSink::builder().records_serializer(Arc::new(records)));
        if let Some(interval) = job.checkpoint_interval() {
            builder = builder.checkpoint_interval(interval);
        }
        Ok(Columnar::Chunks(ChunkSinkParts::new(BoxedSink::new(
            builder.build()?,
        ))))
    }
}
