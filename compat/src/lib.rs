//! The compat checker (in progress).
