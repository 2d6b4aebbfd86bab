//! Decodes every message of the lab's real captures (bind, dnsdist, nsd, unbound over every
//! transport) three ways and holds them to each other: `Record::decode` (quick-protobuf),
//! `Record::from_views` (the lazy views), and the reference decoder, the `dnstap` CLI
//! (`dnstap -r FILE -y`), whose YAML is parsed here just enough to compare the metadata and
//! the question name. Frames come from the crate's own Frame Streams decoder.
//!
//! The lab is `<repo>/lab` (`support::lab`); it is only read.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dnstap_receiver::dnstap::{family_name, message_type_name, protocol_name, DnstapView};
use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};
use dnstap_receiver::record::{write_ip, Record, Timestamp};
use support::lab::lab_dir;

fn captures() -> Vec<PathBuf> {
    let dir = lab_dir().join("captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("lab captures at {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "fstrm"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.fstrm in {}", dir.display());
    files
}

/// The data frames of a Frame Streams file, through the crate's own decoder (a capture
/// file is a unidirectional stream: START, data frames, STOP).
fn data_frames(file: &[u8]) -> Vec<&[u8]> {
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &file[pos..];
        let step = decoder
            .decode(rest, &mut reply)
            .expect("lab captures are valid Frame Streams");
        pos += step.consumed;
        match step.event {
            Event::Data { payload } => frames.push(&rest[payload]),
            Event::Control => {}
            Event::Finished => break,
            Event::NeedMore => panic!("capture ends inside a frame at {pos}"),
        }
    }
    assert_eq!(pos, file.len(), "bytes after STOP");
    assert!(reply.is_empty(), "a unidirectional stream needs no reply");
    frames
}

/// What the `dnstap` CLI shows of one message, as text.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shown {
    fields: BTreeMap<String, String>,
    /// Question name of each dumped DNS message, by block ("query_message", ...).
    qnames: BTreeMap<String, String>,
}

fn reference_decode(file: &Path) -> Vec<Shown> {
    let output = match Command::new("dnstap")
        .arg("-r")
        .arg(file)
        .arg("-y")
        .env("TZ", "UTC")
        .output()
    {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run the reference decoder `dnstap` ({e}): install the Debian package \
             golang-github-dnstap-golang-dnstap-cli (CI installs it)"
        ),
    };
    assert!(
        output.status.success(),
        "dnstap -r {} -y failed: {:?}",
        file.display(),
        output
    );
    let text = String::from_utf8(output.stdout).expect("dnstap -y prints UTF-8");
    text.split("---\n")
        .filter(|doc| !doc.trim().is_empty())
        .map(parse_yaml_doc)
        .collect()
}

/// Keeps the top-level scalars and the scalars directly under `message:`; skips the
/// multi-line DNS message dumps (deeper indentation).
fn parse_yaml_doc(doc: &str) -> Shown {
    let mut shown = Shown::default();
    let mut block = String::new();
    let mut in_question = false;
    for line in doc.lines() {
        let (prefix, body) = if let Some(body) = line.strip_prefix("  ") {
            if let Some(dump) = body.strip_prefix("  ") {
                // Inside a DNS message dump: the line after ";; QUESTION SECTION:" is
                // ";NAME<TAB>CLASS<TAB> TYPE".
                if in_question {
                    let name = dump
                        .trim_start_matches(';')
                        .split('\t')
                        .next()
                        .unwrap_or("");
                    shown.qnames.insert(block.clone(), name.to_string());
                }
                in_question = dump == ";; QUESTION SECTION:";
                continue;
            }
            in_question = false;
            if let Some(key) = body.strip_suffix(": |") {
                block = key.to_string();
            }
            ("message.", body)
        } else {
            ("", line)
        };
        let Some((key, value)) = body.split_once(": ") else {
            continue;
        };
        if value == "|" {
            continue;
        }
        shown
            .fields
            .insert(format!("{prefix}{key}"), unquote(value));
    }
    shown
}

