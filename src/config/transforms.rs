//! The `transforms:` keys: the top-level section (run before every output) and the same
//! section under each output entry (that output only), checked into [`FilteringConf`]s at
//! resolution (names turned into numbers, every value named in its error), then compiled
//! into the [`Chains`] the writer runs: list files are read here, at start-up, into
//! [`DomainSet`]s and [`IpSet`]s (an error names the key, the file and its line).
//!
//! Key names follow DNS-collector's `filtering` transform (docs/transforms.md), so its
//! users can move their configs over. Knows the written form and the transform floor's
//! compiled types; nothing of records or the writer.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::ConfigError;
use super::file::{FilteringFileSpec, NumOrName, TransformsSpec};
use super::privacy::EnrichConf;
use super::reducer::ReducerConf;
use crate::dns::types::{rcode_name, rtype_from_name};
use crate::dnstap::MESSAGE_TYPE_NAMES;
use crate::transform::domains::{DomainSet, Match};
use crate::transform::ipset::{Cidr, IpSet};
use crate::transform::{
    Chain, Chains, Filtering, FilteringSpec, Latency, LatencySpec, Reducer, Step,
};

/// Message type numbers a filter can hold (the filter's set is 64 bits wide).
const MESSAGE_TYPE_MAX: u64 = 63;
/// Largest header rcode (4 bits).
const HEADER_RCODE_MAX: u64 = 15;

/// Every transform section of a configuration, checked: the global one and one per output
/// (index-aligned with `Resolved::outputs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransformsConf {
    pub global: Option<FilteringConf>,
    pub outputs: Vec<Option<FilteringConf>>,
}

/// Which list a list file is, and so how its names match and what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    DropDomain,
    KeepDomain,
    DropFqdn,
    KeepFqdn,
    DropQueryIp,
    KeepQueryIp,
}

impl ListKind {
    fn key(self) -> &'static str {
        match self {
            ListKind::DropDomain => "drop-domain-file",
            ListKind::KeepDomain => "keep-domain-file",
            ListKind::DropFqdn => "drop-fqdn-file",
            ListKind::KeepFqdn => "keep-fqdn-file",
            ListKind::DropQueryIp => "drop-queryip-file",
            ListKind::KeepQueryIp => "keep-queryip-file",
        }
    }

    /// How a domain list's names match; `None` for an address list.
    fn mode(self) -> Option<Match> {
        match self {
            ListKind::DropDomain | ListKind::KeepDomain => Some(Match::Subdomains),
            ListKind::DropFqdn | ListKind::KeepFqdn => Some(Match::Exact),
            ListKind::DropQueryIp | ListKind::KeepQueryIp => None,
        }
    }

    fn keeps(self) -> bool {
        matches!(
            self,
            ListKind::KeepDomain | ListKind::KeepFqdn | ListKind::KeepQueryIp
        )
    }
}

/// One `filtering` section, checked: numbers in range, list paths made absolute (relative
/// to the config file's directory). The list files are read when it is compiled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilteringConf {
    /// Key path of the section (`transforms.filtering`, `outputs[1].forward.transforms.filtering`).
    pub key: String,
    pub message_types: Option<Vec<u32>>,
    pub drop_rcodes: Vec<u8>,
    pub keep_rcodes: Option<Vec<u8>>,
    pub drop_qtypes: Vec<u16>,
    pub keep_qtypes: Option<Vec<u16>>,
    pub lists: Vec<(ListKind, PathBuf)>,
    /// `drop-queryip` (inline; a `drop-queryip-file` adds to it when compiled).
    pub drop_queryip: Vec<Cidr>,
    /// `keep-queryip` (inline); `None` when neither it nor a file is given.
    pub keep_queryip: Option<Vec<Cidr>>,
    /// `downsample` (0 and 1: off).
    pub downsample: u32,
    /// `downsample-keep-rcodes`; `None`: the default list.
    pub downsample_keep_rcodes: Option<Vec<u8>>,
    /// The section's `latency` transform, checked by `config/latency.rs`.
    pub latency: Option<LatencySpec>,
    /// The section's `reducer:` (checked in `reducer.rs`), carried here so that one value
    /// per `transforms:` section flows to `compile`.
    pub reducer: Option<ReducerConf>,
    /// `normalize` and `user-privacy` of the same `transforms:` block (`privacy.rs`).
    pub enrich: Option<EnrichConf>,
}

