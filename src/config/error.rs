//! [`ConfigError`]: what every start-up check reports, naming the file (if any), the key
//! (`input-mode.local-port`, or a flag such as `-p`), the line when the YAML parser gave one,
//! and the reason. The YAML parser's line numbers become key paths in `file.rs`; this file
//! only holds and prints the result. Knows nothing of the keys themselves.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

/// A start-up error: which file (if any), which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    /// Dotted key path (`input-mode.local-port`), or a flag (`-p`), or empty when unknown.
    pub key: String,
    /// 1-based line of the file, when the YAML parser reported one (its reason already
    /// says `at line N, column M`; this is the number, for callers that point at the line).
    pub line: Option<usize>,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(
        file: Option<&Path>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.map(Path::to_path_buf),
            key: key.into(),
            line: None,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "config file {}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "config file {}: ", file.display())?,
            (None, _) => {}
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.reason)
    }
}
impl std::error::Error for ConfigError {}
