//! Diagnostics: problems found in a pipeline file, with the line and column they are about.

use std::fmt;
use std::ops::Range;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file is invalid.
    Error,
    /// The file is valid, but something deserves attention (a deprecated key).
    Warning,
}

/// One problem, at a position of the file when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong and what to do.
    pub message: String,
}

/// Maps byte offsets of a text to lines and columns.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    /// The index of `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            text: text.to_owned(),
        }
    }

    /// The 1-based line and (character) column of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(0, |s| s.chars().count());
        (line + 1, column + 1)
    }
}

/// The diagnostics of one file, in the order found.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    index: LineIndex,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collection for `text`.
    pub fn new(text: &str) -> Self {
        Diagnostics {
            index: LineIndex::new(text),
            items: Vec::new(),
        }
    }

    /// Adds an error at `span` (a byte range of the file), if known.
    pub fn error(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.push(Severity::Error, span, message.into());
    }

    /// Adds a warning at `span`.
    pub fn warning(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.push(Severity::Warning, span, message.into());
    }

    fn push(&mut self, severity: Severity, span: Option<Range<usize>>, message: String) {
        let position = span.map(|s| self.index.position(s.start));
        let diagnostic = Diagnostic {
            severity,
            position,
            message,
        };
        if !self.items.contains(&diagnostic) {
            self.items.push(diagnostic);
        }
    }

    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The number of errors.
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// The diagnostics sorted by position (unknown positions last), errors before warnings at
    /// one position.
    pub fn sorted(&self) -> Vec<Diagnostic> {
        let mut items = self.items.clone();
        items.sort_by_key(|d| (d.position.is_none(), d.position, d.severity));
        items
    }

    /// Renders every diagnostic as `file:line:column: error: message`, one per line.
    pub fn render(&self, file: &str) -> String {
        self.sorted()
            .iter()
            .map(|d| {
                Rendered {
                    file,
                    diagnostic: d,
                }
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Rendered<'a> {
    file: &'a str,
    diagnostic: &'a Diagnostic,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diagnostic;
        match d.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        let label = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}", d.message)
    }
}

/// The closest of `candidates` to `wanted`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = wanted.to_lowercase();
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    // A prefix of a longer name (`exponential` for `exponential-delay`) is a likely shorthand.
    if lower.chars().count() >= 4 {
        let mut prefixed = candidates.iter().filter(|c| c.starts_with(lower.as_str()));
        if let (Some(only), None) = (prefixed.next(), prefixed.next()) {
            return Some(only);
        }
    }
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (lower.chars().count().max(c.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `: did you mean `x`?` or nothing.
pub fn hint<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(wanted, candidates).map_or_else(String::new, |c| format!(": did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let index = LineIndex::new("ab\ncdé\nf");
        assert_eq!(index.position(0), (1, 1));
        assert_eq!(index.position(3), (2, 1));
        assert_eq!(index.position(7), (2, 4));
        assert_eq!(index.position(8), (3, 1));
    }

    #[test]
    fn suggestions_need_to_be_close() {
        assert_eq!(
            did_you_mean("paralelism", ["parallelism", "name"]),
            Some("parallelism")
        );
        assert_eq!(did_you_mean("zzz", ["parallelism", "name"]), None);
        assert_eq!(hint("nam", ["name"]), ": did you mean `name`?");
    }
}
