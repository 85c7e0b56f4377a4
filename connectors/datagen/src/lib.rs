//! The datagen connector (in progress).
