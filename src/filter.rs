//! Prefilters on the lazy view: dnstap identity and qname regular expressions, compiled
//! once into DFAs and run before any full decode. Knows the lazy views (`dnstap`, `dns`)
//! and nothing of records, formats, queues or sockets.
//!
//! Semantics are those of the tool this replaces, which called Python's
//! `re.match(pattern, text)`: the pattern is anchored at the start of the text and NOT at
//! its end, so `example` accepts `example.test.` (a prefix match); write `$` to anchor at
//! the end. Matching is case-sensitive unless the pattern says `(?i)`.
//!
//! - identity: the `Dnstap.identity` bytes (absent = empty text).
//! - qname: the first question's name as the seed rendered it (dnspython form: escaped
//!   labels, a '.' after every label, the root as "."); a message without a question, with
//!   no DNS message, or with a DNS message too broken to read its question is matched as
//!   the text `-`, which is what the output line shows for it.
//!
//! Patterns are compiled with Unicode disabled and UTF-8 mode off, so they match bytes:
//! `.` is any byte but `\n`, `\w`/`\d`/`\s` and `(?i)` are ASCII-only. Rendered qnames are
//! pure ASCII anyway (other bytes are `\DDD`); identities are matched as raw bytes.
//!
//! The qname is never rendered into a buffer: the DFA walks the wire labels through the same
//! escaping rules as [`crate::dns::name::escape_label_into`], one byte at a time.
//!
//! A payload whose protobuf the lazy view cannot read is accepted: the full decode reports
//! it (and counts it) later, so nothing is dropped silently here.
#![forbid(unsafe_code)]

use std::ops::ControlFlow;

use regex_automata::dfa::dense;
use regex_automata::dfa::{Automaton, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::util::syntax;
use regex_automata::{Anchored, MatchKind};

use crate::dns;
use crate::dnstap::{DnstapView, MessageView};

/// The filters as the user wrote them (config `filter.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// `filter.qname-regex`
    pub qname_regex: Option<String>,
    /// `filter.dnstap-identities`
    pub identities: Option<String>,
}

/// Why a spec could not be compiled: names the key and the pattern.
#[derive(Debug)]
pub struct FilterError {
    pub key: &'static str,
    pub pattern: String,
    pub reason: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: invalid regular expression {:?}: {}",
            self.key, self.pattern, self.reason
        )
    }
}
impl std::error::Error for FilterError {}

/// What the prefilter decided about one payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    RejectIdentity,
    RejectQname,
}

/// Config key of the identity filter, as named in errors.
pub const IDENTITY_KEY: &str = "filter.dnstap-identities";
/// Config key of the qname filter, as named in errors.
pub const QNAME_KEY: &str = "filter.qname-regex";

/// Upper bound on the size of one compiled DFA (and on its construction): a pathological
/// pattern is refused at start-up rather than eating the memory of the receiver.
const DFA_SIZE_LIMIT: usize = 16 << 20;

/// The compiled filters, read through `&self` by every reader thread.
#[derive(Debug)]
pub struct Filter {
    identity: Option<PrefixDfa>,
    qname: Option<PrefixDfa>,
}

impl Filter {
    pub fn compile(spec: &FilterSpec) -> Result<Filter, FilterError> {
        let identity = match &spec.identities {
            Some(p) => Some(PrefixDfa::compile(IDENTITY_KEY, p)?),
            None => None,
        };
        let qname = match &spec.qname_regex {
            Some(p) => Some(PrefixDfa::compile(QNAME_KEY, p)?),
            None => None,
        };
        Ok(Filter { identity, qname })
    }

    /// True when no filter is configured (the pipeline can skip `check`).
    pub fn is_empty(&self) -> bool {
        self.identity.is_none() && self.qname.is_none()
    }

