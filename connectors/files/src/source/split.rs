//! File splits: a whole file or one Parquet row group, with the reading position.

use weir_connector_api::source::SourceSplit;
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};

/// Where reading a split resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FilePosition {
    /// Row formats: the byte offset of the next record. Bulk formats: unused (0).
    pub offset: u64,
    /// Bulk formats: the rows of the split already emitted. Row formats: the records already
    /// emitted of the message at `offset` (one that decodes into several records), usually 0.
    pub records: u64,
}

/// A file (or one of its Parquet row groups) to read, with the position reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileSourceSplit {
    /// The split id: the path, with `#rg<n>` for a row group.
    pub id: String,
    /// The file.
    pub path: String,
    /// The file's length when it was discovered.
    pub file_len: u64,
    /// The file's modification time when it was discovered (ms since the epoch).
    pub modified_millis: i64,
    /// The Parquet row group, for a row-group split.
    pub row_group: Option<u32>,
    /// Where reading resumes.
    pub position: FilePosition,
}

impl FileSourceSplit {
    /// A split of a whole file from its start.
    pub fn file(path: impl Into<String>, file_len: u64, modified_millis: i64) -> Self {
        let path = path.into();
        FileSourceSplit {
            id: path.clone(),
            path,
            file_len,
            modified_millis,
            row_group: None,
            position: FilePosition::default(),
        }
    }

    /// A split of one row group of a Parquet file.
    pub fn row_group(
        path: impl Into<String>,
        file_len: u64,
        modified_millis: i64,
        row_group: u32,
    ) -> Self {
        let path = path.into();
        FileSourceSplit {
            id: format!("{path}#rg{row_group}"),
            path,
            file_len,
            modified_millis,
            row_group: Some(row_group),
            position: FilePosition::default(),
        }
    }
}

impl SourceSplit for FileSourceSplit {
    fn split_id(&self) -> &str {
        &self.id
    }
}

pub(crate) fn write_split(w: &mut StateWriter, s: &FileSourceSplit) {
    w.put_str(&s.id)
        .put_str(&s.path)
        .put_u64(s.file_len)
        .put_i64(s.modified_millis)
        .put_opt_u64(s.row_group.map(u64::from))
        .put_u64(s.position.offset)
        .put_u64(s.position.records);
}

pub(crate) fn read_split(r: &mut StateReader<'_>) -> Result<FileSourceSplit, StateError> {
    Ok(FileSourceSplit {
        id: r.get_str()?.to_owned(),
        path: r.get_str()?.to_owned(),
        file_len: r.get_u64()?,
        modified_millis: r.get_i64()?,
        row_group: r
            .get_opt_u64()?
            .map(|g| u32::try_from(g).unwrap_or(u32::MAX)),
        position: FilePosition {
            offset: r.get_u64()?,
            records: r.get_u64()?,
        },
    })
}

/// Serializes [`FileSourceSplit`]s (version 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSourceSplitSerializer;

impl FileSourceSplitSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<FileSourceSplit> for FileSourceSplitSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, value: &FileSourceSplit) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        write_split(&mut w, value);
        w.finish()
    }
    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<FileSourceSplit, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(
                "file split",
                version,
                &[Self::VERSION],
            ));
        }
        let mut r = StateReader::new(bytes);
        let split = read_split(&mut r)?;
        r.finish()?;
        Ok(split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_roundtrip() {
        let mut s = FileSourceSplit::row_group("/in/a.parquet", 100, 7, 3);
        s.position = FilePosition {
            offset: 0,
            records: 12,
        };
        assert_eq!(s.id, "/in/a.parquet#rg3");
        let bytes = FileSourceSplitSerializer.serialize(&s).unwrap();
        assert_eq!(FileSourceSplitSerializer.deserialize(1, &bytes).unwrap(), s);
        assert!(FileSourceSplitSerializer.deserialize(9, &bytes).is_err());
    }
}
