//! The local filesystem, with a recoverable writer that writes hidden in-progress files,
//! `fsync`s them at every persist and publishes them by atomic rename.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

use super::path::{file_name, join, parent};
use super::{
    io_error, ByteReader, CommitStatus, FileStatus, FileSystem, InProgressEntry, Recoverable,
    RecoverableStream, RecoverableWriter,
};

/// The marker between a target's name and the random suffix of its in-progress file.
const IN_PROGRESS_MARKER: &str = ".inprogress.";
/// Bytes buffered in memory before they go to the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// The local filesystem. Paths are absolute (or relative to the working directory).
#[derive(Debug, Clone)]
pub struct LocalFileSystem {
    writer: Arc<LocalRecoverableWriter>,
}

impl Default for LocalFileSystem {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalFileSystem {
    /// The local filesystem, `fsync`ing persisted and committed files.
    pub fn new() -> Self {
        LocalFileSystem {
            writer: Arc::new(LocalRecoverableWriter { fsync: true }),
        }
    }

    /// Whether persists and commits `fsync` (default true). Without it a machine crash (not a
    /// process crash) can lose data that a completed checkpoint accounts for.
    pub fn with_fsync(fsync: bool) -> Self {
        LocalFileSystem {
            writer: Arc::new(LocalRecoverableWriter { fsync }),
        }
    }
}

fn modified_millis(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

fn walk(dir: &Path, out: &mut Vec<FileStatus>) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            // Vanished between listing and stat (e.g. renamed by a commit): skip it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let path = entry.path();
        if meta.is_dir() {
            walk(&path, out)?;
        } else if meta.is_file() {
            out.push(FileStatus {
                path: path.to_string_lossy().into_owned(),
                len: meta.len(),
                modified_millis: modified_millis(&meta),
            });
        }
    }
    Ok(())
}

fn sync_dir(dir: &str) -> std::io::Result<()> {
    let dir = if dir.is_empty() { "." } else { dir };
    File::open(dir)?.sync_all()
}

fn read_range_sync(path: &str, range: Range<u64>) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(range.start))?;
    let mut buf = Vec::with_capacity(range.end.saturating_sub(range.start) as usize);
    file.take(range.end.saturating_sub(range.start))
        .read_to_end(&mut buf)?;
    Ok(buf)
}

#[async_trait::async_trait]
impl FileSystem for LocalFileSystem {
    fn describe(&self) -> String {
        "local".into()
    }