/// Go `%q` strings as the CLI prints them: only the escapes the lab's identities can need.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_string();
    };
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// Go's `!!timestamp 2006-01-02 15:04:05.999999999` (UTC) as seconds and nanoseconds.
fn timestamp_text(t: Timestamp) -> String {
    let days = (t.sec / 86_400) as i64;
    let secs = t.sec % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "!!timestamp {y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if t.nsec != 0 {
        let frac = format!("{:09}", t.nsec);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A wire-format name as the CLI prints it (lab zones are plain letters, digits, hyphens).
fn name_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = wire;
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            break;
        }
        let (label, tail) = tail.split_at(usize::from(len));
        out.push_str(&String::from_utf8_lossy(label));
        out.push('.');
        rest = tail;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

fn ip_text(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    write_ip(bytes, &mut out);
    String::from_utf8(out).unwrap()
}

/// What our record shows, in the CLI's terms.
fn our_fields(r: &Record<'_>) -> Shown {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        f.insert(k.to_string(), v);
    };
    if let Some(kind) = r.kind {
        put(
            "type",
            if kind == 1 {
                "MESSAGE".into()
            } else {
                kind.to_string()
            },
        );
    }
    if let Some(v) = r.identity {
        put("identity", String::from_utf8_lossy(v).into_owned());
    }
    if let Some(v) = r.version {
        put("version", String::from_utf8_lossy(v).into_owned());
    }
    let named = |v: u32, name: Option<&str>| name.map_or_else(|| v.to_string(), str::to_string);
    if let Some(t) = r.message_type {
        put("message.type", named(t, message_type_name(t)));
    }
    if let Some(v) = r.socket_family {
        put("message.socket_family", named(v, family_name(v)));
    }
    if let Some(v) = r.socket_protocol {
        put("message.socket_protocol", named(v, protocol_name(v)));
    }
    if let Some(v) = r.query_address {
        put("message.query_address", ip_text(v));
    }
    if let Some(v) = r.response_address {
        put("message.response_address", ip_text(v));
    }
    if let Some(v) = r.query_port {
        put("message.query_port", v.to_string());
    }
    if let Some(v) = r.response_port {
        put("message.response_port", v.to_string());
    }
    if let Some(v) = r.query_zone {
        put("message.query_zone", name_text(v));
    }
    if let Some(t) = r.query_time {
        put("message.query_time", timestamp_text(t));
    }
    if let Some(t) = r.response_time {
        put("message.response_time", timestamp_text(t));
    }
    Shown {
        fields: f,
        qnames: BTreeMap::new(),
    }
}

/// Field-by-field equality of the two builders (`dns` is compared by the dns tests).
fn assert_same(a: &Record<'_>, b: &Record<'_>, at: &str) {
    let pairs = [
        (
            format!("{:?}", (a.identity, a.version, a.extra, a.kind)),
            format!("{:?}", (b.identity, b.version, b.extra, b.kind)),
        ),
        (
            format!(
                "{:?}",
                (
                    a.message_type,
                    a.socket_family,
                    a.socket_protocol,
                    a.http_protocol
                )
            ),
            format!(
                "{:?}",
                (
                    b.message_type,
                    b.socket_family,
                    b.socket_protocol,
                    b.http_protocol
                )
            ),
        ),
        (
            format!(
                "{:?}",
                (
                    a.query_address,
                    a.response_address,
                    a.query_port,
                    a.response_port
                )
            ),
            format!(
                "{:?}",
                (
                    b.query_address,
                    b.response_address,
                    b.query_port,
                    b.response_port
                )
            ),
        ),
        (
            format!(
                "{:?}",
                (a.query_time, a.response_time, a.query_zone, a.policy)
            ),
            format!(
                "{:?}",
                (b.query_time, b.response_time, b.query_zone, b.policy)
            ),
        ),
        (
            format!("{:?}", (a.query_message, a.response_message)),
            format!("{:?}", (b.query_message, b.response_message)),
        ),
    ];
    for (x, y) in pairs {
        assert_eq!(x, y, "decode and from_views differ at {at}");
    }
}

