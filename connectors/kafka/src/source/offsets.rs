//! Where a partition starts and (in bounded mode) stops, and resolving those choices into
//! concrete offsets against the cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::protocol::WireClient;
use weir_connector_api::error::{ConnectorError, Result};

use super::split::{KafkaPartitionSplit, EARLIEST_OFFSET};
use crate::error::kafka_error;

/// What to do for a partition without a committed offset of the consumer group (Kafka's
/// `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetResetStrategy {
    /// Start from the earliest offset.
    Earliest,
    /// Start from the latest offset.
    Latest,
    /// Fail the job, naming the partition.
    None,
}

/// Where each partition starts reading (`scan.startup.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingOffsets {
    /// The earliest offset of each partition.
    Earliest,
    /// The latest offset of each partition when it is first discovered.
    Latest,
    /// The consumer group's committed offsets; `reset` applies where there is none.
    Committed {
        /// The fallback.
        reset: OffsetResetStrategy,
    },
    /// The first record at or after this timestamp (milliseconds), else the end.
    Timestamp(i64),
    /// Offsets per `(topic, partition)`; other partitions start from the earliest offset.
    Specific(BTreeMap<(String, i32), i64>),
}

/// Where each partition stops in bounded mode (`scan.bounded.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoppingOffsets {
    /// Never: the source is unbounded.
    Unbounded,
    /// The latest offset of each partition when the job first discovers it.
    Latest,
    /// The consumer group's committed offsets (a partition without one fails the job).
    Committed,
    /// Before the first record at or after this timestamp (milliseconds).
    Timestamp(i64),
    /// Offsets per `(topic, partition)`; other partitions stop at their latest offset.
    Specific(BTreeMap<(String, i32), i64>),
}

impl StoppingOffsets {
    /// Whether a source with these stopping offsets is bounded.
    pub fn is_bounded(&self) -> bool {
        !matches!(self, StoppingOffsets::Unbounded)
    }
}

/// Resolves splits for `partitions`: concrete starting offsets (or [`EARLIEST_OFFSET`]) and
/// stopping offsets. Blocking: run on a blocking thread.
pub(crate) fn resolve_splits(
    client: &BaseConsumer,
    wire: &WireClient,
    partitions: &[(String, i32)],
    starting: &StartingOffsets,
    stopping: &StoppingOffsets,
    group: Option<&str>,
    timeout: Duration,
) -> Result<Vec<KafkaPartitionSplit>> {
    let starts = resolve_starts(client, wire, partitions, starting, group, timeout)?;
    let stops = resolve_stops(client, wire, partitions, stopping, group, timeout)?;
    Ok(partitions
        .iter()
        .zip(starts)
        .zip(stops)
        .map(|(((topic, partition), start), stop)| {
            KafkaPartitionSplit::new(topic.clone(), *partition, start, stop)
        })
        .collect())
}

fn high_watermark(
    client: &BaseConsumer,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<i64> {
    client
        .fetch_watermarks(topic, partition, timeout)
        .map(|(_, high)| high)
        .map_err(|e| {
            kafka_error(
                &format!("reading the latest offset of {topic}-{partition}"),
                &e,
            )
        })
}

fn committed(
    wire: &WireClient,
    partitions: &[(String, i32)],
    group: Option<&str>,
) -> Result<Vec<Option<i64>>> {
    let Some(group) = group else {
        return Err(ConnectorError::Config(
            weir_connector_api::config::ConfigErrors::new(
                "kafka source",
                vec![weir_connector_api::config::ConfigError::Missing {
                    key: "properties.group.id".into(),
                }],
            ),
        ));
    };
    wire.fetch_offsets(group, partitions).map_err(|e| {
        ConnectorError::retryable(
            "reading the consumer group's committed offsets",
            e.to_string(),
        )
    })
}

fn by_timestamp(
    client: &BaseConsumer,
    partitions: &[(String, i32)],
    ts: i64,
    timeout: Duration,
) -> Result<Vec<i64>> {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition_offset(t, *p, Offset::Offset(ts))
            .map_err(|e| kafka_error("building an offsets-for-times request", &e))?;
    }
    let got = client
        .offsets_for_times(tpl, timeout)
        .map_err(|e| kafka_error(&format!("looking up offsets for timestamp {ts}"), &e))?;
    partitions
        .iter()
        .map(
            |(t, p)| match got.find_partition(t, *p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) if o >= 0 => Ok(o),
                // No record at or after the timestamp: the end of the partition.
                _ => high_watermark(client, t, *p, timeout),
            },
        )
        .collect()
}

