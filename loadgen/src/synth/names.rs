//! The query-name set: names in DNS wire form, generated once; a name's index is its Zipf
//! rank. Mostly short names, plus the hard cases a receiver must survive.
#![forbid(unsafe_code)]

use super::rng::Rng;

/// Longest name on the wire, RFC 1035 §2.3.4.
const NAME_WIRE_MAX: usize = 255;
const LABEL_MAX: usize = 63;

const TLDS: &[&str] = &[
    "com", "net", "org", "de", "io", "fr", "uk", "nl", "jp", "info", "test", "example",
];
const SUBS: &[&str] = &[
    "www",
    "api",
    "mail",
    "cdn",
    "m",
    "static",
    "img",
    "login",
    "_dmarc",
    "ns1",
    "smtp",
    "app",
    "auth",
    "_443._tcp",
    "video",
    "edge",
    "telemetry",
];
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "po", "de", "an", "el", "or", "ix", "um",
    "zen", "tri", "cor", "net", "web", "fly", "dat", "byte", "sky",
];

/// Query names in wire form, back to back; the Zipf rank of a name is its index.
pub(super) struct NameSet {
    wire: Vec<u8>,
    ends: Vec<usize>,
}

impl NameSet {
    pub(super) fn generate(rng: &mut Rng, n: usize) -> NameSet {
        let mut set = NameSet {
            wire: Vec::new(),
            ends: Vec::with_capacity(n),
        };
        let mut labels: Vec<Vec<u8>> = Vec::new();
        for _ in 0..n.max(1) {
            labels.clear();
            match rng.weighted(&[700, 90, 50, 60, 50, 20, 20, 10]) {
                0 => common_name(rng, &mut labels),
                1 => deep_name(rng, &mut labels),
                2 => long_label_name(rng, &mut labels),
                3 => many_label_name(rng, &mut labels),
                4 => reverse_v4_name(rng, &mut labels),
                5 => reverse_v6_name(rng, &mut labels),
                6 => odd_name(rng, &mut labels),
                _ => {} // the root: priming queries
            }
            set.push(&labels);
        }
        set
    }

    /// Appends a name from its labels (root last, implicit), dropping leading labels that
    /// would take it past the wire limit.
    fn push(&mut self, labels: &[Vec<u8>]) {
        let mut skip = 0;
        let wire_len = |ls: &[Vec<u8>]| 1 + ls.iter().map(|l| 1 + l.len()).sum::<usize>();
        while wire_len(&labels[skip..]) > NAME_WIRE_MAX {
            skip += 1;
        }
        for l in &labels[skip..] {
            self.wire.push(l.len() as u8);
            self.wire.extend_from_slice(l);
        }
        self.wire.push(0);
        self.ends.push(self.wire.len());
    }

    pub(super) fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.wire[start..self.ends[i]]
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }
}

pub(super) fn pick<'a>(rng: &mut Rng, words: &[&'a str]) -> &'a str {
    words[rng.below(words.len() as u64) as usize]
}

fn word(rng: &mut Rng, syllables: u64) -> Vec<u8> {
    let mut w = Vec::new();
    for _ in 0..syllables {
        w.extend_from_slice(pick(rng, SYLLABLES).as_bytes());
    }
    if rng.chance(300) {
        w.extend_from_slice(rng.range(0, 99).to_string().as_bytes());
    }
    w.truncate(LABEL_MAX);
    w
}

fn push_str_labels(labels: &mut Vec<Vec<u8>>, dotted: &str) {
    labels.extend(dotted.split('.').map(|l| l.as_bytes().to_vec()));
}

/// `[sub.]domain.tld`
fn common_name(rng: &mut Rng, labels: &mut Vec<Vec<u8>>) {
    if rng.chance(550) {
        push_str_labels(labels, pick(rng, SUBS));
    }
    let syl = rng.range(1, 4);
    labels.push(word(rng, syl));
    push_str_labels(labels, pick(rng, TLDS));
}