#[test]
fn every_capture_matches_the_dnstap_cli() {
    let (mut total, mut qnames) = (0, 0);
    for path in captures() {
        let file = std::fs::read(&path).unwrap();
        let frames = data_frames(&file);
        let reference = reference_decode(&path);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            frames.len(),
            reference.len(),
            "{name}: message count differs from dnstap -r"
        );
        for (i, (payload, shown)) in frames.iter().zip(&reference).enumerate() {
            let at = format!("{name} message #{i}");
            let decoded =
                Record::decode(payload).unwrap_or_else(|e| panic!("{at}: decode failed: {e}"));
            let view = DnstapView::parse(payload).unwrap_or_else(|e| panic!("{at}: view: {e}"));
            let message = view
                .message()
                .map(|m| m.unwrap_or_else(|e| panic!("{at}: {e}")));
            let viewed = Record::from_views(&view, message.as_ref())
                .unwrap_or_else(|e| panic!("{at}: from_views failed: {e}"));
            assert_same(&decoded, &viewed, &at);
            let ours = our_fields(&decoded);
            assert_eq!(ours.fields, shown.fields, "{at}: differs from dnstap -r -y");
            // The DNS message the builders chose, and its question name, against the CLI's
            // dump of that same message.
            let block = if decoded.dns_message() == decoded.query_message {
                "query_message"
            } else {
                "response_message"
            };
            let qname_decoded = qname(&decoded, &at);
            assert_eq!(
                qname_decoded,
                qname(&viewed, &at),
                "{at}: builders differ on dns"
            );
            assert_eq!(
                Some(&qname_decoded),
                shown.qnames.get(block),
                "{at}: {block} qname"
            );
            qnames += 1;
        }
        total += frames.len();
    }
    assert!(
        total > 10_000,
        "the lab captures hold more than {total} messages"
    );
    assert_eq!(
        qnames, total,
        "every lab message carries a DNS message with a question"
    );
}

/// The question name of the record's DNS message, in presentation form.
fn qname(r: &Record<'_>, at: &str) -> String {
    let view = match &r.dns {
        Some(Ok(view)) => view,
        other => panic!("{at}: the lab's DNS messages parse: {other:?}"),
    };
    let question = view
        .question
        .as_ref()
        .unwrap_or_else(|| panic!("{at}: no question"));
    let mut out = Vec::new();
    question.name.write_presentation(&mut out);
    String::from_utf8(out).expect("presentation form is ASCII")
}

#[test]
fn yaml_helpers_read_what_the_cli_prints() {
    let doc = "type: MESSAGE\nidentity: \"a\\\"b\"\nmessage:\n  type: AUTH_QUERY\n  \
               query_message: |\n    ;; opcode: QUERY\n  query_port: 53\n";
    let shown = parse_yaml_doc(doc);
    assert_eq!(
        shown.fields.get("identity").map(String::as_str),
        Some("a\"b")
    );
    assert_eq!(
        shown.fields.get("message.type").map(String::as_str),
        Some("AUTH_QUERY")
    );
    assert_eq!(
        shown.fields.get("message.query_port").map(String::as_str),
        Some("53")
    );
    assert!(!shown.fields.contains_key("message.query_message"));
    assert_eq!(
        timestamp_text(Timestamp {
            sec: 1_795_628_508,
            nsec: 330_172_660
        }),
        "!!timestamp 2026-11-25 17:41:48.33017266"
    );
    assert_eq!(
        timestamp_text(Timestamp {
            sec: 951_782_400,
            nsec: 0
        }),
        "!!timestamp 2000-02-29 00:00:00"
    );
    assert_eq!(name_text(b"\x07example\x04test\x00"), "example.test.");
}
