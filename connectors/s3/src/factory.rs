//! Registers `s3://` (and `s3a://`) with the files connector's filesystem schemes, so `files`
//! sources and sinks in pipeline files read and write buckets. The client comes from the AWS
//! environment variables ([`S3Options::from_env`]).

use std::sync::Arc;

use weir_connector_files::fs::{FileSystemScheme, OpenedPath};

use crate::{S3Location, S3Options};

fn open(url: &str) -> Result<OpenedPath, String> {
    let location = S3Location::parse(url).map_err(|e| e.to_string())?;
    let options = S3Options::from_env().map_err(|e| e.to_string())?;
    let fs = options
        .filesystem(&location.bucket)
        .map_err(|e| e.to_string())?;
    Ok(OpenedPath {
        fs: Arc::new(fs),
        root: format!("s3://{}", location.bucket),
        path: location.prefix,
    })
}

/// The `s3` scheme.
pub static S3_SCHEME: FileSystemScheme = FileSystemScheme {
    schemes: &["s3", "s3a"],
    open,
};
weir_connector_files::register_file_system!(S3_SCHEME);
