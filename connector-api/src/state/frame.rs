//! Self-checking frames around serialized state.
//!
//! A frame tells a reader what the bytes are (a magic marker), how to read them (the serializer
//! version) and whether they arrived intact (an exact length and a CRC-32). Layout, integers
//! big-endian:
//!
//! | offset | size | field                                              |
//! |--------|------|----------------------------------------------------|
//! | 0      | 4    | magic marker                                       |
//! | 4      | 4    | serializer version                                 |
//! | 8      | 4    | payload length `n`                                 |
//! | 12     | 4    | CRC-32 (IEEE) of version, length and payload bytes |
//! | 16     | `n`  | payload                                            |
//!
//! The checksum covers the version and length fields as well as the payload, so a damaged
//! version can never route intact-looking bytes to the wrong decoder: any single damaged byte
//! of a frame is reported as an error.
//!
//! ```
//! use weir_connector_api::state::frame::{self, Magic};
//! use weir_connector_api::state::StateError;
//!
//! const SPLIT: Magic = Magic::new(*b"WSPL");
//!
//! let bytes = frame::encode(SPLIT, 2, b"orders-3@1041")?;
//! let decoded = frame::decode(SPLIT, &bytes)?;
//! assert_eq!(decoded.version, 2);
//! assert_eq!(decoded.payload, b"orders-3@1041");
//!
//! // Damage is detected, never silently accepted.
//! let mut damaged = bytes.clone();
//! damaged[20] ^= 0x01;
//! assert!(matches!(
//!     frame::decode(SPLIT, &damaged),
//!     Err(StateError::ChecksumMismatch { .. })
//! ));
//! # Ok::<(), StateError>(())
//! ```

use std::fmt;

use super::StateError;

/// Length of the frame header: magic, version, payload length and checksum.
pub const HEADER_LEN: usize = 16;

/// The largest payload a frame can carry (the length field is 32-bit).
pub const MAX_PAYLOAD_LEN: usize = u32::MAX as usize;

/// A four-byte marker at the start of a frame naming the kind of state it holds.
///
/// Pick one per state kind (e.g. `WSPL` for splits, `WENU` for enumerator checkpoints) so that
/// bytes handed to the wrong deserializer fail with [`StateError::BadMagic`] instead of being
/// misread.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Magic([u8; 4]);

impl Magic {
    /// A marker from its four bytes.
    pub const fn new(bytes: [u8; 4]) -> Self {
        Magic(bytes)
    }

    /// The four bytes of the marker.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0
    }
}

impl From<[u8; 4]> for Magic {
    fn from(bytes: [u8; 4]) -> Self {
        Magic(bytes)
    }
}

impl fmt::Display for Magic {
    /// Printable ASCII as is, other bytes escaped (`\x00`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in &self.0 {
            for c in std::ascii::escape_default(byte) {
                fmt::Write::write_char(f, char::from(c))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Magic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Magic(\"{self}\")")
    }
}

/// A decoded frame: the serializer version and the payload it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The version of the serializer that wrote the payload.
    pub version: u32,
    /// The payload bytes, borrowed from the input.
    pub payload: &'a [u8],
}

/// Frames `payload` as written by serializer `version`.
///
/// Fails with [`StateError::TooLarge`] if the payload is longer than [`MAX_PAYLOAD_LEN`].
pub fn encode(magic: Magic, version: u32, payload: &[u8]) -> Result<Vec<u8>, StateError> {
    let mut out = Vec::with_capacity(HEADER_LEN.saturating_add(payload.len()));
    encode_into(&mut out, magic, version, payload)?;
    Ok(out)
}

/// Appends a frame to `out`; use with [`decode_prefix`] to store several frames back to back.
///
/// On error `out` is left unchanged.
pub fn encode_into(
    out: &mut Vec<u8>,
    magic: Magic,
    version: u32,
    payload: &[u8],
) -> Result<(), StateError> {
    let len = u32::try_from(payload.len()).map_err(|_| StateError::TooLarge {
        what: "frame payload".to_owned(),
        len: payload.len(),
        max: MAX_PAYLOAD_LEN,
    })?;
    let version = version.to_be_bytes();
    let len = len.to_be_bytes();
    let crc = checksum(version, len, payload);
    out.reserve(HEADER_LEN.saturating_add(payload.len()));
    out.extend_from_slice(&magic.0);
    out.extend_from_slice(&version);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Decodes exactly one frame: `bytes` must hold one frame and nothing else.
///
/// Errors: [`StateError::Truncated`] if the header or payload is cut short,
/// [`StateError::BadMagic`] if the marker differs, [`StateError::ChecksumMismatch`] if any
/// checked byte was damaged, [`StateError::TrailingBytes`] if bytes follow the payload.
pub fn decode(magic: Magic, bytes: &[u8]) -> Result<Frame<'_>, StateError> {
    let (frame, rest) = decode_prefix(magic, bytes)?;
    if rest.is_empty() {
        Ok(frame)
    } else {
        Err(StateError::TrailingBytes { count: rest.len() })
    }
}

/// Decodes the frame at the start of `bytes` and returns it with the bytes after it.
///
/// Same checks as [`decode`] except that trailing bytes are returned rather than rejected.
pub fn decode_prefix(magic: Magic, bytes: &[u8]) -> Result<(Frame<'_>, &[u8]), StateError> {
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(StateError::Truncated {
            needed: HEADER_LEN,
            available: bytes.len(),
        });
    };
    let [m0, m1, m2, m3, v0, v1, v2, v3, l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    let found = Magic([m0, m1, m2, m3]);
    if found != magic {
        return Err(StateError::BadMagic {
            expected: magic,
            found,
        });
    }
    let version = [v0, v1, v2, v3];
    let len_bytes = [l0, l1, l2, l3];
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).unwrap_or(usize::MAX);
    let Some((payload, rest)) = rest.split_at_checked(len) else {
        return Err(StateError::Truncated {
            needed: HEADER_LEN.saturating_add(len),
            available: bytes.len(),
        });
    };
    let expected = u32::from_be_bytes([c0, c1, c2, c3]);
    let actual = checksum(version, len_bytes, payload);
    if expected != actual {
        return Err(StateError::ChecksumMismatch { expected, actual });
    }
    let frame = Frame {
        version: u32::from_be_bytes(version),
        payload,
    };
    Ok((frame, rest))
}

fn checksum(version: [u8; 4], len: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&version);
    hasher.update(&len);
    hasher.update(payload);
    hasher.finalize()
}
