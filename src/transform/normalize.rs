//! The `normalize` transform: the qname lowercased in the message every output sees, and
//! the public suffix (`tld`) and registered domain (`etld+1`) of the qname from the Public
//! Suffix List, which the full formats print as `"publicsuffix": {"tld", "etld+1"}`.
//!
//! The list is compiled at start-up ([`super::psl::SuffixTable`]) from the text the
//! configuration read (a file, or the copy compiled in from assets/publicsuffix/), and
//! looked up with the labels of the wire-form qname, read in place. A name under a suffix
//! the list does not know follows the list's `*` rule: its last label is the suffix.
//!
//! Knows records, DNS names and the list; nothing of files or configuration.
#![forbid(unsafe_code)]

use std::sync::Arc;

use super::psl::SuffixTable;
use super::rewrite;
use super::Verdict;
use crate::dns::name::escape_label_into;
use crate::record::{Enrichment, Record};

/// The copy of the Public Suffix List compiled in, for hosts without a list file
/// (Debian's `publicsuffix` package installs one at [`SYSTEM_LIST`]).
pub const BUILTIN_LIST: &str = include_str!("../../assets/publicsuffix/public_suffix_list.dat");

/// Where Debian's `publicsuffix` package installs the list: the default when present.
pub const SYSTEM_LIST: &str = "/usr/share/publicsuffix/public_suffix_list.dat";

/// Largest number of labels in a name (255 wire bytes, 2 per label at least).
const MAX_LABELS: usize = 128;

/// A Public Suffix List, whole (ICANN and private sections) or its ICANN section only.
#[derive(Debug)]
pub struct SuffixList(SuffixTable);

impl SuffixList {
    /// Parses the list's text (the `publicsuffix.org` format: `// ===BEGIN ICANN
    /// DOMAINS===`, rules, `!` exceptions and `*` wildcards). With `icann_only`, the rules
    /// of the private section are ignored.
    pub fn parse(text: &str, icann_only: bool) -> Result<SuffixList, String> {
        SuffixTable::parse(text, icann_only).map(SuffixList)
    }

    /// How many labels (from the right) of `name` form its public suffix: at least 1 for
    /// a name with a label (the `*` rule), 0 for the root.
    pub fn suffix_labels(&self, name: &QName) -> usize {
        self.0.suffix_labels(name.len(), |i| name.label(i))
    }

    /// Labels of the list's longest rule.
    pub fn depth(&self) -> usize {
        self.0.depth()
    }

    /// The same for a name of `n` labels given by `label(i)` (0 the leftmost, any ASCII
    /// case).
    #[inline]
    pub fn suffix_labels_by<'a>(&self, n: usize, label: impl Fn(usize) -> &'a [u8]) -> usize {
        self.0.suffix_labels(n, label)
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
        // need only the rightmost few.
        let mut ring: [&[u8]; WINDOW] = [&[]; WINDOW];
        let mut n = 0usize;
        for l in q.name.labels() {
            if let Some(slot) = ring.get_mut(n % WINDOW) {
                *slot = l;
            }
            n += 1;
        }
        if n > WINDOW && list.depth() + 2 > WINDOW {
            // A rule (with a wildcard, and the etld+1's label) may reach past the window.
            return self.apply_copied(&view, list, &mut en.text, &mut en.tld, &mut en.etld1);
        }
        let seen = n.min(WINDOW);
        // Label `j` of the window (0 = the leftmost kept, n - seen of the name).
        let label = |j: usize| {
            ring.get((n - seen + j) % WINDOW)
                .copied()
                .unwrap_or_default()
        };
        let s = list.suffix_labels_by(seen, label);
        if s == 0 {
            return Verdict::Keep;
        }
        if self.add_tld {
            en.tld = write_lower((seen - s..seen).map(label), &mut en.text);
        }
        if self.add_etld1 && n > s {
            en.etld1 = write_lower((seen - s - 1..seen).map(label), &mut en.text);
        }
        Verdict::Keep
    }

    /// [`Normalize::apply`] from a copy of the whole name: for a name longer than the
    /// window of labels when the list has rules nearly that long.
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

/// Labels kept from the right of a name for the look-up and the texts: a public suffix of
/// more labels than this is found from a copy of the name ([`Normalize::apply_copied`]).
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
        escape_label_into(l, out);
    }
    // Escapes are digits and backslashes: lowercasing the text lowercases the labels.
    if let Some(t) = out.get_mut(start..) {
        t.make_ascii_lowercase();
    }
    range(start, out.len())
}

fn range(start: usize, end: usize) -> Option<std::ops::Range<u16>> {
    Some(u16::try_from(start).ok()?..u16::try_from(end).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "// ===BEGIN ICANN DOMAINS===\ncom\nuk\nco.uk\njp\n*.kawasaki.jp\n!city.kawasaki.jp\nio\n// ===END ICANN DOMAINS===\n// ===BEGIN PRIVATE DOMAINS===\ngithub.io\n// ===END PRIVATE DOMAINS===\n";

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
        // 食狮.中国 is in the list in Unicode; the wire carries punycode.
        assert_eq!(
            split(&all, "www.xn--85x722f.xn--55qx5d.cn"),
            (
                "xn--55qx5d.cn".into(),
                Some("xn--85x722f.xn--55qx5d.cn".into())
            )
        );
    }
}
