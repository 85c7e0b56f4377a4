//! Weir connector API.
