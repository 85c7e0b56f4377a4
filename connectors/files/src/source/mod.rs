//! The file source (FLIP-27): reads files under paths of any [`FileSystem`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use weir_connector_files::{FileSource, JsonLinesFormat, LocalFileSystem};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: u64, amount: f64 }
//!
//! let source = FileSource::row(Arc::new(LocalFileSystem::new()), ["/data/orders"], JsonLinesFormat::<Order>::new())
//!     .include("**/*.jsonl")?
//!     .monitor_continuously(Duration::from_secs(10))
//!     .build()?;
//! # Ok::<(), weir_connector_api::error::ConnectorError>(())
//! ```
//!
//! - **Discovery**: every file under the paths (recursively), except hidden ones (a path
//!   component starting with `.` or `_`), matching the include globs (default: all) and none of
//!   the exclude globs (matched against the path relative to its root). Files must appear
//!   atomically (written elsewhere, then renamed), as the file sink does.
//! - **Splits**: one per file in `(modification time, path)` order; Parquet files one per row
//!   group with [`FileSourceBuilder::split_row_groups`]. A split's state is its position (byte
//!   offset of the next record for row formats, rows already read for bulk formats): a restored
//!   split resumes at the next record.
//! - **Bounded** (default): discovery runs once; the source ends when every split is read.
//!   **Continuous** ([`FileSourceBuilder::monitor_continuously`]): discovery runs every
//!   interval and new files become splits; files already read are remembered in the
//!   enumerator's state, bounded by [`FileSourceBuilder::retention`] (files older than the
//!   newest file minus the retention are forgotten and ignored).
//! - **Readers** ask for one split at a time and read it sequentially. With
//!   [`FileSourceBuilder::ordered_per_directory`], all files of one directory go to one reader
//!   (affinity), which reads them one after another in order: per-directory order, like a log
//!   partition. After a restore, nothing new is assigned until every reader has finished its
//!   restored splits and a checkpoint has completed, so a directory's next file never overtakes
//!   the rest of an earlier one (also when the parallelism changed).

#[cfg(all(test, weir_api_1_1))]
mod chunk_tests;
mod enumerator;
mod reader;
mod split;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::source::{Boundedness, EnumeratorContextOf, Source, SourceReaderContext};
use weir_connector_api::state::VersionedSerializer;
use weir_connector_base::source::Forwarding;

pub use self::enumerator::{
    DiscoveryResult, FileEnumerator, FileEnumeratorState, FileEnumeratorStateSerializer,
};
use self::reader::RowsPerRecord;
pub use self::reader::{FileReader, FileRecordEmitter, FileSourceReader, FileSplitReader};
pub use self::split::{FilePosition, FileSourceSplit, FileSourceSplitSerializer};
use crate::format::{BulkKind, FromBatch, RowFormat, SourceFormat};
use crate::fs::is_hidden_name;
use crate::fs::FileSystem;

/// How files are found: shared by the enumerator and its discovery tasks.
pub(crate) struct Discovery {
    fs: Arc<dyn FileSystem>,
    paths: Vec<String>,
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
    split_row_groups: bool,
    parquet: bool,
    pub(crate) ordered: bool,
    pub(crate) monitor: Option<Duration>,
    pub(crate) retention: Option<Duration>,
}

impl Discovery {
    fn accepts(&self, root: &str, path: &str) -> bool {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .trim_start_matches('/');
        if rel.split('/').any(is_hidden_name) {
            return false;
        }
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        (self.include.is_empty() || self.include.iter().any(|p| p.matches_with(rel, options)))
            && !self.exclude.iter().any(|p| p.matches_with(rel, options))
    }

