// Tests panic on purpose to report a mismatch with the whole error list; `expect` on fixture
// writes keeps them short.
#![allow(clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{check, ApiLine, CompatError, ConnectorVersion, Status, Summary};

/// Asserts that `$result` failed with exactly these errors, in this order.
macro_rules! assert_errors {
    ($result:expr, [$($pat:pat $(if $guard:expr)?),+ $(,)?]) => {{
        let errors: Vec<CompatError> = match $result {
            Ok(summary) => panic!("expected compat errors, got {summary:?}"),
            Err(errors) => errors,
        };
        let mut iter = errors.iter();
        $(
            match iter.next() {
                Some($pat) $(if $guard)? => {}
                other => panic!(
                    "expected `{}`, got {other:#?}\nall errors: {errors:#?}",
                    stringify!($pat)
                ),
            }
        )+
        assert!(iter.next().is_none(), "unexpected extra errors: {errors:#?}");
        // Every message renders and names what to do or what is wrong.
        for error in &errors {
            assert!(!error.to_string().is_empty());
        }
        errors
    }};
}

fn v(s: &str) -> ConnectorVersion {
    s.parse().expect("test version")
}

const fn line(major: u64, minor: u64) -> ApiLine {
    ApiLine::new(major, minor)
}

/// A fake workspace: root Cargo.toml with `[workspace.dependencies] weir-connector-api`,
/// `connector-api/` at 1.0.0, an empty `connectors/`.
struct Tree {
    dir: TempDir,
}

