//! What `weir publish` clears before `cargo package` verifies a crate: cargo's copies of Weir
//! crates in its local package overlays and their compiled fingerprints. Cargo takes registry
//! crates as never changing; these copies change at the same version while a connector is
//! developed.

use std::path::{Path, PathBuf};

/// Removes cargo's fingerprints of `crates` from the target directory `target`
/// (`{debug,release}/.fingerprint/<crate>-<hash>`), so that `cargo package` compiles them
/// again. Cargo takes a crate from a registry, such as its local package overlay, as never
/// changing: without this, verifying a crate reuses a dependency compiled from the overlay's
/// old files. Only these crates are compiled again, not their dependencies.
pub(crate) fn forget_compiled(target: &Path, crates: &[&str]) {
    for profile in ["debug", "release"] {
        let Ok(entries) = std::fs::read_dir(target.join(profile).join(".fingerprint")) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = crates.iter().any(|c| {
                name.strip_prefix(c)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|hash| {
                        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
                    })
            });
            if !ours {
                continue;
            }
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(
                    "cannot remove cargo's fingerprint {}: {e}; if `cargo package` builds \
                     against old files, remove the target directory's {profile} folder",
                    entry.path().display()
                );
            }
        }
    }
}

/// Removes cargo's extracted copies of `crates` from its local package overlays
/// (`$CARGO_HOME/registry/{src,cache}/-<hash>/<crate>-<version>`), which `cargo package` makes
/// to verify crates that depend on each other. Cargo does not extract such a copy again when
/// the crate's files change at the same version, so a later `cargo package` would build
/// against the old files (e.g. an API item added since would be missing). Registries with a
/// host (`index.crates.io-…`) are not touched; cargo extracts what is removed again.
pub(crate) fn forget_local_packages(crates: &[&str]) {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(registry) = home.map(|h| h.join("registry")) else {
        return;
    };
    for kind in ["src", "cache"] {
        let Ok(overlays) = std::fs::read_dir(registry.join(kind)) else {
            continue;
        };
        for overlay in overlays.flatten() {
            if !overlay.file_name().to_string_lossy().starts_with('-') {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(overlay.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = crates.iter().any(|c| {
                    name.strip_prefix(c)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(|v| v.starts_with(|ch: char| ch.is_ascii_digit()))
                });
                if !ours {
                    continue;
                }
                let path = entry.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                if let Err(e) = removed {
                    tracing::warn!(
                        "cannot remove cargo's old copy {}: {e}; if `cargo package` builds \
                         against old files, remove it by hand",
                        path.display()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::forget_compiled;

    #[test]
    fn only_the_fingerprints_of_the_named_crates_go() {
        let target = tempfile::tempdir().unwrap();
        let names = [
            ("debug", "weir-connector-api-0123456789abcdef", false),
            ("release", "weir-connector-api-fedcba9876543210", false),
            ("debug", "weir-connector-api-extra-0123456789abcdef", true),
            ("debug", "weir-connector-api-notahash", true),
            ("debug", "serde-0123456789abcdef", true),
            ("debug", "weir-connector-datagen-0123456789abcdef", false),
        ];
        for (profile, name, _) in names {
            let dir = target.path().join(profile).join(".fingerprint").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("lib-x"), "1").unwrap();
        }
        forget_compiled(
            target.path(),
            &["weir-connector-api", "weir-connector-datagen"],
        );
        for (profile, name, kept) in names {
            let dir = target.path().join(profile).join(".fingerprint").join(name);
            assert_eq!(dir.exists(), kept, "{profile}/{name}");
        }
        // A target directory without profiles is no error.
        forget_compiled(&target.path().join("none"), &["weir-connector-api"]);
    }
}
