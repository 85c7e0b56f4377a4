//! Connector versions (`MAJOR.MINOR.PATCH-API`), API lines (`MAJOR.MINOR`) and the small part of
//! Cargo's version-requirement syntax needed to tell which API line a dependency pins.

use std::fmt;
use std::str::FromStr;

/// A line of `weir-connector-api`: its `MAJOR.MINOR`, e.g. `1.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiLine {
    /// The API's major version.
    pub major: u64,
    /// The API's minor version.
    pub minor: u64,
}

impl ApiLine {
    /// Builds an API line from its two numbers.
    pub const fn new(major: u64, minor: u64) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for ApiLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The text was not of the expected shape; carries nothing because callers report the offending
/// text in their own, more precise error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFormat;

impl FromStr for ApiLine {
    type Err = BadFormat;

    /// Strict `MAJOR.MINOR`: decimal numbers without leading zeros, nothing else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s.split_once('.').ok_or(BadFormat)?;
        Ok(Self::new(number(major)?, number(minor)?))
    }
}

/// A connector crate's version: `MAJOR.MINOR.PATCH-API`, e.g. `3.1.2-1.16`.
///
/// Ordered by the connector's own `MAJOR.MINOR.PATCH` first, then by the API line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectorVersion {
    /// The connector's major version.
    pub major: u64,
    /// The connector's minor version.
    pub minor: u64,
    /// The connector's patch version.
    pub patch: u64,
    /// The API line this release builds against (the suffix after `-`).
    pub api: ApiLine,
}

impl ConnectorVersion {
    /// The connector's own version without the API suffix, for "newest release" comparisons.
    pub const fn source(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }

    /// This version with another API suffix.
    pub const fn with_api(self, api: ApiLine) -> Self {
        Self { api, ..self }
    }
}

impl fmt::Display for ConnectorVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}-{}",
            self.major, self.minor, self.patch, self.api
        )
    }
}

impl FromStr for ConnectorVersion {
    type Err = BadFormat;

    /// Strict `MAJOR.MINOR.PATCH-AMAJOR.AMINOR`: five decimal numbers without leading zeros.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (core, api) = s.split_once('-').ok_or(BadFormat)?;
        let mut parts = core.split('.');
        let (Some(major), Some(minor), Some(patch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BadFormat);
        };
        Ok(Self {
            major: number(major)?,
            minor: number(minor)?,
            patch: number(patch)?,
            api: api.parse()?,
        })
    }
}

/// A decimal number as semver writes it: ASCII digits, no sign, no leading zero (except `0`).
fn number(s: &str) -> Result<u64, BadFormat> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(BadFormat);
    }
    s.parse().map_err(|_| BadFormat)
}

/// The API line a Cargo version requirement such as `"1.0"`, `"^1.0.0"`, `"=1.0.3"`, `"~1.0"` or
/// `"1.0.*"` pins. Requirements that do not pin one `MAJOR.MINOR` (`"1"`, `">=1.0"`, `"*"`,
/// `">=1.0, <1.2"`) are refused with the reason.
pub fn api_line_of_requirement(req: &str) -> Result<ApiLine, String> {
    let trimmed = req.trim();
    if trimmed.contains(',') {
        return Err(format!(
            "the requirement \"{req}\" has several comparators; pin one API line, e.g. \"1.0\""
        ));
    }
    let rest = trimmed
        .strip_prefix(['^', '=', '~'])
        .map_or(trimmed, str::trim_start);
    if rest.starts_with(['<', '>', '*']) {
        return Err(format!(
            "the requirement \"{req}\" is a range, not one API line; pin one, e.g. \"1.0\""
        ));
    }
    // Drop pre-release and build metadata of a full version ("1.0.0-rc.1+abc").
    let core = rest.split(['-', '+']).next().unwrap_or(rest);
    let mut parts = core.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(major), Some(minor), patch, None)
            if !matches!(patch, Some(p) if p != "*" && number(p).is_err()) =>
        {
            match (number(major), number(minor)) {
                (Ok(major), Ok(minor)) => Ok(ApiLine::new(major, minor)),
                _ => Err(format!(
                    "the requirement \"{req}\" does not start with MAJOR.MINOR numbers"
                )),
            }
        }
        (Some(_), None, ..) => Err(format!(
            "the requirement \"{req}\" names only a major version; pin MAJOR.MINOR, e.g. \"{core}.0\""
        )),
        _ => Err(format!(
            "the requirement \"{req}\" is not a version requirement Weir understands; write \
             MAJOR.MINOR, e.g. \"1.0\""
        )),
    }
}

