//! The S3 [`FileSystem`]: paths are object keys of one bucket.

use std::ops::Range;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use weir_connector_api::error::{ConnectorError, Result};
use weir_connector_files::fs::{ByteReader, FileStatus, FileSystem, RecoverableWriter};

use crate::copy::{copy_object, MAX_COPY_SIZE};
use crate::error::{code, s3_error, status};
use crate::sink::S3RecoverableWriter;

/// The smallest part S3 accepts (except the last one of an upload).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// The default part size.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// The default number of part uploads in flight per part file.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// A parsed `s3://bucket/prefix` location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (no leading or trailing `/`).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket/prefix` (or `s3a://`).
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri
            .strip_prefix("s3://")
            .or_else(|| uri.strip_prefix("s3a://"))
            .ok_or_else(|| {
                ConnectorError::Contract(format!("`{uri}` is not an s3://bucket/prefix location"))
            })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ConnectorError::Contract(format!(
                "`{uri}` names no bucket (expected s3://bucket/prefix)"
            )));
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

/// Upload tuning of the recoverable writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UploadSettings {
    /// Bytes per multipart part (at least 5 MiB).
    pub part_size: usize,
    /// Part uploads in flight per part file before writes wait.
    pub max_in_flight: usize,
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            part_size: DEFAULT_PART_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// S3 as a [`FileSystem`]: one bucket; paths are keys.
#[derive(Debug, Clone)]
pub struct S3FileSystem {
    client: Client,
    bucket: String,
    writer: Arc<S3RecoverableWriter>,
    /// Renames of objects larger than this copy them in parts of this size.
    max_single_copy: u64,
}

impl S3FileSystem {
    /// A filesystem over `bucket` with the default upload settings.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self::with_settings(client, bucket, UploadSettings::default())
    }

    /// A filesystem over `bucket` with upload settings (the part size is raised to S3's 5 MiB
    /// minimum).
    pub fn with_settings(
        client: Client,
        bucket: impl Into<String>,
        settings: UploadSettings,
    ) -> Self {
        let bucket = bucket.into();
        let settings = UploadSettings {
            part_size: settings.part_size.max(MIN_PART_SIZE),
            max_in_flight: settings.max_in_flight.max(1),
        };
        S3FileSystem {
            writer: Arc::new(S3RecoverableWriter::new(
                client.clone(),
                bucket.clone(),
                settings,
            )),
            client,
            bucket,
            max_single_copy: MAX_COPY_SIZE,
        }
    }

    /// Lowers the size above which a rename copies in parts (default and maximum: S3's 5 GiB
    /// limit for one copy; at least 5 MiB, S3's smallest part). For stores with a lower limit,
    /// and for tests.
    pub fn with_max_single_copy(mut self, bytes: u64) -> Self {
        self.max_single_copy = bytes.clamp(MIN_PART_SIZE as u64, MAX_COPY_SIZE);
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn describe_key(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

fn list_prefix(dir: &str) -> String {
    let dir = dir.trim_start_matches('/');
    if dir.is_empty() || dir.ends_with('/') {
        dir.to_owned()
    } else {
        format!("{dir}/")
    }
}

#[async_trait::async_trait]
impl FileSystem for S3FileSystem {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn list_files(&self, dir: &str) -> Result<Vec<FileStatus>> {
        let prefix = list_prefix(dir);
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3_error(format!("listing {}", self.describe_key(&prefix)), e))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                if key.ends_with('/') {
                    continue; // a directory marker
                }
                out.push(FileStatus {
                    path: key.to_owned(),
                    len: o.size().unwrap_or(0).max(0) as u64,
                    modified_millis: o
                        .last_modified()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or(0),
                });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn status(&self, path: &str) -> Result<Option<FileStatus>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(path)
            .send()
            .await
        {
            Ok(o) => Ok(Some(FileStatus {
                path: path.to_owned(),
                len: o.content_length().unwrap_or(0).max(0) as u64,
                modified_millis: o
                    .last_modified()
                    .and_then(|t| t.to_millis().ok())
                    .unwrap_or(0),
            })),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(s3_error(format!("stat {}", self.describe_key(path)), e)),
        }
    }

    async fn read_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        if range.end <= range.start {
            return Ok(Bytes::new());
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(path)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .map_err(|e| s3_error(format!("reading {}", self.describe_key(path)), e))?;
        let body = out.body.collect().await.map_err(|e| {
            ConnectorError::retryable(format!("reading {}", self.describe_key(path)), e)
        })?;
        Ok(body.into_bytes())
    }

    async fn open_read(&self, path: &str, offset: u64) -> Result<ByteReader> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(path);
        if offset > 0 {
            request = request.range(format!("bytes={offset}-"));
        }
        match request.send().await {
            Ok(out) => Ok(Box::pin(out.body.into_async_read())),
            // At (or past) the end of the object: nothing left to read.
            Err(e) if status(&e) == Some(416) => Ok(Box::pin(tokio::io::empty())),
            Err(e) => Err(s3_error(format!("opening {}", self.describe_key(path)), e)),
        }
    }

    async fn write_atomic(&self, path: &str, data: Bytes) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(path)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| s3_error(format!("writing {}", self.describe_key(path)), e))?;
        Ok(())
    }

    async fn delete(&self, path: &str) -> Result<()> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(path)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) || code(&e).as_deref() == Some("NoSuchKey") => Ok(()),
            Err(e) => Err(s3_error(format!("deleting {}", self.describe_key(path)), e)),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let len = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(from)
            .send()
            .await
            .map_err(|e| s3_error(format!("renaming {}", self.describe_key(from)), e))?
            .content_length()
            .unwrap_or(0)
            .max(0) as u64;
        copy_object(
            &self.client,
            &self.bucket,
            (from, to),
            len,
            self.max_single_copy,
        )
        .await?;
        self.delete(from).await
    }

    fn recoverable_writer(&self) -> Arc<dyn RecoverableWriter> {
        Arc::clone(&self.writer) as Arc<dyn RecoverableWriter>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l = S3Location::parse("s3://b/x/y/").unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("b", "x/y"));
        assert_eq!(S3Location::parse("s3a://b").unwrap().prefix, "");
        assert!(S3Location::parse("/tmp/x").is_err());
        assert!(S3Location::parse("s3:///x").is_err());
        assert_eq!(list_prefix("a/b"), "a/b/");
        assert_eq!(list_prefix(""), "");
    }
}
