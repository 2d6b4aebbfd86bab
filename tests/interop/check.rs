//! Checks on the receiver's output: every line is JSON with a known message type, names
//! belong to the traffic, and the incoming queries per (name, type) match what was sent.

use std::collections::{BTreeMap, BTreeSet};

use crate::traffic::{allowed_names, is_noisy, Key};
use crate::{case_id, lab_dir_path, Case};

/// The fields of one output line the checks use.
#[derive(Debug)]
pub struct Line {
    pub message: String,
    /// Lower case, with the trailing dot; `None` when the receiver printed "-".
    qname: Option<String>,
    qtype: String,
}

pub fn parse_output(text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| format!("output line {}: not JSON ({e}): {raw}", i + 1))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let message = field("message").ok_or(format!("line {}: no message: {raw}", i + 1))?;
        if !TYPES.contains(&message.as_str()) {
            return Err(format!("line {}: unknown message type: {raw}", i + 1));
        }
        let qname = field("query-name")
            .filter(|n| n != "-")
            .map(|n| n.to_ascii_lowercase());
        let qtype = field("query-type").unwrap_or_default();
        lines.push(Line {
            message,
            qname,
            qtype,
        });
    }
    if lines.is_empty() {
        return Err("the receiver printed nothing".into());
    }
    Ok(lines)
}

pub const TYPES: [&str; 14] = [
    "AUTH_QUERY",
    "AUTH_RESPONSE",
    "RESOLVER_QUERY",
    "RESOLVER_RESPONSE",
    "CLIENT_QUERY",
    "CLIENT_RESPONSE",
    "FORWARDER_QUERY",
    "FORWARDER_RESPONSE",
    "STUB_QUERY",
    "STUB_RESPONSE",
    "TOOL_QUERY",
    "TOOL_RESPONSE",
    "UPDATE_QUERY",
    "UPDATE_RESPONSE",
];

pub fn count_types(lines: &[Line]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l.message.clone()).or_insert(0) += 1;
    }
    m
}

/// Zones the lab serves, plus the local root hint's name: every upstream query stays inside.
pub const LAB_ZONES: [&str; 5] = [
    "example.test.",
    "lab.test.",
    "bind.test.",
    "dyn.test.",
    "lab-root.",
];

pub fn check_names(case: &Case, lines: &[Line]) -> Result<(), String> {
    let lab = lab_dir_path();
    let allowed = allowed_names(&lab)?;
    let upstream = |m: &str| m.starts_with("RESOLVER_") || m.starts_with("FORWARDER_");
    let mut bad: BTreeMap<String, u64> = BTreeMap::new();
    for l in lines {
        let ok = match &l.qname {
            // A response without a question section (FORMERR and the like) has no name.
            None => !l.message.ends_with("_QUERY"),
            Some(n) if upstream(&l.message) => {
                allowed.contains(n) || LAB_ZONES.iter().any(|z| n.ends_with(&format!(".{z}")))
            }
            Some(n) => allowed.contains(n),
        };
        if !ok {
            let key = format!("{} {:?}", l.message, l.qname);
            *bad.entry(key).or_insert(0) += 1;
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: names that traffic.sh never sent: {bad:?}",
            case_id(case)
        ))
    }
}

pub fn check_counts(
    case: &Case,
    lines: &[Line],
    want: &BTreeMap<Key, u64>,
    allowance: u64,
) -> Result<(), String> {
    let mut got: BTreeMap<Key, u64> = BTreeMap::new();
    for l in lines
        .iter()
        .filter(|l| case.counted.contains(&l.message.as_str()))
    {
        let key = (l.qname.clone().unwrap_or_default(), l.qtype.clone());
        *got.entry(key).or_insert(0) += 1;
    }
    let mut missing = 0;
    let mut surplus: Vec<String> = Vec::new();
    let keys: BTreeSet<&Key> = want.keys().chain(got.keys()).collect();
    for k in keys {
        let (w, g) = (
            want.get(k).copied().unwrap_or(0),
            got.get(k).copied().unwrap_or(0),
        );
        if is_noisy(case.server, k) {
            missing += w.saturating_sub(g);
        } else if g > w {
            surplus.push(format!("{} {}: {g} > {w}", k.0, k.1));
        } else {
            missing += w - g;
        }
    }
    let total_want: u64 = want.values().sum();
    let total_got: u64 = got.values().sum();
    eprintln!(
        "{}: {:?} counted {total_got}, traffic {total_want} (+ probes/retries), missing {missing}",
        case_id(case),
        case.counted
    );
    if !surplus.is_empty() {
        return Err(format!("more queries logged than sent: {surplus:?}"));
    }
    if missing > allowance {
        return Err(format!(
            "{missing} of {total_want} queries sent are missing from {:?} (allowed {allowance})",
            case.counted
        ));
    }
    Ok(())
}
