//! Helpers for `/`-separated paths.

/// Joins a directory and a relative path with exactly one `/` between them. An empty `dir`
/// yields `rel`; an empty `rel` yields `dir`.
pub fn join(dir: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches('/');
    if dir.is_empty() {
        return rel.to_owned();
    }
    if rel.is_empty() {
        return dir.to_owned();
    }
    if dir.ends_with('/') {
        format!("{dir}{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

/// The last component of a path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Everything before the last `/` (empty if there is none).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// Whether a file name marks a hidden file: it starts with `.` or `_` (Flink's default filter).
pub fn is_hidden_name(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

/// Whether `path` lies in `dir` (or is `dir`).
pub fn is_under(path: &str, dir: &str) -> bool {
    if dir.is_empty() {
        return true;
    }
    let dir = dir.trim_end_matches('/');
    path == dir || path.starts_with(&format!("{dir}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_splits() {
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(join("/a/", "/b"), "/a/b");
        assert_eq!(join("", "b/c"), "b/c");
        assert_eq!(join("a", ""), "a");
        assert_eq!(file_name("/a/b/c.txt"), "c.txt");
        assert_eq!(parent("/a/b/c.txt"), "/a/b");
        assert_eq!(parent("/c.txt"), "/");
        assert_eq!(parent("c.txt"), "");
        assert!(is_hidden_name(".x") && is_hidden_name("_SUCCESS") && !is_hidden_name("x"));
        assert!(is_under("/a/b/c", "/a") && is_under("/a", "/a/") && !is_under("/ab", "/a"));
    }
}
