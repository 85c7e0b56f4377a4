//! The Debian packages the tests need, installed by `cargo xtask deps` with `apt-get`: headless
//! Chromium for the dashboard's browser tests (`cli/tests/dashboard_browser.rs`). Their paths go
//! into `servers.env` like the servers'. They are not pinned: Debian's security updates move
//! them, and the tests need only a working browser; the installed version is printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// One Debian package and the binary it installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemPackage {
    /// The Debian package.
    pub package: &'static str,
    /// The absolute path of its binary.
    pub binary: &'static str,
    /// The `servers.env` key holding that path.
    pub env_var: &'static str,
    /// Arguments that make the binary print its version and exit.
    pub version_args: &'static [&'static str],
}

/// The packages.
pub const SYSTEM_PACKAGES: [SystemPackage; 1] = [SystemPackage {
    package: "chromium",
    binary: "/usr/bin/chromium",
    env_var: "CHROMIUM_BIN",
    version_args: &["--version"],
}];

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// What it is.
    pub package: SystemPackage,
    /// Its binary.
    pub binary: PathBuf,
    /// What the binary printed when asked for its version.
    pub reports: String,
    /// Whether `apt-get` installed it now (else it was there).
    pub installed_now: bool,
}

/// Installs the missing [`SYSTEM_PACKAGES`] (`apt-get install`, after `apt-get update` if the
/// first try fails) and checks that each binary runs.
pub fn install() -> Result<Vec<InstalledPackage>> {
    let missing: Vec<&str> = SYSTEM_PACKAGES
        .iter()
        .filter(|p| !Path::new(p.binary).is_file())
        .map(|p| p.package)
        .collect();
    if !missing.is_empty() {
        println!("deps: apt-get install {}", missing.join(" "));
        if apt_get(&["install", "-y", "--no-install-recommends"], &missing).is_err() {
            apt_get(&["update"], &[])?;
            apt_get(&["install", "-y", "--no-install-recommends"], &missing)?;
        }
    }
    SYSTEM_PACKAGES
        .iter()
        .map(|p| {
            let binary = PathBuf::from(p.binary);
            if !binary.is_file() {
                bail!(
                    "{} is missing after installing the Debian package {}",
                    p.binary,
                    p.package
                );
            }
            let out = Command::new(&binary)
                .args(p.version_args)
                .output()
                .with_context(|| format!("{} does not run", binary.display()))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let reports = text.lines().next().unwrap_or_default().trim().to_owned();
            if !out.status.success() || reports.is_empty() {
                bail!(
                    "`{} {}` failed ({}): {}",
                    binary.display(),
                    p.version_args.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(InstalledPackage {
                package: *p,
                binary,
                reports,
                installed_now: missing.contains(&p.package),
            })
        })
        .collect()
}

fn apt_get(args: &[&str], packages: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get (the tests need Debian's packages; on another system install chromium yourself)")?;
    if !status.success() {
        bail!(
            "apt-get {} {} failed ({status}); it needs root: run it as root, or install the \
             packages yourself and rerun `cargo xtask deps`",
            args.join(" "),
            packages.join(" ")
        );
    }
    Ok(())
}
