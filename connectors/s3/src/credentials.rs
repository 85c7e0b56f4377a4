//! Where the S3 client's credentials come from: the `s3.access-key` / `s3.secret-key` options
//! when set, else the standard AWS credential chain of `aws-config`, in its order:
//!
//! 1. environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`);
//! 2. the shared config and credentials files (`~/.aws/config`, `~/.aws/credentials`, moved by
//!    `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`), profile `AWS_PROFILE` (else `default`),
//!    with everything a profile can say: static keys, `role_arn` + `source_profile`, SSO,
//!    `credential_process`, web identity;
//! 3. a web identity token (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, e.g. EKS IRSA);
//! 4. ECS container credentials (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`);
//! 5. the EC2 instance profile (IMDS; off with `AWS_EC2_METADATA_DISABLED=true`).
//!
//! The chain is built synchronously (so [`S3Options::client`](crate::S3Options::client) stays
//! sync) and is asked for credentials at the first request; the SDK caches them and refreshes
//! them before they expire. Its providers that call AWS (STS, SSO) or the metadata endpoints use
//! the client's rustls HTTP client and its region.

use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::ProviderChainError;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{Region, SharedHttpClient};
use weir_connector_api::error::{ConnectorError, Result};

/// What to set when no credentials were found (part of the error message).
pub(crate) const WHAT_TO_SET: &str =
    "set the options `s3.access-key` and `s3.secret-key`; or the environment variables \
     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary \
     credentials); or a profile in ~/.aws/credentials or ~/.aws/config (choose it with \
     AWS_PROFILE, point elsewhere with AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE; profiles \
     may use SSO or credential_process); web identity (AWS_WEB_IDENTITY_TOKEN_FILE and \
     AWS_ROLE_ARN), ECS container and EC2 instance profile credentials are used when present";

/// No provider of the chain had credentials: what to set, then what each provider said.
#[derive(Debug, thiserror::Error)]
#[error("no AWS credentials found: {WHAT_TO_SET}. Tried:{tried}")]
pub(crate) struct NoCredentials {
    /// One line per provider of the chain: its name and why it had no credentials.
    tried: String,
    /// The chain's error.
    #[source]
    source: CredentialsError,
}

impl NoCredentials {
    fn new(source: CredentialsError) -> Self {
        let chain = std::error::Error::source(&source)
            .and_then(|s| s.downcast_ref::<ProviderChainError<CredentialsError>>());
        let tried = match chain {
            Some(chain) => {
                let lines: Vec<String> = chain
                    .attempts()
                    .iter()
                    .map(|a| format!("  {}: {}", a.name(), reasons(a.error())))
                    .collect();
                format!("\n{}", lines.join("\n"))
            }
            None => format!(" {}", reasons(&source)),
        };
        NoCredentials { tried, source }
    }
}

/// A provider of the chain found its source of credentials but failed to load them (a broken
/// profile, a refused STS or SSO call, an unreachable metadata endpoint …); the chain stops
/// there, as `aws-config`'s does.
#[derive(Debug, thiserror::Error)]
#[error("loading AWS credentials from {what} failed: {reason} (to use other credentials: {WHAT_TO_SET})")]
pub(crate) struct ProviderFailed {
    /// Which provider, for people.
    what: &'static str,
    /// The error and its sources.
    reason: String,
    /// The provider's error.
    #[source]
    source: CredentialsError,
}

impl ProviderFailed {
    fn new(what: &'static str, source: CredentialsError) -> Self {
        ProviderFailed {
            what,
            reason: reasons(&source),
            source,
        }
    }
}

/// The message of `e` and its sources, without the generic "the credential provider was not
/// enabled" / "an error occurred while loading credentials" of a [`CredentialsError`] that has
/// a source.
fn reasons(e: &CredentialsError) -> String {
    let mut parts = Vec::new();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        parts.push(cause.to_string());
        next = cause.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

/// How a failed request's credentials error reads and whether retrying may help, if its cause
/// is in `e`'s source chain.
pub(crate) struct CredentialsFailure {
    /// The message: what failed, what to set.
    pub(crate) message: String,
    /// Whether retrying may help (a failed call to STS, SSO or a metadata endpoint), rather
    /// than not (no credentials anywhere, an invalid configuration).
    pub(crate) retryable: bool,
}

/// The credentials failure in `e`'s source chain, if any.
pub(crate) fn failure(e: &(dyn std::error::Error + 'static)) -> Option<CredentialsFailure> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(none) = e.downcast_ref::<NoCredentials>() {
            return Some(CredentialsFailure {
                message: none.to_string(),
                retryable: false,
            });
        }
        if let Some(failed) = e.downcast_ref::<ProviderFailed>() {
            return Some(CredentialsFailure {
                message: failed.to_string(),
                retryable: !matches!(failed.source, CredentialsError::InvalidConfiguration(_)),
            });
        }
        next = e.source();
    }
    None
}

