//! Writes the seed corpora of the fuzz targets from the lab's real captures, so that every
//! target starts from traffic real DNS servers sent rather than from nothing.
//!
//! Usage: `fuzz-seed [OUT_DIR]` (default `fuzz/corpus`). The captures are the
//! repository's `lab/captures/` (and `lab/captures/wire/`). Writes `OUT_DIR/<target>/seed-<hash>`; existing
//! files are kept, so the corpora the fuzzer grew survive a re-run.
//!
//! What each target gets:
//! - `framestream`: stream prefixes and short complete streams (START or READY, a few data
//!   frames, STOP) cut from the captures and the raw sender dumps, in the layout
//!   `fuzz_support::SplitInput` reads (flags, read sizes, stream);
//! - `dnstap_view`, `format`, `filter`: dnstap payloads (data frames), a few of each message
//!   type per capture;
//! - `dns`: the DNS messages inside those payloads (query_message, response_message), a few
//!   per capture, message type and query type;
//! - `powerdns`: PBDNSMessages (proto/dnsmessage.proto) rebuilt from those payloads (type,
//!   family, protocol, addresses, ports, time, id, question, rcode, for responses an A and a
//!   CNAME record and an applied policy), behind the target's 2-byte output room;
//! - `config`: every ```` ```yaml ```` block of the repository's README and `docs/*.md` (the
//!   example configs, and output samples as files the loader must refuse) and a few configs
//!   the tests use, each behind a few of the target's command-line selector bytes.
//!
//! The protobuf and DNS walking here is deliberately tiny and independent of the crate's own
//! parsers (which are what is being fuzzed); only the Frame Streams decoder is reused, to
//! split the capture files into frames.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event, Step};

/// Payloads kept per (capture, dnstap message type).
const PAYLOADS_PER_TYPE: usize = 4;
/// DNS messages kept per (capture, message type, qtype).
const DNS_PER_KEY: usize = 2;
/// Length of the raw stream prefixes.
const PREFIX_LEN: usize = 1500;
/// Data frames in each short complete stream.
const SHORT_STREAM_FRAMES: usize = 3;

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus"));
    // fuzz/seed/ -> the repository's lab/.
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab");
    let captures = lab.join("captures");
    let mut inputs: Vec<PathBuf> = Vec::new();
    for dir in [captures.clone(), captures.join("wire")] {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => fail(&format!(
                "{}: {e} (the lab's captures are part of the repository)",
                dir.display()
            )),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".fstrm") || name.ends_with(".sender.bin") {
                inputs.push(path);
            }
        }
    }
    inputs.sort();
    if inputs.is_empty() {
        fail(&format!("no captures in {}", captures.display()));
    }

    let mut corpus = Corpus::new(&out);
    for path in &inputs {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => fail(&format!("{}: {e}", path.display())),
        };
        seed_capture(&bytes, &mut corpus);
    }
    seed_configs(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        &mut corpus,
    );
    corpus.write_all();
}

fn fail(msg: &str) -> ! {
    eprintln!("fuzz-seed: {msg}");
    std::process::exit(1)
}

/// The seeds, per target, deduplicated by content.
struct Corpus {
    out: PathBuf,
    targets: BTreeMap<&'static str, Vec<Vec<u8>>>,
    seen: HashSet<(&'static str, Vec<u8>)>,
}

impl Corpus {
    fn new(out: &Path) -> Corpus {
        Corpus {
            out: out.to_path_buf(),
            targets: BTreeMap::new(),
            seen: HashSet::new(),
        }
    }

    fn add(&mut self, target: &'static str, input: Vec<u8>) {
        if self.seen.insert((target, input.clone())) {
            self.targets.entry(target).or_default().push(input);
        }
    }