    async fn list_files(&self, dir: &str) -> Result<Vec<FileStatus>> {
        let mut out = Vec::new();
        let root = Path::new(dir);
        match fs::metadata(root) {
            Ok(meta) if meta.is_file() => {
                out.push(FileStatus {
                    path: dir.to_owned(),
                    len: meta.len(),
                    modified_millis: modified_millis(&meta),
                });
            }
            Ok(_) => walk(root, &mut out).map_err(|e| io_error(format!("listing {dir}"), e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(format!("listing {dir}"), e)),
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn status(&self, path: &str) -> Result<Option<FileStatus>> {
        match fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(Some(FileStatus {
                path: path.to_owned(),
                len: meta.len(),
                modified_millis: modified_millis(&meta),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(format!("stat {path}"), e)),
        }
    }

    async fn read_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        read_range_sync(path, range)
            .map(Bytes::from)
            .map_err(|e| io_error(format!("reading {path}"), e))
    }

    async fn open_read(&self, path: &str, offset: u64) -> Result<ByteReader> {
        use tokio::io::AsyncSeekExt;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| io_error(format!("opening {path}"), e))?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .await
                .map_err(|e| io_error(format!("seeking {path} to {offset}"), e))?;
        }
        Ok(Box::pin(file))
    }

    async fn write_atomic(&self, path: &str, data: Bytes) -> Result<()> {
        let dir = parent(path);
        if !dir.is_empty() {
            fs::create_dir_all(dir).map_err(|e| io_error(format!("creating {dir}"), e))?;
        }
        let temp = join(
            dir,
            &format!(".{}.tmp.{:016x}", file_name(path), rand_suffix()),
        );
        let result = (|| -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(&data)?;
            file.sync_all()?;
            fs::rename(&temp, path)?;
            sync_dir(dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.map_err(|e| io_error(format!("writing {path}"), e))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("deleting {path}"), e)),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let dir = parent(to);
        if !dir.is_empty() {
            fs::create_dir_all(dir).map_err(|e| io_error(format!("creating {dir}"), e))?;
        }
        fs::rename(from, to).map_err(|e| io_error(format!("renaming {from} to {to}"), e))
    }

    fn recoverable_writer(&self) -> Arc<dyn RecoverableWriter> {
        Arc::clone(&self.writer) as Arc<dyn RecoverableWriter>
    }
}

fn rand_suffix() -> u64 {
    let id = uuid::Uuid::new_v4();
    let b = id.as_bytes();
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The in-progress file of `target`: `.<name>.inprogress.<random>` beside it.
fn temp_path_for(target: &str) -> String {
    join(
        parent(target),
        &format!(
            ".{}{IN_PROGRESS_MARKER}{:016x}",
            file_name(target),
            rand_suffix()
        ),
    )
}

/// The target of an in-progress file name, if it is one.
fn target_of_temp(temp: &str) -> Option<String> {
    let name = file_name(temp).strip_prefix('.')?;
    let idx = name.rfind(IN_PROGRESS_MARKER)?;
    Some(join(parent(temp), &name[..idx]))
}

/// What a local part file's [`Recoverable::data`] holds: the hidden temporary file it is
/// written to (`.<name>.inprogress.<id>` beside its target).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalInProgressFile {
    /// The temporary file.
    pub temp_path: String,
}

/// Serializes [`LocalInProgressFile`] (version 1): the path. A recoverable's data is the version
/// as one byte, then these bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalInProgressFileSerializer;

impl LocalInProgressFileSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<LocalInProgressFile> for LocalInProgressFileSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, value: &LocalInProgressFile) -> std::result::Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_str(&value.temp_path);
        w.finish()
    }
    fn deserialize(
        &self,
        version: u32,
        bytes: &[u8],
    ) -> std::result::Result<LocalInProgressFile, StateError> {
        if version != Self::VERSION {
            return Err(unknown_data_version(version));
        }
        let mut reader = StateReader::new(bytes);
        let temp_path = reader.get_str()?.to_owned();
        reader.finish()?;
        Ok(LocalInProgressFile { temp_path })
    }
}

fn unknown_data_version(version: u32) -> StateError {
    StateError::unknown_version(
        "local recoverable",
        version,
        &[LocalInProgressFileSerializer::VERSION],
    )
}

fn encode_data(temp: &str) -> Vec<u8> {
    let mut w = StateWriter::new();
    w.put_u8(LocalInProgressFileSerializer::VERSION as u8)
        .put_str(temp);
    w.finish().unwrap_or_default()
}

fn decode_data(r: &Recoverable) -> Result<String> {
    let mut reader = StateReader::new(&r.data);
    let version = u32::from(reader.get_u8()?);
    if version != LocalInProgressFileSerializer::VERSION {
        return Err(ConnectorError::State(unknown_data_version(version)));
    }
    let temp = reader.get_str()?.to_owned();
    reader.finish()?;
    Ok(temp)
}

/// Where a pending file lies: its temporary file, or its target once committed (a compactor
/// commits its inputs to hidden names when it cannot read them in place).
fn pending_path(pending: &Recoverable) -> Result<String> {
    let temp = decode_data(pending)?;
    Ok(if fs::metadata(&temp).is_ok() {
        temp
    } else {
        pending.target.clone()
    })
}

/// The local [`RecoverableWriter`].
#[derive(Debug)]
pub struct LocalRecoverableWriter {
    fsync: bool,
}

