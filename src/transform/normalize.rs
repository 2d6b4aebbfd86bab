//! The `normalize` transform: the qname lowercased in the message every output sees, and
//! the public suffix (`tld`) and registered domain (`etld+1`) of the qname from the Public
//! Suffix List, which the full formats print as `"publicsuffix": {"tld", "etld+1"}`.
//!
//! The list is the `publicsuffix` crate's [`publicsuffix::List`] (its `IcannList` for
//! `icann-only`), parsed at start-up from the text the configuration read (a file, or the
//! copy compiled in from assets/publicsuffix/). A look-up hands the crate the labels of
//! the wire-form qname from the right, read where they lie in the message (a label with an
//! uppercase letter is lowercased into a stack buffer first). A name under a suffix the
//! list does not know follows the list's `*` rule: its last label is the suffix.
//!
//! Knows records, DNS names and the list; nothing of files or configuration.
#![forbid(unsafe_code)]

use std::sync::Arc;

use publicsuffix::{IcannList, List, Psl};

use super::rewrite;
use super::Verdict;
use crate::dns::name::{escape_label_into, escape_label_lower_into};
use crate::record::{Enrichment, Record};

/// The copy of the Public Suffix List compiled in, for hosts without a list file
/// (Debian's `publicsuffix` package installs one at [`SYSTEM_LIST`]).
pub const BUILTIN_LIST: &str = include_str!("../../assets/publicsuffix/public_suffix_list.dat");

/// Where Debian's `publicsuffix` package installs the list: the default when present.
pub const SYSTEM_LIST: &str = "/usr/share/publicsuffix/public_suffix_list.dat";

/// Largest number of labels in a name (255 wire bytes, 2 per label at least).
const MAX_LABELS: usize = 128;

/// A Public Suffix List, whole (ICANN and private sections) or its ICANN section only: the
/// `publicsuffix` crate's tree of rules, which both reads the list's text and matches names.
pub struct SuffixList(Rules);

/// The crate keeps a list's section in each rule; its `IcannList` is the same tree with
/// the private section's rules not counted (their nodes are still walked through).
enum Rules {
    All(List),
    Icann(IcannList),
}

impl std::fmt::Debug for SuffixList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Rules::All(_) => f.write_str("SuffixList(all sections)"),
            Rules::Icann(_) => f.write_str("SuffixList(ICANN section)"),
        }
    }
}

impl SuffixList {
    /// Parses the list's text (the `publicsuffix.org` format: `// ===BEGIN ICANN
    /// DOMAINS===`, rules, `!` exceptions and `*` wildcards) with the `publicsuffix` crate,
    /// which also enters each Unicode rule in punycode, as names are on the wire. With
    /// `icann_only`, the rules of the private section are ignored.
    pub fn parse(text: &str, icann_only: bool) -> Result<SuffixList, String> {
        let list: List = text
            .parse()
            .map_err(|e: publicsuffix::Error| e.to_string())?;
        Ok(SuffixList(if icann_only {
            Rules::Icann(list.into())
        } else {
            Rules::All(list)
        }))
    }

    /// How many labels (from the right) of `name` form its public suffix: at least 1 for
    /// a name with a label (the `*` rule), 0 for the root.
    pub fn suffix_labels(&self, name: &QName) -> usize {
        self.suffix_labels_by(name.len(), |i| name.label(i))
    }

    /// The same for a name of `n` labels given by `label(i)` (0 the leftmost, any ASCII
    /// case).
    #[inline]
    pub fn suffix_labels_by<'a>(&self, n: usize, label: impl Fn(usize) -> &'a [u8]) -> usize {
        self.suffix_of_last(n, label).0
    }

    /// [`SuffixList::suffix_labels_by`] for the last `n` labels of a name, and whether
    /// the list asked for a label left of them: only then may a longer name have another
    /// answer (the crate stops at the first label no rule continues with).
    #[inline]
    fn suffix_of_last<'a>(&self, n: usize, label: impl Fn(usize) -> &'a [u8]) -> (usize, bool) {
        if n == 0 {
            return (0, false);
        }
        let mut scratch = [0u8; SCRATCH];
        let mut labels = Lowered {
            labels: (0..n).rev().map(&label),
            scratch: &mut scratch,
            exhausted: false,
        };
        let info = match &self.0 {
            Rules::All(l) => l.find(&mut labels),
            Rules::Icann(l) => l.find(&mut labels),
        };
        let exhausted = labels.exhausted;
        // `info.len` counts bytes from the right, dots included: turn it into labels.
        let mut bytes = 0usize;
        for (k, l) in (0..n).rev().map(&label).enumerate() {
            bytes += l.len() + usize::from(k > 0);
            if bytes >= info.len {
                return (k + 1, exhausted);
            }
        }
        (n, exhausted)
    }
}

