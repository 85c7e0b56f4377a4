//! Typed options of the file source and sink, for pipeline files and `from_config`
//! constructors. The README's tables are generated from the pipeline factory's sets,
//! [`crate::factory::row_sink_options`] and [`crate::factory::row_source_options`] (these sets
//! plus an optional `format` and `bucket.time-field`; a test keeps them in sync).
//!
//! ```
//! use std::collections::BTreeMap;
//! use weir_connector_files::config::{FileSinkOptions, FileFormatKind};
//!
//! let input: BTreeMap<String, String> = [
//!     ("path", "/data/out"),
//!     ("format", "parquet"),
//!     ("compaction.enabled", "true"),
//!     ("compaction.file-size", "64mb"),
//! ]
//!     .into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
//! let options = FileSinkOptions::from_map(&input)?;
//! assert_eq!(options.format, FileFormatKind::Parquet);
//! assert!(options.compaction.is_some());
//! # Ok::<(), weir_connector_api::config::ConfigErrors>(())
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use weir_connector_api::config::{
    min, ConfigError, ConfigErrors, ConfigOption, MemorySize, OptionSet, ValidatedConfig,
};
use weir_connector_api::error::{ConnectorError, Result};

use crate::format::row::SerdeTextFormat;
use crate::format::SerdeRecords;
use crate::sink::RollingPolicy;
use crate::sink::{BasePathBucketAssigner, DateTimeBucketAssigner, TimeSource};
use crate::sink::{FileCompactStrategy, FileCompactor};
use crate::{
    Codec, CsvRecordFormat, FileSink, FileSinkBuilder, FileSource, FileSourceBuilder, FileSystem,
    JsonLinesFormat, OrcFormat, ParquetFormat,
};

/// A file format, as pipeline files name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormatKind {
    /// JSON lines.
    Json,
    /// CSV.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Apache ORC.
    Orc,
    /// Text lines: one string per line (records whose serde form is a string; pipeline rows
    /// of one string or bytes field).
    Text,
}

weir_connector_api::config_enum!(FileFormatKind {
    "json" => Json,
    "csv" => Csv,
    "parquet" => Parquet,
    "orc" => Orc,
    "text" => Text,
});

/// How records are assigned to buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketAssignerKind {
    /// One directory per formatted time (`bucket.date-time-format`).
    DateTime,
    /// Everything in the base path.
    BasePath,
}

weir_connector_api::config_enum!(BucketAssignerKind {
    "date-time" => DateTime,
    "base-path" => BasePath,
});

/// How compaction rewrites files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompactorKind {
    /// Concatenate bytes (row formats without headers).
    Concat,
    /// Read and re-write records (every format).
    RecordWise,
}

weir_connector_api::config_enum!(CompactorKind {
    "record-wise" => RecordWise,
    "concat" => Concat,
});

macro_rules! opt {
    ($name:ident, $ty:ty, $init:expr) => {
        #[doc = concat!("The `", stringify!($name), "` option.")]
        pub static $name: LazyLock<ConfigOption<$ty>> = LazyLock::new(|| $init);
    };
}