    fn write_all(&self) {
        for (target, inputs) in &self.targets {
            let dir = self.out.join(target);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                fail(&format!("{}: {e}", dir.display()));
            }
            for input in inputs {
                let path = dir.join(format!("seed-{:016x}", fnv1a(input)));
                if let Err(e) = std::fs::write(&path, input) {
                    fail(&format!("{}: {e}", path.display()));
                }
            }
            println!("{target}: {} seeds in {}", inputs.len(), dir.display());
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One frame of a capture: where it is in the file and what it was.
struct Frame {
    range: std::ops::Range<usize>,
    payload: Option<std::ops::Range<usize>>,
}

/// Splits a whole capture (unidirectional file or bidirectional sender dump) into frames.
fn frames(stream: &[u8]) -> Vec<Frame> {
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    let mut at = 0;
    let mut out = Vec::new();
    while let Some(rest) = stream.get(at..) {
        match dec.decode(rest, &mut reply) {
            Ok(Step {
                event: Event::NeedMore,
                ..
            })
            | Err(_) => break,
            Ok(Step { consumed, event }) => {
                let payload = match event {
                    Event::Data { payload } => Some(at + payload.start..at + payload.end),
                    _ => None,
                };
                out.push(Frame {
                    range: at..at + consumed,
                    payload,
                });
                at += consumed;
            }
        }
    }
    out
}

fn seed_capture(stream: &[u8], corpus: &mut Corpus) {
    let frames = frames(stream);

    // framestream: a raw prefix (EOF mid-frame), read whole and in odd pieces.
    let prefix = &stream[..stream.len().min(PREFIX_LEN)];
    corpus.add("framestream", layout(0, &[], prefix));
    corpus.add("framestream", layout(0, &[1, 3, 7, 64, 5], prefix));
    // A short complete stream: the handshake, the first data frames, the last frame (STOP).
    let controls_then_data: Vec<&Frame> = frames
        .iter()
        .take_while(|f| f.payload.is_none())
        .chain(
            frames
                .iter()
                .filter(|f| f.payload.is_some())
                .take(SHORT_STREAM_FRAMES),
        )
        .collect();
    let mut short = Vec::new();
    for f in &controls_then_data {
        short.extend_from_slice(&stream[f.range.clone()]);
    }
    if let Some(last) = frames.last().filter(|f| f.payload.is_none()) {
        short.extend_from_slice(&stream[last.range.clone()]);
    }
    corpus.add("framestream", layout(0, &[], &short));
    corpus.add("framestream", layout(0, &[4, 4, 1, 2, 9, 30], &short));
    // The same under a 64-byte data frame limit: most real frames are then refused.
    corpus.add("framestream", layout(2, &[], &short));

    // Payloads, a few per dnstap message type; the DNS messages inside them.
    let mut per_type: BTreeMap<u64, usize> = BTreeMap::new();
    let mut per_dns_key: BTreeMap<(u64, u16, bool), usize> = BTreeMap::new();
    for payload in frames.iter().filter_map(|f| f.payload.clone()) {
        let payload = &stream[payload];
        let fields = Fields::of(payload);
        let message = fields.bytes(14).unwrap_or(&[]);
        let message = Fields::of(message);
        let mtype = message.varint(1).unwrap_or(0);
        let count = per_type.entry(mtype).or_default();
        if *count < PAYLOADS_PER_TYPE {
            *count += 1;
            for target in ["dnstap_view", "format", "filter"] {
                corpus.add(target, payload.to_vec());
            }
            if let Some(pb) = powerdns_message(&message) {
                for room in [0u16, 64, 4096] {
                    let mut input = room.to_le_bytes().to_vec();
                    input.extend_from_slice(&pb);
                    corpus.add("powerdns", input);
                }
            }
        }
        for field in [10, 14] {
            if let Some(dns) = message.bytes(field) {
                let key = (mtype, qtype(dns).unwrap_or(0), field == 14);
                let count = per_dns_key.entry(key).or_default();
                if *count < DNS_PER_KEY {
                    *count += 1;
                    corpus.add("dns", dns.to_vec());
                }
            }
        }
    }
}

/// Configs the receiver tests use beyond the documented examples: bad values, unknown keys,
/// flow style, the `inputs` list.
const EXTRA_CONFIGS: &[&str] = &[
    "input-mode:\n  local-port: 99999\n",
    "input-mode:\n  colour: blue\n",
    "queue:\n  capacity: 0\n",
    "queue: {capacity: 8, policy: drop}\nthreads: 2\nio: epoll\n",
    "input-mode:\n  tls-support: true\n",
    "forward-to:\n  enable: true\n",
    "inputs:\n  - tcp: 127.0.0.1:6000\n  - tcp: \"[::1]:6000\"\n  - unix: /run/dnstap.sock\n",
    "inputs:\n  - tcp: 127.0.0.1:6000\n  - tcp: 127.0.0.1:6000\n",
    "filter:\n  qname-regex: \"(?i)www\\\\.example\\\\.\"\n  dnstap-identities: lab-\n",
    "max-frame-size: 0\nbuffer-size: 512\n",
    "output-format:\n  text: true\n  json: true\n  yaml-full: true\n",
    "---\n# only a comment\n",
];

/// Command-line selector bytes each config seed is written with (see the target's `args`).
const CONFIG_ARGS: &[u8] = &[0, 1, 3];

fn seed_configs(repo: &Path, corpus: &mut Corpus) {
    let mut texts: Vec<String> = EXTRA_CONFIGS.iter().map(|s| s.to_string()).collect();
    let mut docs = vec![repo.join("README.md")];
    if let Ok(entries) = std::fs::read_dir(repo.join("docs")) {
        docs.extend(entries.flatten().map(|e| e.path()));
    }
    docs.sort();
    for path in docs
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let mut block: Option<String> = None;
        for line in text.lines() {
            match (&mut block, line.trim_start()) {
                (None, "```yaml") => block = Some(String::new()),
                (Some(b), "```") => {
                    texts.push(std::mem::take(b));
                    block = None;
                }
                (Some(b), _) => {
                    b.push_str(line);
                    b.push('\n');
                }
                (None, _) => {}
            }
        }
    }
    for text in &texts {
        for &pick in CONFIG_ARGS {
            let mut input = vec![pick];
            input.extend_from_slice(text.as_bytes());
            corpus.add("config", input);
        }
    }
}

/// The `fuzz_support::SplitInput` layout, restated here so that this program does not link
/// the fuzz crate (and through it libFuzzer): flags, read count, u16 LE read sizes, stream.
fn layout(flags: u8, reads: &[u16], stream: &[u8]) -> Vec<u8> {
    let mut out = vec![flags, reads.len() as u8];
    for r in reads {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out.extend_from_slice(stream);
    out
}

/// Top-level fields of one protobuf message: numbers with varint values or byte strings.
/// Stops at the first thing it cannot read; enough to find dnstap's fields in real traffic.
struct Fields<'a> {
    varints: Vec<(u64, u64)>,
    bytes: Vec<(u64, &'a [u8])>,
}

impl<'a> Fields<'a> {
    fn of(mut buf: &'a [u8]) -> Fields<'a> {
        let mut fields = Fields {
            varints: Vec::new(),
            bytes: Vec::new(),
        };
        while let Some(key) = varint(&mut buf) {
            let number = key >> 3;
            match key & 7 {
                0 => match varint(&mut buf) {
                    Some(v) => fields.varints.push((number, v)),
                    None => break,
                },
                1 if buf.len() >= 8 => buf = &buf[8..],
                5 if buf.len() >= 4 => buf = &buf[4..],
                2 => {
                    let len = varint(&mut buf).and_then(|l| usize::try_from(l).ok());
                    match len.filter(|&l| l <= buf.len()) {
                        Some(len) => {
                            let (value, rest) = buf.split_at(len);
                            fields.bytes.push((number, value));
                            buf = rest;
                        }
                        None => break,
                    }
                }
                _ => break,
            }
        }
        fields
    }

    fn varint(&self, number: u64) -> Option<u64> {
        self.varints
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, v)| *v)
    }

    fn bytes(&self, number: u64) -> Option<&'a [u8]> {
        self.bytes
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, v)| *v)
    }
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The first question's type: skips the header and the (uncompressed, as in every question
/// section seen in practice) name.
fn qtype(msg: &[u8]) -> Option<u16> {
    let mut at = 12;
    loop {
        let len = usize::from(*msg.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            at += 2;
            break;
        }
        at += 1 + len;
    }
    let word = msg.get(at..at + 2)?;
    Some(u16::from_be_bytes([word[0], word[1]]))
}

