//! Pipeline files: any UTF-8 text through `weir validate`'s parser and checks (TOML, every
//! section, connector options and factories, filters), then the rendered diagnostics.
//! Run it without network access (see RELIABILITY.md): factories must not contact anything,
//! and a generated `s3://` or Kafka option must not make them try.

#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;

static LINK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    LINK.call_once(weir_cli::catalog::link);
    // `weir validate` reads the file as UTF-8 text and refuses anything else before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pipeline, diagnostics) = weir_cli::pipeline::validate(text, "fuzz");
    assert!(
        pipeline.is_some() != diagnostics.has_errors(),
        "a pipeline comes exactly when there is no error"
    );
    std::hint::black_box(diagnostics.render("fuzz.toml"));
});
