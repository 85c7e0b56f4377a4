//! The split reader (reads splits one after another, in assignment order) and the source reader
//! that asks the enumerator for a new split whenever it has none.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::RecordBatch;
use parquet::arrow::async_reader::ParquetRecordBatchStream;
use tokio::io::AsyncReadExt;
use weir_connector_api::error::Result;
use weir_connector_api::metrics::{Counter, NUM_RECORDS_OUT};
use weir_connector_api::source::{
    InputStatus, ReaderOutput, SourceOutput, SourceReader, SourceReaderContext, SplitOutputId,
};
use weir_connector_api::watermark::Watermark;
use weir_connector_base::source::reader::{
    RecordEmitter, RecordsBySplits, SourceReaderBase, SplitReader, SplitsChange,
};
use weir_connector_base::source::{Forwarding, ForwardingSourceReader};

use super::split::{FilePosition, FileSourceSplit};
use crate::format::parquet::{next_batch, open_stream, FsParquetReader};
use crate::format::{BulkKind, Decoded, FromBatch, RecordDecoder, SourceFormat};
use crate::fs::{ByteReader, FileSystem};

/// Records per fetched batch.
const FETCH_RECORDS: usize = 4096;
/// Bytes read at once from a row-format file.
const READ_CHUNK: usize = 256 * 1024;

enum Open<T> {
    Row {
        reader: ByteReader,
        decoder: Box<dyn RecordDecoder<T>>,
        buf: Vec<u8>,
        /// The file offset of `buf[0]`.
        buf_offset: u64,
        eof: bool,
        /// Records decoded at the current offset without consuming bytes (the first rows of a
        /// message that decodes into several), so the position can say how many to skip.
        at_offset: u64,
        /// Records at the restored offset emitted before the restore: decoded and dropped.
        skip: u64,
    },
    Parquet {
        stream: Box<ParquetRecordBatchStream<FsParquetReader>>,
        rows: u64,
        decode: Arc<dyn FromBatch<T>>,
    },
    Orc {
        batches: VecDeque<RecordBatch>,
        rows: u64,
        decode: Arc<dyn FromBatch<T>>,
    },
}

/// Reads the assigned splits in order, one at a time.
pub struct FileSplitReader<T> {
    fs: Arc<dyn FileSystem>,
    format: SourceFormat<T>,
    queue: VecDeque<FileSourceSplit>,
    open: Option<Open<T>>,
    /// Decoded records not yet returned (kept here so a dropped fetch loses nothing).
    out: Vec<(T, FilePosition)>,
    finished: Vec<String>,
    chunk: Vec<u8>,
}

