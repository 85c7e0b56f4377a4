//! The connection: hosts, credentials, TLS and timeouts ([`ConnectionConfig`]), the client it
//! builds, and how answers of the cluster become errors with a class ([`classify_status`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::http::Url;
use elasticsearch::Elasticsearch;
use weir_connector_api::error::{ConnectorError, ErrorClass, Result};

/// How the client proves who it is.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// HTTP basic authentication (`username` / `password`).
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// An API key, in the encoded form Elasticsearch returns (`base64(id:api_key)`, the
    /// `encoded` field of `POST /_security/api_key`).
    ApiKey(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"******")
                .finish(),
            Auth::ApiKey(_) => f.write_str("ApiKey(******)"),
        }
    }
}

impl Auth {
    /// What the credentials are, for messages (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Auth::None => "no credentials".to_owned(),
            Auth::Basic { username, .. } => format!("user `{username}` (basic authentication)"),
            Auth::ApiKey(_) => "the API key (`api-key`)".to_owned(),
        }
    }
}

/// How the server's TLS certificate is checked (`https://` hosts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsVerification {
    /// Against the built-in web PKI roots (Mozilla's), with the host name.
    #[default]
    Default,
    /// Against the CA certificates of a PEM file (and the built-in roots), with the host name.
    CaCertificate(PathBuf),
    /// Not at all (diagnostics only: anyone on the path can read and change the traffic).
    Insecure,
}

/// Where the cluster is and how to talk to it.
///
/// ```
/// use std::time::Duration;
/// use weir_connector_elasticsearch::{Auth, ConnectionConfig};
///
/// let connection = ConnectionConfig::new(["http://127.0.0.1:9200", "http://127.0.0.1:9201"])
///     .auth(Auth::Basic { username: "weir".into(), password: "secret".into() })
///     .timeout(Duration::from_secs(10));
/// assert_eq!(connection.hosts().len(), 2);
/// // The password never shows in debug output.
/// assert!(!format!("{connection:?}").contains("secret"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    hosts: Vec<String>,
    auth: Auth,
    tls: TlsVerification,
    timeout: Duration,
}

impl ConnectionConfig {
    /// Hosts as URLs (`http://host:9200`, `https://host:9200`); requests go round-robin.
    pub fn new<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ConnectionConfig {
            hosts: hosts.into_iter().map(Into::into).collect(),
            auth: Auth::None,
            tls: TlsVerification::Default,
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the credentials.
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets how TLS certificates are checked.
    #[must_use]
    pub fn tls(mut self, tls: TlsVerification) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the timeout of every request (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The hosts.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The credentials.
    pub fn credentials(&self) -> &Auth {
        &self.auth
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }

    /// The hosts, for messages.
    pub fn describe_hosts(&self) -> String {
        self.hosts.join(", ")
    }

    /// Problems with the hosts or credentials, as (option key, reason) pairs.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.hosts.is_empty() {
            problems.push((
                crate::config::keys::HOSTS,
                "name at least one host, e.g. `http://localhost:9200`".to_owned(),
            ));
        }
        for host in &self.hosts {
            if let Err(reason) = parse_host(host) {
                problems.push((crate::config::keys::HOSTS, reason));
            }
        }
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                if username.is_empty() {
                    problems.push((
                        crate::config::keys::USERNAME,
                        "must not be empty".to_owned(),
                    ));
                }
                if username.contains(':') || username.chars().any(char::is_control) {
                    problems.push((
                        crate::config::keys::USERNAME,
                        "must not contain `:` or control characters (basic authentication \
                         cannot carry them)"
                            .to_owned(),
                    ));
                }
                if password.chars().any(char::is_control) {
                    problems.push((
                        crate::config::keys::PASSWORD,
                        "must not contain control characters".to_owned(),
                    ));
                }
            }
            Auth::ApiKey(key) => {
                if let Err(reason) = check_api_key(key) {
                    problems.push((crate::config::keys::API_KEY, reason));
                }
            }
        }
        if self.timeout.is_zero() {
            problems.push((
                crate::config::keys::CONNECTION_TIMEOUT,
                "must be longer than zero".to_owned(),
            ));
        }
        problems
    }

    /// A client for these settings. Contacts nothing.
    pub fn client(&self) -> Result<Elasticsearch> {
        let problems = self.problems();
        if let Some((key, reason)) = problems.first() {
            return Err(ConnectorError::fatal(
                "building the Elasticsearch client",
                format!("option `{key}`: {reason}"),
            ));
        }
        let urls = self
            .hosts
            .iter()
            .map(|h| parse_host(h))
            .collect::<std::result::Result<Vec<Url>, String>>()
            .map_err(|e| ConnectorError::fatal("building the Elasticsearch client", e))?;
        let mut builder = match urls.as_slice() {
            [one] => TransportBuilder::new(SingleNodeConnectionPool::new(one.clone())),
            _ => TransportBuilder::new(MultiNodeConnectionPool::round_robin(urls, None)),
        };
        builder = builder
            .timeout(self.timeout)
            .disable_proxy()
            .enable_meta_header(false);
        builder = match &self.auth {
            Auth::None => builder,
            Auth::Basic { username, password } => {
                builder.auth(Credentials::Basic(username.clone(), password.clone()))
            }
            Auth::ApiKey(key) => builder.auth(Credentials::EncodedApiKey(key.clone())),
        };
        builder = match &self.tls {
            TlsVerification::Default => builder,
            TlsVerification::CaCertificate(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    ConnectorError::fatal(
                        format!("reading the CA certificate {}", path.display()),
                        format!("{e} (option `{}`)", crate::config::keys::TLS_CA),
                    )
                })?;
                let certificate = Certificate::from_pem(&pem).map_err(|e| {
                    ConnectorError::fatal(
                        format!("reading the CA certificate {}", path.display()),
                        format!(
                            "not a PEM certificate: {e} (option `{}`)",
                            crate::config::keys::TLS_CA
                        ),
                    )
                })?;
                builder.cert_validation(CertificateValidation::Full(certificate))
            }
            TlsVerification::Insecure => builder.cert_validation(CertificateValidation::None),
        };
        let transport = builder.build().map_err(|e| {
            ConnectorError::fatal("building the Elasticsearch client", e.to_string())
        })?;
        Ok(Elasticsearch::new(transport))
    }
}

