//! The items each API line added, and where a connector's sources use them: a release entry for
//! an older line whose crate uses a newer item cannot build there, and the check says which
//! item, where, and what to do (the build against that line's platform, `weir compat check
//! --run`, is the final word; this scan names the cause up front).

use std::fs;
use std::path::{Path, PathBuf};

use crate::version::ApiLine;

/// An item added in an API line: the word that marks its use in source, and how to name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiItem {
    /// The line that added it.
    pub line: ApiLine,
    /// The identifier or path whose appearance marks a use (matched as a whole word).
    pub marker: &'static str,
    /// How a message names it.
    pub name: &'static str,
}

const fn item(minor: u64, marker: &'static str, name: &'static str) -> ApiItem {
    ApiItem {
        line: ApiLine { major: 1, minor },
        marker,
        name,
    }
}

/// Every item added after line 1.0, by line.
pub const NEWER_ITEMS: &[ApiItem] = &[
    item(
        1,
        "weir_connector_base::sink",
        "AsyncSink (weir_connector_base::sink)",
    ),
    item(
        1,
        "weir_connector_base::lookup",
        "lookup caching (weir_connector_base::lookup)",
    ),
    item(
        1,
        "LookupFactory",
        "LookupFactory (weir_connector_api::factory)",
    ),
    item(
        1,
        "LookupProvider",
        "LookupProvider (weir_connector_api::factory)",
    ),
    item(1, "as_lookup", "ConnectorFactory::as_lookup"),
    item(
        1,
        "ConnectionCheck",
        "ConnectionCheck (weir_connector_api::check)",
    ),
    item(
        1,
        "as_connection_check",
        "ConnectorFactory::as_connection_check",
    ),
    item(
        1,
        "weir_connector_api::check",
        "connection checks (weir_connector_api::check)",
    ),
    item(1, "JobContext", "JobContext (weir_connector_api::factory)"),
    item(1, "create_sink_in_job", "SinkFactory::create_sink_in_job"),
    item(
        1,
        "create_source_in_job",
        "SourceFactory::create_source_in_job",
    ),
    item(1, "poll_progress", "SinkWriter::poll_progress"),
    item(
        1,
        "checkpoint_aborted",
        "checkpoint_aborted of enumerators, writers, committers and stages",
    ),
];

/// One use of a newer item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemUse {
    /// The item.
    pub item: ApiItem,
    /// The file.
    pub path: PathBuf,
    /// The 1-based line in it.
    pub line_no: usize,
}

/// The cfg a dual-line connector gates its 1.1 items with (set by its build script from the
/// API's `DEP_WEIR_CONNECTOR_API_LINE`; see `connector-base/build.rs`).
pub const LINE_1_1_CFG: &str = "cfg(weir_api_1_1)";

/// The first use of each item newer than `line` in the `.rs` files under `src`, in file order.
///
/// Code gated by `#[cfg(weir_api_1_1)]` does not count: the attribute's item (a `use`, a
/// method, an impl, a `mod x;` with its file) is skipped, and so is a file whose first
/// attribute is `#![cfg(weir_api_1_1)]`. Items are found by their braces, so a gated item
/// should not hold unbalanced braces in string literals.
pub fn uses_newer_than(src: &Path, line: ApiLine) -> Vec<ItemUse> {
    let mut files = Vec::new();
    collect_rs(src, &mut files);
    files.sort();
    // First the modules whose `mod x;` is gated: their files are gated as a whole.
    let mut gated_files: Vec<PathBuf> = Vec::new();
    for path in &files {
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        let mut after_gate = false;
        for code in text.lines().map(str::trim_start) {
            if code.starts_with("#[") && code.contains(LINE_1_1_CFG) {
                after_gate = true;
            } else if after_gate && !(code.starts_with("#[") || code.starts_with("//")) {
                if let Some(name) = mod_declaration(code) {
                    gated_files.extend(module_files(path, name));
                }
                after_gate = false;
            }
        }
    }
    let mut found: Vec<ItemUse> = Vec::new();
    for path in files {
        if gated_files.iter().any(|g| path.starts_with(g)) {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        if text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("#!["))
            .is_some_and(|l| l.contains(LINE_1_1_CFG))
        {
            continue;
        }
        let mut gate = Gate::Open;
        for (i, text_line) in text.lines().enumerate() {
            let code = text_line.trim_start();
            match gate {
                Gate::Open => {}
                Gate::Attribute => {
                    if code.starts_with("#[") || code.starts_with("//") || code.is_empty() {
                        continue;
                    }
                    let depth = brace_delta(code);
                    gate = if depth > 0 {
                        Gate::Item(depth)
                    } else if code.ends_with(';') || code.ends_with('}') {
                        Gate::Open
                    } else {
                        // A signature over several lines: wait for its brace or semicolon.
                        Gate::Item(0)
                    };
                    continue;
                }
                Gate::Item(depth) => {
                    let depth = depth + brace_delta(code);
                    gate = if depth <= 0 && (code.contains('}') || code.ends_with(';')) {
                        Gate::Open
                    } else {
                        Gate::Item(depth)
                    };
                    continue;
                }
            }
            if code.starts_with("//") {
                continue;
            }
            if code.starts_with("#[") && code.contains(LINE_1_1_CFG) {
                gate = Gate::Attribute;
                continue;
            }
            for item in NEWER_ITEMS.iter().filter(|it| it.line > line) {
                if found.iter().any(|f| f.item == *item) {
                    continue;
                }
                if contains_word(code, item.marker) {
                    found.push(ItemUse {
                        item: *item,
                        path: path.clone(),
                        line_no: i + 1,
                    });
                }
            }
        }
    }
    found
}

