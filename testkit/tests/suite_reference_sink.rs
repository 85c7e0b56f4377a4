//! The sink suite against the reference two-phase-committing sink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use weir_testkit::reference::ReferenceSinkContext;

weir_testkit::sink_suite!(reference_sink, ReferenceSinkContext::new);
