//! What `traffic.sh` sends, rebuilt from the lab's query files: the names (for the name
//! check) and the incoming queries per (name, type) (for the count check).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every name traffic.sh and the lab scripts query, and all their ancestors ("." included):
/// resolvers ask for parents (QNAME minimisation, NS lookups).
pub fn allowed_names(lab: &Path) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    for (name, _) in query_file(&lab.join("queries/mix.txt"))? {
        names.insert(name);
    }
    for (name, _) in DIG_QUERIES {
        names.insert(fqdn(name));
    }
    names.insert("example.test.".into()); // run-server.sh readiness probe
    let updates =
        std::fs::read_to_string(lab.join("queries/updates.txt")).map_err(|e| e.to_string())?;
    for l in updates.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if let ["update" | "prereq", _, name, ..] = w.as_slice() {
            names.insert(fqdn(name));
        }
    }
    let mut all = BTreeSet::new();
    for n in names {
        let mut rest = n.as_str();
        all.insert(rest.to_string());
        while let Some((_, parent)) = rest.split_once('.') {
            rest = parent;
            all.insert(if rest.is_empty() {
                ".".to_string()
            } else {
                rest.to_string()
            });
        }
    }
    Ok(all)
}

pub type Key = (String, String);

/// The dig batch of traffic.sh (step 4), sent once over IPv4 and once over IPv6.
pub const DIG_QUERIES: [(&str, &str); 31] = [
    ("www.example.test", "A"),
    ("host0007.lab.test", "AAAA"),
    ("example.test", "ANY"),
    ("www.example.test", "A"),
    ("big.example.test", "TXT"),
    ("big.example.test", "TXT"),
    ("version.bind", "TXT"),
    ("www.example.test", "A"),
    ("blocked.example.test", "A"),
    ("n001.bind.test", "A"),
    ("n002.bind.test", "A"),
    ("n003.bind.test", "A"),
    ("n004.bind.test", "A"),
    ("n005.bind.test", "A"),
    ("n006.bind.test", "A"),
    ("n007.bind.test", "A"),
    ("n008.bind.test", "A"),
    ("n009.bind.test", "A"),
    ("n010.bind.test", "A"),
    ("n011.bind.test", "A"),
    ("n012.bind.test", "A"),
    ("n013.bind.test", "A"),
    ("n014.bind.test", "A"),
    ("n015.bind.test", "A"),
    ("n016.bind.test", "A"),
    ("n017.bind.test", "A"),
    ("n018.bind.test", "A"),
    ("n019.bind.test", "A"),
    ("n020.bind.test", "A"),
    ("bind.test", "SOA"),
    ("www.bind.test", "AAAA"),
];

pub fn fqdn(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n.ends_with('.') {
        n
    } else {
        n + "."
    }
}

pub fn query_file(path: &Path) -> Result<Vec<Key>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((fqdn(w.next()?), w.next()?.to_ascii_uppercase()))
        })
        .collect())
}

/// The incoming queries traffic.sh sends to `server`, per (name, type), rebuilt from its
/// steps with the lab's default sizes. Each dnsperf step's `sent=` in traffic.sh's log must
/// equal the lines the step uses, or the rebuild is wrong and the test says so.
pub fn expected_traffic(lab: &Path, server: &str, log: &str) -> Result<BTreeMap<Key, u64>, String> {
    let mix = query_file(&lab.join("queries/mix.txt"))?;
    let head = |n: usize| &mix[..n.min(mix.len())];
    let mut steps: Vec<(&str, &[Key])> = vec![
        ("udp4", &mix[..]),
        ("tcp4", head(300)),
        ("udp6+edns+do", head(200)),
        ("tcp6", head(50)),
    ];
    match server {
        "unbound" => steps.push(("dot4", head(200))),
        "kresd" | "dnsdist" => steps.extend([("dot4", head(200)), ("doh4", head(200))]),
        _ => {}
    }
    let mut want: BTreeMap<Key, u64> = BTreeMap::new();
    for (label, queries) in steps {
        let sent = reported_sent(log, server, label)
            .ok_or(format!("traffic.sh reported no `{label}` step:\n{log}"))?;
        if sent != queries.len() as u64 {
            return Err(format!(
                "traffic.sh {label}: sent={sent}, expected {}",
                queries.len()
            ));
        }
        for k in queries {
            *want.entry(k.clone()).or_insert(0) += 1;
        }
    }
    for (name, qtype) in DIG_QUERIES {
        *want.entry((fqdn(name), qtype.to_string())).or_insert(0) += 2;
    }
    if server == "bind" {
        // One UPDATE per `send`; its question is the zone's SOA.
        let updates =
            std::fs::read_to_string(lab.join("queries/updates.txt")).map_err(|e| e.to_string())?;
        let sends = updates.lines().filter(|l| l.trim() == "send").count() as u64;
        want.insert(("dyn.test.".into(), "SOA".into()), sends);
    }
    Ok(want)
}

/// `traffic SERVER LABEL: sent=N completed=...` from traffic.sh's log.
pub fn reported_sent(log: &str, server: &str, label: &str) -> Option<u64> {
    let prefix = format!("traffic {server} {label}: sent=");
    log.lines().find_map(|l| {
        let rest = &l[l.find(&prefix)? + prefix.len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Keys whose count varies between runs: checked only for reaching the expected count.
pub fn is_noisy(server: &str, key: &Key) -> bool {
    let (name, qtype) = (key.0.as_str(), key.1.as_str());
    (name == "example.test." && qtype == "SOA")
        || (name == "big.example.test." && qtype == "TXT")
        || (server == "bind" && qtype == "SOA" && name.ends_with(".dyn.test."))
}
