//! `canal-json` messages: any bytes through the decoder (options and schema from the first
//! byte), and every decoded row through the encoder.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| weir_fuzz::decode_message("canal-json", data));