    pub(crate) async fn discover(
        &self,
        seen: &Mutex<BTreeMap<String, i64>>,
        watermark: &Mutex<i64>,
    ) -> DiscoveryResult {
        let mut found = Vec::new();
        let wm = *watermark.lock().unwrap_or_else(PoisonError::into_inner);
        for root in &self.paths {
            let root = root.trim_end_matches('/');
            for status in self.fs.list_files(root).await? {
                if status.len == 0
                    || status.modified_millis < wm
                    || !self.accepts(root, &status.path)
                {
                    continue;
                }
                let known = seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains_key(&status.path);
                if !known {
                    found.push(status);
                }
            }
        }
        found.sort_by(|a, b| (a.modified_millis, &a.path).cmp(&(b.modified_millis, &b.path)));
        found.dedup_by(|a, b| a.path == b.path);
        let mut splits = Vec::with_capacity(found.len());
        for status in found {
            if self.parquet && self.split_row_groups {
                let groups =
                    crate::format::parquet::row_group_rows(&self.fs, &status.path, status.len)
                        .await?;
                for (i, _) in groups.iter().enumerate() {
                    splits.push(FileSourceSplit::row_group(
                        status.path.clone(),
                        status.len,
                        status.modified_millis,
                        i as u32,
                    ));
                }
            } else {
                splits.push(FileSourceSplit::file(
                    status.path,
                    status.len,
                    status.modified_millis,
                ));
            }
        }
        Ok(splits)
    }
}

/// The file source. Build it with [`FileSource::row`], [`FileSource::parquet`] or
/// [`FileSource::orc`].
pub struct FileSource<T> {
    discovery: Arc<Discovery>,
    format: SourceFormat<T>,
    max_records_per_poll: usize,
    rows_per_record: Option<RowsPerRecord<T>>,
}

impl<T> std::fmt::Debug for FileSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("fs", &self.discovery.fs)
            .field("paths", &self.discovery.paths)
            .field("monitor", &self.discovery.monitor)
            .finish_non_exhaustive()
    }
}

/// Builds a [`FileSource`].
pub struct FileSourceBuilder<T> {
    fs: Arc<dyn FileSystem>,
    paths: Vec<String>,
    format: SourceFormat<T>,
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
    split_row_groups: bool,
    ordered: bool,
    monitor: Option<Duration>,
    retention: Option<Duration>,
    max_records_per_poll: usize,
    rows_per_record: Option<RowsPerRecord<T>>,
}

impl<T: Send + 'static> FileSource<T> {
    /// A source of a row format (text, CSV, JSON lines).
    pub fn row<P: Into<String>>(
        fs: Arc<dyn FileSystem>,
        paths: impl IntoIterator<Item = P>,
        format: impl RowFormat<T>,
    ) -> FileSourceBuilder<T> {
        FileSourceBuilder::new(fs, paths, SourceFormat::Row(Arc::new(format)))
    }

    /// A source of Parquet files, rows converted by `decode` (e.g.
    /// [`SerdeRecords`](crate::SerdeRecords) or [`Batches`](crate::Batches)).
    pub fn parquet<P: Into<String>>(
        fs: Arc<dyn FileSystem>,
        paths: impl IntoIterator<Item = P>,
        decode: impl FromBatch<T>,
    ) -> FileSourceBuilder<T> {
        FileSourceBuilder::new(
            fs,
            paths,
            SourceFormat::Bulk {
                kind: BulkKind::Parquet,
                decode: Arc::new(decode),
                batch_size: crate::format::DEFAULT_BATCH_SIZE,
            },
        )
    }

    /// A source of ORC files, rows converted by `decode`.
    pub fn orc<P: Into<String>>(
        fs: Arc<dyn FileSystem>,
        paths: impl IntoIterator<Item = P>,
        decode: impl FromBatch<T>,
    ) -> FileSourceBuilder<T> {
        FileSourceBuilder::new(
            fs,
            paths,
            SourceFormat::Bulk {
                kind: BulkKind::Orc,
                decode: Arc::new(decode),
                batch_size: crate::format::DEFAULT_BATCH_SIZE,
            },
        )
    }
}

fn pattern(glob: &str) -> Result<glob::Pattern> {
    glob::Pattern::new(glob)
        .map_err(|e| ConnectorError::Contract(format!("`{glob}` is not a valid glob pattern: {e}")))
}

