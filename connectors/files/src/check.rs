//! The `files` connection check of `weir check` (API line 1.1), for local paths and every
//! registered scheme (`s3://` with `weir-connector-s3` linked in): a source's paths exist and
//! are listed; a sink's base path takes a probe file (written, then deleted). Object-store
//! answers that refuse the credentials are named as such. `weir check` also checks the
//! checkpoint storage with [`check_writable`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use weir_connector_api::check::{CheckItem, CheckOutcome, ConnectionCheck, ConnectorRole};
use weir_connector_api::config::ValidatedConfig;
use weir_connector_api::factory::FactoryContext;

use crate::config::{PATH, PATHS};
use crate::fs::{find_scheme, join, FileSystem, LocalFileSystem};

/// The `files` connection check.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FilesCheck;

/// Error codes object stores answer when they refuse the credentials (S3 and compatibles).
const CREDENTIALS_CODES: [&str; 6] = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "no credentials",
];

/// The filesystem and the path in it, or why the path cannot be opened.
fn open(raw: &str) -> Result<(Arc<dyn FileSystem>, String), String> {
    let trimmed = raw.trim();
    match trimmed.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("file") => {
            Ok((Arc::new(LocalFileSystem::new()), absolute(rest)))
        }
        Some((scheme, _)) => {
            let found = find_scheme(scheme).ok_or_else(|| {
                format!("no filesystem for `{scheme}://` is linked into this program")
            })?;
            let opened = (found.open)(trimmed)?;
            Ok((opened.fs, opened.path))
        }
        None => Ok((Arc::new(LocalFileSystem::new()), absolute(trimmed))),
    }
}

fn absolute(path: &str) -> String {
    std::path::absolute(path)
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| path.to_owned())
}

fn failure(message: String) -> CheckOutcome {
    if CREDENTIALS_CODES.iter().any(|code| message.contains(code)) {
        CheckOutcome::CredentialsRejected(message)
    } else {
        CheckOutcome::Failed(message)
    }
}

async fn check_readable(raw: &str) -> CheckItem {
    let what = format!("path {raw} is readable");
    let (fs, path) = match open(raw) {
        Ok(opened) => opened,
        Err(reason) => return CheckItem::new(what, CheckOutcome::Failed(reason)),
    };
    let outcome = match fs.status(&path).await {
        Ok(Some(status)) => CheckOutcome::Ok(format!("a file of {} bytes", status.len)),
        Ok(None) => match fs.list_files(&path).await {
            Ok(files) if files.is_empty() => CheckOutcome::Failed(format!(
                "nothing at {path} on {}: no file and no directory with files",
                fs.describe()
            )),
            Ok(files) => CheckOutcome::Ok(format!("{} file(s) under it", files.len())),
            Err(e) => failure(format!("cannot list it: {e}")),
        },
        Err(e) => failure(format!("cannot read its status: {e}")),
    };
    CheckItem::new(what, outcome)
}

/// Whether `raw` (a local path or a registered scheme's URL) takes a probe file: written,
/// then deleted.
pub async fn check_writable(raw: &str) -> CheckItem {
    let what = format!("path {raw} is writable");
    let (fs, path) = match open(raw) {
        Ok(opened) => opened,
        Err(reason) => return CheckItem::new(what, CheckOutcome::Failed(reason)),
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // A hidden name: readers of the output skip it even if the delete below fails.
    let probe = join(
        &path,
        &format!(".weir-check-{}-{nanos}", std::process::id()),
    );
    let outcome = match fs
        .write_atomic(&probe, Bytes::from_static(b"weir check\n"))
        .await
    {
        Ok(()) => match fs.delete(&probe).await {
            Ok(()) => CheckOutcome::Ok(format!(
                "a probe file was written and deleted on {}",
                fs.describe()
            )),
            Err(e) => failure(format!(
                "the probe {probe} was written but not deleted: {e}"
            )),
        },
        Err(e) => failure(format!("cannot write a probe file there: {e}")),
    };
    CheckItem::new(what, outcome)
}

#[async_trait::async_trait]
impl ConnectionCheck for FilesCheck {
    async fn check(
        &self,
        role: ConnectorRole,
        config: &ValidatedConfig,
        _ctx: &FactoryContext<'_>,
    ) -> Vec<CheckItem> {
        match role {
            ConnectorRole::Sink => vec![check_writable(&config.get(&PATH)).await],
            ConnectorRole::Source | ConnectorRole::Lookup => {
                let mut items = Vec::new();
                for path in config.get(&PATHS) {
                    items.push(check_readable(&path).await);
                }
                items
            }
            _ => Vec::new(),
        }
    }
}
