//! Reusable implementations beside the traits: connectors build on these instead of writing the
//! plumbing again.

pub mod reader;
