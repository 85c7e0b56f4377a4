//! Which `weir-connector-api` line this build compiles against (from the API's build script;
//! absent means line 1.0, which had none). The AsyncSink and lookup modules need line 1.1, so
//! they exist only there: on 1.0 the crate offers its source-side implementations alone, and a
//! connector that uses a 1.1 item fails to build on 1.0 naming the missing module.
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
