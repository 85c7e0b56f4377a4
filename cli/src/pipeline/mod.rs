//! Pipeline files: the TOML format, its validation (every mistake at once, with line and
//! column), and the validated [`Pipeline`] that [`build`] turns into a runtime job.
//!
//! ```toml
//! [pipeline]
//! name = "orders"                 # default: the file name
//! parallelism = 2                 # default 1
//! watermark-interval = "200ms"
//!
//! [checkpointing]                 # optional: no periodic checkpoints without it
//! interval = "1s"
//! mode = "exactly-once"           # or "at-least-once"
//! storage = "./out/checkpoints"   # a directory, or "memory"
//!
//! [restart]                       # optional: default strategy "none"
//! strategy = "fixed-delay"        # none | fixed-delay | exponential-delay | failure-rate
//! attempts = 3
//! delay = "1s"
//!
//! [[sources]]
//! name = "orders"
//! connector = "datagen"
//! schema = [
//!   { name = "id", type = "int64", nullable = false },
//!   { name = "amount", type = "float64" },
//!   { name = "at", type = "timestamp" },
//! ]
//! options = { number-of-rows = 1000 }
//! watermark = { timestamp-field = "at", out-of-orderness = "5s", idleness = "30s" }
//!
//! [[transforms]]
//! name = "big"
//! input = "orders"
//! filter = "amount >= 500"
//! select = ["id", "amount"]
//!
//! [[sinks]]
//! name = "out"
//! input = "big"
//! connector = "print"
//! ```
//!
//! The full reference is `docs/pipelines.md`.

mod build;
pub mod columnar;
pub mod diag;
pub mod expr;
pub mod lookup;
mod parse;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::erased::{BoxedSink, BoxedSource};
use weir_connector_api::factory::{FactoryContext, JobContext};
use weir_connector_api::row::{Row, Schema};
use weir_runtime::restart::RestartStrategy;
use weir_runtime::CheckpointConfig;

pub use build::{build, JobLayout, RestoreSettings};
pub use diag::{Diagnostic, Diagnostics, Severity};
pub use expr::Expr;

/// A validated pipeline: every connector created, every reference resolved.
pub struct Pipeline {
    /// The job's name.
    pub name: String,
    /// The default parallelism.
    pub parallelism: usize,
    /// How often watermarks are generated.
    pub watermark_interval: Option<Duration>,
    /// Whether aligned sources that cannot pause splits fall back to task-level alignment.
    pub allow_unaligned_source_splits: bool,
    /// Periodic checkpoints, if configured.
    pub checkpointing: Option<Checkpointing>,
    /// What happens after a failure.
    pub restart: RestartStrategy,
    /// The sources, in file order.
    pub sources: Vec<SourceNode>,
    /// The transforms, each after its inputs.
    pub transforms: Vec<TransformNode>,
    /// The sinks, in file order.
    pub sinks: Vec<SinkNode>,
}

/// The `[checkpointing]` section.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    /// Interval, mode and limits.
    pub config: CheckpointConfig,
    /// Where checkpoints go.
    pub storage: Storage,
}

/// Where checkpoints are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In memory: lost with the process.
    Memory,
    /// In a local directory.
    Local(PathBuf),
    /// In an S3 bucket (`s3://bucket/prefix`), with the client configured from the
    /// environment (`AWS_ENDPOINT_URL`, `AWS_REGION`; credentials from the AWS chain).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix.
        prefix: String,
    },
}

/// A source of the pipeline.
pub struct SourceNode {
    /// Its name (also its operator uid).
    pub name: String,
    /// The connector's identifier.
    pub connector: String,
    /// The created source.
    pub source: BoxedSource<Row>,
    /// The rows' schema.
    pub schema: Schema,
    /// Its parallelism, if set.
    pub parallelism: Option<usize>,
    /// Event time, if configured.
    pub watermark: Option<WatermarkSpec>,
    /// Its validated options and format (what `weir check` hands to the connection check).
    pub settings: ConnectorSettings,
}

/// A source's or sink's validated options and format, as its factory saw them.
#[derive(Clone)]
pub struct ConnectorSettings {
    /// The connector's options.
    pub options: ValidatedConfig,
    /// The format's identifier and options, if the node sets one.
    pub format: Option<(String, ValidatedConfig)>,
    /// The rows' schema.
    pub schema: Schema,
    /// The job's checkpoint settings, as the factory saw them.
    pub job: JobContext,
}

impl ConnectorSettings {
    /// The factory context of these settings.
    pub fn context<'a>(&'a self, name: &'a str) -> FactoryContext<'a> {
        FactoryContext {
            name,
            schema: &self.schema,
            format: self
                .format
                .as_ref()
                .map(|(id, config)| (id.as_str(), config)),
        }
    }
}

/// A source's event time settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkSpec {
    /// The position of the timestamp field.
    pub timestamp_field: usize,
    /// How late records may be.
    pub out_of_orderness: Duration,
    /// When an input without records stops holding back watermarks.
    pub idleness: Option<Duration>,
    /// Alignment group, maximum drift and update interval.
    pub alignment: Option<(String, Duration, Duration)>,
}