impl Tree {
    fn new() -> Self {
        let tree = Self {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        tree.write(
            "Cargo.toml",
            r#"[workspace]
members = ["connector-api"]

[workspace.dependencies]
weir-connector-api = { path = "connector-api", version = "1.0.0" }
"#,
        );
        tree.api_crate("1.0.0");
        fs::create_dir_all(tree.root().join("connectors")).expect("mkdir connectors");
        tree
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.root().join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    fn api_crate(&self, version: &str) {
        self.write(
            "connector-api/Cargo.toml",
            &format!("[package]\nname = \"weir-connector-api\"\nversion = \"{version}\"\n"),
        );
    }

    /// A connector crate depending on the API through the workspace.
    fn connector(&self, name: &str, version: &str) {
        self.connector_with(name, version, "weir-connector-api = { workspace = true }");
    }

    /// A connector crate with the given `[dependencies]` body.
    fn connector_with(&self, name: &str, version: &str, dependencies: &str) {
        self.write(
            &format!("connectors/{name}/Cargo.toml"),
            &format!(
                "[package]\nname = \"weir-connector-{name}\"\nversion = \"{version}\"\n\
                 edition = \"2021\"\n\n[dependencies]\n{dependencies}\n"
            ),
        );
    }

    fn matrix(&self, text: &str) -> PathBuf {
        let path = self.root().join("compat-matrix.toml");
        fs::write(&path, text).expect("write matrix");
        path
    }

    fn check(&self, matrix: &str) -> Result<Summary, Vec<CompatError>> {
        let path = self.matrix(matrix);
        check(self.root(), &path)
    }
}

/// A matrix with one release of `datagen`.
fn one_release(version: &str, api_lines: &str, status: &str) -> String {
    format!(
        r#"api-lines = ["1.0"]

[connectors.datagen]
crate = "weir-connector-datagen"

[[connectors.datagen.releases]]
version = "{version}"
api-lines = {api_lines}
status = "{status}"
"#
    )
}

// ---- passing trees ----------------------------------------------------------------------------

#[test]
fn a_good_tree_passes_and_counts() {
    let tree = Tree::new();
    tree.connector("datagen", "1.2.0-1.0");
    tree.connector_with(
        "kafka",
        "3.1.2-1.1",
        r#"weir-connector-api = { path = "../../connector-api", version = "1.1" }"#,
    );
    let result = tree.check(
        r#"
api-lines = ["1.0", "1.1"]
retired-api-lines = ["0.9"]

[connectors.datagen]
crate = "weir-connector-datagen"
[[connectors.datagen.releases]]
version = "1.1.0-1.0"
api-lines = ["1.0"]
status = "deprecated"
[[connectors.datagen.releases]]
version = "1.2.0-1.0"
api-lines = ["1.0", "1.1"]
status = "supported"

[connectors.kafka]
crate = "weir-connector-kafka"
[[connectors.kafka.releases]]
version = "1.0.0-0.9"
api-lines = ["0.9"]
status = "unsupported"
[[connectors.kafka.releases]]
version = "2.0.0-1.0"
api-lines = ["1.0", "1.1"]
status = "supported"
[[connectors.kafka.releases]]
version = "3.0.0-1.0"
api-lines = ["1.0"]
status = "unsupported"
[[connectors.kafka.releases]]
version = "3.1.2-1.0"
api-lines = ["1.0", "1.1"]
status = "supported"
[[connectors.kafka.releases]]
version = "3.1.2-1.1"
api-lines = ["1.1"]
status = "supported"
"#,
    );
    let summary = result.expect("a good tree passes");
    assert_eq!(
        summary,
        Summary {
            connectors: 2,
            releases: 7
        }
    );
    assert_eq!(
        summary.to_string(),
        "compat: 2 connectors, 7 releases checked, OK"
    );
}

#[test]
fn an_empty_tree_with_no_connectors_passes() {
    let tree = Tree::new();
    let result = tree.check("api-lines = [\"1.0\"]\n");
    assert_eq!(
        result,
        Ok(Summary {
            connectors: 0,
            releases: 0
        })
    );
}

#[test]
fn a_tree_without_a_connectors_dir_passes() {
    let tree = Tree::new();
    fs::remove_dir(tree.root().join("connectors")).expect("rmdir");
    assert!(tree.check("api-lines = [\"1.0\"]\n").is_ok());
}

#[test]
fn the_projects_own_matrix_is_valid() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().unwrap_or(manifest_dir);
    let result = super::check(root, &root.join("compat-matrix.toml"));
    assert!(result.is_ok(), "{result:#?}");
}

#[test]
fn a_workspace_dependency_without_version_uses_the_api_crate_version() {
    let tree = Tree::new();
    tree.write(
        "Cargo.toml",
        "[workspace.dependencies]\nweir-connector-api = { path = \"connector-api\" }\n",
    );
    tree.connector("datagen", "1.0.0-1.0");
    let matrix = one_release("1.0.0-1.0", r#"["1.0"]"#, "supported");
    assert!(tree.check(&matrix).is_ok());

    tree.api_crate("1.1.0");
    assert_errors!(
        tree.check(&matrix),
        [CompatError::ApiSuffixMismatch { dependency, via, .. }
            if *dependency == line(1, 1) && via.contains("is version 1.1.0")]
    );
}

#[test]
fn a_renamed_or_plain_string_dependency_is_understood() {
    let tree = Tree::new();
    tree.connector_with(
        "datagen",
        "1.0.0-1.0",
        r#"api = { package = "weir-connector-api", version = "1.0" }"#,
    );
    let matrix = one_release("1.0.0-1.0", r#"["1.0"]"#, "supported");
    assert!(tree.check(&matrix).is_ok());

    tree.connector_with("datagen", "1.0.0-1.0", r#"weir-connector-api = "^1.0.3""#);
    assert!(tree.check(&matrix).is_ok());
}

// ---- version form -----------------------------------------------------------------------------

#[test]
fn a_crate_version_not_in_the_form_is_an_error() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0");
    assert_errors!(
        tree.check(&one_release("1.0.0-1.0", r#"["1.0"]"#, "supported")),
        [CompatError::CrateVersionFormat { connector, version, manifest }
            if connector == "datagen"
                && version == "1.0.0"
                && manifest == Path::new("connectors/datagen/Cargo.toml")]
    );
}

#[test]
fn a_release_version_not_in_the_form_is_an_error() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.1-1.0");
    let mut matrix = one_release("1.0.1-1.0", r#"["1.0"]"#, "supported");
    matrix.push_str(
        "[[connectors.datagen.releases]]\nversion = \"1.0.0-1\"\napi-lines = [\"1.0\"]\n\
         status = \"deprecated\"\n",
    );
    assert_errors!(
        tree.check(&matrix),
        [CompatError::ReleaseVersionFormat { connector, version, matrix }
            if connector == "datagen"
                && version == "1.0.0-1"
                && matrix == Path::new("compat-matrix.toml")]
    );
}

// ---- the API dependency -----------------------------------------------------------------------

#[test]
fn a_suffix_that_disagrees_with_the_workspace_dependency_is_an_error() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.1");
    let errors = assert_errors!(
        tree.check(
            r#"api-lines = ["1.0", "1.1"]
[connectors.datagen]
crate = "weir-connector-datagen"
[[connectors.datagen.releases]]
version = "1.0.0-1.1"
api-lines = ["1.1"]
status = "supported"
"#
        ),
        [CompatError::ApiSuffixMismatch { connector, suffix, dependency, expected, .. }
            if connector == "datagen"
                && *suffix == line(1, 1)
                && *dependency == line(1, 0)
                && *expected == v("1.0.0-1.0")]
    );
    let message = errors[0].to_string();
    assert!(message.contains("workspace.dependencies"), "{message}");
    assert!(message.contains("\"1.0.0-1.0\""), "{message}");
}

#[test]
fn a_suffix_that_disagrees_with_a_direct_dependency_is_an_error() {
    let tree = Tree::new();
    tree.connector_with("datagen", "1.0.0-1.0", r#"weir-connector-api = "1.1""#);
    assert_errors!(
        tree.check(
            r#"api-lines = ["1.0", "1.1"]
[connectors.datagen]
crate = "weir-connector-datagen"
[[connectors.datagen.releases]]
version = "1.0.0-1.0"
api-lines = ["1.0", "1.1"]
status = "supported"
"#
        ),
        [CompatError::ApiSuffixMismatch { dependency, expected, .. }
            if *dependency == line(1, 1) && *expected == v("1.0.0-1.1")]
    );
}

#[test]
fn a_connector_without_the_api_dependency_is_an_error() {
    let tree = Tree::new();
    tree.write(
        "connectors/datagen/Cargo.toml",
        "[package]\nname = \"weir-connector-datagen\"\nversion = \"1.0.0-1.0\"\n\n\
         [dev-dependencies]\nweir-connector-api = { workspace = true }\n",
    );
    assert_errors!(
        tree.check(&one_release("1.0.0-1.0", r#"["1.0"]"#, "supported")),
        [CompatError::MissingApiDependency { connector, .. } if connector == "datagen"]
    );
}

#[test]
fn an_api_dependency_that_pins_no_line_is_an_error() {
    let tree = Tree::new();
    let matrix = one_release("1.0.0-1.0", r#"["1.0"]"#, "supported");
    tree.connector_with("datagen", "1.0.0-1.0", r#"weir-connector-api = ">=1.0""#);
    assert_errors!(
        tree.check(&matrix),
        [CompatError::ApiDependencyUnresolved { reason, .. } if reason.contains("range")]
    );

    tree.write("Cargo.toml", "[workspace]\nmembers = []\n");
    tree.connector("datagen", "1.0.0-1.0");
    assert_errors!(
        tree.check(&matrix),
        [CompatError::ApiDependencyUnresolved { reason, .. }
            if reason.contains("no [workspace.dependencies] entry")]
    );
}

// ---- crates versus matrix ---------------------------------------------------------------------

#[test]
fn a_connector_crate_missing_from_the_matrix_is_an_error() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.0");
    assert_errors!(
        tree.check("api-lines = [\"1.0\"]\n"),
        [CompatError::ConnectorNotInMatrix { connector, version, .. }
            if connector == "datagen" && version == "1.0.0-1.0"]
    );
}

#[test]
fn a_matrix_connector_without_a_crate_is_an_error() {
    let tree = Tree::new();
    assert_errors!(
        tree.check(&one_release("1.0.0-1.0", r#"["1.0"]"#, "supported")),
        [CompatError::ConnectorWithoutCrate { connector, hint, .. }
            if connector == "datagen" && hint.is_empty()]
    );

    // A misspelt table: both sides are reported, with a hint.
    tree.connector("datagem", "1.0.0-1.0");
    assert_errors!(
        tree.check(&one_release("1.0.0-1.0", r#"["1.0"]"#, "supported")),
        [CompatError::ConnectorNotInMatrix { connector, .. } if connector == "datagem", CompatError::ConnectorWithoutCrate { connector, hint, .. }
                if connector == "datagen" && hint.contains("datagem")]
    );
}

#[test]
fn a_crate_version_without_a_release_entry_is_an_error() {
    let tree = Tree::new();
    tree.connector("datagen", "1.1.0-1.0");
    let mut matrix = one_release("1.0.0-1.0", r#"["1.0"]"#, "deprecated");
    matrix.push_str(
        "[[connectors.datagen.releases]]\nversion = \"1.0.1-1.0\"\napi-lines = [\"1.0\"]\n\
         status = \"supported\"\n",
    );
    assert_errors!(
        tree.check(&matrix),
        [CompatError::CurrentVersionNotInMatrix { connector, version, .. }
            if connector == "datagen" && *version == v("1.1.0-1.0")]
    );
}

#[test]
fn package_and_crate_names_must_match_the_directory() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.0");
    tree.write(
        "connectors/datagen/Cargo.toml",
        "[package]\nname = \"weir-datagen\"\nversion = \"1.0.0-1.0\"\n\n[dependencies]\n\
         weir-connector-api = { workspace = true }\n",
    );
    let matrix = one_release("1.0.0-1.0", r#"["1.0"]"#, "supported")
        .replace("crate = \"weir-connector-datagen\"", "crate = \"datagen\"");
    assert_errors!(
        tree.check(&matrix),
        [CompatError::CrateNameMismatch { expected, found, .. }
                if expected == "weir-connector-datagen" && found == "weir-datagen", CompatError::MatrixCrateNameMismatch { expected, found, .. }
                if expected == "weir-connector-datagen" && found == "datagen"]
    );
}

#[test]
fn a_connector_dir_without_manifest_or_with_a_broken_one_is_an_error() {
    let tree = Tree::new();
    fs::create_dir_all(tree.root().join("connectors/empty")).expect("mkdir");
    tree.write("connectors/broken/Cargo.toml", "[package\nname = 1\n");
    tree.write("connectors/README.md", "files beside crates are ignored\n");
    assert_errors!(
        tree.check("api-lines = [\"1.0\"]\n"),
        [CompatError::ManifestInvalid { connector, message, .. }
                if connector == "broken" && message.contains("not valid TOML"), CompatError::MissingManifest { connector, .. } if connector == "empty", CompatError::ConnectorNotInMatrix { connector, .. } if connector == "broken"]
    );
}

// ---- API lines --------------------------------------------------------------------------------

#[test]
fn a_release_api_line_not_in_api_lines_is_an_error() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.0");
    assert_errors!(
        tree.check(&one_release(
            "1.0.0-1.0",
            r#"["1.0", "1.2", "one"]"#,
            "supported"
        )),
        [CompatError::UnknownApiLine { connector, release, api_line, .. }
                if connector == "datagen" && release == "1.0.0-1.0" && *api_line == line(1, 2), CompatError::InvalidReleaseApiLine { value, .. } if value == "one"]
    );
}

#[test]
fn a_retired_api_line_is_known_but_not_required() {
    let tree = Tree::new();
    tree.connector("datagen", "2.0.0-1.0");
    let matrix = r#"api-lines = ["1.0"]
retired-api-lines = ["0.9"]
[connectors.datagen]
crate = "weir-connector-datagen"
[[connectors.datagen.releases]]
version = "0.1.0-0.9"
api-lines = ["0.9"]
status = "unsupported"
[[connectors.datagen.releases]]
version = "1.0.0-0.9"
api-lines = ["0.9", "1.0"]
status = "supported"
[[connectors.datagen.releases]]
version = "2.0.0-1.0"
api-lines = ["1.0"]
status = "supported"
"#;
    assert!(tree.check(matrix).is_ok());
    assert_errors!(
        tree.check(&matrix.replace("retired-api-lines = [\"0.9\"]\n", "")),
        [CompatError::UnknownApiLine { release, .. } if release == "0.1.0-0.9", CompatError::UnknownApiLine { release, .. } if release == "1.0.0-0.9"]
    );
}

#[test]
fn the_top_level_api_lines_are_checked() {
    let tree = Tree::new();
    assert_errors!(
        tree.check("api-lines = []\n"),
        [CompatError::NoSupportedApiLines { .. }]
    );
    assert_errors!(
        tree.check(
            "api-lines = [\"1.1\", \"1.0\", \"v2\", \"1.2\"]\nretired-api-lines = [\"1.2\"]\n"
        ),
        [CompatError::ApiLinesOutOfOrder { list: "api-lines", line, previous, .. }
                if *line == self::line(1, 0) && *previous == self::line(1, 1), CompatError::InvalidApiLine { list: "api-lines", value, .. } if value == "v2", CompatError::ApiLineSupportedAndRetired { line, .. } if *line == self::line(1, 2)]
    );
}

// ---- release entries --------------------------------------------------------------------------

#[test]
fn an_unknown_status_is_an_error_with_a_suggestion() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.0");
    assert_errors!(
        tree.check(&one_release("1.0.0-1.0", r#"["1.0"]"#, "suported")),
        [CompatError::UnknownStatus { connector, release, status, hint, .. }
            if connector == "datagen"
                && release == "1.0.0-1.0"
                && status == "suported"
                && hint.contains("\"supported\"")]
    );
}

#[test]
fn duplicate_release_versions_are_an_error() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.0");
    let mut matrix = one_release("1.0.0-1.0", r#"["1.0"]"#, "supported");
    for _ in 0..2 {
        matrix.push_str(
            "[[connectors.datagen.releases]]\nversion = \"1.0.0-1.0\"\napi-lines = [\"1.0\"]\n\
             status = \"supported\"\n",
        );
    }
    assert_errors!(
        tree.check(&matrix),
        [CompatError::DuplicateRelease { connector, version, count: 3, .. }
            if connector == "datagen" && version == "1.0.0-1.0"]
    );
}

#[test]
fn unknown_keys_in_the_matrix_are_rejected_with_the_rest_still_reported() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0");
    let matrix = one_release("1.0.0-1.0", r#"["1.0"]"#, "supported").replace(
        "status = \"supported\"",
        "status = \"supported\"\nnotes = \"x\"",
    );
    let errors = assert_errors!(
        tree.check(&matrix),
        [CompatError::CrateVersionFormat { version, .. } if version == "1.0", CompatError::MatrixSyntax { message, .. }
                if message.contains("unknown field `notes`") && message.contains("line 10")]
    );
    assert!(errors[1].to_string().contains("compat-matrix.toml"));

    assert_errors!(
        tree.check("api-lines = [\"1.0\"]\napi-line = [\"1.0\"]\n"),
        [CompatError::CrateVersionFormat { .. }, CompatError::MatrixSyntax { message, .. } if message.contains("unknown field `api-line`")]
    );
}

#[test]
fn a_missing_matrix_is_a_read_error() {
    let tree = Tree::new();
    assert_errors!(
        check(tree.root(), &tree.root().join("nope.toml")),
        [CompatError::Read { path, .. } if path == Path::new("nope.toml")]
    );
}

// ---- support policy ---------------------------------------------------------------------------

#[test]
fn policy_a_the_newest_release_of_the_last_two_majors_is_supported() {
    let tree = Tree::new();
    tree.connector("datagen", "3.0.0-1.0");
    let release = |version: &str, status: &str| {
        format!(
            "[[connectors.datagen.releases]]\nversion = \"{version}\"\napi-lines = [\"1.0\"]\n\
             status = \"{status}\"\n"
        )
    };
    let head = "api-lines = [\"1.0\"]\n[connectors.datagen]\ncrate = \"weir-connector-datagen\"\n";
    let mut matrix = head.to_owned();
    for (version, status) in [
        ("1.0.0-1.0", "unsupported"), // an old major: anything goes
        ("2.0.0-1.0", "supported"),   // not the newest of major 2: anything goes
        ("2.1.0-1.0", "deprecated"),  // the newest of major 2: must be supported
        ("3.0.0-1.0", "supported"),
    ] {
        matrix.push_str(&release(version, status));
    }
    assert_errors!(
        tree.check(&matrix),
        [CompatError::NewestOfMajorNotSupported { release, major: 2, majors, status, .. }
            if *release == v("2.1.0-1.0")
                && majors == &vec![3, 2]
                && *status == Status::Deprecated]
    );

    // One source release built for two API lines: both entries count as the newest.
    let mut matrix = head.replace("[\"1.0\"]", "[\"1.0\", \"1.1\"]");
    matrix.push_str(&release("3.0.0-1.0", "supported").replace("[\"1.0\"]", "[\"1.0\", \"1.1\"]"));
    matrix.push_str(&release("3.0.0-1.1", "unsupported").replace("[\"1.0\"]", "[\"1.1\"]"));
    assert_errors!(
        tree.check(&matrix),
        [CompatError::NewestOfMajorNotSupported { release, major: 3, majors, .. }
            if *release == v("3.0.0-1.1") && majors == &vec![3]]
    );
}

#[test]
fn policy_b_a_supported_release_lists_every_supported_api_line() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.0");
    let matrix = one_release("1.0.0-1.0", r#"["1.0"]"#, "supported").replace(
        "api-lines = [\"1.0\"]\n\n",
        "api-lines = [\"1.0\", \"1.1\", \"1.2\"]\n\n",
    );
    assert_errors!(
        tree.check(&matrix),
        [CompatError::SupportedReleaseMissingApiLines { connector, release, missing, .. }
            if connector == "datagen"
                && release == "1.0.0"
                && missing == &vec![line(1, 1), line(1, 2)]]
    );
}

#[test]
fn policy_b_one_release_for_two_lines_and_a_release_that_needs_the_newer_line() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.0");
    tree.connector_with(
        "elasticsearch",
        "1.0.0-1.1",
        r#"weir-connector-api = { path = "../../connector-api", version = "1.1" }"#,
    );
    let matrix = r#"api-lines = ["1.0", "1.1"]
[connectors.datagen]
crate = "weir-connector-datagen"
[[connectors.datagen.releases]]
version = "1.0.0-1.0"
api-lines = ["1.0"]
status = "supported"
[[connectors.datagen.releases]]
version = "1.0.0-1.1"
api-lines = ["1.1"]
status = "supported"
[connectors.elasticsearch]
crate = "weir-connector-elasticsearch"
[[connectors.elasticsearch.releases]]
version = "1.0.0-1.1"
api-lines = ["1.1"]
status = "supported"
"#;
    // The two entries of datagen 1.0.0 cover both lines together; elasticsearch needs 1.1, so
    // 1.0 is not asked of it.
    assert!(tree.check(matrix).is_ok(), "{:?}", tree.check(matrix));

    // Without its 1.1 entry, datagen 1.0.0 misses line 1.1.
    let without = matrix.replace(
        "[[connectors.datagen.releases]]\nversion = \"1.0.0-1.1\"\napi-lines = [\"1.1\"]\nstatus = \"supported\"\n",
        "",
    );
    assert_errors!(
        tree.check(&without),
        [CompatError::SupportedReleaseMissingApiLines { connector, release, missing, .. }
            if connector == "datagen" && release == "1.0.0" && missing == &vec![line(1, 1)]]
    );
}

#[test]
fn a_release_built_on_a_newer_line_cannot_list_an_older_one() {
    let tree = Tree::new();
    tree.connector_with(
        "elasticsearch",
        "1.0.0-1.1",
        r#"weir-connector-api = { path = "../../connector-api", version = "1.1" }"#,
    );
    let matrix = r#"api-lines = ["1.0", "1.1"]
[connectors.elasticsearch]
crate = "weir-connector-elasticsearch"
[[connectors.elasticsearch.releases]]
version = "1.0.0-1.1"
api-lines = ["1.0", "1.1"]
status = "supported"
"#;
    let errors = assert_errors!(
        tree.check(matrix),
        [CompatError::ApiLineBelowSuffix { connector, release, line: listed, .. }
            if connector == "elasticsearch" && *release == v("1.0.0-1.1") && *listed == line(1, 0)]
    );
    assert!(errors[0].to_string().contains("cannot run on an older one"));
}

#[test]
fn policy_b_a_release_lists_the_api_line_of_its_suffix() {
    let tree = Tree::new();
    tree.connector("datagen", "1.1.0-1.0");
    let matrix = r#"api-lines = ["1.0", "1.1"]
[connectors.datagen]
crate = "weir-connector-datagen"
[[connectors.datagen.releases]]
version = "1.0.0-1.0"
api-lines = ["1.1"]
status = "deprecated"
[[connectors.datagen.releases]]
version = "1.1.0-1.0"
api-lines = ["1.0", "1.1"]
status = "supported"
"#;
    assert_errors!(
        tree.check(matrix),
        [CompatError::SuffixNotInReleaseApiLines { release, suffix, .. }
            if *release == v("1.0.0-1.0") && *suffix == line(1, 0)]
    );
}

#[test]
fn policy_c_the_current_crate_version_is_supported() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.0");
    let mut matrix = one_release("1.0.0-1.0", r#"["1.0"]"#, "deprecated");
    matrix.push_str(
        "[[connectors.datagen.releases]]\nversion = \"1.1.0-1.0\"\napi-lines = [\"1.0\"]\n\
         status = \"supported\"\n",
    );
    assert_errors!(
        tree.check(&matrix),
        [CompatError::CurrentReleaseNotSupported { connector, version, status, .. }
            if connector == "datagen"
                && *version == v("1.0.0-1.0")
                && *status == Status::Deprecated]
    );
}

// ---- everything at once -----------------------------------------------------------------------

#[test]
fn every_problem_is_reported_at_once() {
    let tree = Tree::new();
    tree.connector("datagen", "1.0.0-1.1");
    tree.connector("kafka", "2.0.0-1.0");
    let matrix = r#"api-lines = ["1.0", "1.1"]
[connectors.datagen]
crate = "weir-connector-datagen"
[[connectors.datagen.releases]]
version = "1.0.0-1.1"
api-lines = ["1.1"]
status = "deprecated"
[connectors.s3]
crate = "weir-connector-s3"
"#;
    assert_errors!(
        tree.check(matrix),
        [CompatError::ApiSuffixMismatch { connector, .. } if connector == "datagen", CompatError::ConnectorNotInMatrix { connector, .. } if connector == "kafka", CompatError::NewestOfMajorNotSupported { connector, .. } if connector == "datagen", CompatError::CurrentReleaseNotSupported { connector, .. } if connector == "datagen", CompatError::ConnectorWithoutCrate { connector, .. } if connector == "s3"]
    );
}

#[test]
fn releasing_for_an_older_line_a_crate_that_uses_a_newer_item_names_the_item() {
    let tree = Tree::new();
    tree.connector("search", "1.0.0-1.0");
    tree.write(
        "connectors/search/src/sink.rs",
        "// AsyncSink in a comment does not count: weir_connector_base::sink\n\
         use weir_connector_api::sink::SinkWriter;\n\
         use weir_connector_base::sink::AsyncSink;\n",
    );
    let two_lines = r#"api-lines = ["1.0", "1.1"]
[connectors.search]
crate = "weir-connector-search"
[[connectors.search.releases]]
version = "1.0.0-1.0"
api-lines = ["1.0"]
status = "supported"
[[connectors.search.releases]]
version = "1.0.0-1.1"
api-lines = ["1.1"]
status = "supported"
"#;
    let errors = assert_errors!(
        tree.check(two_lines),
        [CompatError::UsesNewerApiItem { connector, release, line: listed, item, at, .. }
            if connector == "search"
                && release == "1.0.0-1.0"
                && *listed == line(1, 0)
                && item.starts_with("AsyncSink")
                && at == "connectors/search/src/sink.rs:3"]
    );
    let message = errors[0].to_string();
    assert!(
        message.contains("release it for line 1.1 and newer only"),
        "{message}"
    );

    // Without the item, the same matrix passes.
    tree.write(
        "connectors/search/src/sink.rs",
        "use weir_connector_api::sink::SinkWriter;\n",
    );
    assert!(tree.check(two_lines).is_ok());
}
