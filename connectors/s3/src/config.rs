//! Typed options of the S3 connector: the connection (`s3.*`) plus the files connector's source
//! and sink options, with `path` an `s3://bucket/prefix` location.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Region, SharedHttpClient};
use aws_sdk_s3::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use weir_connector_api::config::{
    min, ConfigErrors, ConfigOption, MemorySize, OptionSet, ValidatedConfig,
};
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_files::config::{
    add_sink_options, add_source_options, FileSinkOptions, FileSourceOptions,
};
use weir_connector_files::{FileSink, FileSource};

use crate::credentials;
use crate::fs::{
    S3FileSystem, S3Location, UploadSettings, DEFAULT_MAX_IN_FLIGHT, DEFAULT_PART_SIZE,
    MIN_PART_SIZE,
};

macro_rules! opt {
    ($name:ident, $ty:ty, $init:expr) => {
        #[doc = concat!("The `", stringify!($name), "` option.")]
        pub static $name: LazyLock<ConfigOption<$ty>> = LazyLock::new(|| $init);
    };
}

opt!(
    ENDPOINT,
    String,
    ConfigOption::new("s3.endpoint").optional().description(
        "The S3 endpoint URL, e.g. `http://127.0.0.1:8333` for SeaweedFS or MinIO (default: AWS)."
    )
);
opt!(
    REGION,
    String,
    ConfigOption::new("s3.region")
        .default_value("us-east-1".to_owned())
        .description("The region requests are signed for.")
);
opt!(
    ACCESS_KEY,
    String,
    ConfigOption::new("s3.access-key")
        .optional()
        .description("The access key id; with `s3.secret-key` it comes before the AWS credential chain (default: the chain — environment, profiles, web identity, ECS, EC2 instance profile).")
);
opt!(
    SECRET_KEY,
    String,
    ConfigOption::new("s3.secret-key")
        .optional()
        .sensitive()
        .description(
            "The secret access key, with `s3.access-key` (default: the AWS credential chain)."
        )
);
opt!(PATH_STYLE, bool, ConfigOption::new("s3.path-style-access")
    .default_value(true)
    .description("Address buckets in the path (`endpoint/bucket/key`) rather than the host name; needed by most S3-compatible servers."));
opt!(PART_SIZE, MemorySize, ConfigOption::new("s3.upload.part-size")
    .default_value(MemorySize::from_bytes(DEFAULT_PART_SIZE as u64))
    .description("Multipart part size (at least 5 mb). The unuploaded tail of each open part file (less than a part) is kept in the writer state.")
    .validator(|s: &MemorySize| {
        if s.bytes() >= MIN_PART_SIZE as u64 {
            Ok(())
        } else {
            Err("must be at least 5 mb (S3's minimum part size)".to_owned())
        }
    }));
opt!(
    MAX_IN_FLIGHT,
    usize,
    ConfigOption::new("s3.upload.max-in-flight-parts")
        .default_value(DEFAULT_MAX_IN_FLIGHT)
        .description("Part uploads in flight per part file before writes wait.")
        .validator(min(1))
);

/// The variable [`S3Options::from_env`] reads `s3.request-timeout` from (the S3 client of
/// pipeline files and of `s3://` checkpoint storage comes from the environment).
pub const REQUEST_TIMEOUT_ENV: &str = "WEIR_S3_REQUEST_TIMEOUT";

/// The default of `s3.request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_mins(5);

opt!(
    REQUEST_TIMEOUT,
    Duration,
    ConfigOption::new("s3.request-timeout")
        .default_value(DEFAULT_REQUEST_TIMEOUT)
        .description("How long one attempt of a request (a part upload included) may take before it is abandoned and retried; a store that never answers fails the job's attempt instead of stalling it. Raise it for large parts on slow links.")
        .validator(|d: &Duration| {
            if d.is_zero() {
                Err("must be longer than zero".to_owned())
            } else {
                Ok(())
            }
        })
);

/// Adds the connection options to `set`.
pub fn add_s3_options(set: OptionSet) -> OptionSet {
    set.option(&ENDPOINT)
        .option(&REGION)
        .option(&ACCESS_KEY)
        .option(&SECRET_KEY)
        .option(&PATH_STYLE)
        .option(&PART_SIZE)
        .option(&MAX_IN_FLIGHT)
        .option(&REQUEST_TIMEOUT)
}

/// The connection options alone.
pub fn s3_options() -> OptionSet {
    add_s3_options(OptionSet::new("s3"))
}

/// The options of an S3 file sink: `path` (`s3://bucket/prefix`), the connection and the file
/// sink's options.
pub fn sink_options() -> OptionSet {
    add_sink_options(add_s3_options(
        OptionSet::new("s3 file sink").option(&weir_connector_files::config::PATH),
    ))
}

/// The options of an S3 file source: `path` (`s3://bucket/prefix`, comma-separated), the
/// connection and the file source's options.
pub fn source_options() -> OptionSet {
    add_source_options(add_s3_options(
        OptionSet::new("s3 file source").option(&weir_connector_files::config::PATHS),
    ))
}