opt!(
    PATH,
    String,
    ConfigOption::new("path")
        .description("The base path: a directory (local) or key prefix (object stores).")
);
opt!(
    PATHS,
    Vec<String>,
    ConfigOption::new("path").description(
        "The paths to read, comma-separated: directories (read recursively) or files."
    )
);
opt!(
    FORMAT,
    FileFormatKind,
    ConfigOption::new("format").description("The file format.")
);
opt!(
    CODEC,
    Codec,
    ConfigOption::new("codec")
        .default_value(Codec::Snappy)
        .description("Compression of Parquet and ORC files.")
);
opt!(
    PARQUET_ROW_GROUP_ROWS,
    usize,
    ConfigOption::new("parquet.row-group-rows")
        .default_value(crate::format::DEFAULT_ROW_GROUP_ROWS)
        .description("Maximum rows per Parquet row group.")
        .validator(min(1))
);
opt!(
    ORC_STRIPE_SIZE,
    MemorySize,
    ConfigOption::new("orc.stripe-size")
        .default_value(MemorySize::from_mebibytes(64))
        .description("Target ORC stripe size.")
);
opt!(
    CSV_DELIMITER,
    String,
    ConfigOption::new("csv.delimiter")
        .default_value(",".to_owned())
        .description(
            "The CSV field delimiter: one printable ASCII character or a tab, not `\"` (the quote)."
        )
        .validator(|d: &String| csv_delimiter_problem(d).map_or(Ok(()), Err))
);
opt!(
    CSV_HEADER,
    bool,
    ConfigOption::new("csv.header")
        .default_value(true)
        .description("Whether each CSV file starts with a header line.")
);
opt!(PART_PREFIX, String, ConfigOption::new("part.prefix")
    .default_value("part".to_owned())
    .description("Prefix of part file names (`<prefix>-<uuid>-<counter><suffix>`); sinks sharing a directory need different prefixes.")
    .validator(|p: &String| {
        if p.is_empty() || p.starts_with('.') || !is_plain_name_text(p) {
            Err("must be non-empty, not start with `.`, and have no `/`, `\\` or control characters (part files stay in their bucket directory)".to_owned())
        } else {
            Ok(())
        }
    }));
opt!(
    PART_SUFFIX,
    String,
    ConfigOption::new("part.suffix")
        .default_value(String::new())
        .description("Suffix of part file names, e.g. `.parquet` (no `/` or `\\`).")
        .validator(|s: &String| {
            if is_plain_name_text(s) {
                Ok(())
            } else {
                Err("must have no `/`, `\\` or control characters (part files stay in their bucket directory)".to_owned())
            }
        })
);