/// The API line of a concrete `weir-connector-api` package version such as `1.0.0` or `1.1.0-rc.1`.
pub fn api_line_of_version(version: &str) -> Result<ApiLine, String> {
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let mut parts = core.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(major), Some(minor), Some(patch), None) if number(patch).is_ok() => {
            match (number(major), number(minor)) {
                (Ok(major), Ok(minor)) => Ok(ApiLine::new(major, minor)),
                _ => Err(format!("`{version}` is not a MAJOR.MINOR.PATCH version")),
            }
        }
        _ => Err(format!("`{version}` is not a MAJOR.MINOR.PATCH version")),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        api_line_of_requirement, api_line_of_version, ApiLine, BadFormat, ConnectorVersion,
    };

    #[test]
    fn parses_connector_versions_strictly() {
        assert_eq!(
            "3.1.2-1.16".parse(),
            Ok(ConnectorVersion {
                major: 3,
                minor: 1,
                patch: 2,
                api: ApiLine::new(1, 16)
            })
        );
        for bad in [
            "1.0.0",
            "1.0-1.0",
            "1.0.0-1",
            "1.0.0-1.0.0",
            "1.0.0-1.0-rc",
            "01.0.0-1.0",
            "1.0.0-1.00",
            "1.0.0.0-1.0",
            "v1.0.0-1.0",
            "1.0.0-1.0+build",
            " 1.0.0-1.0",
            "1.0.0-",
            "",
        ] {
            assert_eq!(bad.parse::<ConnectorVersion>(), Err(BadFormat), "{bad}");
        }
    }

    #[test]
    fn orders_by_source_version_then_api() {
        let v = |s: &str| s.parse::<ConnectorVersion>().map_err(|_| s.to_owned());
        assert!(v("1.10.0-1.0") > v("1.9.9-1.16"));
        assert!(v("1.0.0-1.1") > v("1.0.0-1.0"));
        assert_eq!(
            v("2.0.1-1.0").map(|x| x.to_string()),
            Ok("2.0.1-1.0".to_owned())
        );
    }

    #[test]
    fn reads_the_api_line_a_requirement_pins() {
        for (req, line) in [
            ("1.0", ApiLine::new(1, 0)),
            ("1.0.0", ApiLine::new(1, 0)),
            ("^1.2", ApiLine::new(1, 2)),
            ("= 1.3.4", ApiLine::new(1, 3)),
            ("~1.1.0", ApiLine::new(1, 1)),
            ("1.0.*", ApiLine::new(1, 0)),
            ("1.1.0-rc.1", ApiLine::new(1, 1)),
        ] {
            assert_eq!(api_line_of_requirement(req), Ok(line), "{req}");
        }
        for bad in ["1", "*", ">=1.0", "<2", ">=1.0, <1.2", "x.y", "1.0.0.0", ""] {
            assert!(api_line_of_requirement(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_the_api_line_of_a_package_version() {
        assert_eq!(api_line_of_version("1.0.0"), Ok(ApiLine::new(1, 0)));
        assert_eq!(api_line_of_version("2.3.1-rc.1"), Ok(ApiLine::new(2, 3)));
        assert!(api_line_of_version("1.0").is_err());
    }
}
