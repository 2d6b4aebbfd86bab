//! The `normalize` transform's public suffix (`tld`) and registered domain (`etld+1`) held
//! to an independent implementation of the Public Suffix List: Python's `tldextract`
//! (installed at test time into a venv, support::pyvenv), reading the same list file
//! (assets/publicsuffix/public_suffix_list.dat), whole and ICANN-only.
//!
//! - every qname of the lab captures, end to end: `-r` with a config, json-full, the
//!   `publicsuffix` key;
//! - tricky names (co.uk, github.io, wildcard and exception rules, IDN punycode, names not
//!   under any rule) and a name under every rule of the list, through the library.
//!
//! `tldextract` returns no suffix for a name whose last label no rule names; the PSL's
//! algorithm then applies its implicit `*` rule (the last label is the suffix), which the
//! oracle script applies itself.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use dnstap_receiver::transform::normalize::{QName, SuffixList};
use support::receiver::{TempDir, BIN};

const CHECK: &str = "publicsuffix";

fn list_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/publicsuffix/public_suffix_list.dat")
}

/// The oracle: reads names (one a line), prints `name<TAB>tld<TAB>etld+1` (empty when none).
const ORACLE: &str = r#"
import sys, tldextract
path, private = sys.argv[1], sys.argv[2] == "1"
ex = tldextract.TLDExtract(suffix_list_urls=["file://" + path], cache_dir=None,
                           include_psl_private_domains=private, fallback_to_snapshot=False)
for line in sys.stdin:
    n = line.strip()
    if not n:
        continue
    r = ex(n)
    labels = n.split(".")
    if r.suffix == "":
        # No rule names the last label: the implicit "*" rule.
        tld = labels[-1]
        e = ".".join(labels[-2:]) if len(labels) > 1 else ""
    else:
        tld = r.suffix
        e = (r.domain + "." + r.suffix) if r.domain else ""
    print(n + "\t" + tld + "\t" + e)
"#;

fn oracle(
    names: &BTreeSet<String>,
    private: bool,
) -> Option<Vec<(String, String, Option<String>)>> {
    let py = support::pyvenv::python(CHECK, "psl", &["tldextract==5.4.0"])?;
    let mut input = String::new();
    for n in names {
        input.push_str(n);
        input.push('\n');
    }
    let list = list_path();
    let out = support::pyvenv::run(
        &py,
        ORACLE,
        &[list.to_str().unwrap(), if private { "1" } else { "0" }],
        input.as_bytes(),
    );
    let v: Vec<_> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "oracle line {l:?}");
            (
                f[0].to_string(),
                f[1].to_string(),
                (!f[2].is_empty()).then(|| f[2].to_string()),
            )
        })
        .collect();
    assert_eq!(v.len(), names.len(), "the oracle answered every name");
    Some(v)
}

/// A query for `name` (dotted, no escapes) in wire form.
fn query(name: &str) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.').filter(|l| !l.is_empty()) {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

fn ours(list: &SuffixList, name: &str) -> (String, Option<String>) {
    let q = QName::of_message(&query(name)).unwrap();
    let s = list.suffix_labels(&q);
    let mut tld = Vec::new();
    q.write_text(q.len() - s, &mut tld);
    let etld1 = (q.len() > s).then(|| {
        let mut v = Vec::new();
        q.write_text(q.len() - s - 1, &mut v);
        String::from_utf8(v).unwrap()
    });
    (String::from_utf8(tld).unwrap(), etld1)
}

const TRICKY: &[&str] = &[
    "co.uk",
    "example.co.uk",
    "www.example.co.uk",
    "uk",
    "github.io",
    "foo.github.io",
    "a.b.github.io",
    "www.ck",
    "a.www.ck",
    "foo.ck",
    "b.foo.ck",
    "c.kobe.jp",
    "b.c.kobe.jp",
    "a.b.c.kobe.jp",
    "city.kobe.jp",
    "www.city.kobe.jp",
    "kobe.jp",
    "ide.kyoto.jp",
    "b.ide.kyoto.jp",
    "www.xn--85x722f.xn--55qx5d.cn",
    "xn--55qx5d.cn",
    "shishi.xn--fiqs8s",
    "xn--p1ai",
    "test.xn--p1ai",
    "www.test.xn--p1ai",
    "localhost",
    "host.lab.internal",
    "www.example.test",
    "example.com",
    "www.example.com",
    "a.b.c.compute.amazonaws.com",
    "x.s3.dualstack.us-east-1.amazonaws.com",
    "1.2.0.192.in-addr.arpa",
    "_dmarc.example.com",
    "x.appspot.com",
    "www.blogspot.co.uk",
    // Middle labels of a longer rule under a wildcard (`*.customer-oci.com` and
    // `*.oci.customer-oci.com`): the wildcard is not applied to them.
    "oci.customer-oci.com",
    "x.oci.customer-oci.com",
    "ex.futurecms.at",
    "svc.firenet.ch",
    "bzz.dapps.earth",
];