impl LocalRecoverableWriter {
    fn stream(&self, target: String, temp: String, file: File, len: u64) -> LocalStream {
        LocalStream {
            target,
            temp,
            file: Some(file),
            buffer: Vec::with_capacity(WRITE_BUFFER),
            len,
            fsync: self.fsync,
        }
    }
}

#[async_trait::async_trait]
impl RecoverableWriter for LocalRecoverableWriter {
    fn open(&self, target: &str) -> Result<Box<dyn RecoverableStream>> {
        let dir = parent(target);
        if !dir.is_empty() {
            fs::create_dir_all(dir).map_err(|e| io_error(format!("creating {dir}"), e))?;
        }
        let temp = temp_path_for(target);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| io_error(format!("creating {temp}"), e))?;
        Ok(Box::new(self.stream(target.to_owned(), temp, file, 0)))
    }

    async fn recover(&self, resumable: &Recoverable) -> Result<Box<dyn RecoverableStream>> {
        let temp = decode_data(resumable)?;
        let target = &resumable.target;
        if fs::metadata(&temp).is_err() {
            // Committed by an attempt that later failed (a compactor commits its inputs to hidden
            // names): take the hidden file back. Visible files are never taken back.
            let hidden = file_name(target).starts_with('.');
            match fs::metadata(target) {
                Ok(meta) if hidden && meta.len() >= resumable.len => {
                    fs::rename(target, &temp)
                        .map_err(|e| io_error(format!("taking back {target}"), e))?;
                }
                _ => {
                    return Err(ConnectorError::fatal(
                        format!("recovering the in-progress file of {target}"),
                        format!(
                            "{temp} is gone; the data written before the checkpoint is lost \
                             (was the output directory cleaned while the job ran?)"
                        ),
                    ))
                }
            }
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&temp)
            .map_err(|e| io_error(format!("opening {temp}"), e))?;
        let len = file
            .metadata()
            .map_err(|e| io_error(format!("stat {temp}"), e))?
            .len();
        if len < resumable.len {
            return Err(ConnectorError::fatal(
                format!("recovering {temp}"),
                format!(
                    "it holds {len} bytes but {} were persisted; the file was truncated",
                    resumable.len
                ),
            ));
        }
        let mut file = file;
        (|| -> std::io::Result<()> {
            file.set_len(resumable.len)?;
            file.seek(SeekFrom::Start(resumable.len))?;
            Ok(())
        })()
        .map_err(|e| io_error(format!("truncating {temp}"), e))?;
        Ok(Box::new(self.stream(
            target.clone(),
            temp,
            file,
            resumable.len,
        )))
    }

    async fn commit(&self, pending: &Recoverable) -> Result<CommitStatus> {
        let temp = decode_data(pending)?;
        let target = &pending.target;
        match fs::metadata(&temp) {
            Ok(_) => {
                fs::rename(&temp, target)
                    .map_err(|e| io_error(format!("committing {temp} to {target}"), e))?;
                if self.fsync {
                    sync_dir(parent(target))
                        .map_err(|e| io_error(format!("syncing {}", parent(target)), e))?;
                }
                Ok(CommitStatus::Committed)
            }
            Err(_) => match fs::metadata(target) {
                Ok(meta) if meta.len() == pending.len => Ok(CommitStatus::AlreadyCommitted),
                Ok(meta) => Err(ConnectorError::fatal(
                    format!("committing {target}"),
                    format!(
                        "the in-progress file is gone and the target holds {} bytes, not the {} \
                         committed; another writer may use the same path",
                        meta.len(),
                        pending.len
                    ),
                )),
                Err(_) => Err(ConnectorError::fatal(
                    format!("committing {target}"),
                    format!(
                        "neither {temp} nor the target exists: the pending file was deleted \
                         before it was committed (data loss)"
                    ),
                )),
            },
        }
    }

    async fn discard(&self, recoverable: &Recoverable) -> Result<()> {
        let temp = decode_data(recoverable)?;
        match fs::remove_file(&temp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("deleting {temp}"), e)),
        }
    }

    async fn read_pending(&self, pending: &Recoverable) -> Result<Option<Bytes>> {
        let path = pending_path(pending)?;
        read_range_sync(&path, 0..pending.len)
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| io_error(format!("reading pending file {path}"), e))
    }

    async fn open_pending(&self, pending: &Recoverable) -> Result<Option<File>> {
        let path = pending_path(pending)?;
        File::open(&path)
            .map(Some)
            .map_err(|e| io_error(format!("opening pending file {path}"), e))
    }

    fn retarget(&self, pending: &Recoverable, target: &str) -> Option<Recoverable> {
        Some(Recoverable {
            target: target.to_owned(),
            len: pending.len,
            data: pending.data.clone(),
        })
    }

    async fn list_in_progress(&self, dir: &str) -> Result<Vec<InProgressEntry>> {
        let mut files = Vec::new();
        walk(Path::new(dir), &mut files).map_err(|e| io_error(format!("listing {dir}"), e))?;
        Ok(files
            .into_iter()
            .filter_map(|f| {
                target_of_temp(&f.path).map(|target| InProgressEntry {
                    target,
                    handle: f.path,
                })
            })
            .collect())
    }

    async fn abort_in_progress(&self, entry: &InProgressEntry) -> Result<()> {
        match fs::remove_file(&entry.handle) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("deleting {}", entry.handle), e)),
        }
    }
}