impl<T: Send + 'static> FileSplitReader<T> {
    pub(crate) fn new(fs: Arc<dyn FileSystem>, format: SourceFormat<T>) -> Self {
        FileSplitReader {
            fs,
            format,
            queue: VecDeque::new(),
            open: None,
            out: Vec::new(),
            finished: Vec::new(),
            chunk: vec![0; READ_CHUNK],
        }
    }

    async fn open_front(&mut self) -> Result<()> {
        let Some(split) = self.queue.front() else {
            return Ok(());
        };
        let open = match &self.format {
            SourceFormat::Row(format) => {
                let (decoder, skip) = format
                    .create_decoder_resuming(split.position.offset == 0, split.position.records)?;
                Open::Row {
                    reader: self
                        .fs
                        .open_read(&split.path, split.position.offset)
                        .await?,
                    decoder,
                    buf: Vec::new(),
                    buf_offset: split.position.offset,
                    eof: false,
                    at_offset: 0,
                    skip,
                }
            }
            SourceFormat::Bulk {
                kind: BulkKind::Parquet,
                decode,
                batch_size,
            } => Open::Parquet {
                stream: Box::new(
                    open_stream(
                        &self.fs,
                        &split.path,
                        split.file_len,
                        split.row_group.map(|g| g as usize),
                        split.position.records,
                        *batch_size,
                    )
                    .await?,
                ),
                rows: split.position.records,
                decode: Arc::clone(decode),
            },
            SourceFormat::Bulk {
                kind: BulkKind::Orc,
                decode,
                batch_size,
            } => {
                let bytes = self.fs.read_range(&split.path, 0..split.file_len).await?;
                let batch_size = *batch_size;
                let batches = tokio::task::spawn_blocking(move || {
                    crate::format::orc::read_batches(bytes, batch_size)
                })
                .await
                .map_err(|e| {
                    weir_connector_api::ConnectorError::Contract(format!("ORC read task: {e}"))
                })??;
                // Skip the rows emitted before a restore.
                let mut skip = split.position.records;
                let mut kept = VecDeque::with_capacity(batches.len());
                for b in batches {
                    let n = b.num_rows() as u64;
                    if skip >= n {
                        skip -= n;
                    } else {
                        kept.push_back(b.slice(skip as usize, (n - skip) as usize));
                        skip = 0;
                    }
                }
                Open::Orc {
                    batches: kept,
                    rows: split.position.records,
                    decode: Arc::clone(decode),
                }
            }
        };
        self.open = Some(open);
        Ok(())
    }

    fn finish_front(&mut self) {
        self.open = None;
        if let Some(split) = self.queue.pop_front() {
            self.finished.push(split.id);
        }
    }

    /// Reads from the open split until `FETCH_RECORDS` records are decoded or it ends.
    async fn read_open(&mut self) -> Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        match open {
            Open::Row {
                reader,
                decoder,
                buf,
                buf_offset,
                eof,
                at_offset,
                skip,
            } => {
                let mut at = 0;
                loop {
                    if self.out.len() >= FETCH_RECORDS {
                        break;
                    }
                    match decoder.decode(buf.get(at..).unwrap_or_default(), *eof)? {
                        Decoded::Record(record, used) => {
                            at += used;
                            // For row formats, `records` counts the records already emitted
                            // at `offset` (more records of one message follow).
                            *at_offset = if used == 0 { *at_offset + 1 } else { 0 };
                            if *skip > 0 {
                                *skip -= 1;
                                continue;
                            }
                            self.out.push((
                                record,
                                FilePosition {
                                    offset: *buf_offset + at as u64,
                                    records: *at_offset,
                                },
                            ));
                        }
                        Decoded::Skip(used) => at += used,
                        Decoded::NeedMore => {
                            if *eof {
                                buf.clear();
                                self.finish_front();
                                return Ok(());
                            }
                            buf.drain(..at);
                            *buf_offset += at as u64;
                            at = 0;
                            let n = reader
                                .read(&mut self.chunk)
                                .await
                                .map_err(|e| crate::fs::io_error("reading a source file", e))?;
                            if n == 0 {
                                *eof = true;
                            } else {
                                buf.extend_from_slice(self.chunk.get(..n).unwrap_or_default());
                            }
                            if !self.out.is_empty() {
                                break; // hand over what is decoded before waiting again
                            }
                        }
                    }
                }
                buf.drain(..at);
                *buf_offset += at as u64;
            }
            Open::Parquet {
                stream,
                rows,
                decode,
            } => {
                let path = self
                    .queue
                    .front()
                    .map(|s| s.path.clone())
                    .unwrap_or_default();
                match next_batch(stream, &path).await? {
                    Some(batch) => emit_batch(batch, rows, decode.as_ref(), &mut self.out)?,
                    None => self.finish_front(),
                }
            }
            Open::Orc {
                batches,
                rows,
                decode,
            } => match batches.pop_front() {
                Some(batch) => emit_batch(batch, rows, decode.as_ref(), &mut self.out)?,
                None => self.finish_front(),
            },
        }
        Ok(())
    }
}

