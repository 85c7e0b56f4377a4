//! The s3 connector (in progress).