/// The credentials of a client: the explicit keys when the options give them, else the
/// standard chain. When the options give one key only, the other comes from its environment
/// variable (`AWS_ACCESS_KEY_ID` or `AWS_SECRET_ACCESS_KEY`, read with `env`), as before the
/// chain; without it that is a configuration error. Explicit keys carry no session token.
pub(crate) fn provider(
    access_key: Option<&str>,
    secret_key: Option<&str>,
    region: &str,
    http: &SharedHttpClient,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SharedCredentialsProvider> {
    let (access, secret) = match (access_key, secret_key) {
        (None, None) => {
            return Ok(SharedCredentialsProvider::new(StandardChain::new(
                region, http,
            )))
        }
        (Some(access), Some(secret)) => (access.to_owned(), secret.to_owned()),
        (Some(access), None) => match env("AWS_SECRET_ACCESS_KEY") {
            Some(secret) => (access.to_owned(), secret),
            None => return Err(one_key_only("s3.access-key", "s3.secret-key")),
        },
        (None, Some(secret)) => match env("AWS_ACCESS_KEY_ID") {
            Some(access) => (access, secret.to_owned()),
            None => return Err(one_key_only("s3.secret-key", "s3.access-key")),
        },
    };
    Ok(SharedCredentialsProvider::new(Credentials::new(
        access,
        secret,
        None,
        None,
        "weir-options",
    )))
}

fn one_key_only(given: &str, missing: &str) -> ConnectorError {
    let variable = if missing == "s3.secret-key" {
        "AWS_SECRET_ACCESS_KEY"
    } else {
        "AWS_ACCESS_KEY_ID"
    };
    ConnectorError::fatal(
        "configuring the S3 client",
        format!(
            "`{given}` is set but not `{missing}` (nor {variable}): set both options, or neither \
             to use the AWS credential chain (environment, profiles, web identity, ECS, EC2 \
             instance profile)"
        ),
    )
}

/// `aws-config`'s default credential chain, built without `async`, whose "no credentials"
/// error says what to set.
#[derive(Debug)]
pub(crate) struct StandardChain {
    chain: CredentialsProviderChain,
}

impl StandardChain {
    /// The providers of `aws_config::default_provider::credentials::DefaultCredentialsChain`,
    /// in its order, each configured like it (the region is given rather than resolved: that
    /// is the only `async` step of `DefaultCredentialsChain::build`).
    pub(crate) fn new(region: &str, http: &SharedHttpClient) -> Self {
        let conf = ProviderConfig::without_region()
            .with_region(Some(Region::new(region.to_owned())))
            .with_http_client(http.clone())
            .with_behavior_version(Some(BehaviorVersion::latest()));
        let chain = CredentialsProviderChain::first_try(
            "Environment",
            Named {
                what: "the environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
                provider: EnvironmentVariableCredentialsProvider::new(),
            },
        )
        .or_else(
            "Profile",
            Named {
                what: "the shared config and credentials files (profile AWS_PROFILE, else \
                       `default`)",
                provider: ProfileFileCredentialsProvider::builder()
                    .configure(&conf)
                    .build(),
            },
        )
        .or_else(
            "WebIdentityToken",
            Named {
                what: "the web identity token (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)",
                provider: WebIdentityTokenCredentialsProvider::builder()
                    .configure(&conf)
                    .build(),
            },
        )
        .or_else(
            "EcsContainer",
            Named {
                what: "the ECS container credentials endpoint \
                       (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / AWS_CONTAINER_CREDENTIALS_FULL_URI)",
                provider: EcsCredentialsProvider::builder().configure(&conf).build(),
            },
        )
        .or_else(
            "Ec2InstanceMetadata",
            Named {
                what: "the EC2 instance profile (instance metadata; off with \
                       AWS_EC2_METADATA_DISABLED=true)",
                provider: ImdsCredentialsProvider::builder().configure(&conf).build(),
            },
        );
        StandardChain { chain }
    }
}

impl ProvideCredentials for StandardChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.chain.provide_credentials().await.map_err(explain)
        })
    }

    fn fallback_on_interrupt(&self) -> Option<Credentials> {
        self.chain.fallback_on_interrupt()
    }
}

/// A provider of the chain whose failures (other than "no credentials here", which sends the
/// chain on) say which provider failed and what else can be set; the kind of error stays.
#[derive(Debug)]
struct Named<P> {
    what: &'static str,
    provider: P,
}

impl<P: ProvideCredentials> ProvideCredentials for Named<P> {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.provider
                .provide_credentials()
                .await
                .map_err(|e| name_failure(self.what, e))
        })
    }

    fn fallback_on_interrupt(&self) -> Option<Credentials> {
        self.provider.fallback_on_interrupt()
    }
}

fn name_failure(what: &'static str, e: CredentialsError) -> CredentialsError {
    match e {
        CredentialsError::CredentialsNotLoaded(_) => e,
        CredentialsError::InvalidConfiguration(_) => {
            CredentialsError::invalid_configuration(ProviderFailed::new(what, e))
        }
        CredentialsError::Unhandled(_) => CredentialsError::unhandled(ProviderFailed::new(what, e)),
        // Timed out, provider error.
        _ => CredentialsError::provider_error(ProviderFailed::new(what, e)),
    }
}

