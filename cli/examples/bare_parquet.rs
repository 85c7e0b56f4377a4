//! The hand-written baseline of the quickstart's Parquet job (issue 18, `benches/quickstart/`):
//! the same orders generated the same way as the datagen connector does (per value a SplitMix64
//! seeded with the seed, the row and the field), the same filter (`paid` or `shipped`) and
//! projection (`id`, `customer`, `amount`, `at`), written with a bare `ArrowWriter` — zstd at
//! its default level, row groups of 1 Mi rows, the files sink's defaults — one file per day of
//! `at`, as the quickstart's buckets are. No runtime, no checkpoints, no compaction: what a
//! program that only writes these columns costs.
//!
//! Two ways to generate, chosen by the third argument:
//! - `fused` (the default): per row, the status is drawn first and only the rows that pass are
//!   generated, straight into the four columns written — less work than any general engine
//!   can do, since it never makes the dropped rows' customers nor a status column;
//! - `columns`: what the baseline says, a program that "generates the same columns":
//!   all five columns of each batch of 8 192 orders (as the datagen source makes them), then
//!   the same filter with Arrow's kernels (`status = 'paid' or status = 'shipped'`) and the
//!   projection.
//!
//! `cargo run --release -p weir-cli --example bare_parquet -- <rows> <output directory> [fused|columns]`

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

const SEED: u64 = 42;
const BATCH: u64 = 8192;
const ROW_GROUP_ROWS: usize = 1024 * 1024;
const START_MILLIS: i64 = 1_704_067_200_000;
const STEP_MILLIS: i64 = 10;
const DAY_MILLIS: i64 = 86_400_000;
const STATUS: [&str; 4] = ["new", "paid", "shipped", "cancelled"];
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 8 characters of a customer from one draw: the first base-36 digits of the draw as a
/// fraction of 2^64, as the datagen connector makes random strings.
fn customer_text(rng: &mut Rng, text: &mut String) {
    text.clear();
    let mut fraction = rng.next();
    for _ in 0..8 {
        let wide = u128::from(fraction) * ALPHABET.len() as u128;
        text.push(char::from(ALPHABET[(wide >> 64) as usize]));
        fraction = wide as u64;
    }
}

/// The generator of row `n`, field `index`.
struct Rng(u64);

impl Rng {
    fn of(n: u64, index: u64) -> Self {
        Rng(mix(SEED ^ mix(n ^ (index << 48))))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC"))),
            false,
        ),
    ]))
}

/// Rows `from..to` that pass the filter, as one batch, with the day of their `at`; a batch
/// never spans two days (`to` stops at a day boundary).
fn batch(schema: &SchemaRef, from: u64, to: u64) -> Result<RecordBatch, String> {
    let mut id = Int64Builder::new();
    let mut customer = StringBuilder::new();
    let mut amount = Float64Builder::new();
    let mut at = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut text = String::with_capacity(8);
    for n in from..to {
        let status = STATUS[(Rng::of(n, 2).next() % STATUS.len() as u64) as usize];
        if status != "paid" && status != "shipped" {
            continue;
        }
        id.append_value(n as i64);
        let mut rng = Rng::of(n, 1);
        customer_text(&mut rng, &mut text);
        customer.append_value(&text);
        let unit = (Rng::of(n, 3).next() >> 11) as f64 / (1u64 << 53) as f64;
        amount.append_value(1.0 + unit * 499.0);
        at.append_value(START_MILLIS + n as i64 * STEP_MILLIS);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(customer.finish()),
        Arc::new(amount.finish()),
        Arc::new(at.finish()),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())
}

/// Rows `from..to`, all five columns as the datagen source generates them, then filtered and
/// projected with Arrow's kernels.
fn batch_of_columns(schema: &SchemaRef, from: u64, to: u64) -> Result<RecordBatch, String> {
    let len = (to - from) as usize;
    let mut id = Int64Builder::with_capacity(len);
    let mut customer = StringBuilder::with_capacity(len, len * 8);
    let mut status = StringBuilder::with_capacity(len, len * 8);
    let mut amount = Float64Builder::with_capacity(len);
    let mut at = TimestampMillisecondBuilder::with_capacity(len).with_timezone("UTC");
    let mut text = String::with_capacity(8);
    for n in from..to {
        id.append_value(n as i64);
    }
    for n in from..to {
        let mut rng = Rng::of(n, 1);
        customer_text(&mut rng, &mut text);
        customer.append_value(&text);
    }
    for n in from..to {
        status.append_value(STATUS[(Rng::of(n, 2).next() % STATUS.len() as u64) as usize]);
    }
    for n in from..to {
        let unit = (Rng::of(n, 3).next() >> 11) as f64 / (1u64 << 53) as f64;
        amount.append_value(1.0 + unit * 499.0);
    }
    for n in from..to {
        at.append_value(START_MILLIS + n as i64 * STEP_MILLIS);
    }
    let status = status.finish();
    let error = |e: arrow_schema::ArrowError| e.to_string();
    let paid = arrow_ord::cmp::eq(&status, &StringArray::new_scalar("paid")).map_err(error)?;
    let shipped =
        arrow_ord::cmp::eq(&status, &StringArray::new_scalar("shipped")).map_err(error)?;
    let keep = arrow_arith::boolean::or(&paid, &shipped).map_err(error)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(customer.finish()),
        Arc::new(amount.finish()),
        Arc::new(at.finish()),
    ];
    let all = RecordBatch::try_new(Arc::clone(schema), columns).map_err(error)?;
    arrow_select::filter::filter_record_batch(&all, &keep).map_err(error)
}

fn writer(dir: &Path, day: i64, schema: &SchemaRef) -> Result<ArrowWriter<File>, String> {
    let path: PathBuf = dir.join(format!("day-{day}.parquet"));
    let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    ArrowWriter::try_new(file, Arc::clone(schema), Some(props)).map_err(|e| e.to_string())
}

fn run(rows: u64, dir: &Path, columns: bool) -> Result<u64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let schema = schema();
    let day_of = |n: u64| (START_MILLIS + n as i64 * STEP_MILLIS).div_euclid(DAY_MILLIS);
    let mut written = 0;
    let mut n = 0;
    while n < rows {
        let day = day_of(n);
        let mut out = writer(dir, day, &schema)?;
        while n < rows && day_of(n) == day {
            let mut to = (n + BATCH).min(rows);
            // Stop at the day's end: the next day goes to the next file.
            let day_end = ((day + 1) * DAY_MILLIS - START_MILLIS).div_euclid(STEP_MILLIS) as u64;
            to = to.min(day_end.max(n + 1));
            let b = if columns {
                batch_of_columns(&schema, n, to)?
            } else {
                batch(&schema, n, to)?
            };
            written += b.num_rows() as u64;
            out.write(&b).map_err(|e| e.to_string())?;
            n = to;
        }
        out.close().map_err(|e| e.to_string())?;
    }
    Ok(written)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows = args.next().and_then(|r| r.replace('_', "").parse().ok());
    let dir = args.next().map(PathBuf::from);
    let columns = match args.next().as_deref() {
        None | Some("fused") => Some(false),
        Some("columns") => Some(true),
        Some(_) => None,
    };
    let (Some(rows), Some(dir), Some(columns)) = (rows, dir, columns) else {
        eprintln!("usage: bare_parquet <rows> <output directory> [fused|columns]");
        std::process::exit(2);
    };
    match run(rows, &dir, columns) {
        Ok(written) => println!("{written} rows written"),
        Err(e) => {
            eprintln!("bare_parquet: {e}");
            std::process::exit(1);
        }
    }
}
