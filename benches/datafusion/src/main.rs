//! Probe for issue 18's DataFusion decision: job b's filter and projection on the same
//! 5-column batches, evaluated (1) with Arrow compute kernels as Weir does, (2) with a
//! DataFusion physical expression planned from the SQL text. CPU time per row of each.
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::prelude::SessionContext;

const STATUS: [&str; 4] = ["new", "paid", "shipped", "cancelled"];

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), false),
    ]))
}

fn batch(schema: &SchemaRef, from: u64, len: usize) -> RecordBatch {
    let mut id = Int64Builder::with_capacity(len);
    let mut customer = StringBuilder::with_capacity(len, len * 8);
    let mut status = StringBuilder::with_capacity(len, len * 8);
    let mut amount = Float64Builder::with_capacity(len);
    let mut at = TimestampMillisecondBuilder::with_capacity(len);
    for n in from..from + len as u64 {
        let z = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        id.append_value(n as i64);
        customer.append_value("abcdefgh");
        status.append_value(STATUS[(z >> 60) as usize & 3]);
        amount.append_value((z >> 11) as f64 / (1u64 << 53) as f64 * 500.0);
        at.append_value(1_704_067_200_000 + n as i64);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(customer.finish()),
        Arc::new(status.finish()),
        Arc::new(amount.finish()),
        Arc::new(at.finish()),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns).unwrap()
}

fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn kernels(b: &RecordBatch) -> RecordBatch {
    let status = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
    let paid = arrow_ord::cmp::eq(status, &StringArray::new_scalar("paid")).unwrap();
    let shipped = arrow_ord::cmp::eq(status, &StringArray::new_scalar("shipped")).unwrap();
    let keep = arrow_arith::boolean::or(&paid, &shipped).unwrap();
    arrow_select::filter::filter_record_batch(&b.project(&[0, 1, 3, 4]).unwrap(), &keep).unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rows: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(20_000_000);
    let chunk = 1024;
    let schema = schema();
    let batches: Vec<RecordBatch> = (0..rows / chunk)
        .map(|i| batch(&schema, (i * chunk) as u64, chunk))
        .collect();
    // DataFusion: the SQL text planned into a physical expression once.
    let ctx = SessionContext::new();
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).unwrap();
    let logical = ctx
        .parse_sql_expr("status = 'paid' or status = 'shipped'", &df_schema)
        .unwrap();
    let physical = ctx.state().create_physical_expr(logical, &df_schema).unwrap();
    for round in 0..3 {
        let t = cpu();
        let mut kept = 0;
        for b in &batches {
            kept += kernels(b).num_rows();
        }
        let k = cpu() - t;
        let t = cpu();
        let mut kept_df = 0;
        for b in &batches {
            let mask = physical.evaluate(b).unwrap().into_array(b.num_rows()).unwrap();
            let mask = mask.as_any().downcast_ref::<BooleanArray>().unwrap();
            let out = arrow_select::filter::filter_record_batch(&b.project(&[0, 1, 3, 4]).unwrap(), mask).unwrap();
            kept_df += out.num_rows();
        }
        let d = cpu() - t;
        assert_eq!(kept, kept_df);
        let per = |s: f64| s * 1e9 / rows as f64;
        println!(
            "round {round}: rows {rows} kept {kept}: arrow kernels {:.1} ns/row, datafusion physical expr {:.1} ns/row",
            per(k),
            per(d)
        );
    }
}
