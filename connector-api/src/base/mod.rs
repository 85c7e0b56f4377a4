//! Reusable implementations beside the traits, as of API line 1.0.
//!
//! **Deprecated (API line 1.1):** the implementations moved to the `weir-connector-base` crate
//! (`weir_connector_base::source::reader`), which can change without a new API line. The API
//! crate cannot depend on the base crate (the base depends on the API), so this module keeps a
//! frozen copy of the 1.0 code, deprecated, for 1.0 connectors that build on 1.1 unchanged. It
//! gets no fixes; connectors move to the base crate.

pub mod reader;
