//! Classifies AWS SDK errors as retryable or fatal.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use weir_connector_api::error::ConnectorError;

/// The HTTP status of a failed call, if the server answered.
pub(crate) fn status<E, R>(e: &SdkError<E, R>) -> Option<u16>
where
    R: HttpStatus,
{
    e.raw_response().map(HttpStatus::status_code)
}

/// What we need of a raw response.
pub(crate) trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The service's error code (e.g. `NoSuchUpload`), if any.
pub(crate) fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<String> {
    match e {
        SdkError::ServiceError(s) => s.err().code().map(str::to_owned),
        _ => None,
    }
}

/// What went wrong, for a message: the service's error code and the error with its sources; or,
/// when credentials could not be had, what failed and what to set.
pub(crate) fn detail<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(failure) = crate::credentials::failure(e) {
        return failure.message;
    }
    match code(e) {
        Some(code) => format!("{code}: {}", aws_sdk_s3::error::DisplayErrorContext(e)),
        None => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}

/// A connector error with context: timeouts, connection failures, throttling and server errors
/// are retryable; the rest (no credentials, access denied, missing bucket, bad request) fatal.
/// Takes the error by value so call sites read `map_err(|e| s3_error(context, e))`.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn s3_error<E, R>(context: impl Into<String>, e: SdkError<E, R>) -> ConnectorError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    let retryable = if let Some(failure) = crate::credentials::failure(&e) {
        // Fatal when no source has credentials or one is misconfigured; retryable when a
        // provider's call (STS, SSO, metadata endpoint) failed.
        failure.retryable
    } else {
        match &e {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(_) => {
                let status = status(&e).unwrap_or(0);
                let code = code(&e).unwrap_or_default();
                status >= 500
                    || status == 429
                    || matches!(
                        code.as_str(),
                        "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
                    )
            }
            _ => false,
        }
    };
    let detail = detail(&e);
    if retryable {
        ConnectorError::retryable(context, detail)
    } else {
        ConnectorError::fatal(context, detail)
    }
}