/// 5 to 10 labels: service meshes, CDNs, tracking hosts.
fn deep_name(rng: &mut Rng, labels: &mut Vec<Vec<u8>>) {
    for _ in 0..rng.range(3, 8) {
        let syl = rng.range(1, 2);
        labels.push(word(rng, syl));
    }
    push_str_labels(labels, pick(rng, TLDS));
}

/// Labels of 30 to 63 hex digits (DKIM selectors, DGA names, tunnelling), sometimes as
/// many as fit in 255 bytes.
fn long_label_name(rng: &mut Rng, labels: &mut Vec<Vec<u8>>) {
    let count = if rng.chance(300) { 4 } else { rng.range(1, 2) };
    for _ in 0..count {
        let len = if rng.chance(500) {
            LABEL_MAX
        } else {
            rng.range(30, 63) as usize
        };
        labels.push(
            (0..len)
                .map(|_| b"0123456789abcdef"[rng.below(16) as usize])
                .collect(),
        );
    }
    labels.push(word(rng, 2));
    push_str_labels(labels, pick(rng, TLDS));
}

/// 20 to 100 labels of 1 to 3 bytes (the limit cuts the longest down to fit 255 bytes).
fn many_label_name(rng: &mut Rng, labels: &mut Vec<Vec<u8>>) {
    for _ in 0..rng.range(20, 100) {
        let len = rng.range(1, 3);
        labels.push(
            (0..len)
                .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.below(36) as usize])
                .collect(),
        );
    }
    labels.push(word(rng, 1));
    push_str_labels(labels, "example");
}

fn reverse_v4_name(rng: &mut Rng, labels: &mut Vec<Vec<u8>>) {
    for _ in 0..4 {
        labels.push(rng.range(0, 255).to_string().into_bytes());
    }
    push_str_labels(labels, "in-addr.arpa");
}

/// 32 nibble labels + ip6.arpa: 34 labels, 74 bytes on the wire.
fn reverse_v6_name(rng: &mut Rng, labels: &mut Vec<Vec<u8>>) {
    for _ in 0..32 {
        labels.push(vec![b"0123456789abcdef"[rng.below(16) as usize]]);
    }
    push_str_labels(labels, "ip6.arpa");
}

/// Names that exercise text escaping and case: mixed case (0x20 randomisation), a
/// wildcard, and bytes that must be escaped (space, dot, backslash, quote, non-ASCII).
fn odd_name(rng: &mut Rng, labels: &mut Vec<Vec<u8>>) {
    common_name(rng, labels);
    match rng.below(3) {
        0 => {
            for l in labels.iter_mut() {
                for b in l.iter_mut() {
                    if rng.chance(500) {
                        b.make_ascii_uppercase();
                    }
                }
            }
        }
        1 => labels.insert(0, b"*".to_vec()),
        _ => {
            let odd: &[u8] =
                pick(rng, &["a b", "x.y", "back\\slash", "quo\"te", "caf\u{e9}"]).as_bytes();
            let mut l = odd.to_vec();
            if rng.chance(300) {
                l.push(0xff);
            }
            labels.insert(0, l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_respect_rfc1035_limits_and_include_the_hard_cases() {
        let mut rng = Rng::new(3);
        let set = NameSet::generate(&mut rng, 5_000);
        let (mut long_label, mut many, mut root, mut near_max) = (0, 0, 0, 0);
        for i in 0..set.len() {
            let n = set.get(i);
            assert!(n.len() <= NAME_WIRE_MAX);
            let (mut pos, mut labels) = (0, 0);
            loop {
                let len = n[pos] as usize;
                assert!(len <= LABEL_MAX);
                if len == 0 {
                    break;
                }
                long_label += usize::from(len == LABEL_MAX);
                labels += 1;
                pos += 1 + len;
            }
            assert_eq!(pos + 1, n.len(), "the name ends at its root label");
            many += usize::from(labels >= 30);
            root += usize::from(labels == 0);
            near_max += usize::from(n.len() > 240);
        }
        assert!(long_label > 50 && many > 50 && root > 20 && near_max > 20);
    }
}