/// Checks one `transforms:` section (`prefix` is its key path). `None` when it configures
/// nothing.
pub fn resolve(
    spec: Option<&TransformsSpec>,
    prefix: &str,
    file: Option<&Path>,
) -> Result<Option<FilteringConf>, ConfigError> {
    let latency = super::latency::resolve(spec.and_then(|s| s.latency.as_ref()), prefix, file)?;
    let reducer = super::reducer::resolve(spec.and_then(|s| s.reducer.as_ref()), prefix, file)?;
    let enrich = super::privacy::resolve(spec, prefix, file)?;
    let key = format!("{prefix}.filtering");
    let Some(f) = spec.and_then(|s| s.filtering.as_ref()) else {
        if latency.is_none() && reducer.is_none() && enrich.is_none() {
            return Ok(None);
        }
        return Ok(Some(FilteringConf {
            key,
            latency,
            reducer,
            enrich,
            ..FilteringConf::default()
        }));
    };
    let err = |name: &str, reason: String| ConfigError::new(file, format!("{key}.{name}"), reason);
    let base = file.and_then(Path::parent);

    let message_types = message_types(f).map_err(|(name, r)| err(name, r))?;
    let rcodes = |name: &str, v: &Option<Vec<NumOrName>>| -> Result<Option<Vec<u8>>, ConfigError> {
        v.as_ref()
            .map(|l| {
                non_empty(name, l).map_err(|r| err(name, r))?;
                l.iter()
                    .map(|x| rcode(x).map_err(|r| err(name, r)))
                    .collect()
            })
            .transpose()
    };
    let qtypes =
        |name: &str, v: &Option<Vec<NumOrName>>| -> Result<Option<Vec<u16>>, ConfigError> {
            v.as_ref()
                .map(|l| {
                    non_empty(name, l).map_err(|r| err(name, r))?;
                    l.iter()
                        .map(|x| qtype(x).map_err(|r| err(name, r)))
                        .collect()
                })
                .transpose()
        };
    let mut lists = Vec::new();
    for (kind, path) in [
        (ListKind::DropDomain, &f.drop_domain_file),
        (ListKind::KeepDomain, &f.keep_domain_file),
        (ListKind::DropFqdn, &f.drop_fqdn_file),
        (ListKind::KeepFqdn, &f.keep_fqdn_file),
        (ListKind::DropQueryIp, &f.drop_queryip_file),
        (ListKind::KeepQueryIp, &f.keep_queryip_file),
    ] {
        if let Some(p) = path {
            if p.as_os_str().is_empty() {
                return Err(err(kind.key(), "an empty path".into()));
            }
            let p = match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p.clone(),
            };
            lists.push((kind, p));
        }
    }
    let cidrs = |name: &str, v: &Option<Vec<String>>| -> Result<Option<Vec<Cidr>>, ConfigError> {
        v.as_ref()
            .map(|l| {
                if l.is_empty() {
                    return Err(err(
                        name,
                        format!("the list is empty (remove {name} to turn it off)"),
                    ));
                }
                l.iter()
                    .enumerate()
                    .map(|(i, x)| Cidr::parse(x).map_err(|r| err(&format!("{name}[{i}]"), r)))
                    .collect()
            })
            .transpose()
    };
    let downsample_keep_rcodes = match &f.downsample_keep_rcodes {
        None => None,
        Some(l) => {
            let name = "downsample-keep-rcodes";
            if f.downsample.is_none() {
                return Err(err(name, "without downsample it keeps nothing back".into()));
            }
            // Empty is allowed here: sample every rcode.
            let v = l
                .iter()
                .map(|x| rcode(x).map_err(|r| err(name, r)))
                .collect::<Result<Vec<u8>, _>>()?;
            Some(v)
        }
    };
    Ok(Some(FilteringConf {
        drop_queryip: cidrs("drop-queryip", &f.drop_queryip)?.unwrap_or_default(),
        keep_queryip: cidrs("keep-queryip", &f.keep_queryip)?,
        downsample: f.downsample.unwrap_or(0),
        downsample_keep_rcodes,
        message_types,
        drop_rcodes: rcodes("drop-rcodes", &f.drop_rcodes)?.unwrap_or_default(),
        keep_rcodes: rcodes("keep-rcodes", &f.keep_rcodes)?,
        drop_qtypes: qtypes("drop-qtypes", &f.drop_qtypes)?.unwrap_or_default(),
        keep_qtypes: qtypes("keep-qtypes", &f.keep_qtypes)?,
        lists,
        key,
        latency,
        reducer,
        enrich,
    }))
}