/// Bytes of the labels of a name (at most 255 in wire form, lengths included).
const SCRATCH: usize = 256;

/// A name's labels, right to left, for the crate: a label with an uppercase letter is
/// lowercased into the next bytes of `scratch` (the crate's rules are lowercase and it
/// compares bytes), any other is passed where it lies.
struct Lowered<'s, I> {
    labels: I,
    /// What is left of the caller's stack buffer.
    scratch: &'s mut [u8],
    /// The crate asked for a label past the last.
    exhausted: bool,
}

impl<'a: 's, 's, I: Iterator<Item = &'a [u8]>> Iterator for Lowered<'s, I> {
    type Item = &'s [u8];

    #[inline]
    fn next(&mut self) -> Option<&'s [u8]> {
        let Some(l) = self.labels.next() else {
            self.exhausted = true;
            return None;
        };
        if !l.iter().any(u8::is_ascii_uppercase) || self.scratch.len() < l.len() {
            return Some(l);
        }
        let (dst, rest) = std::mem::take(&mut self.scratch).split_at_mut(l.len());
        self.scratch = rest;
        dst.copy_from_slice(l);
        dst.make_ascii_lowercase();
        Some(dst)
    }
}

/// A qname copied out of its message, lowercased (ASCII), label by label: what the list
/// is looked up with and what `tld` / `etld+1` are written from. Lives on the stack.
pub struct QName {
    bytes: [u8; 256],
    /// Label `i` is `bytes[ends[i - 1]..ends[i]]` (from 0 for the first).
    ends: [u8; MAX_LABELS],
    n: usize,
}

impl QName {
    /// The first question's name of a DNS message; `None` without one.
    pub fn of_message(msg: &[u8]) -> Option<QName> {
        QName::of_view(&crate::dns::MessageView::parse(msg).ok()?)
    }

    /// The first question's name of a parsed message; `None` without one.
    pub fn of_view(view: &crate::dns::MessageView<'_>) -> Option<QName> {
        let q = view.question.as_ref()?;
        let mut out = QName {
            bytes: [0; 256],
            ends: [0; MAX_LABELS],
            n: 0,
        };
        let mut at = 0usize;
        for label in q.name.labels() {
            let (Some(dst), Some(end)) = (
                out.bytes.get_mut(at..at + label.len()),
                out.ends.get_mut(out.n),
            ) else {
                return None;
            };
            dst.copy_from_slice(label);
            dst.make_ascii_lowercase();
            at += label.len();
            *end = u8::try_from(at).ok()?;
            out.n += 1;
        }
        Some(out)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Label `i` (0 = leftmost), lowercase; empty past the end.
    pub fn label(&self, i: usize) -> &[u8] {
        let start = match i {
            0 => 0,
            _ => self.ends.get(i - 1).map_or(0, |&e| e as usize),
        };
        let end = self.ends.get(i).map_or(start, |&e| e as usize);
        self.bytes.get(start..end).unwrap_or_default()
    }

    /// Writes labels `from..` in presentation form (escaped, no trailing dot).
    pub fn write_text(&self, from: usize, out: &mut Vec<u8>) {
        for i in from..self.n {
            if i > from {
                out.push(b'.');
            }
            escape_label_into(self.label(i), out);
        }
    }

    /// Writes labels `from..` in wire form (the root byte included); returns the length.
    pub fn write_wire(&self, from: usize, out: &mut [u8]) -> Option<usize> {
        let mut at = 0;
        for i in from..self.n {
            let l = self.label(i);
            *out.get_mut(at)? = l.len() as u8;
            out.get_mut(at + 1..at + 1 + l.len())?.copy_from_slice(l);
            at += 1 + l.len();
        }
        *out.get_mut(at)? = 0;
        Some(at + 1)
    }
}

/// The `normalize` transform, compiled.
#[derive(Debug)]
pub struct Normalize {
    pub lowercase: bool,
    pub add_tld: bool,
    pub add_etld1: bool,
    /// Present when `add_tld` or `add_etld1` is.
    pub list: Option<Arc<SuffixList>>,
}

impl Normalize {
    /// Whether the step changes nothing (every switch off).
    pub fn is_noop(&self) -> bool {
        !self.lowercase && !(self.list.is_some() && (self.add_tld || self.add_etld1))
    }

