//! The qname prefilter, which walks the DFA over wire labels, agrees with the same pattern
//! applied by an independent engine (the `regex` crate, as `^(?:pattern)`) to the rendered
//! name, on every message of every lab capture; and the identity filter likewise on the
//! identity bytes.

use std::path::{Path, PathBuf};

use dnstap_receiver::dns;
use dnstap_receiver::dnstap::DnstapView;
use dnstap_receiver::filter::{Filter, FilterSpec, Verdict};
use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};

fn lab_dir() -> PathBuf {
    match std::env::var_os("LAB_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/lab"),
    }
}

fn payloads(bytes: &[u8]) -> Vec<&[u8]> {
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    let (mut pos, mut out) = (0, Vec::new());
    loop {
        let step = dec.decode(&bytes[pos..], &mut reply).unwrap();
        match step.event {
            Event::Data { payload } => out.push(&bytes[pos + payload.start..pos + payload.end]),
            Event::NeedMore | Event::Finished => break,
            Event::Control => {}
        }
        pos += step.consumed;
    }
    out
}

const QNAME_PATTERNS: &[&str] = &[
    "",
    "example",
    r"example\.test\.$",
    r".*\.example\.test\.$",
    r".*\.lab\.test\.$",
    r"(?i)HOST[0-9]+\.",
    "^(www|mail|ns[0-9])",
    r"[a-m]+\.",
    r"\.$",
    "^-$",
    r".*\\",
    r"svc[0-9][0-9]\.(example|lab)\.test\.",
    "[^.]*$",
    ".*TXT",
    "u0[0-4]",
];

const IDENTITY_PATTERNS: &[&str] = &["lab-", "lab-(nsd|bind)$", "(?i)LAB-UNBOUND", "-", ""];

#[test]
fn dfa_walk_agrees_with_regex_on_rendered_names_of_every_capture() {
    let dir = lab_dir().join("captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "fstrm"))
        .filter(|p| !p.to_string_lossy().contains("big-"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let qname_filters: Vec<(Filter, regex::bytes::Regex)> = QNAME_PATTERNS
        .iter()
        .map(|p| {
            let f = Filter::compile(&FilterSpec {
                qname_regex: Some(p.to_string()),
                identities: None,
            })
            .unwrap();
            let re = regex::bytes::RegexBuilder::new(&format!("^(?:{p})"))
                .unicode(false)
                .build()
                .unwrap();
            (f, re)
        })
        .collect();
    let identity_filters: Vec<(Filter, regex::bytes::Regex)> = IDENTITY_PATTERNS
        .iter()
        .map(|p| {
            let f = Filter::compile(&FilterSpec {
                qname_regex: None,
                identities: Some(p.to_string()),
            })
            .unwrap();
            let re = regex::bytes::RegexBuilder::new(&format!("^(?:{p})"))
                .unicode(false)
                .build()
                .unwrap();
            (f, re)
        })
        .collect();
    let mut rendered = Vec::new();
    let (mut checked, mut accepted) = (0usize, 0usize);
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for payload in payloads(&bytes) {
            let view = DnstapView::parse(payload).unwrap();
            let msg = view.message().unwrap().unwrap();
            rendered.clear();
            match msg
                .dns_message()
                .and_then(|m| dns::MessageView::parse(m).ok())
                .and_then(|m| m.question)
            {
                Some(q) => q.name.write_presentation(&mut rendered),
                None => rendered.extend_from_slice(b"-"),
            }
            for (f, re) in &qname_filters {
                let want = if re.is_match(&rendered) {
                    Verdict::Accept
                } else {
                    Verdict::RejectQname
                };
                assert_eq!(
                    f.check(payload),
                    want,
                    "{} {re} on {:?}",
                    path.display(),
                    String::from_utf8_lossy(&rendered)
                );
                assert_eq!(f.qname_accepts_text(&rendered), want == Verdict::Accept);
                checked += 1;
                accepted += usize::from(want == Verdict::Accept);
            }
            let identity = view.identity.unwrap_or(b"");
            for (f, re) in &identity_filters {
                let want = if re.is_match(identity) {
                    Verdict::Accept
                } else {
                    Verdict::RejectIdentity
                };
                assert_eq!(f.check(payload), want, "{} {re}", path.display());
            }
        }
    }
    // Both outcomes must be exercised for the comparison to mean anything.
    assert!(
        accepted > 1000 && checked - accepted > 1000,
        "{accepted} of {checked}"
    );
}