/// An empty list is refused: an empty keep list would keep nothing, an empty drop list is
/// a leftover.
fn non_empty(name: &str, l: &[NumOrName]) -> Result<(), String> {
    if l.is_empty() {
        return Err(format!("the list is empty (remove {name} to turn it off)"));
    }
    Ok(())
}

/// `message-types`, `log-queries` and `log-replies` together: the message types kept, or
/// `None` for all. Queries are the odd types, responses the even ones (dnstap.proto).
fn message_types(f: &FilteringFileSpec) -> Result<Option<Vec<u32>>, (&'static str, String)> {
    let queries = f.log_queries != Some(false);
    let replies = f.log_replies != Some(false);
    let listed = match &f.message_types {
        None => None,
        Some(l) => {
            non_empty("message-types", l).map_err(|r| ("message-types", r))?;
            let v = l
                .iter()
                .map(message_type)
                .collect::<Result<Vec<u32>, String>>()
                .map_err(|r| ("message-types", r))?;
            Some(v)
        }
    };
    if listed.is_none() && queries && replies {
        return Ok(None);
    }
    let all: Vec<u32> = listed.unwrap_or_else(|| (1..=MESSAGE_TYPE_MAX as u32).collect());
    let kept: Vec<u32> = all
        .into_iter()
        .filter(|t| if t % 2 == 1 { queries } else { replies })
        .collect();
    if kept.is_empty() {
        let key = if f.message_types.is_some() {
            "message-types"
        } else {
            "log-queries"
        };
        return Err((
            key,
            "with log-queries and log-replies, no message type is kept".into(),
        ));
    }
    Ok(Some(kept))
}

fn message_type(v: &NumOrName) -> Result<u32, String> {
    match v {
        NumOrName::Num(n) if (1..=MESSAGE_TYPE_MAX).contains(n) => Ok(*n as u32),
        NumOrName::Num(n) => Err(format!("message type {n} is not in 1..={MESSAGE_TYPE_MAX}")),
        NumOrName::Name(s) => MESSAGE_TYPE_NAMES
            .iter()
            .position(|m| m.eq_ignore_ascii_case(s.trim()))
            .map(|i| i as u32 + 1)
            .ok_or_else(|| {
                format!(
                    "unknown message type {s:?} (one of {}, or a number)",
                    MESSAGE_TYPE_NAMES.join(", ")
                )
            }),
    }
}

fn rcode(v: &NumOrName) -> Result<u8, String> {
    let n: u64 = match v {
        NumOrName::Num(n) => *n,
        NumOrName::Name(s) => {
            let s = s.trim();
            (0..4096u16)
                .find(|&c| rcode_name(c).is_some_and(|m| m.eq_ignore_ascii_case(s)))
                .map(u64::from)
                .ok_or_else(|| {
                    format!("unknown rcode {s:?} (NOERROR, SERVFAIL, NXDOMAIN, ..., or 0..=15)")
                })?
        }
    };
    if n > HEADER_RCODE_MAX {
        let shown = match v {
            NumOrName::Name(s) => format!("{s:?} ({n})"),
            NumOrName::Num(_) => n.to_string(),
        };
        return Err(format!(
            "rcode {shown} is an extended rcode: filters see the 4-bit header rcode (0..=15)"
        ));
    }
    Ok(n as u8)
}

fn qtype(v: &NumOrName) -> Result<u16, String> {
    match v {
        NumOrName::Num(n) => {
            u16::try_from(*n).map_err(|_| format!("qtype {n} is not in 0..=65535"))
        }
        NumOrName::Name(s) => rtype_from_name(s.trim())
            .ok_or_else(|| format!("unknown qtype {s:?} (A, AAAA, MX, ..., TYPE<n>, or a number)")),
    }
}

