//! The `reducer:` key of a `transforms:` section (global or per output), as written
//! ([`ReducerFileSpec`], DNS-collector's key names) and checked ([`ReducerConf`]): the
//! interval in range, the table bounded, every `unique-fields` name known (the error lists
//! the names accepted). The compiled step is `transform::reducer::Reducer`.
//!
//! Knows the written form and the transform floor's spec; nothing of records or writers.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use crate::transform::reducer::{Field, ReducerSpec, DEFAULT_MAX_ENTRIES, DEFAULT_WATCH_INTERVAL};

/// Longest `watch-interval`, in seconds (an hour: held records are late by that much).
const WATCH_INTERVAL_MAX: f64 = 3600.0;
/// Largest `max-entries` (the table's index is 32 bits; ten million keys is already
/// gigabytes of held records).
const MAX_ENTRIES_MAX: u64 = 10_000_000;

/// `transforms.reducer`, as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReducerFileSpec {
    /// DNS-collector's switch; `false` turns the reducer off. Default: on (the section is
    /// there to be used).
    pub repetitive_traffic_detector: Option<bool>,
    /// Seconds a window lasts (default 5; fractions allowed).
    pub watch_interval: Option<f64>,
    /// The fields records must share to be folded together.
    pub unique_fields: Option<Vec<String>>,
    /// Keys a window holds before it is released early (default 100000).
    pub max_entries: Option<u64>,
}

/// One `reducer` section, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReducerConf {
    /// Key path of the section (`transforms.reducer`, `outputs[0].stdout.transforms.reducer`).
    pub key: String,
    pub spec: ReducerSpec,
}

/// Checks one `reducer:` section (`prefix` is the key path of its `transforms:`). `None`
/// when absent or turned off.
pub fn resolve(
    spec: Option<&ReducerFileSpec>,
    prefix: &str,
    file: Option<&Path>,
) -> Result<Option<ReducerConf>, ConfigError> {
    let Some(r) = spec else {
        return Ok(None);
    };
    let key = format!("{prefix}.reducer");
    let err = |name: &str, reason: String| ConfigError::new(file, format!("{key}.{name}"), reason);
    if r.repetitive_traffic_detector == Some(false) {
        return Ok(None);
    }
    let watch_interval = match r.watch_interval {
        None => DEFAULT_WATCH_INTERVAL,
        Some(s) if s > 0.0 && s <= WATCH_INTERVAL_MAX => Duration::from_secs_f64(s),
        Some(s) => {
            return Err(err(
                "watch-interval",
                format!("{s} is not in (0, {WATCH_INTERVAL_MAX}] seconds"),
            ))
        }
    };
    let max_entries = match r.max_entries {
        None => DEFAULT_MAX_ENTRIES,
        Some(n) if (1..=MAX_ENTRIES_MAX).contains(&n) => n as usize,
        Some(n) => {
            return Err(err(
                "max-entries",
                format!("{n} is not in 1..={MAX_ENTRIES_MAX}"),
            ))
        }
    };
    let unique_fields = match &r.unique_fields {
        None => Field::DEFAULT.to_vec(),
        Some(l) if l.is_empty() => {
            return Err(err(
                "unique-fields",
                "the list is empty (every record would be one key; remove it for the default)"
                    .into(),
            ))
        }
        Some(l) => l
            .iter()
            .enumerate()
            .map(|(i, n)| {
                Field::from_name(n).ok_or_else(|| {
                    let known: Vec<&str> =
                        Field::ALL.iter().flat_map(|f| f.names()).copied().collect();
                    err(
                        &format!("unique-fields[{i}]"),
                        format!("unknown field {n:?} (one of {})", known.join(", ")),
                    )
                })
            })
            .collect::<Result<Vec<Field>, ConfigError>>()?,
    };
    Ok(Some(ReducerConf {
        key,
        spec: ReducerSpec {
            watch_interval,
            max_entries,
            unique_fields,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::FileConfig;

    fn res(yaml: &str) -> Result<Option<ReducerConf>, ConfigError> {
        let fc = FileConfig::parse(yaml)?;
        resolve(
            fc.transforms.as_ref().and_then(|t| t.reducer.as_ref()),
            "transforms",
            None,
        )
    }

    #[test]
    fn defaults_and_dns_collector_names() {
        let c = res("transforms:\n  reducer:\n    repetitive-traffic-detector: true\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.key, "transforms.reducer");
        assert_eq!(c.spec, ReducerSpec::default());
        let c = res("transforms:\n  reducer:\n    watch-interval: 0.5\n    max-entries: 10\n    unique-fields: [dns.qname, query-ip]\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.spec.watch_interval, Duration::from_millis(500));
        assert_eq!(c.spec.max_entries, 10);
        assert_eq!(c.spec.unique_fields, vec![Field::Qname, Field::QueryIp]);
        assert_eq!(
            res("transforms:\n  reducer:\n    repetitive-traffic-detector: false\n").unwrap(),
            None
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = res("transforms:\n  reducer:\n    watch-interval: 0\n").unwrap_err();
        assert_eq!(e.key, "transforms.reducer.watch-interval", "{e}");
        let e = res("transforms:\n  reducer:\n    max-entries: 0\n").unwrap_err();
        assert_eq!(e.key, "transforms.reducer.max-entries", "{e}");
        let e = res("transforms:\n  reducer:\n    unique-fields: [qname, qnam]\n").unwrap_err();
        assert_eq!(e.key, "transforms.reducer.unique-fields[1]", "{e}");
        assert!(
            e.reason.contains("qnam") && e.reason.contains("dns.qname"),
            "{e}"
        );
        let e = res("transforms:\n  reducer:\n    unique-fields: []\n").unwrap_err();
        assert!(e.reason.contains("empty"), "{e}");
        let e = res("transforms:\n  reducer:\n    qname-plus-one: true\n").unwrap_err();
        assert!(e.key.contains("qname-plus-one"), "{e}");
    }
}