/// Where the scan stands relative to a `#[cfg(weir_api_1_1)]` attribute.
#[derive(Clone, Copy)]
enum Gate {
    /// Not in a gated item.
    Open,
    /// After the attribute, before its item.
    Attribute,
    /// Inside the gated item, at this brace depth.
    Item(i64),
}

fn brace_delta(code: &str) -> i64 {
    let opens = code.matches('{').count();
    let closes = code.matches('}').count();
    i64::try_from(opens).unwrap_or(0) - i64::try_from(closes).unwrap_or(0)
}

/// `x` of `mod x;` / `pub mod x;` / `pub(crate) mod x;`.
fn mod_declaration(code: &str) -> Option<&str> {
    let rest = code.strip_suffix(';')?;
    let at = rest.find("mod ")?;
    let name = rest[at + 4..].trim();
    (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some(name)
}

/// The files a `mod name;` in `parent` may live in.
fn module_files(parent: &Path, name: &str) -> Vec<PathBuf> {
    let dir = parent.parent().unwrap_or(Path::new(""));
    let stem = parent.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let base = if matches!(stem, "lib" | "main" | "mod") {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    vec![base.join(format!("{name}.rs")), base.join(name)]
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `text` holds `word` with no identifier character on either side.
fn contains_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_items_and_modules_do_not_count() {
        let dir = std::env::temp_dir().join(format!("weir-api-items-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("lib.rs"),
            "#[cfg(weir_api_1_1)]\nmod check;\n\
             #[cfg(weir_api_1_1)]\nuse weir_connector_api::factory::JobContext;\n\
             impl ConnectorFactory for F {\n\
                 /// Docs.\n    #[cfg(weir_api_1_1)]\n    fn as_connection_check(&self) -> X {\n\
                 if a { b } else { c }\n        Some(&C)\n    }\n\
                 #[cfg(weir_api_1_1)]\n    fn create_sink_in_job(\n        &self,\n    ) -> R {\n\
                 inner()\n    }\n}\n",
        )
        .unwrap();
        fs::write(
            dir.join("check.rs"),
            "use weir_connector_api::check::ConnectionCheck;\n",
        )
        .unwrap();
        let v10 = ApiLine { major: 1, minor: 0 };
        assert!(
            uses_newer_than(&dir, v10).is_empty(),
            "{:?}",
            uses_newer_than(&dir, v10)
        );
        // Ungated, the same uses count.
        fs::write(
            dir.join("lib.rs"),
            "mod check;\nfn f() { poll_progress(); }\n",
        )
        .unwrap();
        let found: Vec<&str> = uses_newer_than(&dir, v10)
            .iter()
            .map(|u| u.item.marker)
            .collect();
        assert_eq!(
            found,
            [
                "ConnectionCheck",
                "weir_connector_api::check",
                "poll_progress"
            ]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn whole_words_only() {
        assert!(contains_word(
            "fn checkpoint_aborted(&mut self)",
            "checkpoint_aborted"
        ));
        assert!(!contains_word(
            "fn notify_checkpoint_aborted(&mut self)",
            "checkpoint_aborted"
        ));
        assert!(contains_word(
            "use weir_connector_base::sink::AsyncSink;",
            "weir_connector_base::sink"
        ));
        assert!(!contains_word(
            "use weir_connector_base::sinks;",
            "weir_connector_base::sink"
        ));
    }
}
