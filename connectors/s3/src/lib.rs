//! # Weir S3 connector
//!
//! Amazon S3 (and S3-compatible stores such as SeaweedFS or MinIO) for Weir:
//!
//! - [`S3FileSystem`]: a [`FileSystem`](weir_connector_files::fs::FileSystem) for the files
//!   connector, so `FileSource` and `FileSink` read and write buckets with every format.
//! - Its recoverable writer ([`sink`]): **one multipart upload per part file, spanning
//!   checkpoints**. Parts of `part-size` bytes upload in the background while records are
//!   written (bounded in flight, with backpressure); at a checkpoint the uploaded parts (number,
//!   ETag) and the not-yet-uploaded tail go into the writer state; after a failure the upload is
//!   resumed from there. Commit = `CompleteMultipartUpload`, idempotent (a repeated commit finds
//!   the object and reports it already committed). Orphaned uploads (of the sink's prefix, that
//!   no checkpoint references) are aborted when the sink restores.
//! - `S3CheckpointStorage` (feature `checkpoint-storage`): checkpoints of a Weir job in a
//!   bucket.
//! - [`config`]: typed options (`s3.endpoint`, credentials, part size …) and `from_config`
//!   constructors of S3 file sinks and sources.
//! - [`factory`]: registers `s3://` and `s3a://` with the files connector, so `files` sources and
//!   sinks of pipeline files read and write buckets.
//!
//! ## Credentials
//!
//! The options `s3.access-key` and `s3.secret-key` come first. Without them,
//! [`S3Options::client`] uses the standard AWS credential chain of `aws-config`, in its order:
//!
//! 1. environment variables `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!    `AWS_SESSION_TOKEN`;
//! 2. the shared config and credentials files (`~/.aws/config`, `~/.aws/credentials`, moved by
//!    `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`), profile `AWS_PROFILE` or `default`,
//!    including assume role, SSO and `credential_process` profiles;
//! 3. a web identity token (`AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`; EKS IRSA);
//! 4. ECS container credentials;
//! 5. the EC2 instance profile (IMDS).
//!
//! Tested here against SeaweedFS: explicit keys, environment variables, a named profile of a
//! shared credentials file, and the error without credentials (fatal, naming the options, the
//! variables and the profile to set). Web identity, ECS, IMDS, SSO, `credential_process` and
//! assume role are `aws-config`'s providers, configured as in its default chain, but need AWS
//! to run and are not tested here. The chain is built synchronously and asked at the first
//! request (the SDK caches and refreshes the credentials); its calls to AWS use the client's
//! rustls HTTP client and region. The region is `s3.region` (or `AWS_REGION` through
//! [`S3Options::from_env`]), not the profile's `region`.

pub mod config;
mod copy;
mod credentials;
mod error;
pub mod factory;
mod fs;
pub mod sink;

#[cfg(feature = "checkpoint-storage")]
pub mod checkpoint;

#[cfg(feature = "checkpoint-storage")]
pub use checkpoint::S3CheckpointStorage;
pub use config::S3Options;
pub use factory::S3_SCHEME;
pub use fs::{
    S3FileSystem, S3Location, UploadSettings, DEFAULT_MAX_IN_FLIGHT, DEFAULT_PART_SIZE,
    MIN_PART_SIZE,
};
pub use sink::{S3RecoverableWriter, S3UploadState, S3UploadStateSerializer, S3UploadedPart};