    /// Runs the filters on one dnstap payload without decoding it fully. A payload the lazy
    /// view cannot read is accepted (the full decode reports it).
    pub fn check(&self, payload: &[u8]) -> Verdict {
        if self.is_empty() {
            return Verdict::Accept;
        }
        let Ok(view) = DnstapView::parse_filter_fields(payload) else {
            return Verdict::Accept;
        };
        if let Some(dfa) = &self.identity {
            if !dfa.is_prefix_match(view.identity.unwrap_or(b"")) {
                return Verdict::RejectIdentity;
            }
        }
        let Some(dfa) = &self.qname else {
            return Verdict::Accept;
        };
        let msg = match view.message.map(MessageView::parse_dns_message) {
            None => None,
            Some(Ok(m)) => m,
            Some(Err(_)) => return Verdict::Accept,
        };
        let accepted = match msg {
            Some(m) => dfa.matches_question(m),
            None => dfa.dash,
        };
        if accepted {
            Verdict::Accept
        } else {
            Verdict::RejectQname
        }
    }

    /// The identity filter alone on identity bytes (for tests and tools).
    pub fn identity_accepts(&self, identity: &[u8]) -> bool {
        self.identity
            .as_ref()
            .is_none_or(|d| d.is_prefix_match(identity))
    }

    /// The qname filter alone on a wire name (for tests and tools).
    pub fn qname_accepts(&self, name: &dns::Name<'_>) -> bool {
        self.qname.as_ref().is_none_or(|d| d.matches_name(name))
    }

    /// The qname filter alone on rendered text: the slow path the DFA name walk must agree
    /// with (tests and benches compare the two).
    pub fn qname_accepts_text(&self, text: &[u8]) -> bool {
        self.qname.as_ref().is_none_or(|d| d.is_prefix_match(text))
    }
}

/// One pattern compiled into a dense DFA anchored at the start, answering "does the pattern
/// match some prefix of the input" (Python `re.match`).
#[derive(Debug)]
pub struct PrefixDfa {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
    /// The verdict on `-`, the text of a message without a readable question.
    dash: bool,
}

impl PrefixDfa {
    /// Compiles `pattern`; errors name `key` and the pattern.
    pub fn compile(key: &'static str, pattern: &str) -> Result<PrefixDfa, FilterError> {
        let err = |reason: String| FilterError {
            key,
            pattern: pattern.to_string(),
            reason,
        };
        let dfa = dense::Builder::new()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    // Any match is enough: `All` keeps every match state reachable, so the
                    // walk below sees the first prefix that matches whatever the priorities.
                    .match_kind(MatchKind::All)
                    .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                    .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
            )
            .build(pattern)
            .map_err(|e| err(e.to_string()))?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| err(e.to_string()))?;
        let mut dfa = PrefixDfa {
            dfa,
            start,
            dash: false,
        };
        dfa.dash = dfa.is_prefix_match(b"-");
        Ok(dfa)
    }

    /// Python `re.match(pattern, text) is not None` on bytes.
    pub fn is_prefix_match(&self, text: &[u8]) -> bool {
        let mut w = Walk::new(self);
        w.feed(text);
        w.finish()
    }

    /// The verdict on the first question of a DNS message, as `matches_name` on the name
    /// [`dns::MessageView::parse`] finds (or `-` when it finds none), in one walk: the DFA
    /// is fed while the name is being checked.
    // PERF: the name used to be walked twice, once to check it and once for the DFA, to
    // its end even when the DFA had decided at the first label (dns::MessageView::parse
    // was 16 % of the filter-reject path's profile over TCP). Once the DFA has decided,
    // the rest of the name only matters if it could turn the verdict into the one on `-`
    // (a broken name is matched as `-`); when both verdicts agree the walk stops there.
    pub fn matches_question(&self, msg: &[u8]) -> bool {
        let mut w = Walk::new(self);
        let mut any = false;
        let walked = dns::MessageView::visit_qname(msg, |label| {
            any = true;
            w.feed_label(label);
            match w.state {
                WalkState::Running(_) => dns::Visit::Next,
                WalkState::Decided(v) if v == self.dash => dns::Visit::Stop,
                WalkState::Decided(_) => dns::Visit::Check,
            }
        });
        match walked {
            // No readable question, or stopped on a verdict equal to the one on `-`.
            None | Some(ControlFlow::Break(())) => self.dash,
            Some(ControlFlow::Continue(())) => {
                if !any {
                    w.feed(b".");
                }
                w.finish()
            }
        }
    }

    /// The same answer as `is_prefix_match` on the rendered name, without rendering it.
    pub fn matches_name(&self, name: &dns::Name<'_>) -> bool {
        let mut w = Walk::new(self);
        let mut any = false;
        // PERF: stop at the first label after which the answer is known (a dead or match
        // state), instead of walking every remaining label of a long name (scripts/perf.sh,
        // filter-reject path on the synthetic corpus's many-label names).
        for label in name.labels() {
            any = true;
            w.feed_label(label);
            if matches!(w.state, WalkState::Decided(_)) {
                break;
            }
        }
        if !any {
            w.feed(b".");
        }
        w.finish()
    }
}