/// A PBDNSMessage saying what the dnstap `message` says, for the message types PowerDNS
/// has (client and resolver queries and responses); None for the others.
fn powerdns_message(message: &Fields<'_>) -> Option<Vec<u8>> {
    let (kind, response) = match message.varint(1)? {
        5 => (1, false),
        6 => (2, true),
        3 => (3, false),
        4 => (4, true),
        _ => return None,
    };
    let dns = message.bytes(if response { 14 } else { 10 });
    let mut m = Vec::new();
    pb_varint_field(&mut m, 1, kind);
    pb_bytes_field(&mut m, 2, &[0x5a; 16]);
    pb_bytes_field(&mut m, 3, b"seed");
    for (from, to) in [(2, 4), (3, 5)] {
        if let Some(v) = message.varint(from) {
            pb_varint_field(&mut m, to, v);
        }
    }
    for (from, to) in [(4, 6), (5, 7)] {
        if let Some(b) = message.bytes(from) {
            pb_bytes_field(&mut m, to, b);
        }
    }
    let time = message.varint(if response { 12 } else { 8 }).unwrap_or(0);
    pb_varint_field(&mut m, 9, time);
    pb_varint_field(&mut m, 10, 123_456);
    let mut rcode = 0;
    if let Some(d) = dns.filter(|d| d.len() >= 12) {
        pb_varint_field(&mut m, 11, u64::from(u16::from_be_bytes([d[0], d[1]])));
        rcode = u64::from(d[3] & 0xf);
        if let Some(name) = question_name(d) {
            let mut q = Vec::new();
            pb_bytes_field(&mut q, 1, name.as_bytes());
            pb_varint_field(&mut q, 2, u64::from(qtype(d).unwrap_or(1)));
            pb_varint_field(&mut q, 3, 1);
            pb_bytes_field(&mut m, 12, &q);
        }
    }
    if response {
        let mut r = Vec::new();
        pb_varint_field(&mut r, 1, rcode);
        for (rtype, rdata) in [(1u64, &[192, 0, 2, 1][..]), (5, b"target.example.")] {
            let mut rr = Vec::new();
            pb_bytes_field(&mut rr, 1, b"www.example.");
            pb_varint_field(&mut rr, 2, rtype);
            pb_varint_field(&mut rr, 3, 1);
            pb_varint_field(&mut rr, 4, 300);
            pb_bytes_field(&mut rr, 5, rdata);
            pb_bytes_field(&mut r, 2, &rr);
        }
        pb_bytes_field(&mut r, 3, b"rpz.example");
        pb_varint_field(&mut r, 5, time);
        pb_varint_field(&mut r, 6, 1);
        pb_varint_field(&mut r, 7, 2);
        pb_bytes_field(&mut r, 9, b"www.example.");
        pb_varint_field(&mut r, 10, 3);
        pb_bytes_field(&mut m, 13, &r);
    }
    for (from, to) in [(6, 20), (7, 21)] {
        if let Some(v) = message.varint(from) {
            pb_varint_field(&mut m, to, v);
        }
    }
    Some(m)
}

/// The first question's name in presentation form (`www.example.`), plain labels only.
fn question_name(msg: &[u8]) -> Option<String> {
    let (mut at, mut name) = (12, String::new());
    loop {
        let len = usize::from(*msg.get(at)?);
        if len == 0 {
            return Some(if name.is_empty() { ".".into() } else { name });
        }
        if len & 0xc0 != 0 {
            return None;
        }
        let label = msg.get(at + 1..at + 1 + len)?;
        name.push_str(&String::from_utf8_lossy(label));
        name.push('.');
        at += 1 + len;
    }
}

fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_varint_field(out: &mut Vec<u8>, number: u64, v: u64) {
    pb_varint(out, number << 3);
    pb_varint(out, v);
}

fn pb_bytes_field(out: &mut Vec<u8>, number: u64, b: &[u8]) {
    pb_varint(out, (number << 3) | 2);
    pb_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}
