//! A minimal Kafka wire-protocol client for the transaction-coordinator requests librdkafka does
//! not expose: `FindCoordinator`, `EndTxn` (commit a transaction of another producer instance, by
//! producer id and epoch — what Flink does through reflection), `DescribeTransactions` and
//! `ListTransactions` (to find lingering transactions of a prefix).
//!
//! Blocking, one TCP connection per call, with timeouts: call it from `spawn_blocking`. Only
//! these few requests are implemented, in versions every broker since Kafka 3.0 accepts.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use crate::source::TopicPartitionOffset;

const FIND_COORDINATOR: i16 = 10;
const OFFSET_COMMIT: i16 = 8;
const OFFSET_FETCH: i16 = 9;
const END_TXN: i16 = 26;
const DESCRIBE_TRANSACTIONS: i16 = 65;
const LIST_TRANSACTIONS: i16 = 66;

/// Kafka error codes the sink reacts to.
pub(crate) mod codes {
    /// No error.
    pub(crate) const NONE: i16 = 0;
    /// The coordinator is loading.
    pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    /// The coordinator is not available.
    pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    /// This broker is not the coordinator.
    pub(crate) const NOT_COORDINATOR: i16 = 16;
    /// The epoch is older than the coordinator's: another producer initialised the id.
    pub(crate) const INVALID_PRODUCER_EPOCH: i16 = 47;
    /// The transaction is not in a state that allows the request.
    pub(crate) const INVALID_TXN_STATE: i16 = 48;
    /// The producer id is not the one of the transactional id.
    pub(crate) const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    /// Another transaction operation is in progress.
    pub(crate) const CONCURRENT_TRANSACTIONS: i16 = 51;
    /// A newer producer with the same transactional id exists.
    pub(crate) const PRODUCER_FENCED: i16 = 90;
    /// The transactional id is unknown.
    pub(crate) const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

    /// Whether retrying the same request later may succeed.
    pub(crate) fn is_retryable(code: i16) -> bool {
        matches!(
            code,
            COORDINATOR_LOAD_IN_PROGRESS
                | COORDINATOR_NOT_AVAILABLE
                | NOT_COORDINATOR
                | CONCURRENT_TRANSACTIONS
                | 7 // REQUEST_TIMED_OUT
                | 6 // NOT_LEADER_OR_FOLLOWER
        )
    }

    /// A short name for messages.
    pub(crate) fn name(code: i16) -> String {
        let name = match code {
            NONE => "NONE",
            COORDINATOR_LOAD_IN_PROGRESS => "COORDINATOR_LOAD_IN_PROGRESS",
            COORDINATOR_NOT_AVAILABLE => "COORDINATOR_NOT_AVAILABLE",
            NOT_COORDINATOR => "NOT_COORDINATOR",
            INVALID_PRODUCER_EPOCH => "INVALID_PRODUCER_EPOCH",
            INVALID_TXN_STATE => "INVALID_TXN_STATE",
            INVALID_PRODUCER_ID_MAPPING => "INVALID_PRODUCER_ID_MAPPING",
            CONCURRENT_TRANSACTIONS => "CONCURRENT_TRANSACTIONS",
            PRODUCER_FENCED => "PRODUCER_FENCED",
            TRANSACTIONAL_ID_NOT_FOUND => "TRANSACTIONAL_ID_NOT_FOUND",
            35 => "UNSUPPORTED_VERSION",
            53 => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
            _ => return format!("error code {code}"),
        };
        name.to_owned()
    }
}

/// A protocol-level failure (I/O, a malformed answer, or an error code).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    /// The connection failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The broker answered with an error code.
    #[error("{what}: broker answered {}", codes::name(*.code))]
    Code {
        /// What was being done.
        what: String,
        /// The Kafka error code.
        code: i16,
    },
    /// The answer could not be decoded.
    #[error("{what}: malformed answer ({reason})")]
    Malformed {
        /// What was being done.
        what: String,
        /// What was wrong.
        reason: String,
    },
}