/// Where a walk over the DFA stands. A match state or a dead state decides the answer, and
/// the remaining bytes are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WalkState {
    Running(StateID),
    Decided(bool),
}

/// An incremental DFA walk: feed bytes (or labels, escaped on the fly), then `finish`.
#[derive(Debug)]
pub struct Walk<'d> {
    dfa: &'d dense::DFA<Vec<u32>>,
    state: WalkState,
}

impl<'d> Walk<'d> {
    pub fn new(p: &'d PrefixDfa) -> Walk<'d> {
        Walk {
            dfa: &p.dfa,
            state: WalkState::Running(p.start),
        }
    }

    #[inline]
    fn step(&mut self, byte: u8) {
        if let WalkState::Running(s) = self.state {
            self.state = match next(self.dfa, s, byte) {
                Ok(next) => WalkState::Running(next),
                Err(verdict) => WalkState::Decided(verdict),
            };
        }
    }

    /// Feeds raw bytes.
    #[inline]
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if matches!(self.state, WalkState::Decided(_)) {
                return;
            }
            self.step(b);
        }
    }

    /// Feeds one label as dnspython renders it, then the '.' that follows every label.
    /// Must agree with [`dns::name::escape_label_into`].
    // PERF: the state stays in a register for the whole label (the walk's fields are read
    // once), instead of going through `self` at every byte; Walk::feed_label was out of
    // line and 5 % of the filter-reject path's profile (scripts/perf.sh, synthetic corpus).
    #[inline(always)]
    pub fn feed_label(&mut self, label: &[u8]) {
        if let WalkState::Running(s) = self.state {
            self.state = match walk_label(self.dfa, s, label) {
                Ok(next) => WalkState::Running(next),
                Err(verdict) => WalkState::Decided(verdict),
            };
        }
    }

    /// Ends the input: the end-of-input transition reports a match that ends at the end.
    pub fn finish(self) -> bool {
        match self.state {
            WalkState::Decided(v) => v,
            WalkState::Running(s) => {
                let eoi = self.dfa.next_eoi_state(s);
                self.dfa.is_match_state(eoi)
            }
        }
    }
}

/// One transition of the walk from `s` on `byte`: the next state, or the verdict a match,
/// dead or quit state decides.
#[inline(always)]
fn next(dfa: &dense::DFA<Vec<u32>>, s: StateID, byte: u8) -> Result<StateID, bool> {
    let next = dfa.next_state(s, byte);
    if dfa.is_special_state(next) {
        // regex-automata delays matches by one byte: being in a match state after `byte`
        // means a match ended just before it, which is all `re.match` needs.
        if dfa.is_match_state(next) {
            return Err(true);
        }
        if dfa.is_dead_state(next) {
            return Err(false);
        }
        if dfa.is_quit_state(next) {
            // Not reachable with Unicode off (no quit bytes are configured); if it ever
            // is, accept rather than drop a message we could not judge.
            return Err(true);
        }
    }
    Ok(next)
}

