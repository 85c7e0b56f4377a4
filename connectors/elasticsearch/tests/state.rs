//! Writer state: the golden files of every state version (buffered bulk actions, and one
//! action alone) stay readable and the current version writes exactly its golden bytes
//! (`weir_testkit::state_compat!`; `WEIR_REGENERATE_GOLDEN=1` writes a missing one); damaged
//! bytes are errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use weir_connector_api::state::VersionedSerializer;
use weir_connector_base::sink::{BufferedRequestState, BufferedRequestStateSerializer};
use weir_connector_elasticsearch::sink::{BulkAction, BulkActionSerializer};

fn state() -> BufferedRequestState<BulkAction> {
    BufferedRequestState {
        entries: vec![
            BulkAction::index(
                "orders-2026-01-01",
                Some("7".into()),
                br#"{"id":7,"amount":2.5}"#.to_vec(),
            )
            .unwrap(),
            BulkAction::index("orders", None, br#"{"id":8}"#.to_vec()).unwrap(),
            BulkAction::create("orders", Some("9".into()), br#"{"id":9}"#.to_vec()).unwrap(),
            BulkAction::update("orders", Some("10".into()), br#"{"amount":1}"#.to_vec()).unwrap(),
            BulkAction::upsert(
                "orders",
                Some("11".into()),
                br#"{"name":"\u00e9"}"#.to_vec(),
            )
            .unwrap(),
            BulkAction::delete("orders", "12".into()).unwrap(),
        ],
    }
}

fn serializer() -> BufferedRequestStateSerializer<BulkAction> {
    BufferedRequestStateSerializer::new(Arc::new(BulkActionSerializer))
}

weir_testkit::state_compat!(
    writer_state_files_stay_readable,
    "buffered-actions",
    serializer(),
    state()
);

weir_testkit::state_compat!(
    bulk_action_files_stay_readable,
    "bulk-action",
    BulkActionSerializer,
    BulkAction::upsert(
        "orders",
        Some("11".into()),
        br#"{"name":"\u00e9","n":1}"#.to_vec()
    )
    .unwrap()
);

#[test]
fn damaged_state_is_an_error() {
    let ser = serializer();
    let bytes = ser.serialize(&state()).unwrap();
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        assert!(ser.deserialize(1, &bytes[..cut]).is_err(), "cut at {cut}");
    }
    let one = BulkActionSerializer.serialize(&state().entries[0]).unwrap();
    let mut bad = one.clone();
    bad[0] = 9; // no such action kind
    assert!(BulkActionSerializer
        .deserialize(1, &bad)
        .unwrap_err()
        .to_string()
        .contains("unknown action kind 9"));
    assert!(
        BulkActionSerializer.deserialize(2, &one).is_err(),
        "a newer version is refused"
    );
}
