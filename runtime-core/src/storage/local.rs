//! Checkpoints and savepoints in a local directory.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use weir_connector_api::state::StateError;

use super::{
    CheckpointLocation, CheckpointMetadata, CheckpointStorage, SnapshotKind, StorageError,
};

/// The name of the file that holds a checkpoint's or savepoint's metadata.
pub const METADATA_FILE_NAME: &str = "_metadata";

const CHECKPOINT_DIR_PREFIX: &str = "chk-";

/// Names of temporary files that become `_metadata` when complete; leftovers of a crash.
const TEMP_FILE_PREFIX: &str = "_metadata.inprogress-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Checkpoints in a local directory, laid out as `<dir>/chk-<id>/_metadata`.
///
/// Each checkpoint is written to a temporary file, flushed to disk and renamed into place, and
/// the directory is flushed too, so a crash leaves either the whole checkpoint or none.
/// Leftover temporary files of an interrupted write are ignored by listing and removed by the
/// next write. Files and directories that do not follow the layout are left alone.
///
/// Its methods run file operations on tokio's blocking thread pool, so they must be called
/// from within a tokio runtime.
#[derive(Debug, Clone)]
pub struct LocalCheckpointStorage {
    dir: PathBuf,
    /// Ids being written by this storage (and its clones), so cleanup never touches them.
    in_flight: Arc<Mutex<HashSet<u64>>>,
}

impl LocalCheckpointStorage {
    /// Storage in `dir`, which is created on the first write if it does not exist.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalCheckpointStorage {
            dir: dir.into(),
            in_flight: Arc::default(),
        }
    }

    /// The directory holding the checkpoints.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where checkpoint `id` lives (or would live).
    pub fn location_of(&self, id: u64) -> CheckpointLocation {
        CheckpointLocation::from_path(&self.checkpoint_dir(id))
    }

    fn checkpoint_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{CHECKPOINT_DIR_PREFIX}{id}"))
    }
}

