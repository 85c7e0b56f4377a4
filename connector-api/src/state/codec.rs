//! Binary building blocks for hand-written serializers: [`StateWriter`] and [`StateReader`].
//!
//! The encoding is fixed and simple so that it stays readable for years:
//!
//! - integers: fixed width, big-endian;
//! - `bool`: one byte, `0` or `1` (anything else is rejected);
//! - byte strings and strings: a `u32` big-endian length, then the bytes (strings are UTF-8);
//! - options: a tag byte, `0` for `None` or `1` followed by the value;
//! - collection lengths ([`StateWriter::put_len`]): a `u32` big-endian count.
//!
//! The reader never panics and never allocates on the strength of a length it read: a length
//! larger than the remaining input is reported as [`StateError::Truncated`].
//!
//! ```
//! use weir_connector_api::state::{StateReader, StateWriter, StateError};
//!
//! let mut w = StateWriter::new();
//! w.put_str("orders").put_u32(3).put_opt_u64(Some(1041));
//! let bytes = w.finish()?;
//!
//! let mut r = StateReader::new(&bytes);
//! assert_eq!(r.get_str()?, "orders");
//! assert_eq!(r.get_u32()?, 3);
//! assert_eq!(r.get_opt_u64()?, Some(1041));
//! r.finish()?; // nothing may be left over
//! # Ok::<(), StateError>(())
//! ```

use super::StateError;

/// The largest byte string, string or collection length the encoding can record.
pub const MAX_LEN: usize = u32::MAX as usize;

/// Writes values in the state encoding into a growing buffer.
///
/// Writing methods return `&mut Self` for chaining. A value that cannot be encoded (a length
/// above [`MAX_LEN`]) is remembered and reported by [`finish`](StateWriter::finish), so a
/// serializer checks for errors once, at the end.
#[derive(Debug, Default, Clone)]
pub struct StateWriter {
    buf: Vec<u8>,
    error: Option<StateError>,
}

impl StateWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        StateWriter {
            buf: Vec::with_capacity(capacity),
            error: None,
        }
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The encoded bytes, or the first error met while writing.
    pub fn finish(self) -> Result<Vec<u8>, StateError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.buf),
        }
    }

    /// Writes one byte.
    pub fn put_u8(&mut self, value: u8) -> &mut Self {
        self.buf.push(value);
        self
    }

    /// Writes a `u16`, big-endian.
    pub fn put_u16(&mut self, value: u16) -> &mut Self {
        self.put_raw(&value.to_be_bytes())
    }

    /// Writes a `u32`, big-endian.
    pub fn put_u32(&mut self, value: u32) -> &mut Self {
        self.put_raw(&value.to_be_bytes())
    }

    /// Writes a `u64`, big-endian.
    pub fn put_u64(&mut self, value: u64) -> &mut Self {
        self.put_raw(&value.to_be_bytes())
    }

    /// Writes an `i32`, big-endian two's complement.
    pub fn put_i32(&mut self, value: i32) -> &mut Self {
        self.put_raw(&value.to_be_bytes())
    }

    /// Writes an `i64`, big-endian two's complement.
    pub fn put_i64(&mut self, value: i64) -> &mut Self {
        self.put_raw(&value.to_be_bytes())
    }

    /// Writes a `bool` as one byte, `0` or `1`.
    pub fn put_bool(&mut self, value: bool) -> &mut Self {
        self.put_u8(u8::from(value))
    }

    /// Writes bytes as they are, without a length; the reader must know how many to read.
    pub fn put_raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Writes a byte string: its `u32` length, then the bytes.
    pub fn put_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        if self.put_length("byte string", bytes.len()) {
            self.put_raw(bytes);
        }
        self
    }

    /// Writes a string: its `u32` length in bytes, then its UTF-8 bytes.
    pub fn put_str(&mut self, value: &str) -> &mut Self {
        if self.put_length("string", value.len()) {
            self.put_raw(value.as_bytes());
        }
        self
    }

    /// Writes the number of elements of a collection that follows, as a `u32`.
    ///
    /// Each element must then take at least one byte (see [`StateReader::get_len`]).
    pub fn put_len(&mut self, len: usize) -> &mut Self {
        self.put_length("collection", len);
        self
    }

    /// Writes an optional value: a `0` tag, or a `1` tag followed by what `put` writes.
    pub fn put_opt<T>(&mut self, value: Option<T>, put: impl FnOnce(&mut Self, T)) -> &mut Self {
        match value {
            None => {
                self.put_u8(0);
            }
            Some(value) => {
                self.put_u8(1);
                put(self, value);
            }
        }
        self
    }

    /// Writes an optional `u64`.
    pub fn put_opt_u64(&mut self, value: Option<u64>) -> &mut Self {
        self.put_opt(value, |w, v| {
            w.put_u64(v);
        })
    }

    /// Writes an optional `i64`.
    pub fn put_opt_i64(&mut self, value: Option<i64>) -> &mut Self {
        self.put_opt(value, |w, v| {
            w.put_i64(v);
        })
    }

    /// Writes an optional string.
    pub fn put_opt_str(&mut self, value: Option<&str>) -> &mut Self {
        self.put_opt(value, |w, v| {
            w.put_str(v);
        })
    }

    /// Writes an optional byte string.
    pub fn put_opt_bytes(&mut self, value: Option<&[u8]>) -> &mut Self {
        self.put_opt(value, |w, v| {
            w.put_bytes(v);
        })
    }

    /// Writes `len` as a `u32`; records an error and returns `false` if it does not fit.
    fn put_length(&mut self, what: &str, len: usize) -> bool {
        if let Ok(len) = u32::try_from(len) {
            self.put_u32(len);
            true
        } else {
            if self.error.is_none() {
                self.error = Some(StateError::TooLarge {
                    what: what.to_owned(),
                    len,
                    max: MAX_LEN,
                });
            }
            false
        }
    }
}

