//! The options of the blackhole sink: there are none. Declaring the empty set still matters:
//! a pipeline file that passes any key to the sink is rejected instead of silently ignored.

use weir_connector_api::config::OptionSet;

/// The name of the option set, used in error messages.
pub const SET_NAME: &str = "blackhole sink";

/// The blackhole sink's options: none; every key is reported as unknown.
pub fn options() -> OptionSet {
    OptionSet::new(SET_NAME)
}
