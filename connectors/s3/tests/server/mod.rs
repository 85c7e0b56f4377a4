//! One SeaweedFS server shared by the tests of a test binary while any of them runs (it stops
//! when the last test holding it ends), and S3 filesystems on it.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::{Arc, Mutex, PoisonError, Weak};

use weir_connector_s3::UploadSettings;
use weir_connector_s3::{S3FileSystem, S3Options};
use weir_testkit::servers::SeaweedS3;

/// The bucket every test uses (tests use their own key prefixes).
pub const BUCKET: &str = "weir-tests";

static SERVER: Mutex<Weak<SeaweedS3>> = Mutex::new(Weak::new());

/// The shared server, started if no test holds it.
pub fn server() -> Arc<SeaweedS3> {
    let mut slot = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = slot.upgrade() {
        return s;
    }
    let s = match SeaweedS3::start() {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("cannot start SeaweedFS (run `cargo xtask deps`): {e}"),
    };
    if let Err(e) = s.create_bucket(BUCKET) {
        panic!("cannot create the test bucket: {e}");
    }
    *slot = Arc::downgrade(&s);
    s
}

/// S3 options for the server.
pub fn options(server: &SeaweedS3) -> S3Options {
    let c = server.credentials();
    S3Options::new(
        Some(&server.endpoint()),
        &c.region,
        &c.access_key_id,
        &c.secret_access_key,
    )
}

/// An S3 filesystem on the test bucket (smallest parts, so multipart paths are exercised).
pub fn filesystem(server: &SeaweedS3) -> S3FileSystem {
    let mut o = options(server);
    o.upload = UploadSettings {
        part_size: 5 * 1024 * 1024,
        max_in_flight: 2,
    };
    match o.filesystem(BUCKET) {
        Ok(fs) => fs,
        Err(e) => panic!("cannot create the S3 client: {e}"),
    }
}
