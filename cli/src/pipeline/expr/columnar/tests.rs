//! The vectorized filter against the row filter: thousands of generated expressions over rows
//! of a small domain (nulls, NaN, ±0, infinities, integers next to floats, empty strings and
//! bytes), compared value by value in three-valued logic, and the kept rows compared.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use arrow_array::Array;
use weir_connector_api::row::{DataType, Field, Row, RowKind, Schema, Value};
use weir_formats::chunk::{arrow_schema, Chunk};

use super::super::Expr;

/// SplitMix64: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("j", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
        Field::new("g", DataType::Float64, true),
        Field::new("t", DataType::TimestampMillis, true),
        Field::new("s", DataType::String, true),
        Field::new("r", DataType::String, true),
        Field::new("y", DataType::Bytes, true),
        Field::new("z", DataType::Bytes, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("c", DataType::Boolean, true),
    ])
}

fn domain(data_type: &DataType) -> Vec<Value> {
    match data_type {
        DataType::Int64 => vec![
            Value::Null,
            Value::Int64(-1),
            Value::Int64(0),
            Value::Int64(1),
            Value::Int64(2),
            Value::Int64(i64::MAX),
        ],
        DataType::Float64 => vec![
            Value::Null,
            Value::Float64(-1.0),
            Value::Float64(-0.0),
            Value::Float64(0.0),
            Value::Float64(0.5),
            Value::Float64(1.0),
            Value::Float64(f64::NAN),
            Value::Float64(f64::INFINITY),
        ],
        DataType::TimestampMillis => vec![
            Value::Null,
            Value::TimestampMillis(-1),
            Value::TimestampMillis(0),
            Value::TimestampMillis(1),
        ],
        DataType::String => ["", "a", "b", "ab", "ä"]
            .iter()
            .map(|s| Value::String((*s).to_owned()))
            .chain([Value::Null])
            .collect(),
        DataType::Bytes => vec![
            Value::Null,
            Value::Bytes(vec![]),
            Value::Bytes(vec![0]),
            Value::Bytes(vec![1]),
            Value::Bytes(vec![0, 1]),
        ],
        _ => vec![Value::Null, Value::Boolean(true), Value::Boolean(false)],
    }
}

fn rows(rng: &mut Rng, schema: &Schema, count: usize) -> Vec<Row> {
    let kinds = [
        RowKind::Insert,
        RowKind::UpdateBefore,
        RowKind::UpdateAfter,
        RowKind::Delete,
    ];
    (0..count)
        .map(|_| {
            let values = schema
                .fields
                .iter()
                .map(|f| rng.pick(&domain(&f.data_type)).clone())
                .collect();
            Row::with_kind(*rng.pick(&kinds), values)
        })
        .collect()
}

const OPS: [&str; 6] = ["=", "!=", "<", "<=", ">", ">="];

/// A random condition (type-correct by construction), nested up to `depth`.
fn condition(rng: &mut Rng, depth: u32) -> String {
    let numbers = [
        "i", "j", "f", "g", "t", "-1", "0", "1", "2", "0.5", "-0.0", "1.0",
    ];
    let texts = ["s", "r", "'a'", "''", "'ab'", "'ä'"];
    let choice = if depth == 0 {
        rng.next() % 6
    } else {
        rng.next() % 10
    };
    match choice {
        0 | 1 => format!(
            "{} {} {}",
            rng.pick(&numbers),
            rng.pick(&OPS),
            rng.pick(&numbers)
        ),
        2 => format!(
            "{} {} {}",
            rng.pick(&texts),
            rng.pick(&OPS),
            rng.pick(&texts)
        ),
        3 => format!(
            "{} {} {}",
            rng.pick(&["y", "z"]),
            rng.pick(&OPS),
            rng.pick(&["y", "z"])
        ),
        4 => match rng.next() % 4 {
            0 => (*rng.pick(&["b", "c", "true", "false"])).to_owned(),
            _ => format!(
                "{} {} {}",
                rng.pick(&["b", "c", "true"]),
                rng.pick(&["=", "!="]),
                rng.pick(&["b", "c", "false"])
            ),
        },
        5 => format!(
            "{} is {}null",
            rng.pick(&["i", "f", "t", "s", "y", "b"]),
            rng.pick(&["", "not "])
        ),
        6 => format!("not ({})", condition(rng, depth - 1)),
        7 => format!(
            "({}) or ({})",
            condition(rng, depth - 1),
            condition(rng, depth - 1)
        ),
        _ => format!(
            "({}) and ({}) and ({})",
            condition(rng, depth - 1),
            condition(rng, depth - 1),
            condition(rng, depth - 1)
        ),
    }
}

#[test]
fn the_vectorized_filter_keeps_exactly_the_rows_the_row_filter_keeps() {
    let schema = schema();
    let arrow = arrow_schema(&schema);
    let mut rng = Rng(18);
    let rows = rows(&mut rng, &schema, 500);
    let chunk = Chunk::from_rows(&arrow, &rows).unwrap();
    let mut kept_somewhere = 0;
    for _ in 0..3000 {
        let text = condition(&mut rng, 3);
        let expr = Expr::parse(&text, &schema).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let mask = expr.evaluate(chunk.batch()).unwrap();
        for (i, row) in rows.iter().enumerate() {
            let vectorized = mask.is_valid(i).then(|| mask.value(i));
            assert_eq!(vectorized, expr.eval(row), "`{text}` on {row:?}");
        }
        let expected: Vec<&Row> = rows.iter().filter(|r| expr.matches(r)).collect();
        let kept = expr.filter_chunk(&chunk);
        let kept_rows = kept.map(|c| c.to_rows().unwrap()).unwrap_or_default();
        assert_eq!(
            format!("{kept_rows:?}"),
            format!("{expected:?}"),
            "`{text}`"
        );
        if !kept_rows.is_empty() && kept_rows.len() < rows.len() {
            kept_somewhere += 1;
        }
    }
    // The generated conditions are selective: most keep some rows and drop others.
    assert!(kept_somewhere > 1000, "{kept_somewhere}");
}

#[test]
fn floats_follow_the_row_path_not_arrows_total_order() {
    let schema = schema();
    let mut values = vec![Value::Null; schema.fields.len()];
    values[2] = Value::Float64(-0.0);
    values[3] = Value::Float64(f64::NAN);
    let rows = vec![Row::insert(values)];
    let chunk = Chunk::from_rows(&arrow_schema(&schema), &rows).unwrap();
    for (text, kept) in [
        ("f = 0", true),
        ("f = 0.0", true),
        ("f < 0.0", false),
        ("g = g", false),
        ("not (g = g)", false),
        ("g != 1", false),
        ("g = g or f = 0", true),
    ] {
        let expr = Expr::parse(text, &schema).unwrap();
        assert_eq!(expr.matches(&rows[0]), kept, "row path: {text}");
        assert_eq!(expr.filter_chunk(&chunk).is_some(), kept, "{text}");
    }
}
