//! The built-in `print` connector: a sink that writes every row to standard output (or
//! standard error), like Flink's `print` connector. For trying pipelines out and for tests; it
//! is at-least-once (rows are printed as they arrive, so a restarted job may print some twice).
//!
//! Rows print as `+I[7, Ada, 2.5]` (`+I` insert, `-U` update-before, `+U` update-after, `-D`
//! delete), prefixed with `<print-identifier>> ` when set and with the subtask index (`2> `)
//! when the sink runs in more than one subtask.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::LazyLock;

use weir_connector_api::config::{
    ConfigError, ConfigErrors, ConfigOption, OptionSet, ValidatedConfig,
};
use weir_connector_api::erased::BoxedSink;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_api::factory::{ConnectorFactory, ConnectorInfo, FactoryContext, SinkFactory};
use weir_connector_api::metrics::SinkWriterMetrics;
use weir_connector_api::row::{Row, RowKind, Value};
use weir_connector_api::sink::{FlushMode, InitContext, Sink, SinkWriter, WriteContext};

/// `print-identifier`: a prefix for every line.
static IDENTIFIER: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
    ConfigOption::new("print-identifier")
        .optional()
        .description("A prefix for every printed line, to tell several print sinks apart.")
});

/// `standard-error`: print to standard error instead of standard output.
static STANDARD_ERROR: LazyLock<ConfigOption<bool>> = LazyLock::new(|| {
    ConfigOption::new("standard-error")
        .default_value(false)
        .description("Print to standard error instead of standard output.")
});

/// The version of the built-in connectors: the CLI's version with the API line.
pub const BUILTIN_VERSION: &str = "0.1.0-1.1";

/// The `print` connector factory.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrintFactory;

static PRINT: PrintFactory = PrintFactory;
weir_connector_api::register_connector!(PRINT);

impl ConnectorFactory for PrintFactory {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            identifier: "print",
            crate_name: "weir-cli",
            version: BUILTIN_VERSION,
            description: "prints every row to standard output (built into weir)",
        }
    }
    fn as_sink(&self) -> Option<&dyn SinkFactory> {
        Some(self)
    }
}

impl SinkFactory for PrintFactory {
    fn sink_options(&self) -> OptionSet {
        OptionSet::new("print sink")
            .option(&IDENTIFIER)
            .option(&STANDARD_ERROR)
    }

    fn create_sink(
        &self,
        config: &ValidatedConfig,
        ctx: &FactoryContext<'_>,
    ) -> Result<BoxedSink<Row>> {
        if ctx.format.is_some() {
            return Err(ConnectorError::Config(ConfigErrors::new(
                "print sink",
                vec![ConfigError::conflict(
                    ["format"],
                    "the print sink prints rows as text: remove `format`",
                )],
            )));
        }
        Ok(BoxedSink::new(PrintSink {
            identifier: config.get_optional(&IDENTIFIER),
            stderr: config.get(&STANDARD_ERROR),
        }))
    }
}

/// Prints rows.
#[derive(Debug, Clone)]
pub struct PrintSink {
    identifier: Option<String>,
    stderr: bool,
}

impl Sink<Row> for PrintSink {
    type Writer = PrintWriter;

    fn create_writer(&self, ctx: &dyn InitContext) -> Result<PrintWriter> {
        let prefix = match (&self.identifier, ctx.parallelism() > 1) {
            (Some(id), true) => format!("{id}:{}> ", ctx.subtask_index() + 1),
            (Some(id), false) => format!("{id}> "),
            (None, true) => format!("{}> ", ctx.subtask_index() + 1),
            (None, false) => String::new(),
        };
        Ok(PrintWriter {
            prefix,
            stderr: self.stderr,
            buffer: String::new(),
            pending: 0,
            metrics: SinkWriterMetrics::new(&*ctx.metric_group()),
        })
    }
}

/// The writer of [`PrintSink`].
pub struct PrintWriter {
    prefix: String,
    stderr: bool,
    buffer: String,
    pending: u64,
    metrics: SinkWriterMetrics,
}

/// Renders a row as `+I[1, a]`.
pub fn render(row: &Row) -> String {
    let kind = match row.kind {
        RowKind::Insert => "+I",
        RowKind::UpdateBefore => "-U",
        RowKind::UpdateAfter => "+U",
        RowKind::Delete => "-D",
    };
    let mut out = format!("{kind}[");
    for (i, value) in row.values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = render_value(&mut out, value);
    }
    out.push(']');
    out
}