    #[inline]
    pub fn apply(&self, rec: &Record<'_>, en: &mut Enrichment) -> Verdict {
        if self.lowercase {
            rewrite::lowercase_qnames(rec, en);
        }
        let Some(list) = &self.list else {
            return Verdict::Keep;
        };
        if !(self.add_tld || self.add_etld1) {
            return Verdict::Keep;
        }
        // The message as the steps so far left it (the lowercased copy in `en` when
        // `qname-lowercase` changed it), borrowing only that field of `en`.
        let parsed = if en.message_set {
            crate::dns::MessageView::parse(&en.message).ok()
        } else {
            match &rec.dns {
                Some(Ok(v)) => Some(v.clone()),
                _ => rec
                    .dns_message()
                    .and_then(|m| crate::dns::MessageView::parse(m).ok()),
            }
        };
        let Some(view) = parsed else {
            return Verdict::Keep;
        };
        let Some(q) = view.question.as_ref() else {
            return Verdict::Keep;
        };
        // PERF: the labels are read where they lie in the message (no lowercased copy of
        // the name); only the tld and etld+1 texts are written, lowercased. The last
        // `WINDOW` labels are kept (a ring, filled in one pass): the look-up and the texts
        // need only the rightmost few (`transform/normalize/tld+etld1` in benches/transform.rs).
        let mut ring: [&[u8]; WINDOW] = [&[]; WINDOW];
        let mut n = 0usize;
        for l in q.name.labels() {
            if let Some(slot) = ring.get_mut(n % WINDOW) {
                *slot = l;
            }
            n += 1;
        }
        let seen = n.min(WINDOW);
        // Label `j` of the window (0 = the leftmost kept, n - seen of the name).
        let label = |j: usize| {
            ring.get((n - seen + j) % WINDOW)
                .copied()
                .unwrap_or_default()
        };
        let (s, asked_past) = list.suffix_of_last(seen, label);
        if n > seen && (asked_past || s >= seen) {
            // The list may have a rule longer than the window, or the etld+1's label lies
            // left of it: the whole name.
            return self.apply_copied(&view, list, &mut en.text, &mut en.tld, &mut en.etld1);
        }
        if s == 0 {
            return Verdict::Keep;
        }
        if self.add_etld1 && n > s {
            // The registered domain is one label, a dot and the public suffix: written
            // once, the suffix's text is its tail.
            let start = en.text.len();
            escape_label_lower_into(label(seen - s - 1), &mut en.text);
            en.text.push(b'.');
            let tld = write_lower((seen - s..seen).map(label), &mut en.text);
            en.etld1 = range(start, en.text.len());
            if self.add_tld {
                en.tld = tld;
            }
        } else if self.add_tld {
            en.tld = write_lower((seen - s..seen).map(label), &mut en.text);
        }
        Verdict::Keep
    }

    /// [`Normalize::apply`] from a copy of the whole name: for a name longer than the
    /// window of labels whose look-up went past the window.
    #[cold]
    fn apply_copied(
        &self,
        view: &crate::dns::MessageView<'_>,
        list: &SuffixList,
        text: &mut Vec<u8>,
        tld: &mut Option<std::ops::Range<u16>>,
        etld1: &mut Option<std::ops::Range<u16>>,
    ) -> Verdict {
        let Some(name) = QName::of_view(view) else {
            return Verdict::Keep;
        };
        let n = name.len();
        let s = list.suffix_labels(&name);
        if s == 0 {
            return Verdict::Keep;
        }
        if self.add_tld {
            let start = text.len();
            name.write_text(n - s, text);
            *tld = range(start, text.len());
        }
        if self.add_etld1 && n > s {
            let start = text.len();
            name.write_text(n - s - 1, text);
            *etld1 = range(start, text.len());
        }
        Verdict::Keep
    }
}

/// Labels kept from the right of a name for the look-up and the texts: a look-up that asks
/// for more labels than this goes to a copy of the name ([`Normalize::apply_copied`]).
const WINDOW: usize = 16;

/// Writes `labels` in presentation form (escaped, lowercased, no trailing dot) at the end
/// of `out`; returns where.
fn write_lower<'a>(
    labels: impl Iterator<Item = &'a [u8]>,
    out: &mut Vec<u8>,
) -> Option<std::ops::Range<u16>> {
    let start = out.len();
    for (i, l) in labels.enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        escape_label_lower_into(l, out);
    }
    range(start, out.len())
}