/// Reads the list files and compiles every section into the chains the writer runs. A
/// section that filters nothing compiles to an empty chain.
pub fn compile(conf: &TransformsConf, file: Option<&Path>) -> Result<Chains, ConfigError> {
    let chain = |c: &Option<FilteringConf>| -> Result<Arc<Chain>, ConfigError> {
        let steps = match c {
            None => Vec::new(),
            Some(c) => {
                let f = Filtering::new(&filtering_spec(c, file)?);
                let mut steps = Vec::new();
                if !f.is_noop() {
                    steps.push(Step::Filtering(f));
                }
                if let Some(l) = &c.latency {
                    steps.push(Step::Latency(Latency::new(l.clone())));
                }
                if let Some(e) = &c.enrich {
                    steps.extend(super::privacy::compile(e, file)?);
                }
                // Last: it folds what the other steps kept, as they changed it.
                if let Some(r) = &c.reducer {
                    steps.push(Step::Reducer(Reducer::new(&r.spec)));
                }
                steps
            }
        };
        Ok(Arc::new(Chain::new(steps)))
    };
    Ok(Chains {
        global: chain(&conf.global)?,
        outputs: conf.outputs.iter().map(chain).collect::<Result<_, _>>()?,
    })
}

/// One section's spec, its list files read.
fn filtering_spec(c: &FilteringConf, file: Option<&Path>) -> Result<FilteringSpec, ConfigError> {
    let mut spec = FilteringSpec {
        message_types: c.message_types.clone(),
        drop_rcodes: c.drop_rcodes.clone(),
        keep_rcodes: c.keep_rcodes.clone(),
        drop_qtypes: c.drop_qtypes.clone(),
        keep_qtypes: c.keep_qtypes.clone(),
        downsample: c.downsample,
        downsample_keep_rcodes: c.downsample_keep_rcodes.clone(),
        ..FilteringSpec::default()
    };
    let mut drop_ips = c.drop_queryip.clone();
    let mut keep_ips = c.keep_queryip.clone();
    for (kind, path) in &c.lists {
        let key = format!("{}.{}", c.key, kind.key());
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(file, &key, format!("{}: {e}", path.display())))?;
        let Some(mode) = kind.mode() else {
            let nets = IpSet::parse_list(&text).map_err(|(line, e)| ConfigError {
                file: file.map(Path::to_path_buf),
                key: key.clone(),
                line: None,
                reason: format!("{}: line {line}: {e}", path.display()),
            })?;
            if kind.keeps() && nets.is_empty() {
                return Err(empty_keep_list(file, key, path, *kind));
            }
            if kind.keeps() {
                keep_ips.get_or_insert_with(Vec::new).extend(nets);
            } else {
                drop_ips.extend(nets);
            }
            continue;
        };
        let set = DomainSet::parse(mode, &text).map_err(|e| ConfigError {
            file: file.map(Path::to_path_buf),
            key: key.clone(),
            line: None,
            reason: format!("{}: {e}", path.display()),
        })?;
        if kind.keeps() && set.is_empty() {
            return Err(empty_keep_list(file, key, path, *kind));
        }
        if kind.keeps() {
            spec.keep_domains.push(set);
        } else {
            spec.drop_domains.push(set);
        }
    }
    if !drop_ips.is_empty() {
        spec.drop_queryip = Some(IpSet::new(drop_ips));
    }
    spec.keep_queryip = keep_ips.map(IpSet::new);
    Ok(spec)
}