/// An in-progress local file.
struct LocalStream {
    target: String,
    temp: String,
    file: Option<File>,
    buffer: Vec<u8>,
    len: u64,
    fsync: bool,
}

impl LocalStream {
    fn flush_buffer(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| ConnectorError::Closed(format!("in-progress file {}", self.temp)))?;
        file.write_all(&self.buffer)
            .map_err(|e| io_error(format!("writing {}", self.temp), e))?;
        self.buffer.clear();
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.flush_buffer()?;
        if self.fsync {
            if let Some(file) = self.file.as_mut() {
                file.sync_data()
                    .map_err(|e| io_error(format!("syncing {}", self.temp), e))?;
            }
        }
        Ok(())
    }

    fn recoverable(&self) -> Recoverable {
        Recoverable {
            target: self.target.clone(),
            len: self.len,
            data: encode_data(&self.temp),
        }
    }
}

#[async_trait::async_trait]
impl RecoverableStream for LocalStream {
    fn target(&self) -> &str {
        &self.target
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.len += data.len() as u64;
        if self.buffer.len() + data.len() > WRITE_BUFFER {
            self.flush_buffer()?;
            if data.len() > WRITE_BUFFER {
                let file = self.file.as_mut().ok_or_else(|| {
                    ConnectorError::Closed(format!("in-progress file {}", self.temp))
                })?;
                // Moderate write sizes keep the page cache copies cheap.
                for chunk in data.chunks(WRITE_BUFFER) {
                    file.write_all(chunk)
                        .map_err(|e| io_error(format!("writing {}", self.temp), e))?;
                }
                return Ok(());
            }
        }
        self.buffer.extend_from_slice(data);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    async fn persist(&mut self) -> Result<Recoverable> {
        self.sync()?;
        Ok(self.recoverable())
    }

    async fn close_for_commit(mut self: Box<Self>) -> Result<Recoverable> {
        self.sync()?;
        self.file = None;
        Ok(self.recoverable())
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.file = None;
        match fs::remove_file(&self.temp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("deleting {}", self.temp), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_map_back_to_targets() {
        let temp = temp_path_for("/out/b/part-1.txt");
        assert!(temp.starts_with("/out/b/.part-1.txt.inprogress."), "{temp}");
        assert_eq!(target_of_temp(&temp).as_deref(), Some("/out/b/part-1.txt"));
        assert_eq!(target_of_temp("/out/b/part-1.txt"), None);
    }
}
