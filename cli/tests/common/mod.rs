//! Helpers shared by the tests that drive the real `weir` binary.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod soak;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `weir` binary under test.
pub fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.stdin(Stdio::null());
    cmd
}

/// The Weir repository (the parent of `cli/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The target directory the binary was built into (`<target>/<profile>/weir`).
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_weir"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

/// Runs and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("weir runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Every file under `dir`, as paths relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// `(id, customer, amount, at ms)` of every row of an orders Parquet file (the quickstart's and
/// the Kafka examples' schema), read with the `parquet` crate, not with Weir.
pub fn read_orders_parquet(path: &Path) -> Vec<(i64, String, f64, i64)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let id = batch.column(0).as_primitive::<Int64Type>();
        let customer = batch.column(1).as_string::<i32>();
        let amount = batch.column(2).as_primitive::<Float64Type>();
        let at = batch.column(3).as_primitive::<TimestampMillisecondType>();
        for i in 0..batch.num_rows() {
            rows.push((
                id.value(i),
                customer.value(i).to_owned(),
                amount.value(i),
                at.value(i),
            ));
        }
    }
    rows
}

/// The `records in` and `records out` lines of a run summary (without their rates).
pub fn run_counts(err: &str) -> Vec<String> {
    err.lines()
        .filter(|l| l.starts_with("  records in") || l.starts_with("  records out"))
        .map(|l| l.split(" (").next().unwrap_or(l).to_owned())
        .collect()
}
