//! State frames and the state serializers of the connectors linked into `weir`.
//!
//! The input is read three ways: as a whole frame (the checksum stops most mutations, which
//! is what a damaged file looks like), as a frame sequence, and as a payload that the target
//! frames itself with a valid checksum, so the serializers' decoders see arbitrary payloads of
//! every version they read. Whatever decodes must encode and decode back to the same value
//! (for the generic serializers, whose values compare).

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_connector_api::state::{
    deserialize_framed, frame, serialize_framed, BytesSerializer, Magic, StringSerializer,
    U64Serializer, VecSerializer, VersionedSerializer,
};

const MAGIC: Magic = Magic::new(*b"WFUZ");

/// Decodes `payload` as written by `version`, directly and through a valid frame.
fn decode_any<T, S: VersionedSerializer<T>>(ser: &S, version: u32, payload: &[u8]) -> Option<T> {
    let direct = ser.deserialize(version, payload).ok();
    let framed = frame::encode(MAGIC, version, payload)
        .ok()
        .and_then(|bytes| deserialize_framed(ser, MAGIC, &bytes).ok());
    assert_eq!(
        direct.is_some(),
        framed.is_some(),
        "framing changes nothing"
    );
    direct
}

/// Like [`decode_any`], and what decodes at the current version survives a round trip.
fn round_trip<T: PartialEq + std::fmt::Debug, S: VersionedSerializer<T>>(
    ser: &S,
    version: u32,
    payload: &[u8],
) {
    if let Some(value) = decode_any(ser, version, payload) {
        let bytes = serialize_framed(ser, MAGIC, &value).expect("a decoded value encodes");
        let again = deserialize_framed(ser, MAGIC, &bytes).expect("and decodes again");
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The whole input as one frame, and as frames back to back.
    let magic = data.first_chunk::<4>().map_or(MAGIC, |m| Magic::new(*m));
    let _ = frame::decode(magic, data);
    let mut rest = data;
    for _ in 0..16 {
        match frame::decode_prefix(magic, rest) {
            Ok((_, tail)) if tail.len() < rest.len() => rest = tail,
            _ => break,
        }
    }
    // 2. A payload at a version from the first byte (serializers read versions 1 to 3 or so).
    let Some((&v, payload)) = data.split_first() else {
        return;
    };
    let version = u32::from(v % 5);
    round_trip(&StringSerializer, version, payload);
    round_trip(&U64Serializer, version, payload);
    round_trip(&BytesSerializer, version, payload);
    round_trip(&VecSerializer::new(StringSerializer), version, payload);
    round_trip(&VecSerializer::new(BytesSerializer), version, payload);
    // 3. The connectors' own state: splits, enumerator checkpoints, writer state, committables.
    use weir_connector_datagen::NumberSequenceSplitSerializer;
    use weir_connector_files::sink::{
        CompactCoordinatorStateSerializer, CompactorStateSerializer, FileSinkCommittableSerializer,
        FileWriterStateSerializer,
    };
    use weir_connector_files::source::{FileEnumeratorStateSerializer, FileSourceSplitSerializer};
    use weir_connector_kafka::sink::{KafkaCommittableSerializer, KafkaWriterStateSerializer};
    use weir_connector_kafka::source::{
        KafkaEnumeratorStateSerializer, KafkaPartitionSplitSerializer,
    };
    decode_any(&NumberSequenceSplitSerializer, version, payload);
    decode_any(&FileSourceSplitSerializer, version, payload);
    decode_any(&FileEnumeratorStateSerializer, version, payload);
    decode_any(&FileSinkCommittableSerializer, version, payload);
    decode_any(&FileWriterStateSerializer, version, payload);
    decode_any(&CompactCoordinatorStateSerializer, version, payload);
    decode_any(&CompactorStateSerializer, version, payload);
    decode_any(&KafkaPartitionSplitSerializer, version, payload);
    decode_any(&KafkaEnumeratorStateSerializer, version, payload);
    decode_any(&KafkaCommittableSerializer, version, payload);
    decode_any(&KafkaWriterStateSerializer, version, payload);
});
