//! Checkpoint and savepoint metadata (`_metadata` files): the raw bytes, and the input as a
//! payload that the target frames with a valid checksum at format version 0 to 2 (from the
//! first byte). Whatever decodes must encode and decode back to the same metadata.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_connector_api::state::frame;
use weir_runtime::storage::metadata::METADATA_MAGIC;
use weir_runtime::storage::CheckpointMetadata;

fuzz_target!(|data: &[u8]| {
    let _ = CheckpointMetadata::decode(data);
    let Some((&v, payload)) = data.split_first() else {
        return;
    };
    let Ok(framed) = frame::encode(METADATA_MAGIC, u32::from(v % 3), payload) else {
        return;
    };
    if let Ok(metadata) = CheckpointMetadata::decode(&framed) {
        let encoded = metadata.encode().expect("decoded metadata encodes");
        let again = CheckpointMetadata::decode(&encoded).expect("and decodes again");
        assert_eq!(again, metadata);
    }
});
