//! The source suite against the datagen connector.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use weir_testkit::reference::DatagenContext;

weir_testkit::source_suite!(datagen, DatagenContext::new);