/// A keep list file that lists nothing (empty, or only comments) would keep no record at
/// all: refused, naming the file, rather than silently sending nothing.
fn empty_keep_list(file: Option<&Path>, key: String, path: &Path, kind: ListKind) -> ConfigError {
    ConfigError {
        file: file.map(Path::to_path_buf),
        key,
        line: None,
        reason: format!(
            "{}: the list is empty: it would keep no record at all (fill it, or remove {} \
             to keep everything)",
            path.display(),
            kind.key()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::FileConfig;

    fn res(yaml: &str) -> Result<Option<FilteringConf>, ConfigError> {
        let fc = FileConfig::parse(yaml)?;
        resolve(
            fc.transforms.as_ref(),
            "transforms",
            Some(Path::new("/etc/d/t.yaml")),
        )
    }

    #[test]
    fn names_and_numbers_become_numbers() {
        let c = res("transforms:\n  filtering:\n    message-types: [CLIENT_QUERY, auth_response, 6]\n    drop-rcodes: [NXDOMAIN, 2]\n    keep-qtypes: [A, aaaa, 65]\n    drop-domain-file: lists/good.txt\n    keep-fqdn-file: /abs/names.txt\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.key, "transforms.filtering");
        assert_eq!(c.message_types, Some(vec![5, 2, 6]));
        assert_eq!(c.drop_rcodes, vec![3, 2]);
        assert_eq!(c.keep_rcodes, None);
        assert_eq!(c.keep_qtypes, Some(vec![1, 28, 65]));
        assert_eq!(
            c.lists,
            vec![
                (ListKind::DropDomain, PathBuf::from("/etc/d/lists/good.txt")),
                (ListKind::KeepFqdn, PathBuf::from("/abs/names.txt")),
            ]
        );
        assert_eq!(res("transforms: {}\n").unwrap(), None);
    }

    #[test]
    fn log_queries_and_replies_pick_by_parity() {
        let c = res("transforms:\n  filtering:\n    log-queries: false\n")
            .unwrap()
            .unwrap();
        let t = c.message_types.unwrap();
        assert!(t.contains(&6) && !t.contains(&5), "{t:?}");
        let c = res("transforms:\n  filtering:\n    log-replies: false\n    message-types: [CLIENT_QUERY, CLIENT_RESPONSE]\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.message_types, Some(vec![5]));
        let e = res("transforms:\n  filtering:\n    log-replies: false\n    log-queries: false\n")
            .unwrap_err();
        assert_eq!(e.key, "transforms.filtering.log-queries", "{e}");
        let c = res("transforms:\n  filtering:\n    log-queries: true\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.message_types, None);
    }

    #[test]
    fn bad_values_are_named() {
        let e = res("transforms:\n  filtering:\n    keep-rcodes: [BADVERS]\n").unwrap_err();
        assert_eq!(e.key, "transforms.filtering.keep-rcodes", "{e}");
        assert!(
            e.reason.contains("4-bit header rcode") && e.reason.contains("BADVERS"),
            "{e}"
        );
        let e = res("transforms:\n  filtering:\n    drop-rcodes: [16]\n").unwrap_err();
        assert!(e.reason.contains("extended"), "{e}");
        let e = res("transforms:\n  filtering:\n    drop-rcodes: [NXDOMIAN]\n").unwrap_err();
        assert!(e.reason.contains("NXDOMIAN"), "{e}");
        let e = res("transforms:\n  filtering:\n    drop-qtypes: [AAAAA]\n").unwrap_err();
        assert_eq!(e.key, "transforms.filtering.drop-qtypes", "{e}");
        assert!(e.reason.contains("AAAAA"), "{e}");
        let e = res("transforms:\n  filtering:\n    drop-qtypes: [70000]\n").unwrap_err();
        assert!(e.reason.contains("70000"), "{e}");
        let e = res("transforms:\n  filtering:\n    message-types: [CLIENT_QUERI]\n").unwrap_err();
        assert_eq!(e.key, "transforms.filtering.message-types", "{e}");
        assert!(e.reason.contains("CLIENT_QUERI"), "{e}");
        let e = res("transforms:\n  filtering:\n    keep-rcodes: []\n").unwrap_err();
        assert!(e.reason.contains("empty"), "{e}");
        let e = res("transforms:\n  filtering:\n    keep-rcode: [0]\n").unwrap_err();
        assert_eq!(e.key, "transforms.filtering.keep-rcode", "{e}");
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn query_ip_lists_and_downsample() {
        let c = res("transforms:\n  filtering:\n    drop-queryip: [10.0.0.0/8, '::1']\n    keep-queryip-file: ips.txt\n    downsample: 20\n    downsample-keep-rcodes: []\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.drop_queryip.len(), 2);
        assert_eq!(c.keep_queryip, None);
        assert_eq!(
            c.lists,
            vec![(ListKind::KeepQueryIp, PathBuf::from("/etc/d/ips.txt"))]
        );
        assert_eq!((c.downsample, c.downsample_keep_rcodes), (20, Some(vec![])));
        let e = res("transforms:\n  filtering:\n    keep-queryip: [10.0.0.0/8, 10.0.0.0/40]\n")
            .unwrap_err();
        assert_eq!(e.key, "transforms.filtering.keep-queryip[1]", "{e}");
        let e =
            res("transforms:\n  filtering:\n    downsample-keep-rcodes: [NXDOMAIN]\n").unwrap_err();
        assert_eq!(e.key, "transforms.filtering.downsample-keep-rcodes", "{e}");
    }

    #[test]
    fn query_ip_files_are_read_and_their_errors_name_file_and_line() {
        let dir = std::env::temp_dir().join(format!("xform-ip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("ips.txt");
        std::fs::write(&good, "# clients\n192.0.2.0/24\n2001:db8::/32\n").unwrap();
        let bad = dir.join("bad-ips.txt");
        std::fs::write(&bad, "192.0.2.0/24\n\n192.0.2.300\n").unwrap();
        let conf = |p: &Path| TransformsConf {
            global: Some(FilteringConf {
                key: "transforms.filtering".into(),
                lists: vec![(ListKind::DropQueryIp, p.to_path_buf())],
                ..FilteringConf::default()
            }),
            outputs: vec![],
        };
        assert!(!compile(&conf(&good), None).unwrap().global.is_empty());
        let e = compile(&conf(&bad), None).unwrap_err();
        assert_eq!(e.key, "transforms.filtering.drop-queryip-file", "{e}");
        assert!(
            e.reason.contains("bad-ips.txt") && e.reason.contains("line 3"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn empty_keep_list_files_are_refused_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("xform-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.txt");
        std::fs::write(&empty, "# nothing yet\n\n").unwrap();
        let conf = |kind: ListKind| TransformsConf {
            global: Some(FilteringConf {
                key: "transforms.filtering".into(),
                lists: vec![(kind, empty.clone())],
                ..FilteringConf::default()
            }),
            outputs: vec![],
        };
        for kind in [
            ListKind::KeepQueryIp,
            ListKind::KeepDomain,
            ListKind::KeepFqdn,
        ] {
            let e = compile(&conf(kind), None).unwrap_err();
            assert_eq!(e.key, format!("transforms.filtering.{}", kind.key()), "{e}");
            assert!(
                e.reason.contains("empty.txt") && e.reason.contains("empty"),
                "{e}"
            );
        }
        // An empty drop list drops nothing: allowed (a feed may be empty today).
        for kind in [
            ListKind::DropQueryIp,
            ListKind::DropDomain,
            ListKind::DropFqdn,
        ] {
            assert!(compile(&conf(kind), None).is_ok(), "{kind:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn list_files_are_read_and_their_errors_name_file_and_line() {
        let dir = std::env::temp_dir().join(format!("xform-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.txt");
        std::fs::write(&good, "# known good\nexample.com\n").unwrap();
        let bad = dir.join("bad.txt");
        std::fs::write(&bad, "ok.example\nnot a name\n").unwrap();
        let conf = |p: &Path| TransformsConf {
            global: Some(FilteringConf {
                key: "transforms.filtering".into(),
                lists: vec![(ListKind::DropDomain, p.to_path_buf())],
                ..FilteringConf::default()
            }),
            outputs: vec![None],
        };
        let chains = compile(&conf(&good), None).unwrap();
        assert!(!chains.global.is_empty());
        assert!(chains.output(0).is_empty());
        let e = compile(&conf(&bad), Some(Path::new("c.yaml"))).unwrap_err();
        assert_eq!(e.key, "transforms.filtering.drop-domain-file", "{e}");
        assert!(
            e.reason.contains("bad.txt") && e.reason.contains("line 2"),
            "{e}"
        );
        let e = compile(&conf(&dir.join("missing.txt")), None).unwrap_err();
        assert!(e.reason.contains("missing.txt"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
