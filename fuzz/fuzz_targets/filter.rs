//! The prefilters on arbitrary payloads, with a fixed set of compiled patterns.
//!
//! Properties: no panic; for every filter, `Filter::check` gives the verdict a slow
//! reference gives: the name rendered with `Name::write_presentation` (or `-` when there is
//! no readable question) and the identity bytes matched by regex-automata's `meta::Regex`
//! anchored at the start (Python `re.match`: start-anchored, end free), under the documented
//! rules (unreadable protobuf is accepted; identity first). The DFA name walk also agrees
//! with the rendered text on the input read directly as a DNS message, and the DFA agrees
//! with the meta regex on the raw input as text.
#![no_main]

use std::sync::OnceLock;

use dnstap_receiver::dns::MessageView;
use dnstap_receiver::dnstap::DnstapView;
use dnstap_receiver::filter::{Filter, FilterSpec, Verdict};
use libfuzzer_sys::fuzz_target;
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

/// qname patterns: prefixes, end anchors, case folding, escapes as rendered (`\DDD`,
/// `\.`), the `-` of a message without a question, the root, word boundaries, the empty
/// pattern (accepts everything).
const QNAME_PATTERNS: &[&str] = &[
    "example",
    r"(?i)www\.EXAMPLE\.test\.$",
    r".*\.test\.$",
    r"[a-z0-9-]+\.(com|net|org|test)\.",
    r"\\[0-9]{3}",
    r#".*\\["();.@$\\]"#,
    r"-$",
    r"\.$",
    r"\b[a-z]+\b\.",
    "",
    r"(?i)[A-Z]{3}\.",
    r"[^.]*\.[^.]*\.$",
    r"x*$",
    r"(?s).{64}",
];

/// identity patterns: raw bytes, newlines, NUL, case folding, empty identity.
const IDENTITY_PATTERNS: &[&str] = &[
    "lab-",
    "(?i)UNBOUND",
    "$",
    r"(?s).*\x00",
    r"[^\n]*\n",
    r"(?m)^nsd$",
    r"\w+$",
];

struct Case {
    filter: Filter,
    identity: Option<Regex>,
    qname: Option<Regex>,
}

fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut cases = Vec::new();
        for q in QNAME_PATTERNS {
            cases.push(case(None, Some(q)));
        }
        for id in IDENTITY_PATTERNS {
            cases.push(case(Some(id), None));
        }
        cases.push(case(Some("lab-"), Some(r".*\.test\.$")));
        cases.push(case(Some(r"\w+$"), Some("-$")));
        cases.push(case(None, None));
        cases
    })
}

fn case(identity: Option<&str>, qname: Option<&str>) -> Case {
    let spec = FilterSpec {
        qname_regex: qname.map(str::to_string),
        identities: identity.map(str::to_string),
    };
    Case {
        filter: Filter::compile(&spec).expect("the fixed patterns compile"),
        identity: identity.map(reference),
        qname: qname.map(reference),
    }
}

fn reference(pattern: &str) -> Regex {
    Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(Regex::config().utf8_empty(false))
        .build(pattern)
        .expect("the fixed patterns compile")
}

/// Python `re.match(pattern, text) is not None`.
fn re_match(re: &Regex, text: &[u8]) -> bool {
    re.is_match(Input::new(text).anchored(Anchored::Yes))
}

/// The verdict as the filter module documents it, computed the slow way.
fn slow_verdict(case: &Case, payload: &[u8]) -> Verdict {
    if case.identity.is_none() && case.qname.is_none() {
        return Verdict::Accept;
    }
    let Ok(view) = DnstapView::parse(payload) else {
        return Verdict::Accept;
    };
    if let Some(re) = &case.identity {
        if !re_match(re, view.identity.unwrap_or(b"")) {
            return Verdict::RejectIdentity;
        }
    }
    let Some(re) = &case.qname else {
        return Verdict::Accept;
    };
    let msg = match view.message() {
        None => None,
        Some(Ok(m)) => m.dns_message(),
        Some(Err(_)) => return Verdict::Accept,
    };
    let text = match msg
        .and_then(|m| MessageView::parse(m).ok())
        .and_then(|m| m.question)
    {
        Some(q) => {
            let mut text = Vec::new();
            q.name.write_presentation(&mut text);
            text
        }
        None => b"-".to_vec(),
    };
    if re_match(re, &text) {
        Verdict::Accept
    } else {
        Verdict::RejectQname
    }
}

fuzz_target!(|data: &[u8]| {
    let cases = cases();
    for (i, case) in cases.iter().enumerate() {
        let got = case.filter.check(data);
        let want = slow_verdict(case, data);
        assert_eq!(
            got, want,
            "filter #{i}: check disagrees with the slow reference"
        );
    }

    // The input as a DNS message: the DFA name walk against the rendered name.
    let name = MessageView::parse(data)
        .ok()
        .and_then(|m| m.question)
        .map(|q| q.name);
    let mut rendered = Vec::new();
    if let Some(name) = &name {
        name.write_presentation(&mut rendered);
    }
    for (i, case) in cases.iter().enumerate() {
        if let (Some(name), Some(re)) = (&name, &case.qname) {
            let want = re_match(re, &rendered);
            assert_eq!(
                case.filter.qname_accepts(name),
                want,
                "filter #{i}: name walk"
            );
            assert_eq!(
                case.filter.qname_accepts_text(&rendered),
                want,
                "filter #{i}: text"
            );
        }
        // The input as text.
        if let Some(re) = &case.qname {
            assert_eq!(
                case.filter.qname_accepts_text(data),
                re_match(re, data),
                "#{i}: raw"
            );
        }
        if let Some(re) = &case.identity {
            assert_eq!(
                case.filter.identity_accepts(data),
                re_match(re, data),
                "#{i}: identity"
            );
        }
    }
});
