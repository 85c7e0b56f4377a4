//! Which `weir-connector-api` line this build compiles against (from the API's build script;
//! absent means line 1.0, which had none). The connector itself needs line 1.1 (the AsyncSink
//! base, lookup factories, connection checks); its columnar sink (chunks, from the API's
//! `arrow` feature that `weir-formats` turns on) is gated by `#[cfg(weir_api_1_1)]` as in the
//! other connectors, so the gate stays where the Arrow contract is used.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(weir_api_1_1)");
    println!("cargo::rerun-if-env-changed=DEP_WEIR_CONNECTOR_API_LINE");
    let line = std::env::var("DEP_WEIR_CONNECTOR_API_LINE").unwrap_or_else(|_| "1.0".to_owned());
    let mut parts = line.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(1), parts.next().unwrap_or(0));
    if (major, minor) >= (1, 1) {
        println!("cargo::rustc-cfg=weir_api_1_1");
    }
}