#[async_trait::async_trait]
impl CheckpointStorage for LocalCheckpointStorage {
    async fn write_checkpoint(
        &self,
        metadata: &CheckpointMetadata,
    ) -> Result<CheckpointLocation, StorageError> {
        let id = metadata.checkpoint_id;
        let bytes = metadata.encode().map_err(|source| StorageError::Encode {
            checkpoint_id: id,
            source,
        })?;
        let chk_dir = self.checkpoint_dir(id);
        let location = CheckpointLocation::from_path(&chk_dir);
        let guard =
            InFlight::register(&self.in_flight, id).ok_or_else(|| StorageError::AlreadyExists {
                location: location.to_string(),
                kind: SnapshotKind::Checkpoint,
            })?;
        let base = self.dir.clone();
        let in_flight = Arc::clone(&self.in_flight);
        blocking(&self.dir, move || {
            let _guard = guard;
            fs::create_dir_all(&base)
                .map_err(|e| StorageError::io(&base, "create the checkpoint directory", e))?;
            clean_leftovers(&base, &in_flight, id);
            match fs::create_dir(&chk_dir) {
                Ok(()) => sync_dir(&base)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StorageError::io(&chk_dir, "create", e)),
            }
            let target = chk_dir.join(METADATA_FILE_NAME);
            if exists(&target)? {
                return Err(StorageError::AlreadyExists {
                    location: location.to_string(),
                    kind: SnapshotKind::Checkpoint,
                });
            }
            write_atomically(&chk_dir, &bytes)?;
            Ok(location)
        })
        .await
    }

    async fn list_checkpoints(&self) -> Result<Vec<(u64, CheckpointLocation)>, StorageError> {
        let base = self.dir.clone();
        blocking(&self.dir, move || {
            let entries = match fs::read_dir(&base) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(StorageError::io(&base, "list", e)),
            };
            let mut listed = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::io(&base, "list", e))?;
                let Some(id) = parse_checkpoint_dir_name(&entry.file_name()) else {
                    continue;
                };
                let path = entry.path();
                if path.join(METADATA_FILE_NAME).is_file() {
                    listed.push((id, CheckpointLocation::from_path(&path)));
                }
            }
            listed.sort_unstable_by_key(|(id, _)| *id);
            Ok(listed)
        })
        .await
    }

    async fn read(
        &self,
        location: &CheckpointLocation,
    ) -> Result<CheckpointMetadata, StorageError> {
        let location = location.clone();
        blocking(&self.dir, move || {
            read_metadata(
                Path::new(location.as_str()),
                location.as_str(),
                SnapshotKind::Checkpoint,
            )
        })
        .await
    }

    /// Deletes one checkpoint directory; a checkpoint that is already gone is not an error.
    ///
    /// Only `<dir>/chk-<id>` locations of this storage are accepted.
    async fn discard(&self, location: &CheckpointLocation) -> Result<(), StorageError> {
        let path = PathBuf::from(location.as_str());
        let ours = path.parent() == Some(self.dir.as_path())
            && path
                .file_name()
                .and_then(parse_checkpoint_dir_name)
                .is_some();
        if !ours {
            return Err(StorageError::InvalidLocation {
                location: location.to_string(),
                reason: format!(
                    "only `{}/{CHECKPOINT_DIR_PREFIX}<id>` directories are discarded",
                    self.dir.display()
                ),
            });
        }
        let base = self.dir.clone();
        blocking(&self.dir, move || {
            // The metadata goes first: a crash halfway leaves a directory that is not listed.
            let metadata = path.join(METADATA_FILE_NAME);
            ignore_not_found(fs::remove_file(&metadata))
                .map_err(|e| StorageError::io(&metadata, "delete", e))?;
            ignore_not_found(fs::remove_dir_all(&path))
                .map_err(|e| StorageError::io(&path, "delete", e))?;
            sync_dir(&base)
        })
        .await
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Writes a savepoint into `dir` (created if needed) as `<dir>/_metadata`; returns `dir`.
///
/// The savepoint is self-contained: all state is inline in the one file, which names no other
/// path, so the directory can be moved or copied anywhere and restored from there. Fails with
/// [`StorageError::AlreadyExists`] if `dir` already holds a savepoint. Must be called from
/// within a tokio runtime.
pub async fn write_savepoint(
    dir: &Path,
    metadata: &CheckpointMetadata,
) -> Result<CheckpointLocation, StorageError> {
    let bytes = metadata.encode().map_err(|source| StorageError::Encode {
        checkpoint_id: metadata.checkpoint_id,
        source,
    })?;
    let dir = dir.to_path_buf();
    blocking(&dir.clone(), move || {
        let location = CheckpointLocation::from_path(&dir);
        let created = !exists(&dir)?;
        fs::create_dir_all(&dir)
            .map_err(|e| StorageError::io(&dir, "create the savepoint directory", e))?;
        if created {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        if exists(&dir.join(METADATA_FILE_NAME))? {
            return Err(StorageError::AlreadyExists {
                location: location.to_string(),
                kind: SnapshotKind::Savepoint,
            });
        }
        remove_temp_files(&dir);
        write_atomically(&dir, &bytes)?;
        Ok(location)
    })
    .await
}

/// Reads a savepoint from its directory or from its `_metadata` file.
///
/// Must be called from within a tokio runtime.
pub async fn read_savepoint(path: &Path) -> Result<CheckpointMetadata, StorageError> {
    let path = path.to_path_buf();
    blocking(&path.clone(), move || {
        let location = path.to_string_lossy().into_owned();
        read_metadata(&path, &location, SnapshotKind::Savepoint)
    })
    .await
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T, F>(path: &Path, work: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(StorageError::io(
            path,
            "finish a storage operation on",
            io::Error::other(e),
        )),
    }
}

/// Reads metadata from a directory holding `_metadata`, or from the file itself.
fn read_metadata(
    path: &Path,
    location: &str,
    kind: SnapshotKind,
) -> Result<CheckpointMetadata, StorageError> {
    let file = if path.is_dir() {
        path.join(METADATA_FILE_NAME)
    } else {
        path.to_path_buf()
    };
    let bytes = match fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StorageError::NotFound {
                location: location.to_owned(),
            })
        }
        Err(e) => return Err(StorageError::io(&file, "read", e)),
    };
    CheckpointMetadata::decode(&bytes).map_err(|source| match source {
        StateError::UnknownVersion { version, .. } => StorageError::UnsupportedVersion {
            location: location.to_owned(),
            version,
        },
        source => StorageError::Corrupt {
            location: location.to_owned(),
            kind,
            source,
        },
    })
}

