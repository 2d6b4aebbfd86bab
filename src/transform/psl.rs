//! The Public Suffix List compiled into one open-addressing table of suffixes, looked up
//! from the right of a name one label at a time: how many labels of a name form its
//! public suffix, with the list's rules (plain, `*.` wildcard, `!` exception; ICANN and
//! private sections) as publicsuffix.org's algorithm applies them.
//!
//! Every suffix of every rule is a node of the table (`uk`, then `co.uk`), keyed by its
//! parent node and its leftmost label. A look-up hashes the name's labels from the right,
//! folding each label's hash into its parent's, and stops at the first suffix that is no
//! node: no rule is longer than that. Labels are compared ASCII case-insensitively and
//! hashed as the domain lists hash them ([`super::domains`]).
//!
//! ```text
//!  www.example.co.uk   uk: node ── co.uk: rule (suffix 2) ── example.co.uk: no node, stop
//!  a.b.city.kawasaki.jp   jp: rule ── kawasaki.jp: wildcard below ── city.kawasaki.jp:
//!                         matched by `*.kawasaki.jp`, but `!city.kawasaki.jp` prevails:
//!                         the suffix is kawasaki.jp (2)
//! ```
//!
//! PERF: replaces a tree of SipHash maps (one map probe and one allocation-free but slow
//! hash per label); see docs/transforms.md, "Cost".
//!
//! Knows the list's text format and names as labels; nothing of records or configuration.
#![forbid(unsafe_code)]

use super::domains::label_hash;

/// A node is present (some rule ends in this suffix).
const NODE: u8 = 1;
/// Flags of the ICANN section; the private section's are these shifted left by one.
const RULE: u8 = 2;
const EXCEPTION: u8 = 8;
const WILDCARD: u8 = 32;
const PRIVATE_SHIFT: u8 = 1;

/// One table slot, 16 bytes (the list's ~15 000 nodes fit in 256 KiB): the suffix's
/// hash's high half (0 = empty), its parent's slot, its leftmost label (offset and length
/// in the label arena) and its flags.
#[derive(Clone, Copy, Default)]
struct Slot {
    tag: u32,
    parent: u32,
    label_at: u32,
    label_len: u8,
    flags: u8,
}

/// A slot's tag from a suffix hash: its high half, never 0 (the index uses the low bits).
#[inline]
fn tag_of(hash: u64) -> u32 {
    ((hash >> 32) as u32) | 1
}

/// The parent index of a top-level suffix.
const ROOT: u32 = u32::MAX;

/// A compiled Public Suffix List.
pub struct SuffixTable {
    slots: Box<[Slot]>,
    mask: usize,
    /// Labels of the nodes, lowercased, back to back.
    labels: Vec<u8>,
    /// The flags a look-up honours (the private section's masked out for ICANN only).
    honour: u8,
    /// Labels of the longest rule.
    depth: usize,
}

impl std::fmt::Debug for SuffixTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes = self.slots.iter().filter(|s| s.tag != 0).count();
        write!(f, "SuffixTable {{ nodes: {nodes} }}")
    }
}

/// A suffix's hash from its parent's and its leftmost label's; never 0.
#[inline]
fn fold(parent: u64, label: u64) -> u64 {
    let h = (parent.rotate_left(23) ^ label).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let h = h ^ (h >> 31);
    h | 1
}

impl SuffixTable {
    /// Parses the list's text: rules one a line (the first word of it), `//` comments, the
    /// sections between `===BEGIN ICANN DOMAINS===` and `===BEGIN PRIVATE DOMAINS===`
    /// markers (rules before the first marker are ignored). A rule in Unicode is entered
    /// as written and in punycode, as names are on the wire. With `icann_only` the private
    /// section's rules do not count.
    pub fn parse(text: &str, icann_only: bool) -> Result<SuffixTable, String> {
        let mut rules: Vec<(String, bool)> = Vec::new();
        let mut private = None;
        for line in text.lines() {
            if line.contains("BEGIN ICANN DOMAINS") {
                private = Some(false);
                continue;
            }
            if line.contains("BEGIN PRIVATE DOMAINS") {
                private = Some(true);
                continue;
            }
            if line.starts_with("//") {
                continue;
            }
            let (Some(p), Some(rule)) = (private, line.split_whitespace().next()) else {
                continue;
            };
            rules.push((rule.to_string(), p));
            if !rule.is_ascii() {
                let bare = rule.trim_start_matches('!');
                let ascii = idna::domain_to_ascii(bare.trim_start_matches("*."))
                    .map_err(|_| format!("rule {rule:?} has no punycode form"))?;
                let prefix = &rule[..rule.len() - bare.len()];
                let wild = if bare.starts_with("*.") { "*." } else { "" };
                rules.push((format!("{prefix}{wild}{ascii}"), p));
            }
        }
        if rules.is_empty() {
            return Err("no rule in any section".to_string());
        }
        // Every label of every rule bounds the number of nodes; the table is sized for
        // that, then rebuilt at its final size (at most 70 % of the slots used).
        let labels_max: usize = rules.iter().map(|(r, _)| r.split('.').count()).sum();
        let cap = (labels_max * 10 / 7 + 1).next_power_of_two().max(16);
        let mut t = SuffixTable {
            slots: vec![Slot::default(); cap].into_boxed_slice(),
            mask: cap - 1,
            labels: Vec::new(),
            honour: if icann_only {
                NODE | RULE | EXCEPTION | WILDCARD
            } else {
                !0
            },
            depth: 0,
        };
        let mut built = Vec::new();
        for (rule, private) in &rules {
            t.add(rule, *private, &mut built)?;
        }
        Ok(t.resized(&built))
    }