/// A transform over one or more inputs (a union): a filter, then a lookup join, then a
/// projection, each optional.
pub struct TransformNode {
    /// Its name (also the uid of its lookup join's state).
    pub name: String,
    /// Its inputs.
    pub inputs: Vec<String>,
    /// Rows are kept when it is true.
    pub filter: Option<Expr>,
    /// A lookup join of the filtered rows with a table (`lookup`).
    pub lookup: Option<lookup::LookupNode>,
    /// The positions of the kept fields (of the joined rows, with a lookup), in output order.
    pub select: Option<Vec<usize>>,
    /// The output schema.
    pub schema: Schema,
}

/// A sink of the pipeline.
pub struct SinkNode {
    /// Its name (also its operator uid).
    pub name: String,
    /// The connector's identifier.
    pub connector: String,
    /// The created sink.
    pub sink: BoxedSink<Row>,
    /// Its inputs.
    pub inputs: Vec<String>,
    /// Its parallelism, if set.
    pub parallelism: Option<usize>,
    /// Its committer's parallelism, if set.
    pub committer_parallelism: Option<NonZeroUsize>,
    /// Whether it commits on checkpoints (two-phase commit or an exactly-once guarantee).
    pub exactly_once: bool,
    /// Its validated options and format (what `weir check` hands to the connection check).
    pub settings: ConnectorSettings,
}

/// Validates a pipeline file's text: the pipeline, or every problem found.
///
/// Connectors are created (their factories must not contact external systems), so options
/// that depend on the schema are checked too. Warnings may accompany a valid pipeline.
pub fn validate(text: &str, default_name: &str) -> (Option<Pipeline>, Diagnostics) {
    parse::Parser::run(text, default_name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::LazyLock;

    use weir_connector_api::config::{ConfigOption, OptionSet, ValidatedConfig};
    use weir_connector_api::erased::BoxedSink;
    use weir_connector_api::factory::{
        ConnectorFactory, ConnectorInfo, FactoryContext, SinkFactory,
    };
    use weir_connector_api::row::Row;
    use weir_connector_blackhole::BlackholeSink;

    use super::validate;

    static GUARANTEE: LazyLock<ConfigOption<String>> = LazyLock::new(|| {
        ConfigOption::new("sink.delivery-guarantee").default_value("at-least-once".to_owned())
    });

    /// A sink whose guarantee is an option, like Kafka's.
    struct Guaranteed;
    static GUARANTEED: Guaranteed = Guaranteed;
    weir_connector_api::register_connector!(GUARANTEED);

    impl ConnectorFactory for Guaranteed {
        fn info(&self) -> ConnectorInfo {
            ConnectorInfo {
                identifier: "test-guaranteed",
                crate_name: "weir-cli",
                version: "0.1.0-1.0",
                description: "a test sink with a delivery guarantee",
            }
        }
        fn as_sink(&self) -> Option<&dyn SinkFactory> {
            Some(self)
        }
    }

    impl SinkFactory for Guaranteed {
        fn sink_options(&self) -> OptionSet {
            OptionSet::new("test sink").option(&GUARANTEE)
        }
        fn create_sink(
            &self,
            _config: &ValidatedConfig,
            _ctx: &FactoryContext<'_>,
        ) -> weir_connector_api::error::Result<BoxedSink<Row>> {
            Ok(BoxedSink::new(BlackholeSink::<Row>::new()))
        }
    }

    fn file(checkpointing: &str, rows: &str, guarantee: &str) -> String {
        format!(
            "{checkpointing}\n[[sources]]\nname = \"in\"\nconnector = \"datagen\"\n\
             schema = [{{ name = \"id\", type = \"int64\" }}]\noptions = {{ {rows} }}\n\n\
             [[sinks]]\nname = \"out\"\ninput = \"in\"\nconnector = \"test-guaranteed\"\n\
             options = {{ sink.delivery-guarantee = \"{guarantee}\" }}\n"
        )
    }

    #[test]
    fn an_exactly_once_sink_needs_checkpoints_on_unbounded_input() {
        let (pipeline, d) = validate(&file("", "", "exactly-once"), "p");
        assert!(pipeline.is_none());
        assert_eq!(
            d.render("p.toml"),
            "p.toml:11:13: error: sink `out` commits its output on checkpoints (exactly-once), \
             but checkpointing is off and the input is unbounded: nothing would ever be \
             committed; add a [checkpointing] section with an `interval`"
        );
        // Bounded input commits at its end; at-least-once needs nothing.
        assert!(
            validate(&file("", "number-of-rows = 5", "exactly-once"), "p")
                .0
                .is_some()
        );
        assert!(validate(&file("", "", "at-least-once"), "p").0.is_some());
        let (pipeline, d) = validate(
            &file(
                "[checkpointing]\ninterval = \"1s\"\nmode = \"at-least-once\"\n",
                "",
                "exactly-once",
            ),
            "p",
        );
        assert!(pipeline.is_some(), "a warning only");
        assert!(d
            .render("p.toml")
            .contains("warning: sink `out` is exactly-once but checkpoints are at-least-once"));
    }
}
