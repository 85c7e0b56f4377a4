//! Row formats (in progress).