/// Whether `text` can be part of a file name without naming another directory: no `/` or `\`
/// (a separator on Windows) and no control characters (NUL ends a path for the OS).
fn is_plain_name_text(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// Why `d` cannot be a CSV delimiter, if it cannot: it must be one character that a reader
/// splits cells on, so not a line break (every cell would be a record), not the quote and not
/// another control character.
fn csv_delimiter_problem(d: &str) -> Option<String> {
    match d.as_bytes() {
        [b'\t'] => None,
        [b'\n' | b'\r'] => Some(
            "must not be a line break: records are separated by line breaks, so no reader could \
             tell cells from records"
                .to_owned(),
        ),
        [b'"'] => Some("must not be `\"`: it quotes cells".to_owned()),
        [b] if b.is_ascii_graphic() || *b == b' ' => None,
        _ => Some("must be one printable ASCII character or a tab".to_owned()),
    }
}

opt!(
    ROLL_SIZE,
    MemorySize,
    ConfigOption::new("sink.rolling-policy.file-size")
        .default_value(MemorySize::from_mebibytes(128))
        .description("Row formats: roll a part file when it reaches this size.")
);
opt!(
    ROLL_INTERVAL,
    Duration,
    ConfigOption::new("sink.rolling-policy.rollover-interval")
        .default_value(Duration::from_secs(60))
        .description("Row formats: roll a part file open this long.")
);
opt!(
    ROLL_INACTIVITY,
    Duration,
    ConfigOption::new("sink.rolling-policy.inactivity-interval")
        .default_value(Duration::from_secs(60))
        .description("Row formats: roll a part file that received nothing for this long.")
);
opt!(
    ROLL_ON_CHECKPOINT,
    bool,
    ConfigOption::new("sink.rolling-policy.on-checkpoint")
        .default_value(false)
        .description("Row formats: also roll at every checkpoint (bulk formats always do).")
);
opt!(
    BUCKET_ASSIGNER,
    BucketAssignerKind,
    ConfigOption::new("bucket.assigner")
        .default_value(BucketAssignerKind::DateTime)
        .description("How records are assigned to bucket directories.")
);
opt!(
    BUCKET_FORMAT,
    String,
    ConfigOption::new("bucket.date-time-format")
        .default_value("%Y-%m-%d--%H".to_owned())
        .description("The `chrono` format of date-time bucket directories (UTC), inside `path`: `/` makes sub-directories; `.`, `..` and empty parts are refused.")
        .validator(|f: &String| DateTimeBucketAssigner::validate(f))
);
opt!(
    BUCKET_TIME,
    TimeSource,
    ConfigOption::new("bucket.time-source")
        .default_value(TimeSource::ProcessingTime)
        .description("The clock of date-time buckets.")
);
opt!(COMPACTION_ENABLED, bool, ConfigOption::new("compaction.enabled")
    .default_value(false)
    .description("Compact small files (needs `compaction.file-size` and/or `compaction.every-checkpoints`)."));
opt!(COMPACTION_DISABLED_HANDLER, bool, ConfigOption::new("compaction.keep-stages")
    .default_value(false)
    .description("With compaction off: keep the compaction stages as pass-through, so a savepoint taken with compaction on restores without losing files."));
opt!(
    COMPACTION_SIZE,
    MemorySize,
    ConfigOption::new("compaction.file-size")
        .optional()
        .description("Compact a bucket once its pending files reach this size.")
);
opt!(
    COMPACTION_EVERY,
    u64,
    ConfigOption::new("compaction.every-checkpoints")
        .optional()
        .description("Compact every bucket every this many checkpoints.")
        .validator(min(1))
);
opt!(
    COMPACTION_THREADS,
    usize,
    ConfigOption::new("compaction.threads")
        .default_value(1)
        .description("Requests each compactor compacts at once.")
        .validator(min(1))
);
opt!(
    COMPACTION_PARALLELISM,
    usize,
    ConfigOption::new("compaction.parallelism")
        .default_value(1)
        .description("Compactor subtasks.")
        .validator(min(1))
);
opt!(
    COMPACTION_COMPACTOR,
    CompactorKind,
    ConfigOption::new("compaction.compactor")
        .default_value(CompactorKind::RecordWise)
        .description("How files are compacted.")
);
opt!(
    MONITOR_INTERVAL,
    Duration,
    ConfigOption::new("source.monitor-interval")
        .optional()
        .description("Discover new files every interval (continuous source); absent: bounded.")
);
opt!(
    RETENTION,
    Duration,
    ConfigOption::new("source.retention")
        .optional()
        .description(
            "Continuous source: forget files older than the newest minus this (bounded memory)."
        )
);
opt!(
    INCLUDE,
    Vec<String>,
    ConfigOption::new("source.include")
        .default_value(Vec::new())
        .description("Globs of relative paths to read (default: all).")
);
opt!(
    EXCLUDE,
    Vec<String>,
    ConfigOption::new("source.exclude")
        .default_value(Vec::new())
        .description("Globs of relative paths to skip.")
);
opt!(
    SPLIT_ROW_GROUPS,
    bool,
    ConfigOption::new("source.split-row-groups")
        .default_value(false)
        .description("Parquet: one split per row group.")
);
opt!(
    ORDERED,
    bool,
    ConfigOption::new("source.ordered-per-directory")
        .default_value(false)
        .description("Read the files of one directory one after another, in order.")
);
opt!(
    BATCH_SIZE,
    usize,
    ConfigOption::new("source.batch-size")
        .default_value(crate::format::DEFAULT_BATCH_SIZE)
        .description("Rows per Arrow batch read (Parquet, ORC).")
        .validator(min(1))
);

fn format_options(set: OptionSet) -> OptionSet {
    set.option(&FORMAT)
        .option(&CODEC)
        .option(&PARQUET_ROW_GROUP_ROWS)
        .option(&ORC_STRIPE_SIZE)
        .option(&CSV_DELIMITER)
        .option(&CSV_HEADER)
}

/// Adds the file sink's options (everything but `path`) to `set`: the S3 connector builds its
/// set from them.
pub fn add_sink_options(set: OptionSet) -> OptionSet {
    format_options(set)
        .option(&PART_PREFIX)
        .option(&PART_SUFFIX)
        .option(&ROLL_SIZE)
        .option(&ROLL_INTERVAL)
        .option(&ROLL_INACTIVITY)
        .option(&ROLL_ON_CHECKPOINT)
        .option(&BUCKET_ASSIGNER)
        .option(&BUCKET_FORMAT)
        .option(&BUCKET_TIME)
        .option(&COMPACTION_ENABLED)
        .option(&COMPACTION_DISABLED_HANDLER)
        .option(&COMPACTION_SIZE)
        .option(&COMPACTION_EVERY)
        .option(&COMPACTION_THREADS)
        .option(&COMPACTION_PARALLELISM)
        .option(&COMPACTION_COMPACTOR)
        .cross_validator(|c| {
            if c.get(&COMPACTION_ENABLED) && !c.is_set(&COMPACTION_SIZE) && !c.is_set(&COMPACTION_EVERY) {
                vec![ConfigError::conflict(
                    [COMPACTION_ENABLED.key(), COMPACTION_SIZE.key(), COMPACTION_EVERY.key()],
                    "compaction needs a trigger: set `compaction.file-size` and/or `compaction.every-checkpoints`",
                )]
            } else {
                Vec::new()
            }
        })
}

/// Adds the file source's options (everything but `path`) to `set`.
pub fn add_source_options(set: OptionSet) -> OptionSet {
    format_options(set)
        .option(&MONITOR_INTERVAL)
        .option(&RETENTION)
        .option(&INCLUDE)
        .option(&EXCLUDE)
        .option(&SPLIT_ROW_GROUPS)
        .option(&ORDERED)
        .option(&BATCH_SIZE)
}

/// The file sink's options.
pub fn sink_options() -> OptionSet {
    add_sink_options(OptionSet::new("file sink").option(&PATH))
}

/// The file source's options.
pub fn source_options() -> OptionSet {
    add_source_options(OptionSet::new("file source").option(&PATHS))
}

/// The format settings read from options.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOptions {
    /// The format.
    pub format: FileFormatKind,
    /// Bulk codec.
    pub codec: Codec,
    /// Parquet rows per row group.
    pub row_group_rows: usize,
    /// ORC stripe bytes.
    pub stripe_size: MemorySize,
    /// CSV delimiter.
    pub csv_delimiter: u8,
    /// CSV header line.
    pub csv_header: bool,
}