impl ProtocolError {
    /// The Kafka error code, if the broker answered with one.
    pub(crate) fn code(&self) -> Option<i16> {
        match self {
            ProtocolError::Code { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying later may help.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            ProtocolError::Io { .. } => true,
            ProtocolError::Code { code, .. } => codes::is_retryable(*code),
            ProtocolError::Malformed { .. } => false,
        }
    }
}

static CORRELATION: AtomicI32 = AtomicI32::new(1);

/// The coordinator-side view of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransactionDescription {
    /// `Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`, `CompleteCommit`, `CompleteAbort`,
    /// `Dead`, `PrepareEpochFence`.
    pub(crate) state: String,
    /// The current producer id.
    pub(crate) producer_id: i64,
    /// The current producer epoch.
    pub(crate) producer_epoch: i16,
}

/// One entry of `ListTransactions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedTransaction {
    /// The transactional id.
    pub(crate) transactional_id: String,
    /// Its producer id.
    pub(crate) producer_id: i64,
    /// Its state (as in [`TransactionDescription::state`]).
    pub(crate) state: String,
}

/// A blocking client of one cluster, addressed by `host:port` bootstrap servers.
#[derive(Debug, Clone)]
pub(crate) struct WireClient {
    bootstrap: Vec<String>,
    timeout: Duration,
}

