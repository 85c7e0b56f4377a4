//! Ready-made serializers for common value types.

use super::{StateError, StateReader, StateWriter, VersionedSerializer};

/// Serializes a `String` as its UTF-8 bytes. Version 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StringSerializer;

impl StringSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<String> for StringSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn serialize(&self, value: &String) -> Result<Vec<u8>, StateError> {
        Ok(value.as_bytes().to_vec())
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<String, StateError> {
        match version {
            1 => {
                std::str::from_utf8(bytes)
                    .map(str::to_owned)
                    .map_err(|e| StateError::InvalidUtf8 {
                        offset: e.valid_up_to(),
                    })
            }
            other => Err(StateError::unknown_version("string", other, &[1])),
        }
    }
}

/// Serializes a `u64` as eight big-endian bytes. Version 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct U64Serializer;

impl U64Serializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<u64> for U64Serializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn serialize(&self, value: &u64) -> Result<Vec<u8>, StateError> {
        Ok(value.to_be_bytes().to_vec())
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<u64, StateError> {
        match version {
            1 => {
                let mut reader = StateReader::new(bytes);
                let value = reader.get_u64()?;
                reader.finish()?;
                Ok(value)
            }
            other => Err(StateError::unknown_version("u64", other, &[1])),
        }
    }
}

/// Serializes a `Vec<u8>` as the bytes themselves. Version 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BytesSerializer;

impl BytesSerializer {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;
}

impl VersionedSerializer<Vec<u8>> for BytesSerializer {
    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn serialize(&self, value: &Vec<u8>) -> Result<Vec<u8>, StateError> {
        Ok(value.clone())
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<Vec<u8>, StateError> {
        match version {
            1 => Ok(bytes.to_vec()),
            other => Err(StateError::unknown_version("bytes", other, &[1])),
        }
    }
}

/// Serializes a `Vec<T>` with an inner serializer for the elements. Version 1.
///
/// Format (version 1): the inner serializer's version (`u32`, stored once for all elements),
/// the element count, then each element as a length-prefixed byte string. Because the inner
/// version travels with the list, lists written by an older inner serializer stay readable as
/// long as the inner serializer still reads that version.
///
/// ```
/// use weir_connector_api::state::{StringSerializer, VecSerializer, VersionedSerializer};
///
/// let ser = VecSerializer::new(StringSerializer);
/// let splits = vec!["orders-0".to_owned(), "orders-1".to_owned()];
/// let bytes = ser.serialize(&splits)?;
/// assert_eq!(ser.deserialize(ser.version(), &bytes)?, splits);
/// # Ok::<(), weir_connector_api::state::StateError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VecSerializer<S> {
    inner: S,
}

impl<S> VecSerializer<S> {
    /// The version this serializer writes.
    pub const VERSION: u32 = 1;

    /// A list serializer whose elements are written by `inner`.
    pub const fn new(inner: S) -> Self {
        VecSerializer { inner }
    }

    /// The element serializer.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<T, S> VersionedSerializer<Vec<T>> for VecSerializer<S>
where
    S: VersionedSerializer<T>,
{
    fn version(&self) -> u32 {
        Self::VERSION
    }

    fn serialize(&self, value: &Vec<T>) -> Result<Vec<u8>, StateError> {
        let mut writer = StateWriter::new();
        writer.put_u32(self.inner.version()).put_len(value.len());
        for element in value {
            writer.put_bytes(&self.inner.serialize(element)?);
        }
        writer.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<Vec<T>, StateError> {
        if version != Self::VERSION {
            return Err(StateError::unknown_version(
                "list",
                version,
                &[Self::VERSION],
            ));
        }
        let mut reader = StateReader::new(bytes);
        let inner_version = reader.get_u32()?;
        let count = reader.get_len()?;
        // Every element carries a 4-byte length, so damaged counts fail before allocating.
        let needed = count.saturating_mul(4);
        if needed > reader.remaining() {
            return Err(StateError::Truncated {
                needed,
                available: reader.remaining(),
            });
        }
        let mut elements = Vec::with_capacity(count);
        for _ in 0..count {
            let element = reader.get_bytes()?;
            elements.push(self.inner.deserialize(inner_version, element)?);
        }
        reader.finish()?;
        Ok(elements)
    }
}