impl FormatOptions {
    fn read(c: &ValidatedConfig) -> Self {
        FormatOptions {
            format: c.get(&FORMAT),
            codec: c.get(&CODEC),
            row_group_rows: c.get(&PARQUET_ROW_GROUP_ROWS),
            stripe_size: c.get(&ORC_STRIPE_SIZE),
            csv_delimiter: c.get(&CSV_DELIMITER).bytes().next().unwrap_or(b','),
            csv_header: c.get(&CSV_HEADER),
        }
    }
}

/// Compaction settings read from options.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionOptions {
    /// The strategy.
    pub strategy: FileCompactStrategy,
    /// The compactor.
    pub compactor: CompactorKind,
}

/// The file sink settings read from validated options.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSinkOptions {
    /// The base path.
    pub path: String,
    /// The format.
    pub format: FileFormatKind,
    /// Format details.
    pub format_options: FormatOptions,
    /// Part file prefix.
    pub prefix: String,
    /// Part file suffix.
    pub suffix: String,
    /// Rolling policy (row formats).
    pub rolling: RollingPolicy,
    /// Bucket assigner.
    pub assigner: BucketAssignerKind,
    /// Date-time bucket format.
    pub bucket_format: String,
    /// Date-time bucket clock.
    pub bucket_time: TimeSource,
    /// Compaction, if enabled.
    pub compaction: Option<CompactionOptions>,
    /// With compaction off, keep its stages as pass-through.
    pub keep_compaction_stages: bool,
}

impl FileSinkOptions {
    /// Validates `input` against [`sink_options`] and reads it; every problem at once.
    pub fn from_map(input: &BTreeMap<String, String>) -> std::result::Result<Self, ConfigErrors> {
        sink_options()
            .validate(input)
            .map(|c| Self::from_config(&c))
    }

