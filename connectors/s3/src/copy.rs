//! Server-side copies of any size. One `CopyObject` or `UploadPartCopy` copies at most 5 GiB,
//! so larger objects are copied as a multipart upload of `UploadPartCopy` ranges.

use std::ops::Range;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::complete_multipart_upload::{
    CompleteMultipartUploadError, CompleteMultipartUploadOutput,
};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use weir_connector_api::error::{ConnectorError, Result};

use crate::error::s3_error;

/// The most one `CopyObject` or `UploadPartCopy` may copy (S3's limit).
pub(crate) const MAX_COPY_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// A part copied into a multipart upload: number, ETag, length.
pub(crate) type CopiedPart = (i32, String, u64);

/// Copies bytes `range` of object `from` into upload `upload_id` of `to` as parts numbered from
/// `first`, each at most `part_size` bytes.
#[allow(clippy::too_many_arguments)] // the copy's source, target and shape
pub(crate) async fn copy_parts(
    client: &Client,
    bucket: &str,
    from: &str,
    to: &str,
    upload_id: &str,
    first: i32,
    range: Range<u64>,
    part_size: u64,
) -> Result<Vec<CopiedPart>> {
    let part_size = part_size.clamp(1, MAX_COPY_SIZE);
    let mut parts = Vec::new();
    let mut start = range.start;
    let mut number = first;
    while start < range.end {
        let end = (start + part_size).min(range.end);
        let out = client
            .upload_part_copy()
            .bucket(bucket)
            .key(to)
            .upload_id(upload_id)
            .part_number(number)
            .copy_source(format!("{bucket}/{from}"))
            .copy_source_range(format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .map_err(|e| s3_error(format!("copying part {number} of s3://{bucket}/{to}"), e))?;
        let etag = out
            .copy_part_result()
            .and_then(|c| c.e_tag())
            .map(str::to_owned)
            .ok_or_else(|| {
                ConnectorError::fatal(
                    format!("copying part {number} of s3://{bucket}/{to}"),
                    "the response carries no ETag",
                )
            })?;
        parts.push((number, etag, end - start));
        number += 1;
        start = end;
    }
    Ok(parts)
}

/// Completes multipart upload `id` of `key` from its `(part number, ETag)` pairs, in order.
pub(crate) async fn complete_upload<'a>(
    client: &Client,
    bucket: &str,
    key: &str,
    id: &str,
    parts: impl IntoIterator<Item = (i32, &'a str)>,
) -> std::result::Result<
    CompleteMultipartUploadOutput,
    SdkError<CompleteMultipartUploadError, HttpResponse>,
> {
    let parts: Vec<CompletedPart> = parts
        .into_iter()
        .map(|(number, etag)| {
            CompletedPart::builder()
                .part_number(number)
                .e_tag(etag)
                .build()
        })
        .collect();
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
}

/// Copies object `from` (`len` bytes) to `to`: one `CopyObject` up to `max_single` bytes, a
/// multipart copy in parts of `max_single` bytes beyond (aborted if it fails).
pub(crate) async fn copy_object(
    client: &Client,
    bucket: &str,
    (from, to): (&str, &str),
    len: u64,
    max_single: u64,
) -> Result<()> {
    let what = || format!("copying s3://{bucket}/{from} to s3://{bucket}/{to}");
    if len <= max_single {
        client
            .copy_object()
            .bucket(bucket)
            .key(to)
            .copy_source(format!("{bucket}/{from}"))
            .send()
            .await
            .map_err(|e| s3_error(what(), e))?;
        return Ok(());
    }
    let upload = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(to)
        .send()
        .await
        .map_err(|e| s3_error(what(), e))?;
    let id = upload
        .upload_id()
        .ok_or_else(|| ConnectorError::fatal(what(), "the response carries no upload id"))?
        .to_owned();
    let copied = copy_parts(client, bucket, from, to, &id, 1, 0..len, max_single).await;
    let completed = match copied {
        Ok(parts) => complete_upload(
            client,
            bucket,
            to,
            &id,
            parts.iter().map(|(n, etag, _)| (*n, etag.as_str())),
        )
        .await
        .map(|_| ())
        .map_err(|e| s3_error(what(), e)),
        Err(e) => Err(e),
    };
    if completed.is_err() {
        // Leave no upload behind (the orphan sweep would find it too).
        let _ = client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(to)
            .upload_id(&id)
            .send()
            .await;
    }
    completed
}
