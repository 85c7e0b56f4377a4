//! The files connector (in progress).
