//! Restart strategies (in progress).