    /// The same nodes in a table sized for them; `built` holds each node's slot and hash,
    /// parents before children.
    fn resized(self, built: &[(u32, u64)]) -> SuffixTable {
        let cap = (built.len() * 10 / 7 + 1).next_power_of_two().max(16);
        if cap >= self.slots.len() {
            return self;
        }
        let mut t = SuffixTable {
            slots: vec![Slot::default(); cap].into_boxed_slice(),
            mask: cap - 1,
            ..self
        };
        let mut moved = vec![ROOT; self.slots.len()];
        for &(old, hash) in built {
            let Some(s) = self.slots.get(old as usize).copied() else {
                continue;
            };
            let parent = match s.parent {
                ROOT => ROOT,
                p => moved.get(p as usize).copied().unwrap_or(ROOT),
            };
            let mut i = hash as usize & t.mask;
            while t.slots.get(i).is_some_and(|s| s.tag != 0) {
                i = (i + 1) & t.mask;
            }
            if let Some(d) = t.slots.get_mut(i) {
                *d = Slot { parent, ..s };
            }
            if let Some(m) = moved.get_mut(old as usize) {
                *m = i as u32;
            }
        }
        t
    }

    fn add(
        &mut self,
        rule: &str,
        private: bool,
        built: &mut Vec<(u32, u64)>,
    ) -> Result<(), String> {
        let (exception, rest) = match rule.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, rule),
        };
        if exception && !rest.contains('.') {
            return Err(format!("exception rule {rule:?} has a single label"));
        }
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if rest.split('.').any(|l| l.is_empty() || l.len() > 63) {
            return Err(format!("rule {rule:?} has an empty or over-long label"));
        }
        let mut at = ROOT;
        let mut hash = 0u64;
        self.depth = self.depth.max(rest.split('.').count());
        for label in rest.rsplit('.') {
            let l = label.to_ascii_lowercase();
            hash = fold(hash, label_hash(l.as_bytes()));
            at = self.node(hash, at, l.as_bytes(), built);
        }
        let shift = if private { PRIVATE_SHIFT } else { 0 };
        let flag = if exception {
            EXCEPTION
        } else if wildcard {
            WILDCARD
        } else {
            RULE
        };
        if let Some(s) = self.slots.get_mut(at as usize) {
            s.flags |= flag << shift;
        }
        Ok(())
    }

    /// The slot of the node (`parent`, `label`), made when absent.
    fn node(&mut self, hash: u64, parent: u32, label: &[u8], built: &mut Vec<(u32, u64)>) -> u32 {
        if let Some(i) = self.find(hash, parent, label) {
            return i;
        }
        let mut i = hash as usize & self.mask;
        while self.slots.get(i).is_some_and(|s| s.tag != 0) {
            i = (i + 1) & self.mask;
        }
        let label_at = self.labels.len() as u32;
        self.labels.extend_from_slice(label);
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot {
                tag: tag_of(hash),
                parent,
                label_at,
                label_len: label.len() as u8,
                flags: NODE,
            };
        }
        built.push((i as u32, hash));
        i as u32
    }

    /// The slot of the node (`parent`, `label`); `label` is compared case-insensitively.
    #[inline]
    fn find(&self, hash: u64, parent: u32, label: &[u8]) -> Option<u32> {
        let mut i = hash as usize & self.mask;
        let tag = tag_of(hash);
        loop {
            let s = self.slots.get(i)?;
            if s.tag == 0 {
                return None;
            }
            if s.tag == tag && s.parent == parent && usize::from(s.label_len) == label.len() {
                let at = s.label_at as usize;
                let stored = self.labels.get(at..at + label.len())?;
                if stored.eq_ignore_ascii_case(label) {
                    return Some(i as u32);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Labels of the longest rule (its `*` not counted).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// How many labels from the right of a name of `n` labels (`label(i)`, 0 the leftmost,
    /// any ASCII case) form its public suffix: at least 1 for a name with a label (the
    /// implicit `*` rule), 0 for the root.
    #[inline]
    pub fn suffix_labels<'a>(&self, n: usize, label: impl Fn(usize) -> &'a [u8]) -> usize {
        if n == 0 {
            return 0;
        }
        let mut matched = 1;
        let mut parent = ROOT;
        let mut hash = 0u64;
        let mut wildcard_above = false;
        for k in 1..=n {
            let l = label(n - k);
            if wildcard_above {
                matched = k;
            }
            hash = fold(hash, label_hash(l));
            let Some(i) = self.find(hash, parent, l) else {
                break;
            };
            let flags = self.slots.get(i as usize).map_or(0, |s| s.flags) & self.honour;
            let any = |f: u8| flags & (f | f << PRIVATE_SHIFT) != 0;
            if any(EXCEPTION) {
                return k - 1;
            }
            if any(RULE) {
                matched = k;
            }
            wildcard_above = any(WILDCARD);
            parent = i;
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "com\n// ===BEGIN ICANN DOMAINS===\ncom\nuk\nco.uk\njp\n*.kawasaki.jp\n\
        !city.kawasaki.jp\nio\n*.ck\n!www.ck\n公司.cn\ncn\n// ===END ICANN DOMAINS===\n\
        // ===BEGIN PRIVATE DOMAINS===\ngithub.io\n*.compute.example.io\n\
        // ===END PRIVATE DOMAINS===\n";

    fn suffix(t: &SuffixTable, name: &str) -> String {
        let labels: Vec<&[u8]> = name
            .split('.')
            .filter(|l| !l.is_empty())
            .map(str::as_bytes)
            .collect();
        let s = t.suffix_labels(labels.len(), |i| labels.get(i).copied().unwrap_or_default());
        name.split('.')
            .skip(labels.len() - s)
            .collect::<Vec<_>>()
            .join(".")
    }

    #[test]
    fn rules_wildcards_and_exceptions() {
        let t = SuffixTable::parse(LIST, false).unwrap();
        for (name, want) in [
            ("www.example.com", "com"),
            ("COM", "COM"),
            ("www.Example.CO.uk", "CO.uk"),
            ("co.uk", "co.uk"),
            ("uk", "uk"),
            ("a.b.unknown", "unknown"),
            ("kawasaki.jp", "jp"),
            ("x.kawasaki.jp", "x.kawasaki.jp"),
            ("y.x.kawasaki.jp", "x.kawasaki.jp"),
            ("a.b.city.kawasaki.jp", "kawasaki.jp"),
            ("city.kawasaki.jp", "kawasaki.jp"),
            ("www.ck", "ck"),
            ("a.www.ck", "ck"),
            ("other.ck", "other.ck"),
            ("user.github.io", "github.io"),
            ("a.b.compute.example.io", "b.compute.example.io"),
            ("www.xn--55qx5d.cn", "xn--55qx5d.cn"),
            ("www.公司.cn", "公司.cn"),
        ] {
            assert_eq!(suffix(&t, name), want, "{name}");
        }
        assert_eq!(t.suffix_labels(0, |_| &[][..]), 0);
    }

    #[test]
    fn icann_only_ignores_the_private_section() {
        let t = SuffixTable::parse(LIST, true).unwrap();
        assert_eq!(suffix(&t, "user.github.io"), "io");
        assert_eq!(suffix(&t, "a.b.compute.example.io"), "io");
        assert_eq!(suffix(&t, "www.co.uk"), "co.uk");
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(SuffixTable::parse("// nothing\n", false).is_err());
        assert!(SuffixTable::parse("// ===BEGIN ICANN DOMAINS===\n!com\n", false).is_err());
        assert!(SuffixTable::parse("// ===BEGIN ICANN DOMAINS===\na..b\n", false).is_err());
    }

    #[test]
    fn the_builtin_list_compiles() {
        let t = SuffixTable::parse(super::super::normalize::BUILTIN_LIST, false).unwrap();
        assert_eq!(suffix(&t, "www.bbc.co.uk"), "co.uk");
        assert_eq!(suffix(&t, "someone.github.io"), "github.io");
    }
}