    /// Reads the settings from a configuration validated by a set with the sink's options.
    pub fn from_config(c: &ValidatedConfig) -> Self {
        let compaction = c.get(&COMPACTION_ENABLED).then(|| {
            let mut b = FileCompactStrategy::builder()
                .num_compact_threads(c.get(&COMPACTION_THREADS))
                .parallelism(c.get(&COMPACTION_PARALLELISM));
            if let Some(size) = c.get_optional(&COMPACTION_SIZE) {
                b = b.size_threshold(size.bytes());
            }
            if let Some(n) = c.get_optional(&COMPACTION_EVERY) {
                b = b.enable_compaction_on_checkpoint(n);
            }
            let strategy = b.build().unwrap_or(FileCompactStrategy {
                size_threshold: None,
                every_n_checkpoints: Some(1),
                threads: 1,
                parallelism: 1,
            });
            CompactionOptions {
                strategy,
                compactor: c.get(&COMPACTION_COMPACTOR),
            }
        });
        let format_options = FormatOptions::read(c);
        FileSinkOptions {
            path: c.get(&PATH),
            format: format_options.format,
            format_options,
            prefix: c.get(&PART_PREFIX),
            suffix: c.get(&PART_SUFFIX),
            rolling: RollingPolicy {
                part_size: Some(c.get(&ROLL_SIZE).bytes()),
                rollover_interval: Some(c.get(&ROLL_INTERVAL)),
                inactivity_interval: Some(c.get(&ROLL_INACTIVITY)),
                on_checkpoint: c.get(&ROLL_ON_CHECKPOINT),
            },
            assigner: c.get(&BUCKET_ASSIGNER),
            bucket_format: c.get(&BUCKET_FORMAT),
            bucket_time: c.get(&BUCKET_TIME),
            compaction,
            keep_compaction_stages: c.get(&COMPACTION_DISABLED_HANDLER),
        }
    }
}

/// The file source settings read from validated options.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSourceOptions {
    /// The paths.
    pub paths: Vec<String>,
    /// Format details.
    pub format_options: FormatOptions,
    /// Continuous monitoring interval.
    pub monitor_interval: Option<Duration>,
    /// Continuous mode retention.
    pub retention: Option<Duration>,
    /// Include globs.
    pub include: Vec<String>,
    /// Exclude globs.
    pub exclude: Vec<String>,
    /// Parquet: split per row group.
    pub split_row_groups: bool,
    /// Ordered per directory.
    pub ordered: bool,
    /// Rows per batch (bulk).
    pub batch_size: usize,
}

impl FileSourceOptions {
    /// Validates `input` against [`source_options`] and reads it; every problem at once.
    pub fn from_map(input: &BTreeMap<String, String>) -> std::result::Result<Self, ConfigErrors> {
        source_options()
            .validate(input)
            .map(|c| Self::from_config(&c))
    }

    /// Reads the settings from a configuration validated by a set with the source's options.
    pub fn from_config(c: &ValidatedConfig) -> Self {
        FileSourceOptions {
            paths: c.get(&PATHS),
            format_options: FormatOptions::read(c),
            monitor_interval: c.get_optional(&MONITOR_INTERVAL),
            retention: c.get_optional(&RETENTION),
            include: c.get(&INCLUDE),
            exclude: c.get(&EXCLUDE),
            split_row_groups: c.get(&SPLIT_ROW_GROUPS),
            ordered: c.get(&ORDERED),
            batch_size: c.get(&BATCH_SIZE),
        }
    }
}