fn resolve_starts(
    client: &BaseConsumer,
    wire: &WireClient,
    partitions: &[(String, i32)],
    starting: &StartingOffsets,
    group: Option<&str>,
    timeout: Duration,
) -> Result<Vec<i64>> {
    match starting {
        StartingOffsets::Earliest => Ok(vec![EARLIEST_OFFSET; partitions.len()]),
        StartingOffsets::Latest => partitions
            .iter()
            .map(|(t, p)| high_watermark(client, t, *p, timeout))
            .collect(),
        StartingOffsets::Committed { reset } => {
            let committed = committed(wire, partitions, group)?;
            partitions
                .iter()
                .zip(committed)
                .map(|((t, p), c)| match (c, reset) {
                    (Some(o), _) => Ok(o),
                    (None, OffsetResetStrategy::Earliest) => Ok(EARLIEST_OFFSET),
                    (None, OffsetResetStrategy::Latest) => high_watermark(client, t, *p, timeout),
                    (None, OffsetResetStrategy::None) => Err(ConnectorError::fatal(
                        format!("starting partition {t}-{p} from the group's committed offset"),
                        format!(
                            "group {} has no committed offset for it and the reset strategy is \
                             `none`; set properties.auto.offset.reset to earliest or latest",
                            group.unwrap_or("?")
                        ),
                    )),
                })
                .collect()
        }
        StartingOffsets::Timestamp(ts) => by_timestamp(client, partitions, *ts, timeout),
        StartingOffsets::Specific(map) => Ok(partitions
            .iter()
            .map(|(t, p)| {
                map.get(&(t.clone(), *p))
                    .copied()
                    .unwrap_or(EARLIEST_OFFSET)
            })
            .collect()),
    }
}

fn resolve_stops(
    client: &BaseConsumer,
    wire: &WireClient,
    partitions: &[(String, i32)],
    stopping: &StoppingOffsets,
    group: Option<&str>,
    timeout: Duration,
) -> Result<Vec<Option<i64>>> {
    match stopping {
        StoppingOffsets::Unbounded => Ok(vec![None; partitions.len()]),
        StoppingOffsets::Latest => partitions
            .iter()
            .map(|(t, p)| high_watermark(client, t, *p, timeout).map(Some))
            .collect(),
        StoppingOffsets::Committed => {
            let committed = committed(wire, partitions, group)?;
            partitions
                .iter()
                .zip(committed)
                .map(|((t, p), c)| {
                    c.map(Some).ok_or_else(|| {
                        ConnectorError::fatal(
                            format!("stopping partition {t}-{p} at the group's committed offset"),
                            format!(
                                "group {} has no committed offset for it",
                                group.unwrap_or("?")
                            ),
                        )
                    })
                })
                .collect()
        }
        StoppingOffsets::Timestamp(ts) => Ok(by_timestamp(client, partitions, *ts, timeout)?
            .into_iter()
            .map(Some)
            .collect()),
        StoppingOffsets::Specific(map) => partitions
            .iter()
            .map(|(t, p)| match map.get(&(t.clone(), *p)) {
                Some(o) => Ok(Some(*o)),
                None => high_watermark(client, t, *p, timeout).map(Some),
            })
            .collect(),
    }
}

/// Parses Flink's `partition:0,offset:42;partition:1,offset:300` into offsets for `topic`.
pub(crate) fn parse_specific_offsets(
    raw: &str,
    topic: &str,
) -> std::result::Result<BTreeMap<(String, i32), i64>, String> {
    let mut out = BTreeMap::new();
    for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let mut partition = None;
        let mut offset = None;
        for field in entry.split(',') {
            let (k, v) = field
                .split_once(':')
                .ok_or_else(|| format!("`{field}` is not `key:value`"))?;
            match k.trim() {
                "partition" => {
                    partition = Some(
                        v.trim()
                            .parse::<i32>()
                            .map_err(|_| format!("partition `{}` is not a number", v.trim()))?,
                    );
                }
                "offset" => {
                    offset = Some(
                        v.trim()
                            .parse::<i64>()
                            .map_err(|_| format!("offset `{}` is not a number", v.trim()))?,
                    );
                }
                other => {
                    return Err(format!(
                        "unknown field `{other}` (expected partition, offset)"
                    ))
                }
            }
        }
        match (partition, offset) {
            (Some(p), Some(o)) if p >= 0 && o >= 0 => {
                out.insert((topic.to_owned(), p), o);
            }
            _ => {
                return Err(format!(
                    "`{entry}` needs a non-negative partition and offset, as in \
                     `partition:0,offset:42`"
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(
            "no offsets given, expected `partition:0,offset:42;partition:1,offset:300`".into(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_offsets_parse_like_flink() {
        let m = parse_specific_offsets("partition:0,offset:42;partition:1,offset:300", "t")
            .unwrap_or_default();
        assert_eq!(m.get(&("t".to_owned(), 0)), Some(&42));
        assert_eq!(m.get(&("t".to_owned(), 1)), Some(&300));
        assert!(parse_specific_offsets("partition:x,offset:1", "t").is_err());
        assert!(parse_specific_offsets("partition:0", "t").is_err());
        assert!(parse_specific_offsets("", "t").is_err());
        assert!(parse_specific_offsets("part:0,offset:1", "t").is_err());
    }
}
