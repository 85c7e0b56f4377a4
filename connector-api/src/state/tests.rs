use proptest::prelude::*;

use super::frame::{self, HEADER_LEN};
use super::*;

const TEST: Magic = Magic::new(*b"TEST");

fn sample_frame() -> Result<Vec<u8>, StateError> {
    frame::encode(TEST, 7, b"hello, state")
}

// ---------------------------------------------------------------- frame

#[test]
fn frame_round_trips() -> Result<(), StateError> {
    let bytes = sample_frame()?;
    assert_eq!(bytes.len(), HEADER_LEN + 12);
    let decoded = frame::decode(TEST, &bytes)?;
    assert_eq!(decoded.version, 7);
    assert_eq!(decoded.payload, b"hello, state");
    Ok(())
}

#[test]
fn frame_round_trips_empty_payload() -> Result<(), StateError> {
    let bytes = frame::encode(TEST, 0, b"")?;
    assert_eq!(bytes.len(), HEADER_LEN);
    assert_eq!(
        frame::decode(TEST, &bytes)?,
        Frame {
            version: 0,
            payload: b""
        }
    );
    Ok(())
}

/// Pins the byte layout: a change here breaks every stored checkpoint.
#[test]
fn frame_layout_is_stable() -> Result<(), StateError> {
    let bytes = frame::encode(TEST, 1, b"abc")?;
    let mut checked = Vec::new();
    checked.extend_from_slice(&1u32.to_be_bytes());
    checked.extend_from_slice(&3u32.to_be_bytes());
    checked.extend_from_slice(b"abc");
    let crc = crc32fast::hash(&checked);
    let mut expected = b"TEST".to_vec();
    expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 3]);
    expected.extend_from_slice(&crc.to_be_bytes());
    expected.extend_from_slice(b"abc");
    assert_eq!(bytes, expected);
    assert_eq!(crc, 0x7FFD_864C, "checksum algorithm changed");
    Ok(())
}

#[test]
fn truncated_header_at_every_length() -> Result<(), StateError> {
    let bytes = sample_frame()?;
    for len in 0..HEADER_LEN {
        assert_eq!(
            frame::decode(TEST, &bytes[..len]),
            Err(StateError::Truncated {
                needed: HEADER_LEN,
                available: len
            }),
            "prefix of {len} bytes"
        );
    }
    Ok(())
}

#[test]
fn bad_magic_is_rejected() -> Result<(), StateError> {
    let bytes = frame::encode(Magic::new(*b"KAFK"), 1, b"x")?;
    assert_eq!(
        frame::decode(TEST, &bytes),
        Err(StateError::BadMagic {
            expected: TEST,
            found: Magic::new(*b"KAFK")
        })
    );
    Ok(())
}

#[test]
fn truncated_payload_is_rejected() -> Result<(), StateError> {
    let bytes = sample_frame()?;
    let total = bytes.len();
    for len in HEADER_LEN..total {
        assert_eq!(
            frame::decode(TEST, &bytes[..len]),
            Err(StateError::Truncated {
                needed: total,
                available: len
            })
        );
    }
    Ok(())
}

#[test]
fn trailing_byte_is_rejected() -> Result<(), StateError> {
    let mut bytes = sample_frame()?;
    bytes.push(0);
    assert_eq!(
        frame::decode(TEST, &bytes),
        Err(StateError::TrailingBytes { count: 1 })
    );
    Ok(())
}

#[test]
fn flipped_payload_bit_is_rejected() -> Result<(), StateError> {
    let mut bytes = sample_frame()?;
    bytes[HEADER_LEN + 3] ^= 0x10;
    assert!(matches!(
        frame::decode(TEST, &bytes),
        Err(StateError::ChecksumMismatch { .. })
    ));
    Ok(())
}

