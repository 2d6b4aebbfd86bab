//! The qname prefilter, which walks the DFA over wire labels, agrees with the same pattern
//! applied by an independent engine (the `regex` crate, as `^(?:pattern)`) to the rendered
//! name, on every message of every lab capture; and the identity filter likewise on the
//! identity bytes.

mod support;

use std::path::PathBuf;

use dnstap_receiver::dns;
use dnstap_receiver::dnstap::{DnstapView, MessageView};
use dnstap_receiver::filter::{Filter, FilterSpec, PrefixDfa, Verdict};
use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};
use support::lab::lab_dir;

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

/// The reference the one-walk qname check must agree with: `dns::MessageView::parse`, then
/// the DFA over the question's labels, or over `-` when there is no readable question.
fn reference_verdict(dfa: &PrefixDfa, msg: &[u8]) -> bool {
    match dns::MessageView::parse(msg).ok().and_then(|m| m.question) {
        Some(q) => dfa.matches_name(&q.name),
        None => dfa.is_prefix_match(b"-"),
    }
}

/// Deterministic pseudo-random numbers (xorshift), so a failure replays.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// `PrefixDfa::matches_question` stops walking a name once the DFA has decided and the
/// rest of the name could not change the verdict; `MessageView::parse_dns_message` skips
/// what the prefilter does not need. Both must give exactly what the full parses give, on
/// intact messages and on damaged ones: every truncation, and bytes overwritten with
/// pointers, bad label types, long lengths and zeros. The patterns cover the four cases:
/// a verdict decided at the first label that agrees or disagrees with the verdict on `-`,
/// either way round, and walks that never decide early.
#[test]
fn one_walk_qname_check_agrees_with_the_full_parse_on_damaged_messages() {
    let patterns = [
        r"(?i)www\.ka[a-z]*\.", // rejects `-`, decides most names at the first label
        "example",              // rejects `-`, accepts at the first label
        r"-|www\.",             // accepts `-`, may accept at the first label
        r"[^w]",                // accepts `-`, rejects names starting with w early
        r".*\.test\.$",         // never decides before the end
        "^-$",
        "",
    ];
    let dfas: Vec<PrefixDfa> = patterns
        .iter()
        .map(|p| PrefixDfa::compile("filter.qname-regex", p).unwrap())
        .collect();
    let mut rnd = xorshift(0x2545_f491_4f6c_dd1d);
    let (mut checked, mut damaged_differs, mut early) = (0usize, 0usize, [0usize; 2]);
    let dir = lab_dir().join("captures");
    for name in ["unbound-unix.fstrm", "bind-unix.fstrm", "dnsdist-tcp.fstrm"] {
        let Ok(bytes) = std::fs::read(dir.join(name)) else {
            panic!("lab capture {name} missing in {}", dir.display());
        };
        for payload in payloads(&bytes).into_iter().take(300) {
            let view = DnstapView::parse(payload).unwrap();
            let message = view.message.unwrap();
            // The dnstap Message, intact, truncated anywhere and with bytes overwritten.
            let mut variants = vec![message.to_vec()];
            for cut in 0..message.len() {
                variants.push(message[..cut].to_vec());
            }
            for _ in 0..20 {
                let mut m = message.to_vec();
                let at = (rnd() % m.len() as u64) as usize;
                m[at] = [0x00, 0x7f, 0x80, 0xff, 0x72, 0x7a, 0x08][(rnd() % 7) as usize];
                variants.push(m);
            }
            for m in &variants {
                let full = MessageView::parse(m).map(|v| v.dns_message());
                assert_eq!(MessageView::parse_dns_message(m), full, "{name}: {m:02x?}");
            }
            let Some(dns_msg) = MessageView::parse(message).unwrap().dns_message() else {
                continue;
            };
            // The DNS message, intact, truncated anywhere, and damaged inside its question.
            let mut variants = vec![dns_msg.to_vec()];
            for cut in 0..dns_msg.len() {
                variants.push(dns_msg[..cut].to_vec());
            }
            let question_end = dns_msg.len().min(12 + 64);
            for _ in 0..30 {
                if question_end <= 12 {
                    break;
                }
                let mut m = dns_msg.to_vec();
                let at = 12 + (rnd() % (question_end - 12) as u64) as usize;
                m[at] = [0xc0, 0xc1, 0x40, 0x80, 0x3f, 0x00, 0x2e][(rnd() % 7) as usize];
                variants.push(m);
            }
            for (i, m) in variants.iter().enumerate() {
                for (p, dfa) in patterns.iter().zip(&dfas) {
                    let want = reference_verdict(dfa, m);
                    assert_eq!(dfa.matches_question(m), want, "{name} {p:?}: {m:02x?}");
                    checked += 1;
                    if i > 0 && want != reference_verdict(dfa, dns_msg) {
                        damaged_differs += 1;
                    }
                    if i == 0 {
                        early[usize::from(want)] += 1;
                    }
                }
            }
        }
    }
    // The damage must change verdicts, and both verdicts must occur, or this proves little.
    assert!(
        damaged_differs > 1000 && early[0] > 100 && early[1] > 100,
        "{checked} checked, {damaged_differs} changed by damage, verdicts {early:?}"
    );
}