/// Reads values in the state encoding from a byte slice, front to back.
///
/// Every method returns an error rather than panicking on short or damaged input. Call
/// [`finish`](StateReader::finish) at the end so that stray bytes are rejected.
#[derive(Debug, Clone)]
pub struct StateReader<'a> {
    rest: &'a [u8],
    position: usize,
}

impl<'a> StateReader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        StateReader {
            rest: bytes,
            position: 0,
        }
    }

    /// Number of bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Number of bytes read so far (the offset of the next byte).
    pub fn position(&self) -> usize {
        self.position
    }

    /// Succeeds if every byte was read; otherwise fails with [`StateError::TrailingBytes`].
    pub fn finish(self) -> Result<(), StateError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(StateError::TrailingBytes {
                count: self.rest.len(),
            })
        }
    }

    /// Reads exactly `len` bytes, borrowed from the input.
    pub fn get_raw(&mut self, len: usize) -> Result<&'a [u8], StateError> {
        let Some((taken, rest)) = self.rest.split_at_checked(len) else {
            return Err(StateError::Truncated {
                needed: len,
                available: self.rest.len(),
            });
        };
        self.rest = rest;
        self.position = self.position.saturating_add(len);
        Ok(taken)
    }

    /// Reads exactly `N` bytes into an array.
    pub fn get_array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let Some((taken, rest)) = self.rest.split_first_chunk::<N>() else {
            return Err(StateError::Truncated {
                needed: N,
                available: self.rest.len(),
            });
        };
        self.rest = rest;
        self.position = self.position.saturating_add(N);
        Ok(*taken)
    }

    /// Reads one byte.
    pub fn get_u8(&mut self) -> Result<u8, StateError> {
        let [byte] = self.get_array()?;
        Ok(byte)
    }

    /// Reads a big-endian `u16`.
    pub fn get_u16(&mut self) -> Result<u16, StateError> {
        self.get_array().map(u16::from_be_bytes)
    }

    /// Reads a big-endian `u32`.
    pub fn get_u32(&mut self) -> Result<u32, StateError> {
        self.get_array().map(u32::from_be_bytes)
    }

    /// Reads a big-endian `u64`.
    pub fn get_u64(&mut self) -> Result<u64, StateError> {
        self.get_array().map(u64::from_be_bytes)
    }

    /// Reads a big-endian `i32`.
    pub fn get_i32(&mut self) -> Result<i32, StateError> {
        self.get_array().map(i32::from_be_bytes)
    }

    /// Reads a big-endian `i64`.
    pub fn get_i64(&mut self) -> Result<i64, StateError> {
        self.get_array().map(i64::from_be_bytes)
    }

    /// Reads a `bool`; a byte other than `0` or `1` is [`StateError::Malformed`].
    pub fn get_bool(&mut self) -> Result<bool, StateError> {
        let at = self.position;
        match self.get_u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(StateError::malformed(
                "serialized",
                format!("byte {other} at offset {at} should be a boolean (0 or 1)"),
            )),
        }
    }

    /// Reads a length-prefixed byte string, borrowed from the input.
    pub fn get_bytes(&mut self) -> Result<&'a [u8], StateError> {
        let len = self.get_u32()?;
        self.get_raw(usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// Reads a length-prefixed UTF-8 string, borrowed from the input.
    pub fn get_str(&mut self) -> Result<&'a str, StateError> {
        let len = self.get_u32()?;
        let start = self.position;
        let bytes = self.get_raw(usize::try_from(len).unwrap_or(usize::MAX))?;
        std::str::from_utf8(bytes).map_err(|e| StateError::InvalidUtf8 {
            offset: start.saturating_add(e.valid_up_to()),
        })
    }

    /// Reads a collection length written by [`StateWriter::put_len`].
    ///
    /// Each element takes at least one byte, so a count larger than the remaining input is
    /// reported as [`StateError::Truncated`] before anything is allocated; passing the result
    /// to `Vec::with_capacity` allocates at most (input length × element size).
    pub fn get_len(&mut self) -> Result<usize, StateError> {
        let count = usize::try_from(self.get_u32()?).unwrap_or(usize::MAX);
        if count > self.rest.len() {
            return Err(StateError::Truncated {
                needed: count,
                available: self.rest.len(),
            });
        }
        Ok(count)
    }

    /// Reads an optional value written by [`StateWriter::put_opt`], using `get` for the value.
    ///
    /// A tag other than `0` or `1` is [`StateError::Malformed`].
    pub fn get_opt<T>(
        &mut self,
        get: impl FnOnce(&mut Self) -> Result<T, StateError>,
    ) -> Result<Option<T>, StateError> {
        let at = self.position;
        match self.get_u8()? {
            0 => Ok(None),
            1 => get(self).map(Some),
            other => Err(StateError::malformed(
                "serialized",
                format!("byte {other} at offset {at} should be an option tag (0 or 1)"),
            )),
        }
    }

    /// Reads an optional `u64`.
    pub fn get_opt_u64(&mut self) -> Result<Option<u64>, StateError> {
        self.get_opt(Self::get_u64)
    }

    /// Reads an optional `i64`.
    pub fn get_opt_i64(&mut self) -> Result<Option<i64>, StateError> {
        self.get_opt(Self::get_i64)
    }

    /// Reads an optional string.
    pub fn get_opt_str(&mut self) -> Result<Option<&'a str>, StateError> {
        self.get_opt(Self::get_str)
    }

    /// Reads an optional byte string.
    pub fn get_opt_bytes(&mut self) -> Result<Option<&'a [u8]>, StateError> {
        self.get_opt(Self::get_bytes)
    }
}