impl<T: Send + 'static> FileSinkBuilder<T> {
    /// Applies the format-independent settings of `o` (part names, rolling, buckets,
    /// compaction); the format was chosen when the builder was made.
    pub fn with_options(mut self, o: &FileSinkOptions) -> Self {
        self = self
            .prefix(o.prefix.clone())
            .suffix(o.suffix.clone())
            .rolling_policy(o.rolling);
        self = match o.assigner {
            BucketAssignerKind::BasePath => self.bucket_assigner(BasePathBucketAssigner),
            BucketAssignerKind::DateTime => self.bucket_assigner(
                DateTimeBucketAssigner::new(&o.bucket_format).time_source(o.bucket_time),
            ),
        };
        if let Some(c) = &o.compaction {
            let compactor = match c.compactor {
                CompactorKind::Concat => FileCompactor::Concat,
                CompactorKind::RecordWise => FileCompactor::RecordWise,
            };
            self = self.enable_compaction(c.strategy, compactor);
        } else if o.keep_compaction_stages {
            self = self.disable_compaction();
        }
        self
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> FileSink<T> {
    /// A sink of serde records from options (see [`sink_options`]) on `fs`.
    pub fn from_options(fs: Arc<dyn FileSystem>, o: &FileSinkOptions) -> Result<FileSink<T>> {
        let f = &o.format_options;
        let b = match o.format {
            FileFormatKind::Json => FileSink::row(fs, o.path.clone(), JsonLinesFormat::<T>::new()),
            FileFormatKind::Csv => FileSink::row(
                fs,
                o.path.clone(),
                CsvRecordFormat::<T>::new()
                    .delimiter(f.csv_delimiter)
                    .headers(f.csv_header),
            ),
            FileFormatKind::Text => FileSink::row(fs, o.path.clone(), SerdeTextFormat::<T>::new()),
            FileFormatKind::Parquet => FileSink::bulk(
                fs,
                o.path.clone(),
                ParquetFormat::new(SerdeRecords::<T>::traced()?.to_batches())
                    .codec(f.codec)
                    .row_group_rows(f.row_group_rows),
            ),
            FileFormatKind::Orc => FileSink::bulk(
                fs,
                o.path.clone(),
                OrcFormat::new(SerdeRecords::<T>::traced()?.to_batches())
                    .codec(f.codec)
                    .stripe_bytes(f.stripe_size.bytes() as usize),
            ),
        };
        b.with_options(o).build()
    }

    /// A sink from raw options (validated against [`sink_options`]) on `fs`.
    pub fn from_config(
        fs: Arc<dyn FileSystem>,
        input: &BTreeMap<String, String>,
    ) -> Result<FileSink<T>> {
        let o = FileSinkOptions::from_map(input).map_err(ConnectorError::Config)?;
        Self::from_options(fs, &o)
    }
}

impl<T: Send + 'static> FileSourceBuilder<T> {
    /// Applies the format-independent settings of `o` (globs, splitting, ordering, batch
    /// size, continuous monitoring); the format was chosen when the builder was made.
    pub fn with_options(mut self, o: &FileSourceOptions) -> Result<Self> {
        for g in &o.include {
            self = self.include(g)?;
        }
        for g in &o.exclude {
            self = self.exclude(g)?;
        }
        self = self
            .split_row_groups(o.split_row_groups)
            .ordered_per_directory(o.ordered)
            .batch_size(o.batch_size);
        if let Some(i) = o.monitor_interval {
            self = self.monitor_continuously(i);
        }
        if let Some(r) = o.retention {
            self = self.retention(r);
        }
        Ok(self)
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> FileSource<T> {
    /// A source of serde records from options (see [`source_options`]) on `fs`.
    pub fn from_options(fs: Arc<dyn FileSystem>, o: &FileSourceOptions) -> Result<FileSource<T>> {
        let f = &o.format_options;
        let paths = o.paths.clone();
        let b = match f.format {
            FileFormatKind::Json => FileSource::row(fs, paths, JsonLinesFormat::<T>::new()),
            FileFormatKind::Csv => FileSource::row(
                fs,
                paths,
                CsvRecordFormat::<T>::new()
                    .delimiter(f.csv_delimiter)
                    .headers(f.csv_header),
            ),
            FileFormatKind::Text => FileSource::row(fs, paths, SerdeTextFormat::<T>::new()),
            FileFormatKind::Parquet => FileSource::parquet(fs, paths, SerdeRecords::<T>::traced()?),
            FileFormatKind::Orc => FileSource::orc(fs, paths, SerdeRecords::<T>::traced()?),
        };
        b.with_options(o)?.build()
    }

    /// A source from raw options (validated against [`source_options`]) on `fs`.
    pub fn from_config(
        fs: Arc<dyn FileSystem>,
        input: &BTreeMap<String, String>,
    ) -> Result<FileSource<T>> {
        let o = FileSourceOptions::from_map(input).map_err(ConnectorError::Config)?;
        Self::from_options(fs, &o)
    }
}