fn emit_batch<T: 'static>(
    batch: RecordBatch,
    rows: &mut u64,
    decode: &dyn FromBatch<T>,
    out: &mut Vec<(T, FilePosition)>,
) -> Result<()> {
    let mut elements = Vec::with_capacity(batch.num_rows());
    decode.decode_batch(batch, &mut elements)?;
    for (element, covered) in elements {
        *rows += covered as u64;
        out.push((
            element,
            FilePosition {
                offset: 0,
                records: *rows,
            },
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl<T: Send + 'static> SplitReader for FileSplitReader<T> {
    type Split = FileSourceSplit;
    type Records = RecordsBySplits<(T, FilePosition)>;

    async fn fetch(&mut self) -> Result<Self::Records> {
        loop {
            if self.open.is_none() && !self.queue.is_empty() {
                self.open_front().await?;
            }
            if self.open.is_some() {
                self.read_open().await?;
            }
            if !self.out.is_empty() || !self.finished.is_empty() || self.queue.is_empty() {
                break;
            }
        }
        let mut batch = RecordsBySplits::new();
        // Records belong to the split at the front, or to the one that just finished.
        let owner = self
            .finished
            .last()
            .cloned()
            .or_else(|| self.queue.front().map(|s| s.id.clone()));
        if let Some(owner) = owner {
            let records = std::mem::replace(&mut self.out, Vec::with_capacity(FETCH_RECORDS));
            batch.add_all(owner, records);
        }
        for id in self.finished.drain(..) {
            batch.add_finished_split(id);
        }
        Ok(batch)
    }

    fn handle_splits_change(&mut self, change: SplitsChange<FileSourceSplit>) -> Result<()> {
        match change {
            SplitsChange::Add(splits) => self.queue.extend(splits),
            SplitsChange::Remove(ids) => {
                if self.queue.front().is_some_and(|s| ids.contains(&s.id)) {
                    self.open = None;
                    self.out.clear();
                }
                self.queue.retain(|s| !ids.contains(&s.id));
            }
        }
        Ok(())
    }
}

/// Updates a split's position as its records are emitted.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileRecordEmitter;

impl<T: Send + 'static> RecordEmitter<(T, FilePosition), T, FileSourceSplit> for FileRecordEmitter {
    fn emit_record<O: SourceOutput<T>>(
        &mut self,
        (record, position): (T, FilePosition),
        output: &mut O,
        split: &mut FileSourceSplit,
    ) -> Result<()> {
        output.collect(record);
        split.position = position;
        Ok(())
    }
}

type Base<T> = SourceReaderBase<FileSplitReader<T>, FileRecordEmitter, FileSourceSplit, T>;

/// The file source's reader: a [`SourceReaderBase`] over a [`FileSplitReader`], run as a
/// [`Forwarding`] wrapper of [`FileReader`].
pub type FileSourceReader<T> = Forwarding<FileReader<T>>;

/// How many rows a record stands for (a chunk: its rows), for `numRecordsOut`.
pub(crate) type RowsPerRecord<T> = Arc<dyn Fn(&T) -> u64 + Send + Sync>;

/// What the file source's reader adds to its [`SourceReaderBase`]: it asks for the next split
/// whenever it has none (one split at a time, like Flink's file source). Every method it does
/// not override goes to the base reader.
pub struct FileReader<T: Send + 'static> {
    base: Base<T>,
    ctx: Arc<dyn SourceReaderContext>,
    requested: bool,
    no_more: bool,
    /// Records of several rows: the source operator's `numRecordsOut` (the runtime counts one
    /// per record, the reader adds the other rows, so it counts rows as a row source does).
    rows: Option<(RowsPerRecord<T>, Counter)>,
}

impl<T: Send + 'static> FileReader<T> {
    pub(crate) fn new(
        ctx: Arc<dyn SourceReaderContext>,
        fs: Arc<dyn FileSystem>,
        format: SourceFormat<T>,
        max_records_per_poll: usize,
        rows_per_record: Option<RowsPerRecord<T>>,
    ) -> Self {
        let rows = rows_per_record.map(|f| (f, ctx.metric_group().counter(NUM_RECORDS_OUT)));
        let base = SourceReaderBase::single_fetcher(
            Arc::clone(&ctx),
            FileSplitReader::new(fs, format),
            FileRecordEmitter,
        )
        .with_max_records_per_poll(max_records_per_poll);
        FileReader {
            base,
            ctx,
            requested: false,
            no_more: false,
            rows,
        }
    }

    fn request_if_idle(&mut self) -> Result<()> {
        if !self.requested && !self.no_more && self.base.assigned_splits().next().is_none() {
            self.requested = true;
            self.ctx.send_split_request()?;
        }
        Ok(())
    }
}

impl<T: Send + 'static> ForwardingSourceReader for FileReader<T> {
    type Inner = Base<T>;
    type Output = T;

    fn inner(&mut self) -> &mut Base<T> {
        &mut self.base
    }

    fn start(&mut self) -> Result<()> {
        self.base.start()?;
        self.request_if_idle()
    }

    fn poll_next<O: ReaderOutput<T>>(&mut self, output: &mut O) -> Result<InputStatus> {
        let status = match &self.rows {
            None => self.base.poll_next(output)?,
            Some((rows, counter)) => {
                let mut counting = CountingOutput {
                    inner: output,
                    rows: rows.as_ref(),
                    extra: 0,
                };
                let status = self.base.poll_next(&mut counting)?;
                counter.add(counting.extra);
                status
            }
        };
        self.request_if_idle()?;
        Ok(status)
    }

    fn add_splits(&mut self, splits: Vec<FileSourceSplit>) -> Result<()> {
        if !splits.is_empty() {
            self.requested = false;
        }
        self.base.add_splits(splits)
    }

    fn notify_no_more_splits(&mut self) {
        self.no_more = true;
        self.base.notify_no_more_splits();
    }
}

/// A reader output that adds up the rows of the records beyond one each.
struct CountingOutput<'a, O, T> {
    inner: &'a mut O,
    rows: &'a (dyn Fn(&T) -> u64 + Send + Sync),
    extra: u64,
}