/// One value as Flink's print sink shows it: lists `[1, 2]`, structs `(a, 1)`, maps
/// `{k=v}`, dates `2024-01-31`, decimals with their scale's digits; timestamps as their
/// count of units (milliseconds for `timestamp`), as before.
fn render_value(out: &mut String, value: &Value) -> std::fmt::Result {
    let list = |out: &mut String, items: &mut dyn Iterator<Item = &Value>| {
        for (i, v) in items.enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            render_value(out, v)?;
        }
        Ok(())
    };
    match value {
        Value::Null => write!(out, "null"),
        Value::Boolean(b) => write!(out, "{b}"),
        Value::Int64(n) | Value::TimestampMillis(n) | Value::Timestamp(n, _) => write!(out, "{n}"),
        Value::UInt64(n) => write!(out, "{n}"),
        Value::Float64(x) => write!(out, "{x}"),
        Value::Float32(x) => write!(out, "{x}"),
        Value::Decimal128 { value, scale } => {
            out.push_str(&weir_connector_api::row::decimal_text(*value, *scale));
            Ok(())
        }
        Value::Date32(d) => {
            out.push_str(&weir_formats::typed::date_text(*d));
            Ok(())
        }
        Value::String(s) => write!(out, "{s}"),
        Value::Bytes(b) => {
            out.push_str("0x");
            b.iter().try_for_each(|byte| write!(out, "{byte:02x}"))
        }
        Value::List(items) => {
            out.push('[');
            list(out, &mut items.iter())?;
            out.push(']');
            Ok(())
        }
        Value::Struct(fields) => {
            out.push('(');
            list(out, &mut fields.iter())?;
            out.push(')');
            Ok(())
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_value(out, k)?;
                out.push('=');
                render_value(out, v)?;
            }
            out.push('}');
            Ok(())
        }
        other => write!(out, "{other:?}"),
    }
}

impl PrintWriter {
    fn emit(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = if self.stderr {
            std::io::stderr().lock().write_all(self.buffer.as_bytes())
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(self.buffer.as_bytes())
                .and_then(|()| out.flush())
        };
        self.buffer.clear();
        self.metrics
            .add_records_send(std::mem::take(&mut self.pending));
        result.map_err(|e| ConnectorError::fatal("printing rows", e))
    }
}

#[async_trait::async_trait]
impl SinkWriter<Row> for PrintWriter {
    fn write(&mut self, row: Row, _ctx: &WriteContext) -> Result<()> {
        self.buffer.push_str(&self.prefix);
        self.buffer.push_str(&render(&row));
        self.buffer.push('\n');
        self.pending += 1;
        if self.buffer.len() > 64 * 1024 {
            self.emit()?;
        }
        Ok(())
    }

    async fn flush(&mut self, _mode: FlushMode) -> Result<()> {
        self.emit()
    }

    async fn close(&mut self) -> Result<()> {
        self.emit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_render_like_flink() {
        let row = Row::with_kind(
            RowKind::UpdateAfter,
            vec![
                Value::Int64(1),
                Value::String("a".into()),
                Value::Null,
                Value::Bytes(vec![1, 255]),
                Value::Float64(2.5),
            ],
        );
        assert_eq!(render(&row), "+U[1, a, null, 0x01ff, 2.5]");
    }

    #[test]
    fn values_of_every_type_render_like_flink() {
        let row = Row::insert(vec![
            Value::UInt64(u64::MAX),
            Value::Float32(0.1),
            Value::Decimal128 {
                value: -5,
                scale: 2,
            },
            Value::Date32(19_723),
            Value::List(vec![Value::Int64(1), Value::Null]),
            Value::Struct(vec![Value::String("a".into()), Value::Boolean(true)]),
            Value::Map(vec![(Value::String("k".into()), Value::Float64(1.5))]),
        ]);
        assert_eq!(
            render(&row),
            format!(
                "+I[{}, 0.1, -0.05, 2024-01-01, [1, null], (a, true), {{k=1.5}}]",
                u64::MAX
            )
        );
    }

    #[test]
    fn the_builtin_version_is_the_cli_version_on_the_api_line() {
        assert_eq!(
            BUILTIN_VERSION,
            format!(
                "{}-{}",
                env!("CARGO_PKG_VERSION"),
                weir_connector_api::API_LINE
            )
        );
    }
}