impl<T: Send + 'static> FileSourceBuilder<T> {
    fn new<P: Into<String>>(
        fs: Arc<dyn FileSystem>,
        paths: impl IntoIterator<Item = P>,
        format: SourceFormat<T>,
    ) -> Self {
        FileSourceBuilder {
            fs,
            paths: paths.into_iter().map(Into::into).collect(),
            format,
            include: Vec::new(),
            exclude: Vec::new(),
            split_row_groups: false,
            ordered: false,
            monitor: None,
            retention: None,
            max_records_per_poll: weir_connector_base::source::reader::DEFAULT_MAX_RECORDS_PER_POLL,
            rows_per_record: None,
        }
    }

    /// Reads only files whose path relative to its root matches `glob` (any of several).
    pub fn include(mut self, glob: &str) -> Result<Self> {
        self.include.push(pattern(glob)?);
        Ok(self)
    }

    /// Skips files whose path relative to its root matches `glob`.
    pub fn exclude(mut self, glob: &str) -> Result<Self> {
        self.exclude.push(pattern(glob)?);
        Ok(self)
    }

    /// Cuts Parquet files into one split per row group (more parallelism for big files).
    pub fn split_row_groups(mut self, split: bool) -> Self {
        self.split_row_groups = split;
        self
    }

    /// Reads the files of one directory one after another, in order.
    pub fn ordered_per_directory(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// Runs discovery every `interval` (a continuous, unbounded source).
    pub fn monitor_continuously(mut self, interval: Duration) -> Self {
        self.monitor = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// Continuous mode: forget (and ignore) files older than the newest file minus `retention`,
    /// so the enumerator's memory stays bounded (default: remember every file).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// The most records one `poll_next` of a reader emits (default 4096); small values let a
    /// rate limiter wrapping the reader pace it closely.
    pub fn max_records_per_poll(mut self, max: usize) -> Self {
        self.max_records_per_poll = max.max(1);
        self
    }

    /// How many rows a record stands for (a columnar batch: its rows), so that the source's
    /// `numRecordsOut` counts rows (default: one per record).
    pub fn rows_per_record(mut self, rows: impl Fn(&T) -> u64 + Send + Sync + 'static) -> Self {
        self.rows_per_record = Some(Arc::new(rows));
        self
    }

    /// Rows per Arrow batch read (bulk formats).
    pub fn batch_size(mut self, rows: usize) -> Self {
        if let SourceFormat::Bulk { batch_size, .. } = &mut self.format {
            *batch_size = rows.max(1);
        }
        self
    }

    /// The source.
    pub fn build(self) -> Result<FileSource<T>> {
        if self.paths.is_empty() {
            return Err(ConnectorError::Contract(
                "a file source needs at least one path".into(),
            ));
        }
        let parquet = matches!(
            self.format,
            SourceFormat::Bulk {
                kind: BulkKind::Parquet,
                ..
            }
        );
        Ok(FileSource {
            discovery: Arc::new(Discovery {
                fs: self.fs,
                paths: self.paths,
                include: self.include,
                exclude: self.exclude,
                split_row_groups: self.split_row_groups,
                parquet,
                ordered: self.ordered,
                monitor: self.monitor,
                retention: self.retention,
            }),
            format: self.format,
            max_records_per_poll: self.max_records_per_poll,
            rows_per_record: self.rows_per_record,
        })
    }
}

impl<T: Send + 'static> Source for FileSource<T> {
    type Output = T;
    type Split = FileSourceSplit;
    type Reader = FileSourceReader<T>;
    type Enumerator = FileEnumerator;

    fn boundedness(&self) -> Boundedness {
        if self.discovery.monitor.is_some() {
            Boundedness::ContinuousUnbounded
        } else {
            Boundedness::Bounded
        }
    }

    fn create_reader(&self, ctx: Arc<dyn SourceReaderContext>) -> Result<Self::Reader> {
        Ok(Forwarding::wrap(FileReader::new(
            ctx,
            Arc::clone(&self.discovery.fs),
            self.format.clone(),
            self.max_records_per_poll,
            self.rows_per_record.clone(),
        )))
    }

    fn create_enumerator(&self, ctx: EnumeratorContextOf<Self>) -> Result<FileEnumerator> {
        Ok(FileEnumerator::new(
            ctx,
            Arc::clone(&self.discovery),
            FileEnumeratorState::default(),
            false,
        ))
    }

    fn restore_enumerator(
        &self,
        ctx: EnumeratorContextOf<Self>,
        state: FileEnumeratorState,
    ) -> Result<FileEnumerator> {
        Ok(FileEnumerator::new(
            ctx,
            Arc::clone(&self.discovery),
            state,
            true,
        ))
    }

    fn split_serializer(&self) -> Arc<dyn VersionedSerializer<FileSourceSplit>> {
        Arc::new(FileSourceSplitSerializer)
    }

    fn enumerator_state_serializer(&self) -> Arc<dyn VersionedSerializer<FileEnumeratorState>> {
        Arc::new(FileEnumeratorStateSerializer)
    }
}