/// A host URL: `http` or `https`, with a host, no query or fragment.
pub(crate) fn parse_host(host: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(host.trim()).map_err(|e| {
        format!(
            "`{host}` is not a URL ({e}): write hosts as `http://host:9200` or `https://host:9200`"
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{host}` uses `{}`: hosts are `http://` or `https://` URLs",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{host}` names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{host}` has a query or fragment: give the base URL only"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{host}` carries credentials: use `{}` and `{}` (or `{}`) instead",
            crate::config::keys::USERNAME,
            crate::config::keys::PASSWORD,
            crate::config::keys::API_KEY
        ));
    }
    Ok(url)
}

/// An encoded API key is sent in a header: visible ASCII only.
fn check_api_key(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "must be the encoded key (base64 of `id:api_key`, the `encoded` field Elasticsearch \
             returns): visible ASCII characters only"
                .to_owned(),
        );
    }
    Ok(())
}

/// What a whole-request answer with an error status means, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusError {
    /// Whether sending again may help.
    pub(crate) class: ErrorClass,
    /// Why, with what to do.
    pub(crate) message: String,
    /// Whether the server refused the credentials.
    pub(crate) credentials_rejected: bool,
}

/// Classifies an HTTP error status of a whole request (`body` is the server's answer, for its
/// reason).
pub(crate) fn classify_status(status: u16, body: &[u8], auth: &Auth) -> StatusError {
    let reason = server_reason(body);
    let (class, message, credentials_rejected) = match status {
        401 => (
            ErrorClass::Fatal,
            format!(
                "401 unauthorized: the cluster refused {}: check the credentials ({reason})",
                auth.describe()
            ),
            true,
        ),
        403 => (
            ErrorClass::Fatal,
            format!(
                "403 forbidden: {} may not do this (it needs the index privileges `create_doc`, \
                 `index` or `write` on the target index): {reason}",
                auth.describe()
            ),
            true,
        ),
        413 => (
            ErrorClass::Fatal,
            format!(
                "413 request too large: lower `{}` (or raise the cluster's `http.max_content_length`): {reason}",
                weir_connector_base::sink::keys::MAX_BATCH_SIZE_BYTES
            ),
            false,
        ),
        408 | 429 | 500..=599 => (
            ErrorClass::Retryable,
            format!("{status} from the cluster (retried): {reason}"),
            false,
        ),
        _ => (ErrorClass::Fatal, format!("{status}: {reason}"), false),
    };
    StatusError {
        class,
        message,
        credentials_rejected,
    }
}

/// The `error.type: error.reason` of an Elasticsearch error answer, else its text (cut short).
pub(crate) fn server_reason(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Answer {
        error: serde_json::Value,
    }
    if let Ok(answer) = serde_json::from_slice::<Answer>(body) {
        return match &answer.error {
            serde_json::Value::Object(map) => {
                let ty = map.get("type").and_then(serde_json::Value::as_str);
                let reason = map.get("reason").and_then(serde_json::Value::as_str);
                match (ty, reason) {
                    (Some(t), Some(r)) => format!("{t}: {r}"),
                    (Some(t), None) => t.to_owned(),
                    (None, Some(r)) => r.to_owned(),
                    (None, None) => answer.error.to_string(),
                }
            }
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "no reason given".to_owned();
    }
    text.chars().take(300).collect()
}

/// A transport error (no answer: connection refused, timeout) as a retryable error; a TLS
/// certificate the client does not trust, or a TLS handshake with a server that does not speak
/// TLS, as a fatal one (sending again cannot help).
pub(crate) fn transport_error(
    context: impl Into<String>,
    hosts: &str,
    error: &elasticsearch::Error,
) -> ConnectorError {
    if error.is_timeout() {
        return ConnectorError::retryable(
            context,
            format!("no answer from {hosts}: timed out (`connection.timeout`)"),
        );
    }
    let detail = error_chain(error);
    if let Some(hint) = tls_hint(&detail) {
        return ConnectorError::fatal(
            context,
            format!("TLS with {hosts} failed: {detail}: {hint}"),
        );
    }
    ConnectorError::retryable(context, format!("no answer from {hosts}: {detail}"))
}

/// What to do about a TLS failure, if `detail` (an error chain) is one.
pub(crate) fn tls_hint(detail: &str) -> Option<&'static str> {
    if detail.contains("invalid peer certificate") || detail.contains("UnknownIssuer") {
        Some(
            "the server's certificate is not trusted: give its CA in `tls.ca-certificate` (or, \
             for a diagnosis only, `tls.verification = none`)",
        )
    } else if detail.contains("InvalidContentType") || detail.contains("received corrupt message") {
        Some("the server does not speak TLS here: use `http://` for this host")
    } else {
        None
    }
}

/// An error with its sources, `a: b: c`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}
