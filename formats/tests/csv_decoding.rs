//! The csv decoder: it reads what the `csv` crate reads, and it does not build a parser for
//! every message. It did (a `csv::Reader` per message: parser tables built again and an 8 KiB
//! buffer, ~17 µs a row against ~0.3 µs for `json`), which made the record-wise compaction of
//! CSV part files (which decodes every row) take ~49 s where JSON took ~1 s. The cost is
//! measured in bytes allocated, with a counting allocator, not in time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use weir_connector_api::format::find_format;
use weir_connector_api::row::{DataType, Field, Schema};
use weir_formats as _;

/// The system allocator, counting the bytes each thread allocates.
struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.with(|a| a.set(a.get() + layout.size()));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.with(|a| a.set(a.get() + new_size));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Bytes allocated per message decoding `n` one-row messages of format `id`.
fn bytes_per_message(id: &str, message: &[u8]) -> usize {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::String, false),
        Field::new("amount", DataType::Float64, false),
    ]);
    let format = find_format(id).unwrap();
    let config = format.options().validate(&BTreeMap::new()).unwrap();
    let decoder = format.decoder(&schema, &config).unwrap();
    let n = 200;
    let mut rows = Vec::with_capacity(n);
    let before = ALLOCATED.with(Cell::get);
    for _ in 0..n {
        decoder.decode(message, &mut rows).unwrap();
    }
    let after = ALLOCATED.with(Cell::get);
    assert_eq!(rows.len(), n, "one row per message");
    (after - before) / n
}

#[test]
fn decoding_a_csv_row_allocates_about_what_a_json_row_does() {
    let json = bytes_per_message(
        "json",
        br#"{"id":12345,"customer":"abcdefgh","amount":123.5}"#,
    );
    let csv = bytes_per_message("csv", b"12345,abcdefgh,123.5");
    eprintln!("bytes allocated per decoded message: json {json}, csv {csv}");
    assert!(
        csv <= 2 * json + 256,
        "decoding a csv row allocates {csv} bytes, a json row {json}: is a parser built per message?"
    );
}

/// The decoder reads what the `csv` crate reads (the reader it used before), record by record.
#[test]
fn csv_messages_decode_as_the_csv_crate_reads_them() {
    use weir_connector_api::row::Value;

    let schema = Schema::new(vec![
        Field::new("a", DataType::String, true),
        Field::new("b", DataType::String, true),
        Field::new("c", DataType::String, true),
    ]);
    let format = find_format("csv").unwrap();
    let config = format.options().validate(&BTreeMap::new()).unwrap();
    let decoder = format.decoder(&schema, &config).unwrap();
    let messages: [&[u8]; 12] = [
        b"1,x,2.5",
        b"1,x,2.5\n",
        b"1,x,2.5\r\n2,y,3\r\n",
        b"\n\n1,x,2.5\n\n2,y,3",
        b"1,\"x, \"\"quoted\"\"\",2.5",
        b"1,\"two\nlines\",2.5\n",
        b",,",
        b"\"\",\"\",\"\"",
        b"1,x",
        b"1,x,2.5,4",
        b"1,\xff,2.5",
        b"\xef\xbb\xbf1,x,2.5",
    ];
    for message in messages {
        let mut expected: Vec<Vec<String>> = Vec::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(message);
        let mut oracle_ok = true;
        for record in reader.records() {
            match record {
                Ok(r) if r.len() == 1 && r.get(0) == Some("") => {}
                Ok(r) if r.len() == 3 => expected.push(r.iter().map(str::to_owned).collect()),
                _ => {
                    oracle_ok = false;
                    break;
                }
            }
        }
        let mut rows = Vec::new();
        let decoded = decoder.decode(message, &mut rows);
        let text = String::from_utf8_lossy(message);
        assert_eq!(decoded.is_ok(), oracle_ok, "{text:?}: {decoded:?}");
        if oracle_ok {
            let got: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    r.values
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => panic!("{text:?}: {other:?}"),
                        })
                        .collect()
                })
                .collect();
            assert_eq!(got, expected, "{text:?}");
        }
    }
}
