//! Offline mode against the reference decoder: every capture of the lab goes through
//! `offline::run` with the JSON formatter, and each line is compared, message by message,
//! with what `dnstap -r FILE -y` (the golang dnstap CLI, an independent decoder) prints for
//! the same frame. The YAML output of a capture must parse into the same values as the
//! JSON output.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dnstap_receiver::filter::{Filter, FilterSpec};
use dnstap_receiver::format::{FormatKind, Formatter};
use dnstap_receiver::offline;
use support::lab::lab_dir;

fn captures() -> Vec<PathBuf> {
    let dir = lab_dir().join("captures");
    let mut files = Vec::new();
    for d in [dir.clone(), dir.join("wire")] {
        let entries = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("lab captures not found at {}: {e}", d.display()));
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "fstrm")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("big-"))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", dir.display());
    files
}

fn run(path: &Path, kind: FormatKind) -> (offline::OfflineStats, String) {
    let filter = Filter::compile(&FilterSpec::default()).unwrap();
    let mut out = Vec::new();
    let stats = offline::run(path, &filter, &Formatter::new(kind), &mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (stats, String::from_utf8(out).expect("output is UTF-8"))
}

/// What the reference printed for one message.
#[derive(Debug, Default)]
struct RefMsg {
    identity: Option<String>,
    mtype: String,
    query_address: Option<String>,
    query_port: Option<u64>,
    query_time: Option<String>,
    response_time: Option<String>,
    query_message: Vec<String>,
    response_message: Vec<String>,
}

/// Minimal reader of `dnstap -y` output: top-level `identity`, the `message` mapping's
/// scalars (indented two spaces) and its literal blocks (indented four).
fn reference(path: &Path) -> Vec<RefMsg> {
    let out = match Command::new("dnstap")
        .arg("-r")
        .arg(path)
        .arg("-y")
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run the reference decoder `dnstap` ({e}); install the package \
             golang-github-dnstap-golang-dnstap-cli"
        ),
    };
    assert!(
        out.status.success(),
        "dnstap -r {} -y failed",
        path.display()
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut msgs = Vec::new();
    let mut cur: Option<RefMsg> = None;
    let mut block: Option<bool> = None; // Some(true) = query_message, Some(false) = response
    for line in text.lines() {
        if line == "---" {
            msgs.extend(cur.take());
            block = None;
            continue;
        }
        let m = cur.get_or_insert_with(RefMsg::default);
        if let Some(rest) = line.strip_prefix("    ") {
            match block {
                Some(true) => m.query_message.push(rest.to_string()),
                Some(false) => m.response_message.push(rest.to_string()),
                None => {}
            }
            continue;
        }
        block = None;
        if let Some(v) = line.strip_prefix("identity: ") {
            m.identity = Some(v.trim_matches('"').to_string());
        } else if let Some(kv) = line.strip_prefix("  ") {
            let (k, v) = kv.split_once(':').unwrap_or((kv, ""));
            let v = v.trim();
            match k {
                "type" => m.mtype = v.to_string(),
                "query_address" => m.query_address = Some(v.to_string()),
                "query_port" => m.query_port = Some(v.parse().unwrap()),
                "query_time" => m.query_time = Some(v.trim_start_matches("!!timestamp ").into()),
                "response_time" => {
                    m.response_time = Some(v.trim_start_matches("!!timestamp ").into())
                }
                "query_message" => block = Some(true),
                "response_message" => block = Some(false),
                _ => {}
            }
        }
    }
    msgs.extend(cur.take());
    msgs
}