/// Names under every rule of the list: `x.RULE`, `a.b.BASE` for `*.BASE`, `x.RULE` for an
/// exception `!RULE`, with the Unicode rules in punycode as they are on the wire (the
/// oracle is asked for the same bytes).
fn names_from_rules(py_names: &mut BTreeSet<String>) {
    let text = std::fs::read_to_string(list_path()).unwrap();
    for line in text.lines() {
        let rule = line.split_whitespace().next().unwrap_or("");
        if rule.is_empty() || rule.starts_with("//") || !rule.is_ascii() {
            continue;
        }
        let name = if let Some(base) = rule.strip_prefix("*.") {
            format!("a.b.{base}")
        } else if let Some(ex) = rule.strip_prefix('!') {
            format!("x.{ex}")
        } else {
            format!("x.{rule}")
        };
        py_names.insert(name.to_ascii_lowercase());
    }
}

#[test]
fn tricky_names_and_every_rule_agree_with_tldextract() {
    let mut names: BTreeSet<String> = TRICKY.iter().map(|s| s.to_string()).collect();
    names_from_rules(&mut names);
    let text = std::fs::read_to_string(list_path()).unwrap();
    for (private, list) in [
        (true, SuffixList::parse(&text, false).unwrap()),
        (false, SuffixList::parse(&text, true).unwrap()),
    ] {
        let Some(want) = oracle(&names, private) else {
            return;
        };
        let mut bad = Vec::new();
        for (name, tld, etld1) in &want {
            let got = ours(&list, name);
            if got != (tld.clone(), etld1.clone()) {
                bad.push(format!(
                    "{name}: ours {got:?}, tldextract ({tld:?}, {etld1:?})"
                ));
            }
        }
        assert!(
            bad.is_empty(),
            "private={private}: {} of {} names differ:\n{}",
            bad.len(),
            want.len(),
            bad.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

/// `name` → (tld, etld+1) as the receiver printed them, over every capture.
fn receiver_suffixes(cfg: &Path) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for cap in support::lab::top_captures() {
        let o = Command::new(BIN)
            .arg("-c")
            .arg(cfg)
            .arg("-r")
            .arg(&cap)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}: {}",
            cap.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let m = &v["message"];
            let response = m["type"].as_str().unwrap_or("").ends_with("RESPONSE");
            let msg = if response && m.get("response_message").is_some() {
                &m["response_message"]
            } else if m.get("query_message").is_some() {
                &m["query_message"]
            } else {
                &m["response_message"]
            };
            let Some(name) = msg["question"][0]["name"].as_str() else {
                assert!(v.get("publicsuffix").is_none(), "no question, yet {line}");
                continue;
            };
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let ps = &v["publicsuffix"];
            out.push((
                name,
                ps["tld"].as_str().map(str::to_string),
                ps["etld+1"].as_str().map(str::to_string),
            ));
        }
    }
    out
}

#[test]
fn every_capture_qname_agrees_with_tldextract() {
    let dir = TempDir::new("psl-captures");
    for icann_only in [false, true] {
        let cfg = dir.path("c.yaml");
        std::fs::write(
            &cfg,
            format!(
                "output-format: {{json-full: true}}\ntransforms:\n  normalize: {{add-tld: true, add-etld1: true, icann-only: {icann_only}, psl-file: {}}}\n",
                list_path().display()
            ),
        )
        .unwrap();
        let got = receiver_suffixes(&cfg);
        assert!(got.len() > 1000, "only {} records with a qname", got.len());
        let names: BTreeSet<String> = got
            .iter()
            .map(|g| g.0.clone())
            .filter(|n| !n.is_empty())
            .collect();
        let Some(want) = oracle(&names, !icann_only) else {
            return;
        };
        let want: std::collections::BTreeMap<String, (String, Option<String>)> =
            want.into_iter().map(|(n, t, e)| (n, (t, e))).collect();
        for (name, tld, etld1) in &got {
            if name.is_empty() {
                assert_eq!((tld, etld1), (&None, &None), "the root has no suffix");
                continue;
            }
            let (wt, we) = &want[name];
            assert_eq!(tld.as_ref(), Some(wt), "{name} (icann-only {icann_only})");
            assert_eq!(etld1, we, "{name} (icann-only {icann_only})");
        }
    }
}
