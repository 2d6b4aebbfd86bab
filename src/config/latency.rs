//! `transforms.latency` (top level, or under one output's `transforms:`): the keys as
//! written ([`LatencyFileSpec`]), checked into a [`LatencySpec`] (ranges, every value named
//! in its error). `config/transforms.rs` puts the step in the chain after filtering.
//!
//! ```yaml
//! transforms:
//!   latency: {measure-latency: true, unanswered-queries: false, queries-timeout: 2, max-pending: 1000000}
//! ```
//!
//! Knows the written form and the transform's spec; nothing of records or the writer.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use crate::transform::LatencySpec;

/// `queries-timeout` bounds, in seconds.
const TIMEOUT_MIN: f64 = 0.001;
const TIMEOUT_MAX: f64 = 3600.0;
/// `max-pending` bound: 16 M queries (about 900 MB of table, more with
/// `unanswered-queries`; docs/transforms.md gives the sizes).
pub const MAX_PENDING_LIMIT: u64 = 1 << 24;

/// `transforms.latency` as written (key names follow DNS-collector's `latency` transform).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LatencyFileSpec {
    /// Put `latency` (seconds) on responses; default true.
    pub measure_latency: Option<bool>,
    /// Emit a `TIMEOUT` record for each query not answered in time; default false.
    pub unanswered_queries: Option<bool>,
    /// Seconds a query waits for its response; default 2.
    pub queries_timeout: Option<f64>,
    /// Queries waiting at most; default 1000000.
    pub max_pending: Option<u64>,
}

/// Checks one `latency` section (`prefix` is the key path of its `transforms:`). `None`
/// when absent, or when it turns both measuring and reporting off (nothing to do).
pub fn resolve(
    spec: Option<&LatencyFileSpec>,
    prefix: &str,
    file: Option<&Path>,
) -> Result<Option<LatencySpec>, ConfigError> {
    let Some(s) = spec else {
        return Ok(None);
    };
    let err = |name: &str, reason: String| {
        ConfigError::new(file, format!("{prefix}.latency.{name}"), reason)
    };
    let d = LatencySpec::default();
    let timeout = match s.queries_timeout {
        None => d.timeout,
        Some(t) if t.is_finite() && (TIMEOUT_MIN..=TIMEOUT_MAX).contains(&t) => {
            Duration::from_secs_f64(t)
        }
        Some(t) => {
            return Err(err(
                "queries-timeout",
                format!("{t} is not a number of seconds in {TIMEOUT_MIN}..={TIMEOUT_MAX}"),
            ))
        }
    };
    let max_pending = match s.max_pending {
        None => d.max_pending,
        Some(n @ 1..=MAX_PENDING_LIMIT) => n as usize,
        Some(n) => {
            return Err(err(
                "max-pending",
                format!("{n} is not in 1..={MAX_PENDING_LIMIT}"),
            ))
        }
    };
    let measure = s.measure_latency.unwrap_or(d.measure);
    let unanswered = s.unanswered_queries.unwrap_or(d.unanswered);
    if !measure && !unanswered {
        return Ok(None);
    }
    Ok(Some(LatencySpec {
        measure,
        unanswered,
        timeout,
        max_pending,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::FileConfig;

    fn res(yaml: &str) -> Result<Option<LatencySpec>, ConfigError> {
        let fc = FileConfig::parse(yaml)?;
        let t = fc.transforms.unwrap_or_default();
        resolve(t.latency.as_ref(), "transforms", None)
    }

    #[test]
    fn defaults_and_the_issue_example() {
        assert_eq!(res("transforms: {}\n").unwrap(), None);
        assert_eq!(
            res("transforms:\n  latency: {}\n").unwrap(),
            Some(LatencySpec::default())
        );
        let s = res("transforms:\n  latency: {measure-latency: true, unanswered-queries: true, queries-timeout: 0.5, max-pending: 1000}\n")
            .unwrap()
            .unwrap();
        assert!(s.measure && s.unanswered);
        assert_eq!(s.timeout, Duration::from_millis(500));
        assert_eq!(s.max_pending, 1000);
        assert_eq!(
            res("transforms:\n  latency: {measure-latency: false}\n").unwrap(),
            None
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = res("transforms:\n  latency: {queries-timeout: 0}\n").unwrap_err();
        assert_eq!(e.key, "transforms.latency.queries-timeout", "{e}");
        let e = res("transforms:\n  latency: {max-pending: 0}\n").unwrap_err();
        assert_eq!(e.key, "transforms.latency.max-pending", "{e}");
        let e = res("transforms:\n  latency: {max-pending: 100000000}\n").unwrap_err();
        assert!(e.reason.contains("100000000"), "{e}");
        let e = res("transforms:\n  latency: {max-pendin: 3}\n").unwrap_err();
        assert!(e.to_string().contains("max-pendin"), "{e}");
    }
}