/// `2026-11-25 17:42:04.342688406` (fraction trimmed of trailing zeros, or absent) into our
/// form `2026-11-25T17:42:04.342688+00:00`.
fn ref_time_to_ours(t: &str) -> String {
    let (date_time, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut micros = frac.to_string();
    micros.truncate(6);
    while micros.len() < 6 {
        micros.push('0');
    }
    format!("{}.{}+00:00", date_time.replacen(' ', "T", 1), micros)
}

/// status and question (name, type) from a message block.
fn status_and_question(block: &[String]) -> (String, Option<(String, String)>) {
    let status = block[0]
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no status in {block:?}"))
        .to_string();
    let mut q = None;
    let mut in_question = false;
    for l in block {
        if l.starts_with(";; QUESTION SECTION:") {
            in_question = true;
        } else if in_question {
            if let Some(rest) = l.strip_prefix(';') {
                // `;name.\tIN\t TYPE`
                let mut parts = rest.split('\t');
                let name = parts.next().unwrap().to_string();
                let qtype = parts.next_back().unwrap().trim().to_string();
                q = Some((name, qtype));
            }
            break;
        }
    }
    (status, q)
}

#[test]
fn json_lines_agree_with_reference_decoder() {
    for path in captures() {
        let (stats, out) = run(&path, FormatKind::Json);
        let refs = reference(&path);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(stats.undecodable, 0, "{}", path.display());
        assert_eq!(
            stats.frames as usize,
            refs.len(),
            "frame count of {}",
            path.display()
        );
        assert_eq!(lines.len(), refs.len(), "line count of {}", path.display());
        for (i, (line, r)) in lines.iter().zip(&refs).enumerate() {
            let ctx = || format!("{} message #{i}: {line}\nreference: {r:?}", path.display());
            let j: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {}", ctx()));
            assert_eq!(j["message"], r.mtype.as_str(), "{}", ctx());
            assert_eq!(
                j["identity"],
                r.identity.as_deref().unwrap_or("-"),
                "{}",
                ctx()
            );
            assert_eq!(
                j["source-ip"],
                r.query_address.as_deref().unwrap_or("-"),
                "{}",
                ctx()
            );
            match r.query_port {
                Some(p) if p != 0 => assert_eq!(j["source-port"], p, "{}", ctx()),
                _ => assert_eq!(j["source-port"], "-", "{}", ctx()),
            }
            let is_query = r.mtype.ends_with("_QUERY");
            let (block, time) = if is_query {
                let b = if r.query_message.is_empty() {
                    &r.response_message
                } else {
                    &r.query_message
                };
                (b, r.query_time.as_ref().or(r.response_time.as_ref()))
            } else {
                let b = if r.response_message.is_empty() {
                    &r.query_message
                } else {
                    &r.response_message
                };
                (b, r.response_time.as_ref().or(r.query_time.as_ref()))
            };
            match time {
                Some(t) => assert_eq!(j["timestamp"], ref_time_to_ours(t).as_str(), "{}", ctx()),
                None => assert_eq!(j["timestamp"], "-", "{}", ctx()),
            }
            assert!(
                !block.is_empty(),
                "reference shows no DNS message: {}",
                ctx()
            );
            let (status, question) = status_and_question(block);
            assert_eq!(j["code"], status.as_str(), "{}", ctx());
            let (qname, qtype) = question.unwrap_or(("-".into(), "-".into()));
            assert_eq!(j["query-name"], qname.as_str(), "{}", ctx());
            assert_eq!(j["query-type"], qtype.as_str(), "{}", ctx());
        }
    }
}

#[derive(serde::Deserialize, Debug, PartialEq)]
#[serde(untagged)]
enum Value {
    Number(u64),
    Text(String),
}

#[test]
fn yaml_output_parses_to_the_json_values() {
    for name in ["bind-unix.fstrm", "wire/dnsdist-wire.fstrm"] {
        let path = lab_dir().join("captures").join(name);
        let (_, json) = run(&path, FormatKind::Json);
        let (_, yaml) = run(&path, FormatKind::Yaml);
        let from_json: Vec<BTreeMap<String, Value>> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // A capture holds more documents than the parser's default budget allows.
        let options = serde_saphyr::options! { budget: None };
        let from_yaml: Vec<BTreeMap<String, Value>> =
            serde_saphyr::from_multiple_with_options(&yaml, options)
                .unwrap_or_else(|e| panic!("{name}: YAML does not parse: {e}"));
        assert_eq!(from_yaml.len(), from_json.len(), "{name}");
        for (i, (y, j)) in from_yaml.iter().zip(&from_json).enumerate() {
            assert_eq!(y, j, "{name} document #{i}");
        }
    }
}

#[test]
fn text_lines_are_the_json_values() {
    let path = lab_dir().join("captures/wire/unbound-wire.fstrm");
    let (_, json) = run(&path, FormatKind::Json);
    let (_, text) = run(&path, FormatKind::Text);
    let text_lines: Vec<&str> = text.lines().collect();
    let json_lines: Vec<&str> = json.lines().collect();
    if std::env::var_os("SHOW_SAMPLE").is_some() {
        let (_, yaml) = run(&path, FormatKind::Yaml);
        for i in [0, 1, 200, 201] {
            println!("{}\n{}", text_lines[i], json_lines[i]);
        }
        println!("{}", &yaml[..yaml.match_indices("---").nth(2).unwrap().0]);
    }
    assert_eq!(text_lines.len(), json_lines.len());
    let order = [
        "timestamp",
        "identity",
        "message",
        "code",
        "source-ip",
        "source-port",
        "protocol",
        "transport",
        "length",
        "query-name",
        "query-type",
    ];
    for (t, j) in text_lines.iter().zip(json_lines) {
        let j: BTreeMap<String, Value> = serde_json::from_str(j).unwrap();
        let fields: Vec<&str> = t.split(' ').collect();
        assert_eq!(fields.len(), 11, "{t}");
        for (k, f) in order.iter().zip(fields) {
            let want = match &j[*k] {
                Value::Number(n) if *k == "length" => format!("{n}b"),
                Value::Number(n) => n.to_string(),
                Value::Text(s) => s.clone(),
            };
            assert_eq!(f, want, "{k} in {t}");
        }
    }
}

/// Sections of one DNS message as the reference prints them: record lines per section.
fn ref_sections(block: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for l in block {
        if let Some(s) = l
            .strip_prefix(";; ")
            .and_then(|s| s.strip_suffix(" SECTION:"))
        {
            cur = Some(s.to_ascii_lowercase());
            out.entry(s.to_ascii_lowercase()).or_default();
        } else if l.is_empty() || l.starts_with(';') {
            continue;
        } else if let Some(c) = &cur {
            out.get_mut(c).unwrap().push(l.clone());
        }
    }
    out
}

#[test]
fn full_json_and_yaml_agree_and_match_reference() {
    for path in captures() {
        let (_, json) = run(&path, FormatKind::JsonFull);
        let refs = reference(&path);
        // YAML parsing is slow in debug builds: the small wire captures and one big one.
        let yaml_too = path.to_string_lossy().contains("wire") || path.ends_with("nsd-unix.fstrm");
        let yaml = if yaml_too {
            run(&path, FormatKind::YamlFull).1
        } else {
            String::new()
        };
        let from_json: Vec<serde_json::Value> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if std::env::var_os("SHOW_FULL").is_some() {
            println!("{}", json.lines().nth(1).unwrap());
            if let Some(doc) = yaml.split("---").nth(2) {
                println!("{doc}");
            }
        }
        let options = serde_saphyr::options! { budget: None };
        let from_yaml: Vec<serde_json::Value> =
            serde_saphyr::from_multiple_with_options(&yaml, options)
                .unwrap_or_else(|e| panic!("{}: full YAML does not parse: {e}", path.display()));
        assert_eq!(from_json.len(), refs.len(), "{}", path.display());
        if yaml_too {
            assert_eq!(from_yaml, from_json, "{}", path.display());
        }
        for (i, (j, r)) in from_json.iter().zip(&refs).enumerate() {
            let ctx = || format!("{} #{i}: {j}", path.display());
            assert_eq!(j["message"]["type"], r.mtype.as_str(), "{}", ctx());
            for (key, block) in [
                ("query_message", &r.query_message),
                ("response_message", &r.response_message),
            ] {
                let m = &j["message"][key];
                if block.is_empty() {
                    assert!(m.is_null(), "{key} absent in reference: {}", ctx());
                    continue;
                }
                assert!(m.get("malformed").is_none(), "{}", ctx());
                let (status, _) = status_and_question(block);
                assert_eq!(m["header"]["rcode"], status.as_str(), "{}", ctx());
                // Record counts per section, OPT excluded, as the reference shows them.
                let sections = ref_sections(block);
                for s in ["answer", "authority", "additional"] {
                    let want = sections.get(s).map_or(0, |v| v.len());
                    let got = m[s].as_array().map_or(0, |a| a.len());
                    assert_eq!(got, want, "{s} of {key}: {}", ctx());
                    // Each record as the reference prints it: name, ttl, class, type, rdata.
                    for (k, line) in sections.get(s).into_iter().flatten().enumerate() {
                        let rr = &m[s][k];
                        let mut ours = format!(
                            "{}\t{}\t{}\t{}\t{}",
                            rr["name"].as_str().unwrap(),
                            rr["ttl"],
                            rr["class"].as_str().unwrap(),
                            rr["type"].as_str().unwrap(),
                            rr["rdata"].as_str().unwrap()
                        );
                        // Before empty rdata the reference prints a tab or not.
                        while ours.ends_with('\t') {
                            ours.pop();
                        }
                        let line = line.trim_end_matches('\t');
                        // The reference prints the UPDATE classes by number.
                        let mut line = line
                            .replace("\tCLASS255\t", "\tANY\t")
                            .replace("\tCLASS254\t", "\tNONE\t");
                        // An UPDATE deletion or prerequisite (class ANY/NONE, no rdata,
                        // RFC 2136 §2.4-2.5): the reference prints the type's fields at
                        // their zero values (`MX 0`), we print no rdata, as dig does; the
                        // header fields must still agree.
                        let class = rr["class"].as_str().unwrap();
                        if rr["rdata"] == "" && (class == "ANY" || class == "NONE") {
                            line = line.split('\t').take(4).collect::<Vec<_>>().join("\t");
                        }
                        assert!(rr.get("rdata_error").is_none(), "{}", ctx());
                        assert_eq!(ours, line, "{s} of {key}: {}", ctx());
                    }
                }
                let has_opt = block.iter().any(|l| l.starts_with(";; OPT PSEUDOSECTION"));
                assert_eq!(m.get("edns").is_some(), has_opt, "{}", ctx());
            }
        }
    }
}
