//! Checkpoint storage (in progress).
