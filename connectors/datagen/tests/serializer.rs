//! State formats: golden bytes (inline and files written by release 1.0.0) and corrupt input.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use weir_connector_api::source::Source;
use weir_connector_api::state::{StateError, VecSerializer, VersionedSerializer};
use weir_connector_datagen::{
    DataGeneratorSource, NumberSequenceSplit, NumberSequenceSplitSerializer, RateLimiterStrategy,
};

/// `seq-1`, numbers 5..10: id length, id, next, end, stride.
const SPLIT_V1: &[u8] = &[
    0, 0, 0, 5, b's', b'e', b'q', b'-', b'1', //
    0, 0, 0, 0, 0, 0, 0, 5, //
    0, 0, 0, 0, 0, 0, 0, 10, //
    0, 0, 0, 0, 0, 0, 0, 1,
];

fn split_v1() -> NumberSequenceSplit {
    NumberSequenceSplit::new("seq-1", 5, 10)
}

#[test]
fn split_serializer_writes_the_golden_bytes() {
    let ser = NumberSequenceSplitSerializer;
    assert_eq!(ser.version(), 1);
    assert_eq!(ser.serialize(&split_v1()).unwrap(), SPLIT_V1);
    assert_eq!(ser.deserialize(1, SPLIT_V1).unwrap(), split_v1());
}

#[test]
fn golden_files_of_release_1_0_0_stay_readable() {
    let ser = NumberSequenceSplitSerializer;
    let file = include_bytes!("golden/number-sequence-split-v1.bin");
    assert_eq!(file.as_slice(), SPLIT_V1);
    assert_eq!(ser.deserialize(1, file).unwrap(), split_v1());

    let state_ser = DataGeneratorSource::new(|n| n, None, RateLimiterStrategy::no_op())
        .enumerator_state_serializer();
    let file = include_bytes!("golden/sequence-enumerator-state-v1.bin");
    let state = vec![
        NumberSequenceSplit::new("seq-0", 0, 4),
        NumberSequenceSplit::strided("seq-2", 2, u64::MAX, 3),
    ];
    assert_eq!(state_ser.version(), 1);
    assert_eq!(state_ser.deserialize(1, file).unwrap(), state);
    assert_eq!(state_ser.serialize(&state).unwrap(), file);
}

#[test]
fn splits_round_trip() {
    let ser = NumberSequenceSplitSerializer;
    for split in [
        NumberSequenceSplit::new("", 0, 0),
        NumberSequenceSplit::new("seq-0", u64::MAX, u64::MAX),
        NumberSequenceSplit::strided("seq-ü", 7, u64::MAX, 1 << 40),
    ] {
        let bytes = ser.serialize(&split).unwrap();
        assert_eq!(ser.deserialize(1, &bytes).unwrap(), split);
    }
}

#[test]
fn every_truncation_is_an_error() {
    let ser = NumberSequenceSplitSerializer;
    for len in 0..SPLIT_V1.len() {
        assert!(
            matches!(
                ser.deserialize(1, &SPLIT_V1[..len]),
                Err(StateError::Truncated { .. })
            ),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut bytes = SPLIT_V1.to_vec();
    bytes.push(0);
    assert_eq!(
        NumberSequenceSplitSerializer.deserialize(1, &bytes),
        Err(StateError::TrailingBytes { count: 1 })
    );
}

#[test]
fn unknown_versions_are_refused_before_reading() {
    for version in [0, 2, u32::MAX] {
        let err = NumberSequenceSplitSerializer
            .deserialize(version, SPLIT_V1)
            .unwrap_err();
        assert!(
            matches!(&err, StateError::UnknownVersion { version: v, .. } if *v == version),
            "{err}"
        );
        assert!(err.to_string().contains("number sequence split"), "{err}");
    }
}

#[test]
fn invalid_split_content_is_malformed() {
    let ser = NumberSequenceSplitSerializer;
    // Stride 0 would emit one number forever.
    let mut zero_stride = SPLIT_V1.to_vec();
    let last = zero_stride.len() - 1;
    zero_stride[last] = 0;
    let err = ser.deserialize(1, &zero_stride).unwrap_err();
    assert!(matches!(err, StateError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("stride 0"), "{err}");

    // next (11) after end (10).
    let mut inverted = SPLIT_V1.to_vec();
    inverted[16] = 11;
    let err = ser.deserialize(1, &inverted).unwrap_err();
    assert!(matches!(err, StateError::Malformed { .. }), "{err}");

    // The id is not UTF-8.
    let mut bad_id = SPLIT_V1.to_vec();
    bad_id[4] = 0xff;
    assert!(matches!(
        ser.deserialize(1, &bad_id),
        Err(StateError::InvalidUtf8 { .. })
    ));

    // A huge id length does not allocate or panic.
    let mut huge = SPLIT_V1.to_vec();
    huge[0] = 0xff;
    assert!(matches!(
        ser.deserialize(1, &huge),
        Err(StateError::Truncated { .. })
    ));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let ser = NumberSequenceSplitSerializer;
    let state_ser = VecSerializer::new(NumberSequenceSplitSerializer);
    // A cheap deterministic fuzz: flip every bit of the golden inputs.
    let state = include_bytes!("golden/sequence-enumerator-state-v1.bin");
    for input in [SPLIT_V1, state.as_slice()] {
        for byte in 0..input.len() {
            for bit in 0..8 {
                let mut damaged = input.to_vec();
                damaged[byte] ^= 1 << bit;
                let _ = ser.deserialize(1, &damaged);
                let _ = state_ser.deserialize(1, &damaged);
            }
        }
    }
}
