//! The kafka connector (in progress).