/// The S3 connection settings.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Options {
    /// The endpoint, `None` for AWS.
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// The access key id (`None`: from the AWS credential chain).
    pub access_key: Option<String>,
    /// The secret key (`None`: from the AWS credential chain).
    pub secret_key: Option<String>,
    /// Path-style addressing.
    pub path_style: bool,
    /// Upload tuning.
    pub upload: UploadSettings,
    /// How long one attempt of a request may take (`s3.request-timeout`).
    pub request_timeout: Duration,
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "******"))
            .field("path_style", &self.path_style)
            .field("upload", &self.upload)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl S3Options {
    /// Settings for an endpoint with static credentials (e.g. a local S3-compatible server).
    pub fn new(endpoint: Option<&str>, region: &str, access_key: &str, secret_key: &str) -> Self {
        S3Options {
            endpoint: endpoint.map(str::to_owned),
            region: region.to_owned(),
            access_key: Some(access_key.to_owned()),
            secret_key: Some(secret_key.to_owned()),
            path_style: true,
            upload: UploadSettings::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Options from the standard AWS environment variables: `AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL` (S3-compatible stores), `AWS_REGION` or `AWS_DEFAULT_REGION` (default
    /// `us-east-1`); the client's credentials come from the AWS credential chain (environment,
    /// profiles, web identity, ECS, EC2 instance profile), see [`S3Options::client`]; and
    /// [`REQUEST_TIMEOUT_ENV`] for `s3.request-timeout` (no AWS variable sets it).
    pub fn from_env() -> std::result::Result<Self, ConfigErrors> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut options = BTreeMap::new();
        if let Some(endpoint) = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
            options.insert("s3.endpoint".to_owned(), endpoint);
        }
        if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
            options.insert("s3.region".to_owned(), region);
        }
        if let Some(timeout) = env(REQUEST_TIMEOUT_ENV) {
            options.insert("s3.request-timeout".to_owned(), timeout);
        }
        Self::from_map(&options)
    }

    /// Validates `input` against [`s3_options`] and reads it; every problem at once.
    pub fn from_map(input: &BTreeMap<String, String>) -> std::result::Result<Self, ConfigErrors> {
        s3_options().validate(input).map(|c| Self::from_config(&c))
    }

    /// Reads the settings from a configuration validated by a set with [`add_s3_options`].
    pub fn from_config(c: &ValidatedConfig) -> Self {
        S3Options {
            endpoint: c.get_optional(&ENDPOINT),
            region: c.get(&REGION),
            access_key: c.get_optional(&ACCESS_KEY),
            secret_key: c.get_optional(&SECRET_KEY),
            path_style: c.get(&PATH_STYLE),
            upload: UploadSettings {
                part_size: c.get(&PART_SIZE).bytes() as usize,
                max_in_flight: c.get(&MAX_IN_FLIGHT),
            },
            request_timeout: c.get(&REQUEST_TIMEOUT),
        }
    }

    /// An S3 client, TLS through rustls + ring. Credentials: `s3.access-key` and
    /// `s3.secret-key` when set (one of them alone is completed from `AWS_SECRET_ACCESS_KEY` or
    /// `AWS_ACCESS_KEY_ID`), else the standard AWS credential chain — environment variables,
    /// the shared config and credentials files with profiles (SSO, `credential_process`,
    /// assume role), web identity, ECS container credentials, the EC2 instance profile — asked
    /// at the first request (see the crate docs, "Credentials"). When none of them has
    /// credentials, requests fail with a fatal error that says what to set.
    pub fn client(&self) -> Result<Client> {
        let http = https_client();
        let credentials = credentials::provider(
            self.access_key.as_deref(),
            self.secret_key.as_deref(),
            &self.region,
            &http,
            |k| std::env::var(k).ok().filter(|v| !v.is_empty()),
        )?;
        let mut b = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials)
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(self.request_timeout)
                    .build(),
            )
            .force_path_style(self.path_style);
        if let Some(endpoint) = &self.endpoint {
            b = b.endpoint_url(endpoint);
        }
        Ok(Client::from_conf(b.build()))
    }

    /// An [`S3FileSystem`] over `bucket`.
    pub fn filesystem(&self, bucket: &str) -> Result<S3FileSystem> {
        Ok(S3FileSystem::with_settings(
            self.client()?,
            bucket,
            self.upload,
        ))
    }
}

/// How long connecting to the store may take (the SDK's own default).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The HTTPS client of the S3 client and of the credential providers that make calls: rustls
/// with *ring*, no system libraries.
pub(crate) fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// An S3 file sink of serde records from raw options ([`sink_options`]).
pub fn file_sink<T: Serialize + DeserializeOwned + Send + 'static>(
    input: &BTreeMap<String, String>,
) -> Result<FileSink<T>> {
    let c = sink_options()
        .validate(input)
        .map_err(ConnectorError::Config)?;
    let s3 = S3Options::from_config(&c);
    let mut files = FileSinkOptions::from_config(&c);
    let location = S3Location::parse(&files.path)?;
    files.path = location.prefix;
    FileSink::from_options(Arc::new(s3.filesystem(&location.bucket)?), &files)
}

/// An S3 file source of serde records from raw options ([`source_options`]); every path must be
/// in the same bucket.
pub fn file_source<T: Serialize + DeserializeOwned + Send + 'static>(
    input: &BTreeMap<String, String>,
) -> Result<FileSource<T>> {
    let c = source_options()
        .validate(input)
        .map_err(ConnectorError::Config)?;
    let s3 = S3Options::from_config(&c);
    let mut files = FileSourceOptions::from_config(&c);
    let mut bucket: Option<String> = None;
    let mut prefixes = Vec::new();
    for p in &files.paths {
        let l = S3Location::parse(p)?;
        if bucket.as_ref().is_some_and(|b| *b != l.bucket) {
            return Err(ConnectorError::Contract(
                "all paths of an S3 file source must be in one bucket".into(),
            ));
        }
        bucket = Some(l.bucket);
        prefixes.push(l.prefix);
    }
    let bucket = bucket.ok_or_else(|| ConnectorError::Contract("no path given".into()))?;
    files.paths = prefixes;
    FileSource::from_options(Arc::new(s3.filesystem(&bucket)?), &files)
}