/// Writes `<dir>/_metadata` through a temporary file: write, flush, rename, flush the directory.
fn write_atomically(dir: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let target = dir.join(METADATA_FILE_NAME);
    let temp = dir.join(format!(
        "{TEMP_FILE_PREFIX}{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| StorageError::io(&temp, "create", e))?;
        file.write_all(bytes)
            .map_err(|e| StorageError::io(&temp, "write", e))?;
        file.sync_all()
            .map_err(|e| StorageError::io(&temp, "flush to disk", e))?;
        drop(file);
        fs::rename(&temp, &target)
            .map_err(|e| StorageError::io(&target, "rename a temporary file to", e))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir)
}

/// Flushes a directory's entries (a rename or a new file in it) to disk.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StorageError::io(dir, "flush to disk the directory", e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn exists(path: &Path) -> Result<bool, StorageError> {
    path.try_exists()
        .map_err(|e| StorageError::io(path, "check for", e))
}

fn ignore_not_found(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The id in a `chk-<id>` directory name; `None` for anything else (including `chk-007`).
fn parse_checkpoint_dir_name(name: &OsStr) -> Option<u64> {
    let digits = name.to_str()?.strip_prefix(CHECKPOINT_DIR_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: u64 = digits.parse().ok()?;
    (id.to_string() == digits).then_some(id)
}

/// Removes leftovers of interrupted writes: temporary files in checkpoint directories that
/// have no `_metadata` and are not being written, and such directories once empty.
///
/// Best effort: failures are logged, never returned.
fn clean_leftovers(base: &Path, in_flight: &Mutex<HashSet<u64>>, writing: u64) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(id) = parse_checkpoint_dir_name(&entry.file_name()) else {
            continue;
        };
        let path = entry.path();
        if path.join(METADATA_FILE_NAME).exists() || !path.is_dir() {
            continue;
        }
        if id == writing {
            remove_temp_files(&path);
            continue;
        }
        // Held while cleaning so that no write of this id can start meanwhile.
        let in_flight = lock(in_flight);
        if in_flight.contains(&id) {
            continue;
        }
        remove_temp_files(&path);
        if fs::remove_dir(&path).is_ok() {
            tracing::info!(
                path = %path.display(),
                "removed the directory of an interrupted checkpoint write"
            );
        }
    }
}

/// Removes `_metadata.inprogress-*` files from `dir`; returns how many were removed.
fn remove_temp_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(TEMP_FILE_PREFIX));
        if !is_temp {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => {
                removed += 1;
                tracing::info!(
                    path = %path.display(),
                    "removed a leftover temporary file of an interrupted write"
                );
            }
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "could not remove a leftover temporary file of an interrupted write"
            ),
        }
    }
    removed
}

fn lock(set: &Mutex<HashSet<u64>>) -> MutexGuard<'_, HashSet<u64>> {
    set.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks a checkpoint id as being written until dropped.
struct InFlight {
    set: Arc<Mutex<HashSet<u64>>>,
    id: u64,
}

impl InFlight {
    /// `None` if the id is already being written.
    fn register(set: &Arc<Mutex<HashSet<u64>>>, id: u64) -> Option<Self> {
        lock(set).insert(id).then(|| InFlight {
            set: Arc::clone(set),
            id,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.id);
    }
}