fn range(start: usize, end: usize) -> Option<std::ops::Range<u16>> {
    Some(u16::try_from(start).ok()?..u16::try_from(end).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules before the first section marker are no rules (`net` here).
    const LIST: &str = "net\n// ===BEGIN ICANN DOMAINS===\ncom\nuk\nco.uk\njp\n*.kawasaki.jp\n\
        !city.kawasaki.jp\nio\n*.ck\n!www.ck\n公司.cn\ncn\n// ===END ICANN DOMAINS===\n\
        // ===BEGIN PRIVATE DOMAINS===\ngithub.io\n*.compute.example.io\n\
        // ===END PRIVATE DOMAINS===\n";

    fn wire(name: &str) -> Vec<u8> {
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.').filter(|l| !l.is_empty()) {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    fn split(list: &SuffixList, name: &str) -> (String, Option<String>) {
        let q = QName::of_message(&wire(name)).unwrap();
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

    #[test]
    fn rules_wildcards_exceptions_and_sections() {
        let all = SuffixList::parse(LIST, false).unwrap();
        let icann = SuffixList::parse(LIST, true).unwrap();
        let s = |l: &SuffixList, n: &str| split(l, n);
        assert_eq!(
            s(&all, "www.Example.CO.uk"),
            ("co.uk".into(), Some("example.co.uk".into()))
        );
        assert_eq!(s(&all, "co.uk"), ("co.uk".into(), None));
        assert_eq!(
            s(&all, "a.b.github.io"),
            ("github.io".into(), Some("b.github.io".into()))
        );
        assert_eq!(
            s(&icann, "a.b.github.io"),
            ("io".into(), Some("github.io".into()))
        );
        assert_eq!(
            s(&all, "x.y.kawasaki.jp"),
            ("y.kawasaki.jp".into(), Some("x.y.kawasaki.jp".into()))
        );
        assert_eq!(
            s(&all, "www.city.kawasaki.jp"),
            ("kawasaki.jp".into(), Some("city.kawasaki.jp".into()))
        );
        // Not in the list: the `*` rule.
        assert_eq!(
            s(&all, "host.lab.internal"),
            ("internal".into(), Some("lab.internal".into()))
        );
        assert_eq!(s(&all, "localhost"), ("localhost".into(), None));
        let q = QName::of_message(&wire(".")).unwrap();
        assert_eq!(all.suffix_labels(&q), 0);
    }

    #[test]
    fn builtin_list_parses_with_idn_rules() {
        let all = SuffixList::parse(BUILTIN_LIST, false).unwrap();
        assert_eq!(suffix(&all, "www.bbc.co.uk"), "co.uk");
        assert_eq!(suffix(&all, "someone.github.io"), "github.io");
        // 食狮.中国 is in the list in Unicode; the wire carries punycode.
        assert_eq!(
            split(&all, "www.xn--85x722f.xn--55qx5d.cn"),
            (
                "xn--55qx5d.cn".into(),
                Some("xn--85x722f.xn--55qx5d.cn".into())
            )
        );
    }

    /// The suffix of a dotted name as [`SuffixList::suffix_labels_by`] finds it, the labels
    /// given as written (any case, Unicode as UTF-8).
    fn suffix(list: &SuffixList, name: &str) -> String {
        let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
        let s = list.suffix_labels_by(labels.len(), |i| {
            labels.get(i).map(|l| l.as_bytes()).unwrap_or_default()
        });
        labels[labels.len() - s..].join(".")
    }

    #[test]
    fn labels_in_any_case_wildcards_and_exceptions() {
        let t = SuffixList::parse(LIST, false).unwrap();
        for (name, want) in [
            ("www.example.com", "com"),
            ("COM", "COM"),
            ("www.Example.CO.uk", "CO.uk"),
            ("co.uk", "co.uk"),
            ("uk", "uk"),
            ("a.b.unknown", "unknown"),
            ("www.example.net", "net"),
            ("kawasaki.jp", "jp"),
            ("x.kawasaki.jp", "x.kawasaki.jp"),
            ("y.X.Kawasaki.JP", "X.Kawasaki.JP"),
            ("a.b.city.kawasaki.jp", "kawasaki.jp"),
            ("City.Kawasaki.jp", "Kawasaki.jp"),
            ("www.ck", "ck"),
            ("a.WWW.ck", "ck"),
            ("other.ck", "other.ck"),
            ("user.github.io", "github.io"),
            ("a.b.compute.example.io", "b.compute.example.io"),
            ("www.xn--55qx5d.cn", "xn--55qx5d.cn"),
            ("www.XN--55QX5D.cn", "XN--55QX5D.cn"),
            ("www.公司.cn", "公司.cn"),
        ] {
            assert_eq!(suffix(&t, name), want, "{name}");
        }
        assert_eq!(t.suffix_labels_by(0, |_| &[][..]), 0);
    }

    #[test]
    fn icann_only_ignores_the_private_section() {
        let t = SuffixList::parse(LIST, true).unwrap();
        assert_eq!(suffix(&t, "user.github.io"), "io");
        assert_eq!(suffix(&t, "a.b.compute.example.io"), "io");
        assert_eq!(suffix(&t, "www.co.uk"), "co.uk");
        assert_eq!(suffix(&t, "x.kawasaki.jp"), "x.kawasaki.jp");
    }

    #[test]
    fn bad_lists_are_refused() {
        for bad in [
            "// nothing\n",
            "com\n",
            "// ===BEGIN ICANN DOMAINS===\n!com\n",
            "// ===BEGIN ICANN DOMAINS===\na..b\n",
        ] {
            assert!(SuffixList::parse(bad, false).is_err(), "{bad:?}");
        }
    }

    /// The suffix and registered domain [`Normalize::apply`] writes for a query for `name`.
    fn applied(list: &Arc<SuffixList>, name: &str) -> (Option<String>, Option<String>) {
        let msg = wire(name);
        let mut rec = Record {
            message_type: Some(5),
            query_message: Some(&msg),
            ..Record::default()
        };
        rec.parse_dns();
        let step = Normalize {
            lowercase: false,
            add_tld: true,
            add_etld1: true,
            list: Some(list.clone()),
        };
        let mut en = Enrichment::default();
        assert_eq!(step.apply(&rec, &mut en), Verdict::Keep);
        let text = |r: &Option<std::ops::Range<u16>>| {
            r.clone().map(|r| {
                String::from_utf8(en.text[r.start as usize..r.end as usize].to_vec()).unwrap()
            })
        };
        (text(&en.tld), text(&en.etld1))
    }

    #[test]
    fn rules_longer_than_the_window_of_labels() {
        // 20 labels of rule, a wildcard below it: the look-up goes past the 16 labels
        // read in place, to the copy of the whole name.
        let deep: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
        let deep = deep.join(".");
        let list = format!("// ===BEGIN ICANN DOMAINS===\ncom\n*.{deep}\n");
        let list = Arc::new(SuffixList::parse(&list, false).unwrap());
        let some = |s: String| Some(s);
        assert_eq!(
            applied(&list, &format!("A.b.c.{deep}")),
            (some(format!("c.{deep}")), some(format!("b.c.{deep}")))
        );
        assert_eq!(
            applied(&list, &format!("C.{deep}")),
            (some(format!("c.{deep}")), None)
        );
        // Long names under short rules: read in place.
        let long = "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t";
        assert_eq!(
            applied(&list, &format!("{long}.Example.COM")),
            (some("com".into()), some("example.com".into()))
        );
        // The etld+1's label is the 17th from the right.
        let sixteen = "b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q";
        let list = Arc::new(
            SuffixList::parse(&format!("// ===BEGIN ICANN DOMAINS===\n{sixteen}\n"), false)
                .unwrap(),
        );
        assert_eq!(
            applied(&list, &format!("x.A.{sixteen}")),
            (some(sixteen.into()), some(format!("a.{sixteen}")))
        );
    }
}
