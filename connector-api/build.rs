//! Tells crates that build on this one which API line they compile against: a dependent's
//! build script reads `DEP_WEIR_CONNECTOR_API_LINE` (e.g. `1.1`). Line 1.0 had no build script,
//! so an absent variable means 1.0. `weir-connector-base` uses it to offer its 1.1 items
//! (AsyncSink, lookup caching) only on 1.1 and newer, and to build on 1.0 without them.
fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let line: Vec<&str> = version.split('.').take(2).collect();
    println!("cargo::metadata=line={}", line.join("."));
    println!("cargo::rerun-if-changed=build.rs");
}