#[test]
fn flipped_checksum_byte_is_rejected() -> Result<(), StateError> {
    let mut bytes = sample_frame()?;
    bytes[12] ^= 0xFF;
    let result = frame::decode(TEST, &bytes);
    assert!(
        matches!(
            result,
            Err(StateError::ChecksumMismatch { expected, actual }) if expected != actual
        ),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn flipped_version_byte_is_rejected() -> Result<(), StateError> {
    let mut bytes = sample_frame()?;
    bytes[7] ^= 0x01; // version 7 -> 6: must not reach the version-6 decoder
    assert!(matches!(
        frame::decode(TEST, &bytes),
        Err(StateError::ChecksumMismatch { .. })
    ));
    Ok(())
}

#[test]
fn huge_length_field_is_truncated_not_allocated() -> Result<(), StateError> {
    let mut bytes = sample_frame()?;
    bytes[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        frame::decode(TEST, &bytes),
        Err(StateError::Truncated {
            needed: HEADER_LEN + u32::MAX as usize,
            available: bytes.len()
        })
    );
    Ok(())
}

#[test]
fn decode_prefix_reads_a_stream_of_frames() -> Result<(), StateError> {
    let mut stream = Vec::new();
    frame::encode_into(&mut stream, TEST, 1, b"first")?;
    frame::encode_into(&mut stream, TEST, 2, b"")?;
    frame::encode_into(&mut stream, TEST, 3, b"third")?;
    let mut rest = stream.as_slice();
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let (f, tail) = frame::decode_prefix(TEST, rest)?;
        seen.push((f.version, f.payload.to_vec()));
        rest = tail;
    }
    assert_eq!(
        seen,
        vec![
            (1, b"first".to_vec()),
            (2, Vec::new()),
            (3, b"third".to_vec())
        ]
    );
    Ok(())
}

#[test]
fn magic_displays_as_escaped_ascii() {
    assert_eq!(TEST.to_string(), "TEST");
    assert_eq!(
        Magic::new([b'W', 0, 0xFF, b'\n']).to_string(),
        "W\\x00\\xff\\n"
    );
    assert_eq!(format!("{TEST:?}"), "Magic(\"TEST\")");
    assert_eq!(Magic::from(*b"ABCD").to_bytes(), *b"ABCD");
}

#[test]
fn error_messages_tell_the_user_what_to_do() {
    let corrupt = StateError::ChecksumMismatch {
        expected: 1,
        actual: 2,
    }
    .to_string();
    assert!(corrupt.contains("corrupt"), "{corrupt}");
    assert!(
        corrupt.contains("restore from an earlier checkpoint"),
        "{corrupt}"
    );

    let newer = StateError::unknown_version("kafka split", 9, &[1, 2]).to_string();
    assert_eq!(
        newer,
        "kafka split state has version 9, but this connector reads versions 1, 2; \
         was it written by a newer release? upgrade the connector"
    );

    let magic = StateError::BadMagic {
        expected: TEST,
        found: Magic::new(*b"KAFK"),
    }
    .to_string();
    assert!(magic.contains("expected `TEST`, found `KAFK`"), "{magic}");
}

// ---------------------------------------------------------------- versioned serializers

/// A split as release 1 knew it.
#[derive(Debug, Clone, PartialEq)]
struct SplitV1 {
    topic: String,
    offset: u64,
}

/// The same split in release 2, which added an optional stop offset.
#[derive(Debug, Clone, PartialEq)]
struct Split {
    topic: String,
    offset: u64,
    stop_offset: Option<u64>,
}

const SPLIT: Magic = Magic::new(*b"WSPL");

/// The serializer shipped in release 1.
struct SplitSerializerV1;

impl VersionedSerializer<SplitV1> for SplitSerializerV1 {
    fn version(&self) -> u32 {
        1
    }

    fn serialize(&self, value: &SplitV1) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_str(&value.topic).put_u64(value.offset);
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<SplitV1, StateError> {
        if version != 1 {
            return Err(StateError::unknown_version("test split", version, &[1]));
        }
        let mut r = StateReader::new(bytes);
        let split = SplitV1 {
            topic: r.get_str()?.to_owned(),
            offset: r.get_u64()?,
        };
        r.finish()?;
        Ok(split)
    }
}

/// The serializer shipped in release 2: writes version 2, still reads version 1.
struct SplitSerializer;

impl VersionedSerializer<Split> for SplitSerializer {
    fn version(&self) -> u32 {
        2
    }

    fn serialize(&self, value: &Split) -> Result<Vec<u8>, StateError> {
        let mut w = StateWriter::new();
        w.put_str(&value.topic)
            .put_u64(value.offset)
            .put_opt_u64(value.stop_offset);
        w.finish()
    }

    fn deserialize(&self, version: u32, bytes: &[u8]) -> Result<Split, StateError> {
        // Check the version before reading, so unknown versions are reported as such.
        if !(1..=2).contains(&version) {
            return Err(StateError::unknown_version("test split", version, &[1, 2]));
        }
        let mut r = StateReader::new(bytes);
        let topic = r.get_str()?.to_owned();
        let offset = r.get_u64()?;
        let stop_offset = if version >= 2 { r.get_opt_u64()? } else { None };
        r.finish()?;
        Ok(Split {
            topic,
            offset,
            stop_offset,
        })
    }
}

#[test]
fn old_version_is_still_readable() -> Result<(), StateError> {
    let old = SplitV1 {
        topic: "orders".into(),
        offset: 1041,
    };
    let v1_bytes = serialize_framed(&SplitSerializerV1, SPLIT, &old)?;

    let restored: Split = deserialize_framed(&SplitSerializer, SPLIT, &v1_bytes)?;
    assert_eq!(
        restored,
        Split {
            topic: "orders".into(),
            offset: 1041,
            stop_offset: None
        }
    );

    // Writing it again upgrades it to version 2, which release 1 refuses clearly.
    let v2_bytes = serialize_framed(&SplitSerializer, SPLIT, &restored)?;
    assert_eq!(frame::decode(SPLIT, &v2_bytes)?.version, 2);
    assert_eq!(
        deserialize_framed(&SplitSerializerV1, SPLIT, &v2_bytes),
        Err(StateError::unknown_version("test split", 2, &[1]))
    );
    Ok(())
}

#[test]
fn new_version_round_trips() -> Result<(), StateError> {
    let split = Split {
        topic: "payments".into(),
        offset: 7,
        stop_offset: Some(99),
    };
    let bytes = serialize_framed(&SplitSerializer, SPLIT, &split)?;
    assert_eq!(deserialize_framed(&SplitSerializer, SPLIT, &bytes)?, split);
    Ok(())
}

#[test]
fn unknown_version_via_deserialize_framed() -> Result<(), StateError> {
    let bytes = frame::encode(SPLIT, 3, b"whatever")?;
    let err = deserialize_framed(&SplitSerializer, SPLIT, &bytes);
    assert_eq!(
        err,
        Err(StateError::UnknownVersion {
            what: "test split".into(),
            version: 3,
            supported: "1, 2".into()
        })
    );
    Ok(())
}

#[test]
fn framed_helpers_accept_trait_objects_and_smart_pointers() -> Result<(), StateError> {
    let dynamic: &dyn VersionedSerializer<String> = &StringSerializer;
    let boxed: Box<dyn VersionedSerializer<String>> = Box::new(StringSerializer);
    let shared: std::sync::Arc<dyn VersionedSerializer<String>> =
        std::sync::Arc::new(StringSerializer);
    let value = "héllo".to_owned();
    let bytes = serialize_framed(dynamic, TEST, &value)?;
    assert_eq!(deserialize_framed(&boxed, TEST, &bytes)?, value);
    assert_eq!(deserialize_framed(&shared, TEST, &bytes)?, value);
    Ok(())
}

#[test]
fn ready_made_serializers_round_trip() -> Result<(), StateError> {
    let s = "split-α".to_owned();
    assert_eq!(
        StringSerializer.deserialize(1, &StringSerializer.serialize(&s)?)?,
        s
    );
    assert_eq!(
        U64Serializer.deserialize(1, &U64Serializer.serialize(&u64::MAX)?)?,
        u64::MAX
    );
    let b = vec![0u8, 1, 2, 255];
    assert_eq!(
        BytesSerializer.deserialize(1, &BytesSerializer.serialize(&b)?)?,
        b
    );
    Ok(())
}

#[test]
fn ready_made_serializers_are_strict() {
    assert!(matches!(
        StringSerializer.deserialize(2, b"x"),
        Err(StateError::UnknownVersion { version: 2, .. })
    ));
    assert_eq!(
        StringSerializer.deserialize(1, b"ab\xFFcd"),
        Err(StateError::InvalidUtf8 { offset: 2 })
    );
    assert_eq!(
        U64Serializer.deserialize(1, &[0; 7]),
        Err(StateError::Truncated {
            needed: 8,
            available: 7
        })
    );
    assert_eq!(
        U64Serializer.deserialize(1, &[0; 9]),
        Err(StateError::TrailingBytes { count: 1 })
    );
    assert!(matches!(
        U64Serializer.deserialize(0, &[0; 8]),
        Err(StateError::UnknownVersion { .. })
    ));
    assert!(matches!(
        BytesSerializer.deserialize(5, b""),
        Err(StateError::UnknownVersion { .. })
    ));
}

#[test]
fn vec_serializer_round_trips() -> Result<(), StateError> {
    let ser = VecSerializer::new(SplitSerializer);
    let splits = vec![
        Split {
            topic: "a".into(),
            offset: 1,
            stop_offset: None,
        },
        Split {
            topic: "b".into(),
            offset: 2,
            stop_offset: Some(3),
        },
    ];
    let bytes = serialize_framed(&ser, SPLIT, &splits)?;
    assert_eq!(deserialize_framed(&ser, SPLIT, &bytes)?, splits);
    let empty: Vec<Split> = Vec::new();
    assert_eq!(ser.deserialize(1, &ser.serialize(&empty)?)?, empty);
    Ok(())
}

#[test]
fn vec_serializer_reads_lists_written_by_an_old_inner_serializer() -> Result<(), StateError> {
    let old = vec![
        SplitV1 {
            topic: "x".into(),
            offset: 10,
        },
        SplitV1 {
            topic: "y".into(),
            offset: 20,
        },
    ];
    let bytes = VecSerializer::new(SplitSerializerV1).serialize(&old)?;
    // The inner version is stored once, before the count.
    assert_eq!(bytes[..4], 1u32.to_be_bytes());
    let restored = VecSerializer::new(SplitSerializer).deserialize(1, &bytes)?;
    assert_eq!(
        restored.iter().map(|s| s.stop_offset).collect::<Vec<_>>(),
        vec![None, None]
    );
    assert_eq!(restored[1].topic, "y");
    Ok(())
}

#[test]
fn vec_serializer_rejects_bad_input() -> Result<(), StateError> {
    let ser = VecSerializer::new(U64Serializer);
    assert!(matches!(
        ser.deserialize(2, b""),
        Err(StateError::UnknownVersion { version: 2, .. })
    ));
    // A malicious count fails before anything is allocated.
    let mut w = StateWriter::new();
    w.put_u32(1).put_u32(u32::MAX);
    let bytes = w.finish()?;
    assert!(matches!(
        ser.deserialize(1, &bytes),
        Err(StateError::Truncated { .. })
    ));
    // A count that fits the remaining bytes but not four bytes per element.
    let mut w = StateWriter::new();
    w.put_u32(1).put_u32(3).put_raw(&[0; 8]);
    let bytes = w.finish()?;
    assert_eq!(
        ser.deserialize(1, &bytes),
        Err(StateError::Truncated {
            needed: 12,
            available: 8
        })
    );
    // Trailing bytes after the last element.
    let mut bytes = ser.serialize(&vec![1, 2])?;
    bytes.push(0);
    assert_eq!(
        ser.deserialize(1, &bytes),
        Err(StateError::TrailingBytes { count: 1 })
    );
    Ok(())
}

// ---------------------------------------------------------------- codec

#[test]
fn writer_and_reader_round_trip_every_type() -> Result<(), StateError> {
    let mut w = StateWriter::with_capacity(64);
    assert!(w.is_empty());
    w.put_u8(0xAB)
        .put_u16(0xBEEF)
        .put_u32(0xDEAD_BEEF)
        .put_u64(u64::MAX - 1)
        .put_i32(-5)
        .put_i64(i64::MIN)
        .put_bool(true)
        .put_bool(false)
        .put_bytes(b"\x00\x01")
        .put_str("héllo")
        .put_raw(b"RAW")
        .put_len(2)
        .put_opt_u64(None)
        .put_opt_u64(Some(9))
        .put_opt_i64(Some(-9))
        .put_opt_str(Some("s"))
        .put_opt_str(None)
        .put_opt_bytes(Some(b""))
        .put_opt_bytes(None);
    let len = w.len();
    let bytes = w.finish()?;
    assert_eq!(bytes.len(), len);

    let mut r = StateReader::new(&bytes);
    assert_eq!(r.get_u8()?, 0xAB);
    assert_eq!(r.get_u16()?, 0xBEEF);
    assert_eq!(r.get_u32()?, 0xDEAD_BEEF);
    assert_eq!(r.get_u64()?, u64::MAX - 1);
    assert_eq!(r.get_i32()?, -5);
    assert_eq!(r.get_i64()?, i64::MIN);
    assert!(r.get_bool()?);
    assert!(!r.get_bool()?);
    assert_eq!(r.get_bytes()?, b"\x00\x01");
    assert_eq!(r.get_str()?, "héllo");
    assert_eq!(r.get_array::<3>()?, *b"RAW");
    assert_eq!(r.get_len()?, 2);
    assert_eq!(r.get_opt_u64()?, None);
    assert_eq!(r.get_opt_u64()?, Some(9));
    assert_eq!(r.get_opt_i64()?, Some(-9));
    assert_eq!(r.get_opt_str()?, Some("s"));
    assert_eq!(r.get_opt_str()?, None);
    assert_eq!(r.get_opt_bytes()?, Some(&b""[..]));
    assert_eq!(r.get_opt_bytes()?, None);
    assert_eq!(r.remaining(), 0);
    assert_eq!(r.position(), bytes.len());
    r.finish()
}

#[test]
fn reader_reports_short_input_as_truncated() {
    let mut r = StateReader::new(&[1, 2, 3]);
    assert_eq!(
        r.get_u32(),
        Err(StateError::Truncated {
            needed: 4,
            available: 3
        })
    );
    // A failed read consumes nothing.
    assert_eq!(r.remaining(), 3);
    assert_eq!(r.get_raw(3), Ok(&[1u8, 2, 3][..]));
    assert_eq!(
        r.get_u8(),
        Err(StateError::Truncated {
            needed: 1,
            available: 0
        })
    );
}

#[test]
fn reader_rejects_malicious_lengths_without_allocating() -> Result<(), StateError> {
    let mut w = StateWriter::new();
    w.put_u32(u32::MAX).put_raw(b"abc");
    let bytes = w.finish()?;
    let truncated = StateError::Truncated {
        needed: u32::MAX as usize,
        available: 3,
    };
    assert_eq!(StateReader::new(&bytes).get_bytes(), Err(truncated.clone()));
    assert_eq!(StateReader::new(&bytes).get_str(), Err(truncated.clone()));
    assert_eq!(StateReader::new(&bytes).get_len(), Err(truncated));
    Ok(())
}

#[test]
fn reader_rejects_invalid_utf8_with_its_offset() -> Result<(), StateError> {
    let mut w = StateWriter::new();
    w.put_u8(0).put_bytes(b"ok\xC3");
    let bytes = w.finish()?;
    let mut r = StateReader::new(&bytes);
    r.get_u8()?;
    assert_eq!(r.get_str(), Err(StateError::InvalidUtf8 { offset: 7 }));
    Ok(())
}

#[test]
fn reader_rejects_bad_bool_and_option_tags() {
    assert!(matches!(
        StateReader::new(&[2]).get_bool(),
        Err(StateError::Malformed { .. })
    ));
    let err = StateReader::new(&[7]).get_opt_u64();
    assert!(
        matches!(&err, Err(StateError::Malformed { reason, .. }) if reason.contains("option tag")),
        "{err:?}"
    );
}

#[test]
fn reader_finish_rejects_leftover_bytes() -> Result<(), StateError> {
    let mut r = StateReader::new(&[0, 0, 0, 1, 0xFF, 0xFF]);
    assert_eq!(r.get_u32()?, 1);
    assert_eq!(r.finish(), Err(StateError::TrailingBytes { count: 2 }));
    Ok(())
}

#[cfg(target_pointer_width = "64")]
#[test]
fn writer_reports_lengths_that_do_not_fit() {
    let mut w = StateWriter::new();
    w.put_len(u32::MAX as usize + 1).put_u8(1);
    assert_eq!(
        w.finish(),
        Err(StateError::TooLarge {
            what: "collection".into(),
            len: u32::MAX as usize + 1,
            max: u32::MAX as usize
        })
    );
}

// ---------------------------------------------------------------- properties

proptest! {
    #[test]
    fn prop_frame_round_trips(
        version: u32,
        payload in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let bytes = frame::encode(TEST, version, &payload)?;
        let decoded = frame::decode(TEST, &bytes)?;
        prop_assert_eq!(decoded.version, version);
        prop_assert_eq!(decoded.payload, payload.as_slice());
    }

    #[test]
    fn prop_any_single_byte_corruption_is_an_error(
        version: u32,
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        position: prop::sample::Index,
        flip in 1u8..=255,
    ) {
        let mut bytes = frame::encode(TEST, version, &payload)?;
        let at = position.index(bytes.len());
        bytes[at] ^= flip;
        let result = frame::decode(TEST, &bytes);
        prop_assert!(result.is_err(), "corrupting byte {} was accepted: {:?}", at, result);
    }

    #[test]
    fn prop_any_truncation_or_extension_is_an_error(
        version: u32,
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        cut: prop::sample::Index,
        extra in proptest::collection::vec(any::<u8>(), 1..8),
    ) {
        let bytes = frame::encode(TEST, version, &payload)?;
        let len = cut.index(bytes.len());
        prop_assert!(frame::decode(TEST, &bytes[..len]).is_err());
        let mut longer = bytes.clone();
        longer.extend_from_slice(&extra);
        prop_assert_eq!(
            frame::decode(TEST, &longer),
            Err(StateError::TrailingBytes { count: extra.len() })
        );
    }

    #[test]
    fn prop_decoding_arbitrary_bytes_never_panics(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..64),
        with_magic: bool,
    ) {
        if with_magic && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(b"TEST");
        }
        if let Ok(f) = frame::decode(TEST, &bytes) {
            // Only a genuine frame decodes, and it re-encodes to the same bytes.
            prop_assert_eq!(frame::encode(TEST, f.version, f.payload)?, bytes.clone());
        }
        let _ = deserialize_framed(&SplitSerializer, TEST, &bytes);
        let _ = VecSerializer::new(StringSerializer).deserialize(1, &bytes);
        let _ = SplitSerializer.deserialize(2, &bytes);
    }

    #[test]
    fn prop_reader_never_panics_on_arbitrary_input(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ops in proptest::collection::vec(0u8..10, 0..16),
    ) {
        let mut r = StateReader::new(&bytes);
        for op in ops {
            let before = r.remaining();
            let ok = match op {
                0 => r.get_u8().is_ok(),
                1 => r.get_u32().is_ok(),
                2 => r.get_i64().is_ok(),
                3 => r.get_bool().is_ok(),
                4 => r.get_bytes().is_ok(),
                5 => r.get_str().is_ok(),
                6 => r.get_len().is_ok(),
                7 => r.get_opt_str().is_ok(),
                8 => r.get_opt_u64().is_ok(),
                _ => r.get_array::<3>().is_ok(),
            };
            prop_assert!(r.remaining() <= before);
            prop_assert_eq!(r.position() + r.remaining(), bytes.len());
            if !ok {
                break;
            }
        }
    }

    #[test]
    fn prop_split_round_trips(
        topic in ".{0,24}",
        offset: u64,
        stop_offset: Option<u64>,
    ) {
        let split = Split { topic, offset, stop_offset };
        let bytes = serialize_framed(&SplitSerializer, SPLIT, &split)?;
        prop_assert_eq!(deserialize_framed(&SplitSerializer, SPLIT, &bytes)?, split);
    }
}
