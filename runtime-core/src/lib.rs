//! The embedded Weir runtime (in progress).
pub mod restart;
pub mod storage;
