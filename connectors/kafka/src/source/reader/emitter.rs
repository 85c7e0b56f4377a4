//! [`KafkaRecordEmitter`]: turns fetched elements into records.

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::metrics::Counter;
use weir_connector_api::source::{SourceOutput, SourceSplit};
use weir_connector_base::source::reader::RecordEmitter;

use super::batch::KafkaElement;
use crate::source::split::KafkaPartitionSplit;
use crate::MalformedRecordPolicy;

/// Emits deserialized records with their Kafka timestamps through each partition's own output
/// (per-partition watermarks), applies the malformed-record policy, and advances the offset.
pub struct KafkaRecordEmitter {
    pub(super) policy: MalformedRecordPolicy,
    pub(super) bytes_in: Counter,
    pub(super) errors: Counter,
    /// `numRecordsOut`: the rows of elements that hold many (chunks) beyond the one the
    /// runtime counts per element.
    pub(super) records_out: Counter,
}

impl<T: Send + 'static> RecordEmitter<KafkaElement<T>, T, KafkaPartitionSplit>
    for KafkaRecordEmitter
{
    fn emit_record<O: SourceOutput<T>>(
        &mut self,
        element: KafkaElement<T>,
        output: &mut O,
        split: &mut KafkaPartitionSplit,
    ) -> Result<()> {
        split.starting_offset = element.offset + 1;
        match element.value {
            Ok(value) => {
                self.bytes_in.add(u64::from(element.bytes));
                if element.extra_rows > 0 {
                    self.records_out.add(element.extra_rows);
                }
                match (value, element.timestamp) {
                    (Some(value), Some(ts)) => output.collect_with_timestamp(value, ts),
                    (Some(value), None) => output.collect(value),
                    (None, _) => {}
                }
                Ok(())
            }
            Err(reason) => {
                self.errors.inc();
                let location = format!("partition {} offset {}", split.split_id(), element.offset);
                match self.policy {
                    MalformedRecordPolicy::Fail => Err(ConnectorError::malformed(
                        location,
                        format!(
                            "{reason} (set scan.malformed-records to skip to skip and count such \
                             records)"
                        ),
                    )),
                    MalformedRecordPolicy::Skip => {
                        tracing::warn!("skipping malformed record at {location}: {reason}");
                        Ok(())
                    }
                }
            }
        }
    }
}
