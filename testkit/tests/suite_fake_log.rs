//! The source suite against the reference fake-log source (written data, bounded and
//! continuous).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use weir_testkit::reference::FakeLogContext;

weir_testkit::source_suite!(fake_log, FakeLogContext::new);
