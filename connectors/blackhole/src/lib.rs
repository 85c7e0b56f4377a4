//! The blackhole connector (in progress).
