//! weir-runtime.
