//! `weir`, the command line of the Weir connector kit. Its commands (`run`, `validate`, `new`,
//! `test`, `compat`, `connectors`, `publish`) are being built; today it reports the API line.

use clap::Parser;

/// The Weir connector kit.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "weir {} (connector API line {})",
        env!("CARGO_PKG_VERSION"),
        weir_connector_api::API_LINE
    );
}