impl WireClient {
    /// A client for `bootstrap.servers` (comma separated `host:port`).
    pub(crate) fn new(bootstrap_servers: &str, timeout: Duration) -> Self {
        WireClient {
            bootstrap: bootstrap_servers
                .split(',')
                .map(|s| strip_scheme(s.trim()).to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            timeout,
        }
    }

    fn connect(&self, addr: &str, what: &str) -> Result<TcpStream, ProtocolError> {
        let io = |source| ProtocolError::Io {
            what: format!("{what}: connecting to {addr}"),
            source,
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for sock in addr.to_socket_addrs().map_err(io)? {
            match TcpStream::connect_timeout(&sock, self.timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
                    stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
                    stream.set_nodelay(true).map_err(io)?;
                    return Ok(stream);
                }
                Err(e) => last = e,
            }
        }
        Err(io(last))
    }

    /// Sends one request to `addr` and returns the response body after the header.
    fn call(
        &self,
        addr: &str,
        api_key: i16,
        version: i16,
        flexible: bool,
        body: &[u8],
        what: &str,
    ) -> Result<Vec<u8>, ProtocolError> {
        let mut stream = self.connect(addr, what)?;
        let correlation = CORRELATION.fetch_add(1, Ordering::Relaxed);
        let mut request = Vec::with_capacity(body.len() + 32);
        request.extend_from_slice(&api_key.to_be_bytes());
        request.extend_from_slice(&version.to_be_bytes());
        request.extend_from_slice(&correlation.to_be_bytes());
        let client = b"weir-kafka";
        request.extend_from_slice(&(client.len() as i16).to_be_bytes());
        request.extend_from_slice(client);
        if flexible {
            request.push(0); // no tagged fields
        }
        request.extend_from_slice(body);
        let io = |source| ProtocolError::Io {
            what: format!("{what}: talking to {addr}"),
            source,
        };
        let mut framed = (request.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&request);
        stream.write_all(&framed).map_err(io)?;
        let mut size = [0u8; 4];
        stream.read_exact(&mut size).map_err(io)?;
        let size = i32::from_be_bytes(size);
        if !(4..=64 << 20).contains(&size) {
            return Err(ProtocolError::Malformed {
                what: what.to_owned(),
                reason: format!("response of {size} bytes"),
            });
        }
        let mut response = vec![0u8; size as usize];
        stream.read_exact(&mut response).map_err(io)?;
        let mut r = Reader::new(&response, what);
        let got = r.i32()?;
        if got != correlation {
            return Err(r.malformed(format!("correlation id {got}, sent {correlation}")));
        }
        if flexible {
            r.skip_tagged()?;
        }
        Ok(response[r.pos..].to_vec())
    }

    /// The `host:port` of the transaction coordinator of `transactional_id`.
    pub(crate) fn find_coordinator(&self, transactional_id: &str) -> Result<String, ProtocolError> {
        self.coordinator(transactional_id, 1)
    }

    /// Commits offsets for consumer group `group` as a simple (unsubscribed) consumer; returns
    /// the partitions that failed with their error codes.
    pub(crate) fn commit_offsets(
        &self,
        group: &str,
        offsets: &[TopicPartitionOffset],
    ) -> Result<Vec<(String, i32, i16)>, ProtocolError> {
        let what = format!("committing offsets of group {group}");
        let coordinator = self.coordinator(group, 0)?;
        let mut by_topic: Vec<(&str, Vec<(i32, i64)>)> = Vec::new();
        for tpo in offsets {
            let entry = (tpo.partition, tpo.offset);
            match by_topic.iter_mut().find(|(name, _)| *name == tpo.topic) {
                Some((_, v)) => v.push(entry),
                None => by_topic.push((&tpo.topic, vec![entry])),
            }
        }
        let mut body = Vec::new();
        put_str(&mut body, group);
        body.extend_from_slice(&(-1_i32).to_be_bytes()); // generation: simple consumer
        put_str(&mut body, "");
        body.extend_from_slice(&(-1_i64).to_be_bytes()); // broker's retention
        body.extend_from_slice(&(by_topic.len() as i32).to_be_bytes());
        for (t, parts) in &by_topic {
            put_str(&mut body, t);
            body.extend_from_slice(&(parts.len() as i32).to_be_bytes());
            for (p, o) in parts {
                body.extend_from_slice(&p.to_be_bytes());
                body.extend_from_slice(&o.to_be_bytes());
                body.extend_from_slice(&(-1_i16).to_be_bytes()); // null metadata
            }
        }
        let resp = self.call(&coordinator, OFFSET_COMMIT, 2, false, &body, &what)?;
        let mut r = Reader::new(&resp, &what);
        let mut failed = Vec::new();
        let topics = r.i32()?;
        for _ in 0..topics.max(0) {
            let name = r.str()?;
            let parts = r.i32()?;
            for _ in 0..parts.max(0) {
                let p = r.i32()?;
                let code = r.i16()?;
                if code != codes::NONE {
                    failed.push((name.clone(), p, code));
                }
            }
        }
        Ok(failed)
    }

    /// The committed offsets of consumer group `group` (`None` where there is none).
    pub(crate) fn fetch_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<i64>>, ProtocolError> {
        let what = format!("reading the committed offsets of group {group}");
        let coordinator = self.coordinator(group, 0)?;
        let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
        for (t, p) in partitions {
            match by_topic.iter_mut().find(|(name, _)| name == t) {
                Some((_, v)) => v.push(*p),
                None => by_topic.push((t, vec![*p])),
            }
        }
        let mut body = Vec::new();
        put_str(&mut body, group);
        body.extend_from_slice(&(by_topic.len() as i32).to_be_bytes());
        for (t, parts) in &by_topic {
            put_str(&mut body, t);
            body.extend_from_slice(&(parts.len() as i32).to_be_bytes());
            for p in parts {
                body.extend_from_slice(&p.to_be_bytes());
            }
        }
        let resp = self.call(&coordinator, OFFSET_FETCH, 1, false, &body, &what)?;
        let mut r = Reader::new(&resp, &what);
        let mut found: Vec<TopicPartitionOffset> = Vec::new();
        let topics = r.i32()?;
        for _ in 0..topics.max(0) {
            let name = r.str()?;
            let parts = r.i32()?;
            for _ in 0..parts.max(0) {
                let p = r.i32()?;
                let offset = r.i64()?;
                let _metadata = r.nullable_str()?;
                let code = r.i16()?;
                if code != codes::NONE {
                    return Err(ProtocolError::Code { what, code });
                }
                found.push(TopicPartitionOffset {
                    topic: name.clone(),
                    partition: p,
                    offset,
                });
            }
        }
        Ok(partitions
            .iter()
            .map(|(t, p)| {
                found
                    .iter()
                    .find(|f| f.topic == *t && f.partition == *p)
                    .map(|f| f.offset)
                    .filter(|o| *o >= 0)
            })
            .collect())
    }

    fn coordinator(&self, key: &str, key_type: u8) -> Result<String, ProtocolError> {
        let what = format!("finding the coordinator of {key}");
        let transactional_id = key;
        let mut body = Vec::new();
        put_str(&mut body, transactional_id);
        body.push(key_type);
        let mut last = None;
        for addr in &self.bootstrap {
            match self.call(addr, FIND_COORDINATOR, 1, false, &body, &what) {
                Ok(resp) => {
                    let mut r = Reader::new(&resp, &what);
                    let _throttle = r.i32()?;
                    let code = r.i16()?;
                    let _message = r.nullable_str()?;
                    let _node = r.i32()?;
                    let host = r.str()?;
                    let port = r.i32()?;
                    if code != codes::NONE {
                        return Err(ProtocolError::Code { what, code });
                    }
                    return Ok(format!("{host}:{port}"));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ProtocolError::Malformed {
            what,
            reason: "no bootstrap servers".into(),
        }))
    }

    /// Ends (commits or aborts) the transaction of `transactional_id` held by producer
    /// `producer_id` at `epoch`, as that producer would.
    pub(crate) fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ProtocolError> {
        let what = format!(
            "{} transaction {transactional_id} (producer {producer_id}, epoch {epoch})",
            if commit { "committing" } else { "aborting" }
        );
        let coordinator = self.find_coordinator(transactional_id)?;
        let mut body = Vec::new();
        put_str(&mut body, transactional_id);
        body.extend_from_slice(&producer_id.to_be_bytes());
        body.extend_from_slice(&epoch.to_be_bytes());
        body.push(u8::from(commit));
        let resp = self.call(&coordinator, END_TXN, 1, false, &body, &what)?;
        let mut r = Reader::new(&resp, &what);
        let _throttle = r.i32()?;
        let code = r.i16()?;
        if code == codes::NONE {
            Ok(())
        } else {
            Err(ProtocolError::Code { what, code })
        }
    }

    /// The coordinator's view of `transactional_id`.
    pub(crate) fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription, ProtocolError> {
        let what = format!("describing transaction {transactional_id}");
        let coordinator = self.find_coordinator(transactional_id)?;
        let mut body = Vec::new();
        put_uvarint(&mut body, 2); // one id
        put_compact_str(&mut body, transactional_id);
        body.push(0); // tagged fields
        let resp = self.call(&coordinator, DESCRIBE_TRANSACTIONS, 0, true, &body, &what)?;
        let mut r = Reader::new(&resp, &what);
        let _throttle = r.i32()?;
        let n = r.compact_len()?;
        let mut found = None;
        for _ in 0..n {
            let code = r.i16()?;
            let id = r.compact_str()?;
            let state = r.compact_str()?;
            let _timeout = r.i32()?;
            let _start = r.i64()?;
            let producer_id = r.i64()?;
            let producer_epoch = r.i16()?;
            let topics = r.compact_len()?;
            for _ in 0..topics {
                let _topic = r.compact_str()?;
                let partitions = r.compact_len()?;
                for _ in 0..partitions {
                    r.i32()?;
                }
                r.skip_tagged()?;
            }
            r.skip_tagged()?;
            if id == transactional_id {
                if code != codes::NONE {
                    return Err(ProtocolError::Code { what, code });
                }
                found = Some(TransactionDescription {
                    state,
                    producer_id,
                    producer_epoch,
                });
            }
        }
        found.ok_or_else(|| ProtocolError::Malformed {
            what,
            reason: "the answer does not mention the transaction".into(),
        })
    }

    /// Every transaction the cluster's coordinators know in one of `states` (all states when
    /// empty). Asks every broker in `brokers` (`host:port`), or the bootstrap servers.
    pub(crate) fn list_transactions(
        &self,
        brokers: &[String],
        states: &[&str],
    ) -> Result<Vec<ListedTransaction>, ProtocolError> {
        let what = "listing transactions".to_owned();
        let mut body = Vec::new();
        put_uvarint(&mut body, states.len() as u64 + 1);
        for s in states {
            put_compact_str(&mut body, s);
        }
        put_uvarint(&mut body, 1); // no producer id filter
        body.push(0);
        let targets: Vec<String> = if brokers.is_empty() {
            self.bootstrap.clone()
        } else {
            brokers.to_vec()
        };
        let mut out: Vec<ListedTransaction> = Vec::new();
        for addr in &targets {
            let resp = self.call(addr, LIST_TRANSACTIONS, 0, true, &body, &what)?;
            let mut r = Reader::new(&resp, &what);
            let _throttle = r.i32()?;
            let code = r.i16()?;
            if code != codes::NONE {
                return Err(ProtocolError::Code {
                    what: what.clone(),
                    code,
                });
            }
            let unknown = r.compact_len()?;
            for _ in 0..unknown {
                r.compact_str()?;
            }
            let n = r.compact_len()?;
            for _ in 0..n {
                let transactional_id = r.compact_str()?;
                let producer_id = r.i64()?;
                let state = r.compact_str()?;
                r.skip_tagged()?;
                if !out.iter().any(|t| t.transactional_id == transactional_id) {
                    out.push(ListedTransaction {
                        transactional_id,
                        producer_id,
                        state,
                    });
                }
            }
        }
        Ok(out)
    }
}

fn strip_scheme(s: &str) -> &str {
    s.split_once("://").map_or(s, |(_, rest)| rest)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as i16).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_compact_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64 + 1);
    buf.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'a str) -> Self {
        Reader {
            bytes,
            pos: 0,
            what,
        }
    }

    fn malformed(&self, reason: String) -> ProtocolError {
        ProtocolError::Malformed {
            what: self.what.to_owned(),
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.malformed(format!("truncated at byte {}", self.pos))),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn i16(&mut self) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn uvarint(&mut self) -> Result<u64, ProtocolError> {
        let mut v = 0_u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.malformed("varint too long".into()))
    }

    fn text(&mut self, len: usize) -> Result<String, ProtocolError> {
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.malformed("invalid UTF-8".into()))
    }

    fn str(&mut self) -> Result<String, ProtocolError> {
        let len = self.i16()?;
        let len = usize::try_from(len).map_err(|_| self.malformed("null string".into()))?;
        self.text(len)
    }

    fn nullable_str(&mut self) -> Result<Option<String>, ProtocolError> {
        let len = self.i16()?;
        match usize::try_from(len) {
            Ok(len) => self.text(len).map(Some),
            Err(_) => Ok(None),
        }
    }

    fn compact_len(&mut self) -> Result<usize, ProtocolError> {
        let n = self.uvarint()?;
        Ok(usize::try_from(n.saturating_sub(1)).unwrap_or(0))
    }

    fn compact_str(&mut self) -> Result<String, ProtocolError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(String::new());
        }
        let len = usize::try_from(n - 1).map_err(|_| self.malformed("string too long".into()))?;
        self.text(len)
    }

    fn skip_tagged(&mut self) -> Result<(), ProtocolError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let _tag = self.uvarint()?;
            let len = self.uvarint()?;
            let len = usize::try_from(len).map_err(|_| self.malformed("tag too long".into()))?;
            self.take(len)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0_u64, 1, 127, 128, 300, 1 << 20, u64::from(u32::MAX)] {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, v);
            let mut r = Reader::new(&buf, "test");
            assert_eq!(r.uvarint().ok(), Some(v));
        }
    }

    #[test]
    fn truncated_answers_are_errors_not_panics() {
        let mut r = Reader::new(&[0, 1], "test");
        assert!(r.i32().is_err());
        let mut r = Reader::new(&[0xff, 0xff, 0xff], "test");
        assert!(r.uvarint().is_err());
        let mut r = Reader::new(&[0, 5, b'a'], "test");
        assert!(r.str().is_err());
    }

    #[test]
    fn bootstrap_schemes_are_stripped() {
        let c = WireClient::new("PLAINTEXT://a:1, b:2", Duration::from_secs(1));
        assert_eq!(c.bootstrap, ["a:1", "b:2"]);
    }
}
