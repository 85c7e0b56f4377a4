//! [`S3UploadState`]: what a part file's [`Recoverable`] holds on S3, with its versioned
//! serializer.
//!
//! The recoverable's data is one version byte followed by the serializer's bytes: the upload id
//! (optional string), the uploaded parts (count, then number, ETag and length of each) and the
//! buffered tail (length-prefixed bytes).

use weir_connector_api::error::Result;
use weir_connector_api::state::{StateError, StateReader, StateWriter, VersionedSerializer};
use weir_connector_files::fs::Recoverable;

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3UploadedPart {
    /// The part number (from 1).
    pub number: i32,
    /// The ETag S3 returned for it.
    pub etag: String,
    /// Its size in bytes.
    pub len: u64,
}

/// The state of one part file's multipart upload: the decoded [`Recoverable::data`] of an S3
/// part file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3UploadState {
    /// The upload, once created (with the first part).
    pub upload_id: Option<String>,
    /// The parts uploaded so far, in order.
    pub parts: Vec<S3UploadedPart>,
    /// The bytes written after the last part (less than one part).
    pub tail: Vec<u8>,
}

impl S3UploadState {
    fn write_to(&self, w: &mut StateWriter) {
        w.put_opt_str(self.upload_id.as_deref())
            .put_len(self.parts.len());
        for p in &self.parts {
            w.put_u32(p.number as u32).put_str(&p.etag).put_u64(p.len);
        }
        w.put_bytes(&self.tail);
    }

    fn read_from(reader: &mut StateReader<'_>) -> Result<Self, StateError> {
        let upload_id = reader.get_opt_str()?.map(str::to_owned);
        let n = reader.get_len()?;
        let mut parts = Vec::with_capacity(n.min(10_000));
        for _ in 0..n {
            parts.push(S3UploadedPart {
                number: reader.get_u32()? as i32,
                etag: reader.get_str()?.to_owned(),
                len: reader.get_u64()?,
            });
        }
        let tail = reader.get_bytes()?.to_vec();
        Ok(S3UploadState {
            upload_id,
            parts,
            tail,
        })
    }

    /// The data of a recoverable: the version byte, then the state.
    pub(crate) fn encode(&self) -> std::result::Result<Vec<u8>, StateError> {
        let mut w = StateWriter::with_capacity(self.tail.len() + 64 * (self.parts.len() + 1));
        w.put_u8(S3UploadStateSerializer::VERSION as u8);
        self.write_to(&mut w);
        w.finish()
    }

    /// Reads the data of a recoverable written by [`S3UploadState::encode`].
    pub(crate) fn decode(r: &Recoverable) -> Result<Self> {
        let mut reader = StateReader::new(&r.data);
        let version = u32::from(reader.get_u8()?);
        if version != S3UploadStateSerializer::VERSION {
            return Err(StateError::unknown_version(
                "S3 recoverable",
                version,
                &[S3UploadStateSerializer::VERSION],
            )
            .into());
        }
        let state = Self::read_from(&mut reader)?;
        reader.finish()?;
        Ok(state)
    }

    /// The bytes of the uploaded parts.
    pub(crate) fn parts_len(&self) -> u64 {
        self.parts.iter().map(|p| p.len).sum()
    }
}

/// Serializes [`S3UploadState`] (version 1). A recoverable's data holds the version as its first
/// byte, then these bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct S3UploadStateSerializer;

impl S3UploadStateSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<S3UploadState> for S3UploadStateSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }
    fn serialize(&self, value: &S3UploadState) -> std::result::Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        value.write_to(&mut w);
        w.finish()
    }
    fn deserialize(
        &self,
        version: u32,
        bytes: &[u8],
    ) -> std::result::Result<S3UploadState, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(
                "S3 recoverable",
                version,
                &[Self::VERSION],
            ));
        }
        let mut reader = StateReader::new(bytes);
        let state = S3UploadState::read_from(&mut reader)?;
        reader.finish()?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_state_roundtrips() {
        let state = S3UploadState {
            upload_id: Some("abc".into()),
            parts: vec![
                S3UploadedPart {
                    number: 1,
                    etag: "\"e1\"".into(),
                    len: 5 << 20,
                },
                S3UploadedPart {
                    number: 2,
                    etag: "\"e2\"".into(),
                    len: 6 << 20,
                },
            ],
            tail: vec![1, 2, 3],
        };
        let r = Recoverable {
            target: "k".into(),
            len: (11 << 20) + 3,
            data: state.encode().unwrap(),
        };
        assert_eq!(S3UploadState::decode(&r).unwrap(), state);
        let mut data = vec![1];
        data.extend(S3UploadStateSerializer.serialize(&state).unwrap());
        assert_eq!(
            r.data, data,
            "the data is the version byte, then the serializer's bytes"
        );
        assert_eq!(state.parts_len(), 11 << 20);
        let bad = Recoverable { data: vec![9], ..r };
        assert!(S3UploadState::decode(&bad).is_err());
    }
}