impl<O: ReaderOutput<T>, T> SourceOutput<T> for CountingOutput<'_, O, T> {
    fn collect(&mut self, record: T) {
        self.extra += (self.rows)(&record).saturating_sub(1);
        self.inner.collect(record);
    }
    fn collect_with_timestamp(&mut self, record: T, timestamp: i64) {
        self.extra += (self.rows)(&record).saturating_sub(1);
        self.inner.collect_with_timestamp(record, timestamp);
    }
    fn emit_watermark(&mut self, watermark: Watermark) {
        self.inner.emit_watermark(watermark);
    }
    fn mark_idle(&mut self) {
        self.inner.mark_idle();
    }
    fn mark_active(&mut self) {
        self.inner.mark_active();
    }
}

impl<O: ReaderOutput<T>, T> ReaderOutput<T> for CountingOutput<'_, O, T> {
    fn create_split_output(&mut self, split_id: &str) -> SplitOutputId {
        self.inner.create_split_output(split_id)
    }
    fn collect_for_split(&mut self, split: SplitOutputId, record: T, timestamp: Option<i64>) {
        self.extra += (self.rows)(&record).saturating_sub(1);
        self.inner.collect_for_split(split, record, timestamp);
    }
    fn emit_split_watermark(&mut self, split: SplitOutputId, watermark: Watermark) {
        self.inner.emit_split_watermark(split, watermark);
    }
    fn mark_split_idle(&mut self, split: SplitOutputId) {
        self.inner.mark_split_idle(split);
    }
    fn mark_split_active(&mut self, split: SplitOutputId) {
        self.inner.mark_split_active(split);
    }
    fn release_split_output(&mut self, split: SplitOutputId) {
        self.inner.release_split_output(split);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weir_connector_api::row::{Row, Value};
    use weir_connector_base::source::reader::RecordsWithSplitIds;

    use super::*;
    use crate::format::{Framing, MessageRows};
    use crate::LocalFileSystem;

    /// A row format whose messages hold several rows separated by `|`.
    struct Pipes;

    impl weir_connector_api::format::RowDecoder for Pipes {
        fn decode(&self, bytes: &[u8], out: &mut Vec<Row>) -> Result<()> {
            for part in bytes.split(|b| *b == b'|') {
                let text = String::from_utf8_lossy(part).into_owned();
                out.push(Row::insert(vec![Value::String(text)]));
            }
            Ok(())
        }
    }

    impl weir_connector_api::format::RowEncoder for Pipes {
        fn encode(&self, _row: &Row, _out: &mut Vec<u8>) -> Result<()> {
            Ok(())
        }
    }

    async fn read(path: &str, len: u64, position: FilePosition) -> Vec<(String, FilePosition)> {
        let format = MessageRows::new("pipes", Box::new(Pipes), Box::new(Pipes), Framing::Lines);
        let mut reader = FileSplitReader::new(
            Arc::new(LocalFileSystem::new()),
            SourceFormat::Row(Arc::new(format)),
        );
        let mut split = FileSourceSplit::file(path, len, 0);
        split.position = position;
        reader
            .handle_splits_change(SplitsChange::Add(vec![split]))
            .unwrap();
        let mut out = Vec::new();
        loop {
            let mut batch = reader.fetch().await.unwrap();
            let mut done = !batch.finished_splits().is_empty();
            while batch.next_split().is_some() {
                while let Some((row, position)) = batch.next_record_from_split() {
                    let Some(Value::String(s)) = row.values.first().cloned() else {
                        panic!("a string row");
                    };
                    out.push((s, position));
                }
            }
            done |= reader.queue.is_empty();
            if done {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn messages_of_several_rows_resume_at_the_next_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.txt");
        std::fs::write(&path, "a|b\nc\n\nd|e|f\ng").unwrap();
        let path = path.to_str().unwrap().to_owned();
        let len = std::fs::metadata(&path).unwrap().len();
        let all = read(&path, len, FilePosition::default()).await;
        let names: Vec<&str> = all.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e", "f", "g"]);
        // The first rows of a message keep the message's offset and count what was emitted.
        assert_eq!(
            all[0].1,
            FilePosition {
                offset: 0,
                records: 1
            }
        );
        assert_eq!(
            all[1].1,
            FilePosition {
                offset: 4,
                records: 0
            }
        );
        assert_eq!(
            all[4].1,
            FilePosition {
                offset: 7,
                records: 2
            }
        );
        // Resuming from any position reads exactly the rows after it.
        for (i, (_, position)) in all.iter().enumerate() {
            let rest = read(&path, len, *position).await;
            let names: Vec<&str> = rest.iter().map(|(s, _)| s.as_str()).collect();
            let expected: Vec<&str> = all[i + 1..].iter().map(|(s, _)| s.as_str()).collect();
            assert_eq!(names, expected, "resuming after row {i} at {position:?}");
        }
    }
}