/// [`Walk::feed_label`] from state `s`: the state after the label and its '.', or the
/// verdict reached on the way.
#[inline(always)]
fn walk_label(dfa: &dense::DFA<Vec<u32>>, mut s: StateID, label: &[u8]) -> Result<StateID, bool> {
    for &b in label {
        match b {
            b'"' | b'(' | b')' | b'.' | b';' | b'\\' | b'@' | b'$' => {
                s = next(dfa, s, b'\\')?;
                s = next(dfa, s, b)?;
            }
            0x21..=0x7e => s = next(dfa, s, b)?,
            _ => {
                s = next(dfa, s, b'\\')?;
                s = next(dfa, s, b'0' + b / 100)?;
                s = next(dfa, s, b'0' + (b / 10) % 10)?;
                s = next(dfa, s, b'0' + b % 10)?;
            }
        }
    }
    next(dfa, s, b'.')
}

#[cfg(test)]
mod tests {
    use super::{Filter, FilterSpec, PrefixDfa, Walk, QNAME_KEY};

    /// Slow oracle: the `regex` crate's own engine on the rendered text, with the pattern
    /// wrapped as `^(?:p)` (start-anchored, end free = Python `re.match`).
    fn oracle(pattern: &str) -> regex::bytes::Regex {
        regex::bytes::RegexBuilder::new(&format!("^(?:{pattern})"))
            .unicode(false)
            .build()
            .unwrap()
    }

    /// dnspython rendering of a label list, written here independently of the dns module.
    fn render(labels: &[&[u8]]) -> Vec<u8> {
        if labels.is_empty() {
            return b".".to_vec();
        }
        let mut out = Vec::new();
        for l in labels {
            for &b in *l {
                if b"\"().;\\@$".contains(&b) {
                    out.push(b'\\');
                    out.push(b);
                } else if (0x21..=0x7e).contains(&b) {
                    out.push(b);
                } else {
                    out.extend_from_slice(format!("\\{b:03}").as_bytes());
                }
            }
            out.push(b'.');
        }
        out
    }

    fn walk_labels(p: &PrefixDfa, labels: &[&[u8]]) -> bool {
        let mut w = Walk::new(p);
        for l in labels {
            w.feed_label(l);
        }
        if labels.is_empty() {
            w.feed(b".");
        }
        w.finish()
    }

    const PATTERNS: &[&str] = &[
        "",
        "example",
        "example$",
        r"example\.test\.$",
        "^www",
        r".*\.test\.$",
        r".*\.TEST\.$",
        r"(?i).*\.TEST\.$",
        "[a-m]+",
        "(www|mail|ns[0-9])\\.",
        r"\\",
        r"\\\.",
        r"\\0",
        r".*\\[0-9]{3}",
        r"\.$",
        "-",
        "^-$",
        r"a\$b",
        r"\w+\.\w+\.$",
        "x*",
        "(ab|a)c",
        r"[^.]*\.lab\.test\.$",
        r".*\\@",
    ];

