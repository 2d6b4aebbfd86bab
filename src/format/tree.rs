//! A nested-value writer with two syntaxes: compact JSON on one line, or a block-style YAML
//! document. The full formats describe a record once, as calls on [`Tree`], and get both.
//! No allocation: nesting state is a depth counter and one bit per level.
//!
//! YAML layout (two spaces per level; a mapping inside a list starts on the `- ` line):
//!
//! ```text
//! ---
//! identity: "lab-nsd"
//! message:
//!   type: "AUTH_RESPONSE"
//!   response_message:
//!     answer:
//!       - name: "example.test."
//!         ttl: 3600
//! ```
#![forbid(unsafe_code)]

use crate::format::escape;

/// Writes one document. Invariant: `1 <= depth` between `open` and `close`; bit `d` of
/// `filled` says whether the container at depth `d` already holds a member.
pub struct Tree<'o> {
    out: &'o mut Vec<u8>,
    yaml: bool,
    depth: u32,
    filled: u64,
    /// YAML: the next key goes on the current `- ` line.
    inline: bool,
}

impl<'o> Tree<'o> {
    /// Starts a document whose top level is a mapping.
    pub fn open(out: &'o mut Vec<u8>, yaml: bool) -> Tree<'o> {
        out.extend_from_slice(if yaml { b"---" } else { b"{" });
        Tree {
            out,
            yaml,
            depth: 1,
            filled: 0,
            inline: false,
        }
    }

    /// Ends the document and its line.
    pub fn close(self) {
        if !self.yaml {
            self.out.push(b'}');
        }
        self.out.push(b'\n');
    }

    #[inline]
    fn bit(&self) -> u64 {
        1u64 << self.depth.min(63)
    }

    /// Marks a member of the current container; returns whether it is the first.
    #[inline]
    fn member(&mut self) -> bool {
        let first = self.filled & self.bit() == 0;
        self.filled |= self.bit();
        first
    }

    fn indent(&mut self) {
        self.out.push(b'\n');
        for _ in 1..self.depth {
            self.out.extend_from_slice(b"  ");
        }
    }

    /// A mapping key; its value follows.
    pub fn key(&mut self, k: &str) {
        let first = self.member();
        if self.yaml {
            if self.inline {
                self.out.push(b' ');
                self.inline = false;
            } else {
                self.indent();
            }
            self.out.extend_from_slice(k.as_bytes());
            self.out.push(b':');
        } else {
            if !first {
                self.out.push(b',');
            }
            self.out.push(b'"');
            self.out.extend_from_slice(k.as_bytes());
            self.out.extend_from_slice(b"\":");
        }
    }

    /// A list item; its value follows.
    pub fn item(&mut self) {
        let first = self.member();
        if self.yaml {
            self.indent();
            self.out.push(b'-');
            self.inline = true;
        } else if !first {
            self.out.push(b',');
        }
    }

    fn begin(&mut self, json: u8) {
        if !self.yaml {
            self.out.push(json);
        }
        self.depth += 1;
        self.filled &= !self.bit();
    }

    fn end(&mut self, json: u8, yaml_empty: &[u8]) {
        if self.yaml {
            if self.filled & self.bit() == 0 {
                self.out.extend_from_slice(yaml_empty);
                self.inline = false;
            }
        } else {
            self.out.push(json);
        }
        self.depth -= 1;
    }

    pub fn begin_map(&mut self) {
        self.begin(b'{');
    }
    pub fn end_map(&mut self) {
        self.end(b'}', b" {}");
    }
    pub fn begin_list(&mut self) {
        self.begin(b'[');
    }
    pub fn end_list(&mut self) {
        self.end(b']', b" []");
    }

    #[inline]
    fn scalar(&mut self) {
        if self.yaml {
            self.out.push(b' ');
            self.inline = false;
        }
    }

    /// A string from arbitrary bytes (escaped).
    pub fn bytes(&mut self, v: &[u8]) {
        self.scalar();
        if self.yaml {
            escape::write_yaml_str(v, self.out);
        } else {
            escape::write_json_str(v, self.out);
        }
    }

    /// A string `f` writes that needs no escaping but `"` and `\` (names, mnemonics).
    pub fn ascii(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        self.scalar();
        self.out.push(b'"');
        let start = self.out.len();
        f(self.out);
        escape::escape_quotes_since(self.out, start);
        self.out.push(b'"');
    }

    pub fn num(&mut self, v: u64) {
        self.scalar();
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    pub fn boolean(&mut self, v: bool) {
        self.scalar();
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    pub fn kv_num(&mut self, k: &str, v: u64) {
        self.key(k);
        self.num(v);
    }
    pub fn kv_bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.boolean(v);
    }
    pub fn kv_bytes(&mut self, k: &str, v: &[u8]) {
        self.key(k);
        self.bytes(v);
    }
    pub fn kv_ascii(&mut self, k: &str, f: impl FnOnce(&mut Vec<u8>)) {
        self.key(k);
        self.ascii(f);
    }
    /// The mnemonic when known, else the number (as a number).
    pub fn kv_name_or_num(&mut self, k: &str, name: Option<&'static str>, n: u64) {
        self.key(k);
        match name {
            Some(s) => self.ascii(|o| o.extend_from_slice(s.as_bytes())),
            None => self.num(n),
        }
    }

    /// Nanoseconds as a number of seconds with six decimals, truncated to the microsecond
    /// (`20_608` ns → `0.000020`).
    pub fn kv_seconds_micros(&mut self, k: &str, ns: u64) {
        self.key(k);
        self.scalar();
        let us = ns / 1_000;
        let mut b = itoa::Buffer::new();
        self.out
            .extend_from_slice(b.format(us / 1_000_000).as_bytes());
        self.out.push(b'.');
        let frac = b.format(us % 1_000_000 + 1_000_000).as_bytes();
        self.out.extend_from_slice(&frac[1..]);
    }
}

#[cfg(test)]
mod tests {
    use super::Tree;

    fn sample(yaml: bool) -> String {
        let mut out = Vec::new();
        let mut t = Tree::open(&mut out, yaml);
        t.kv_bytes("s", b"a\"b");
        t.kv_num("n", 7);
        t.key("m");
        t.begin_map();
        t.kv_bool("flag", true);
        t.key("list");
        t.begin_list();
        for i in 0..2 {
            t.item();
            t.begin_map();
            t.kv_num("i", i);
            t.kv_ascii("name", |o| o.extend_from_slice(b"x\\y."));
            t.end_map();
        }
        t.item();
        t.num(9);
        t.end_list();
        t.key("empty");
        t.begin_list();
        t.end_list();
        t.key("none");
        t.begin_map();
        t.end_map();
        t.end_map();
        t.close();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_and_yaml_describe_the_same_value() {
        let json = sample(false);
        assert_eq!(
            json,
            "{\"s\":\"a\\\"b\",\"n\":7,\"m\":{\"flag\":true,\"list\":[{\"i\":0,\"name\":\"x\\\\y.\"},\
             {\"i\":1,\"name\":\"x\\\\y.\"},9],\"empty\":[],\"none\":{}}}\n"
        );
        let yaml = sample(true);
        assert_eq!(
            yaml,
            "---\ns: \"a\\\"b\"\nn: 7\nm:\n  flag: true\n  list:\n    - i: 0\n      name: \"x\\\\y.\"\n    \
             - i: 1\n      name: \"x\\\\y.\"\n    - 9\n  empty: []\n  none: {}\n"
        );
        let a: serde_json::Value = serde_json::from_str(&json).unwrap();
        let b: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(a, b);
    }
}