/// "Not loaded" (no provider had credentials) becomes [`NoCredentials`]; other errors are
/// already [`ProviderFailed`].
fn explain(e: CredentialsError) -> CredentialsError {
    match e {
        CredentialsError::CredentialsNotLoaded(_) => {
            CredentialsError::not_loaded(NoCredentials::new(e))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use aws_credential_types::credential_fn::provide_credentials_fn;

    use super::*;

    fn http() -> SharedHttpClient {
        crate::config::https_client()
    }

    #[tokio::test]
    async fn explicit_keys_win_and_one_is_completed_from_its_variable() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("env-access".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
            "AWS_SESSION_TOKEN" => Some("env-token".to_owned()),
            _ => None,
        };
        for (a, s, expected) in [
            (Some("a"), Some("b"), ("a", "b")),
            (Some("a"), None, ("a", "env-secret")),
            (None, Some("b"), ("env-access", "b")),
        ] {
            let p = provider(a, s, "us-east-1", &http(), env).unwrap();
            let c = p.provide_credentials().await.unwrap();
            assert_eq!((c.access_key_id(), c.secret_access_key()), expected);
            assert!(c.session_token().is_none());
        }
        for (a, s) in [(Some("a"), None), (None, Some("b"))] {
            let e = provider(a, s, "us-east-1", &http(), |_: &str| None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("s3.access-key") && e.contains("s3.secret-key"),
                "{e}"
            );
        }
    }

    /// What a test provider returns.
    type Outcome = fn() -> std::result::Result<Credentials, CredentialsError>;

    /// A chain like the standard one, of providers that return `result`s.
    fn chain(providers: Vec<(&'static str, Outcome)>) -> StandardChain {
        let mut providers = providers.into_iter().map(|(name, result)| {
            (
                name,
                Named {
                    what: name,
                    provider: provide_credentials_fn(move || async move { result() }),
                },
            )
        });
        let (name, first) = providers.next().unwrap();
        let mut chain = CredentialsProviderChain::first_try(name, first);
        for (name, provider) in providers {
            chain = chain.or_else(name, provider);
        }
        StandardChain { chain }
    }

    /// The chain's "not loaded" error becomes one that names what to set, then what each
    /// provider said; it is not retryable.
    #[tokio::test]
    async fn no_credentials_anywhere_names_what_to_set() {
        let e = chain(vec![
            ("Environment", || {
                Err(CredentialsError::not_loaded("AWS_ACCESS_KEY_ID not set"))
            }),
            ("Profile", || {
                Err(CredentialsError::not_loaded("no profile file"))
            }),
            ("Ec2InstanceMetadata", || {
                Err(CredentialsError::not_loaded_no_source())
            }),
        ])
        .provide_credentials()
        .await
        .unwrap_err();
        assert!(matches!(e, CredentialsError::CredentialsNotLoaded(_)));
        let failed = failure(&e).expect("the explanation is in the chain");
        assert!(!failed.retryable);
        let text = failed.message;
        for needle in [
            "no AWS credentials found",
            "s3.access-key",
            "s3.secret-key",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_PROFILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
        assert!(
            text.ends_with(
                "Tried:\n  Environment: AWS_ACCESS_KEY_ID not set\n  Profile: no profile file\n  \
                 Ec2InstanceMetadata: the credential provider was not enabled"
            ),
            "{text}"
        );
    }

    /// A provider that fails (rather than having no credentials) stops the chain; its error
    /// keeps its kind and names the provider and what else to set.
    #[tokio::test]
    async fn a_failing_provider_is_named() {
        let e = chain(vec![
            ("Environment", || {
                Err(CredentialsError::not_loaded("not set"))
            }),
            ("the EC2 instance profile", || {
                Err(CredentialsError::provider_error("403 forbidden"))
            }),
            ("Never", || {
                Ok(Credentials::new("a", "b", None, None, "test"))
            }),
        ])
        .provide_credentials()
        .await
        .unwrap_err();
        assert!(matches!(e, CredentialsError::ProviderError(_)), "{e:?}");
        let failed = failure(&e).unwrap();
        assert!(failed.retryable);
        assert!(
            failed.message.starts_with(
                "loading AWS credentials from the EC2 instance profile failed: 403 forbidden (to \
                 use other credentials: set the options `s3.access-key`"
            ),
            "{}",
            failed.message
        );

        let e = chain(vec![("Profile", || {
            Err(CredentialsError::invalid_configuration("bad profile"))
        })])
        .provide_credentials()
        .await
        .unwrap_err();
        assert!(matches!(e, CredentialsError::InvalidConfiguration(_)));
        assert!(!failure(&e).unwrap().retryable);
    }

    /// The real chain builds outside a runtime (as `S3Options::client` does in sync code).
    #[test]
    fn the_standard_chain_builds_without_a_runtime() {
        let chain = StandardChain::new("eu-west-1", &http());
        assert!(format!("{chain:?}").contains("Ec2InstanceMetadata"));
    }
}