    fn names() -> Vec<Vec<Vec<u8>>> {
        let mut v: Vec<Vec<Vec<u8>>> = vec![
            vec![],
            vec![b"example".to_vec(), b"test".to_vec()],
            vec![b"www".to_vec(), b"example".to_vec(), b"test".to_vec()],
            vec![b"EXAMPLE".to_vec(), b"TEST".to_vec()],
            vec![b"a.b".to_vec(), b"test".to_vec()],
            vec![b"a\\b".to_vec()],
            vec![b"a$b".to_vec(), b"x@y".to_vec()],
            vec![vec![0, 1, 255, b' ']],
            vec![b"ns1".to_vec(), b"lab".to_vec(), b"test".to_vec()],
            vec![b"-".to_vec()],
            vec![b"ab".to_vec()],
        ];
        // Pseudo-random names over an alphabet rich in special bytes (xorshift, fixed seed).
        let alphabet: &[u8] = b"aAbzZ09-_.\\\"();@$ \x00\x7f\xff\xe9\n";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let nlabels = (next() % 4) as usize;
            let mut name = Vec::new();
            for _ in 0..nlabels {
                let len = 1 + (next() % 8) as usize;
                let label: Vec<u8> = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect();
                name.push(label);
            }
            v.push(name);
        }
        v
    }

    #[test]
    fn label_walk_agrees_with_regex_on_rendered_text() {
        let names = names();
        for p in PATTERNS {
            let dfa = PrefixDfa::compile(QNAME_KEY, p).unwrap();
            let re = oracle(p);
            for n in &names {
                let labels: Vec<&[u8]> = n.iter().map(|l| l.as_slice()).collect();
                let text = render(&labels);
                let want = re.is_match(&text);
                assert_eq!(dfa.is_prefix_match(&text), want, "text {p:?} on {:?}", text);
                assert_eq!(walk_labels(&dfa, &labels), want, "walk {p:?} on {:?}", text);
            }
        }
    }

    #[test]
    fn prefix_match_is_python_re_match() {
        let d = PrefixDfa::compile(QNAME_KEY, "lab").unwrap();
        assert!(d.is_prefix_match(b"lab-unbound"));
        assert!(d.is_prefix_match(b"lab"));
        assert!(!d.is_prefix_match(b"xlab"));
        assert!(!d.is_prefix_match(b"la"));
        let d = PrefixDfa::compile(QNAME_KEY, "lab$").unwrap();
        assert!(!d.is_prefix_match(b"lab-unbound"));
        assert!(d.is_prefix_match(b"lab"));
        let d = PrefixDfa::compile(QNAME_KEY, "").unwrap();
        assert!(d.is_prefix_match(b""));
        assert!(d.is_prefix_match(b"anything"));
        let d = PrefixDfa::compile(QNAME_KEY, "LAB").unwrap();
        assert!(!d.is_prefix_match(b"lab"), "case-sensitive by default");
        let d = PrefixDfa::compile(QNAME_KEY, "(?i)LAB").unwrap();
        assert!(d.is_prefix_match(b"lab"));
    }

    #[test]
    fn identity_matches_raw_bytes() {
        let f = Filter::compile(&FilterSpec {
            identities: Some("lab-(nsd|knot)".into()),
            qname_regex: None,
        })
        .unwrap();
        assert!(f.identity_accepts(b"lab-nsd"));
        assert!(f.identity_accepts(b"lab-knot-2"));
        assert!(!f.identity_accepts(b"lab-unbound"));
        assert!(!f.identity_accepts(b""));
        let f = Filter::compile(&FilterSpec {
            identities: Some(".".into()),
            qname_regex: None,
        })
        .unwrap();
        assert!(
            f.identity_accepts(b"\xff\xfe"),
            "'.' matches any byte but newline"
        );
        assert!(!f.identity_accepts(b"\n"));
    }

    #[test]
    fn compile_error_names_key_and_pattern() {
        let e = Filter::compile(&FilterSpec {
            identities: None,
            qname_regex: Some("(unclosed".into()),
        })
        .unwrap_err();
        assert_eq!(e.key, QNAME_KEY);
        assert_eq!(e.pattern, "(unclosed");
        let text = e.to_string();
        assert!(
            text.contains("filter.qname-regex") && text.contains("(unclosed"),
            "{text}"
        );
        // Python look-arounds are not supported by a DFA: refused at start-up, not ignored.
        let e = Filter::compile(&FilterSpec {
            identities: Some("(?=x)".into()),
            qname_regex: None,
        })
        .unwrap_err();
        assert_eq!(e.key, super::IDENTITY_KEY);
    }

    #[test]
    fn empty_filter_accepts_without_parsing() {
        let f = Filter::compile(&FilterSpec::default()).unwrap();
        assert!(f.is_empty());
        assert_eq!(f.check(b"\xff\xff not protobuf"), super::Verdict::Accept);
    }
}
