//! The golang-* formats against the golang `dnstap` CLI (Debian
//! golang-github-dnstap-golang-dnstap-cli), byte for byte: `dnstap -r FILE -q|-y|-j` and
//! our `golang-text|yaml|json` over the same file must print the same bytes, on every lab
//! capture, on a `loadgen --synth` corpus, and on a corpus built here with every rdata
//! type the receiver decodes (and the EDNS options, header flags and odd dnstap fields
//! the CLI renders in its own way).
//!
//! The CLI prints the quiet text's clock in the local zone; it runs with `TZ=UTC` here,
//! the zone our formats always use. A missing CLI is a skip (a failure with `CI=true`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use dnstap_receiver::format::{FormatKind, Formatter};
use dnstap_receiver::record::Record;
use support::lab::{capture_payloads, captures};
use support::receiver::TempDir;

const FORMATS: [(FormatKind, &str); 3] = [
    (FormatKind::GolangText, "-q"),
    (FormatKind::GolangYaml, "-y"),
    (FormatKind::GolangJson, "-j"),
];

fn have_cli() -> bool {
    support::skip::require(
        Command::new("dnstap").arg("-h").output().is_ok(),
        "formats_golang",
        || "the golang dnstap CLI is not installed (golang-github-dnstap-golang-dnstap-cli)".into(),
    )
}

fn cli(path: &Path, flag: &str) -> Vec<u8> {
    let out = Command::new("dnstap")
        .env("TZ", "UTC")
        .arg("-r")
        .arg(path)
        .arg(flag)
        .output()
        .expect("run dnstap");
    assert!(
        out.status.success(),
        "dnstap {flag} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ours(path: &Path, kind: FormatKind) -> Vec<u8> {
    let f = Formatter::new(kind);
    let mut out = Vec::new();
    for p in capture_payloads(path) {
        let rec = Record::parse(&p).expect("capture payload decodes");
        f.write(&rec, &mut out);
    }
    out
}

/// Byte equality, with the first differing line (and its neighbours) on failure.
fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    // To read the whole of both outputs: FORMATS_GOLANG_DIFF_DIR=/some/dir.
    if let Some(dir) = std::env::var_os("FORMATS_GOLANG_DIFF_DIR") {
        let stem: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::fs::write(Path::new(&dir).join(format!("{stem}.ours")), got).unwrap();
        std::fs::write(Path::new(&dir).join(format!("{stem}.cli")), want).unwrap();
    }
    let g: Vec<&[u8]> = got.split(|&b| b == b'\n').collect();
    let w: Vec<&[u8]> = want.split(|&b| b == b'\n').collect();
    let i = g
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    let show = |v: &[&[u8]]| {
        v[i.saturating_sub(12)..(i + 3).min(v.len())]
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "{what}: differs at line {} ({} lines ours, {} the CLI's)\n--- ours:\n{}\n--- dnstap CLI:\n{}",
        i + 1,
        g.len(),
        w.len(),
        show(&g),
        show(&w)
    );
}

fn check_file(path: &Path) {
    for (kind, flag) in FORMATS {
        let want = cli(path, flag);
        assert!(
            !want.is_empty(),
            "{}: the CLI printed nothing",
            path.display()
        );
        assert_same(
            &format!("{} {flag}", path.display()),
            &ours(path, kind),
            &want,
        );
    }
}

#[test]
fn every_lab_capture_matches_the_cli() {
    if !have_cli() {
        return;
    }
    for path in captures() {
        check_file(&path);
    }
}

/// The names are wired to the command line: the receiver's offline mode
/// (`dnstap_receiver -r FILE --format golang-…`) prints the CLI's bytes.
#[test]
fn format_flag_selects_the_golang_formats() {
    if !have_cli() {
        return;
    }
    let path = support::lab::capture("nsd-unix.fstrm");
    for (name, flag) in [
        ("golang-text", "-q"),
        ("golang-yaml", "-y"),
        ("golang-json", "-j"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dnstap_receiver"))
            .arg("-r")
            .arg(&path)
            .args(["--format", name])
            .output()
            .expect("run dnstap_receiver");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_same(
            &format!("dnstap_receiver -r --format {name}"),
            &out.stdout,
            &cli(&path, flag),
        );
    }
}

/// The workspace's loadgen, built beside the receiver (`cargo build --workspace`).
fn loadgen() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_BIN_EXE_dnstap_receiver")).with_file_name("loadgen");
    support::skip::require(p.is_file(), "formats_golang synth", || {
        format!("{} missing (cargo build --workspace)", p.display())
    })
    .then_some(p)
}

#[test]
fn synthetic_corpus_matches_the_cli() {
    if !have_cli() {
        return;
    }
    let Some(bin) = loadgen() else { return };
    let dir = TempDir::new("formats-golang-synth");
    let path = dir.path("synth.fstrm");
    let out = Command::new(bin)
        .args(["--synth", "-q", "--seed", "19", "--synth-messages", "20000"])
        .arg("--write-fstrm")
        .arg(&path)
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_file(&path);
}

#[test]
fn every_decoded_rdata_type_matches_the_cli() {
    if !have_cli() {
        return;
    }
    let dir = TempDir::new("formats-golang-zoo");
    let path = dir.path("zoo.fstrm");
    std::fs::write(&path, zoo::file()).unwrap();
    check_file(&path);
    // The corpus reaches what it was built for (the CLI's own output says so).
    let yaml = String::from_utf8_lossy(&cli(&path, "-y")).into_owned();
    for t in [
        "A",
        "NS",
        "MD",
        "MF",
        "CNAME",
        "SOA",
        "MB",
        "MG",
        "MR",
        "PTR",
        "HINFO",
        "MINFO",
        "MX",
        "TXT",
        "RP",
        "AFSDB",
        "RT",
        "SIG",
        "KEY",
        "AAAA",
        "SRV",
        "NAPTR",
        "KX",
        "DNAME",
        "DS",
        "SSHFP",
        "RRSIG",
        "NSEC",
        "DNSKEY",
        "NSEC3",
        "NSEC3PARAM",
        "TLSA",
        "SMIMEA",
        "CDS",
        "CDNSKEY",
        "SVCB",
        "HTTPS",
        "SPF",
        "URI",
        "CAA",
        "DLV",
        "LOC",
        "APL",
        "CERT",
        "HIP",
    ] {
        assert!(
            yaml.contains(&format!("\tIN\t{t}\t")),
            "no {t} record in the corpus"
        );
    }
    for marker in [
        "; SUBNET: [2001:db8::]/56/48",
        "; NSID: ",
        "; EDE: 18 (Prohibited): (blocked <by> policy",
        "; LONG LIVED QUERIES: ",
        ";; TSIG PSEUDOSECTION:",
        "parse failed: dns: svcbipv6hint: expected ipv6, got ipv4",
        "parse failed: dns: domain name exceeded 255 wire-format octets",
        "parse failed: dns: too many compression pointers",
        "parse failed: dns: length mismatch, want 0/2 but got 1",
        "# query_zone: parse failed",
        "CLASS1\tTYPE65280",
    ] {
        assert!(yaml.contains(marker), "the corpus has no {marker:?}");
    }
}

/// Counts allocations made by the thread that asks ([`COUNTING`]), as tests/no_alloc.rs.
#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// The three formats over real captures and over the corpus of odd messages (where the
/// error paths and the in-buffer YAML and JSON transforms run), after a warm-up pass:
/// not one allocation.
#[test]
fn golang_formats_do_not_allocate() {
    let mut corpora: Vec<Vec<Vec<u8>>> =
        ["bind-unix.fstrm", "unbound-unix.fstrm", "nsd-unix.fstrm"]
            .iter()
            .map(|n| capture_payloads(&support::lab::capture(n)))
            .collect();
    let dir = TempDir::new("formats-golang-alloc");
    let zoo_path = dir.path("zoo.fstrm");
    std::fs::write(&zoo_path, zoo::file()).unwrap();
    corpora.push(capture_payloads(&zoo_path));
    let formatters = FORMATS.map(|(kind, _)| Formatter::new(kind));
    let mut out = Vec::with_capacity(1 << 20);
    for payloads in &corpora {
        let records: Vec<Record<'_>> = payloads.iter().map(|p| Record::parse(p).unwrap()).collect();
        let pass = |out: &mut Vec<u8>| {
            for rec in &records {
                for f in &formatters {
                    out.clear();
                    f.write(rec, out);
                }
            }
        };
        pass(&mut out); // warm-up: the buffer reaches its size
        let ((), n) = support::alloc::allocations_in(|| pass(&mut out));
        assert_eq!(n, 0, "{n} allocations over {} records", records.len());
    }
}

/// A Frame Streams file of dnstap messages built by hand: one response per rdata type the
/// receiver decodes (src/dns/rdata.rs), each with well-formed and edge-case rdata, plus
/// EDNS options, header bits, and dnstap fields that are absent or odd.
mod zoo {
    /// Protobuf: a varint.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn field_varint(n: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(n) << 3, out);
        varint(v, out);
    }
    fn field_bytes(n: u32, v: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(n) << 3 | 2, out);
        varint(v.len() as u64, out);
        out.extend_from_slice(v);
    }
    fn field_fixed32(n: u32, v: u32, out: &mut Vec<u8>) {
        varint(u64::from(n) << 3 | 5, out);
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// The dnstap `Message` fields a case sets (`None`: absent).
    #[derive(Clone)]
    pub struct Msg {
        pub mtype: u64,
        pub family: Option<u64>,
        pub protocol: Option<u64>,
        pub query_address: Option<Vec<u8>>,
        pub response_address: Option<Vec<u8>>,
        pub query_port: Option<u64>,
        pub response_port: Option<u64>,
        pub query_time: Option<(u64, u32)>,
        pub response_time: Option<(u64, u32)>,
        pub query_message: Option<Vec<u8>>,
        pub response_message: Option<Vec<u8>>,
        pub query_zone: Option<Vec<u8>>,
        pub identity: Option<Vec<u8>>,
        pub version: Option<Vec<u8>>,
    }

    impl Default for Msg {
        fn default() -> Msg {
            Msg {
                mtype: 6,
                family: Some(1),
                protocol: Some(1),
                query_address: Some(vec![192, 0, 2, 1]),
                response_address: Some(vec![192, 0, 2, 53]),
                query_port: Some(40000),
                response_port: Some(53),
                query_time: Some((1_700_000_000, 123_456_789)),
                response_time: Some((1_700_000_000, 223_456_000)),
                query_message: None,
                response_message: None,
                query_zone: None,
                identity: Some(b"zoo".to_vec()),
                version: Some(b"zoo 1".to_vec()),
            }
        }
    }

    fn payload(m: &Msg) -> Vec<u8> {
        let mut msg = Vec::new();
        field_varint(1, m.mtype, &mut msg);
        if let Some(v) = m.family {
            field_varint(2, v, &mut msg);
        }
        if let Some(v) = m.protocol {
            field_varint(3, v, &mut msg);
        }
        if let Some(v) = &m.query_address {
            field_bytes(4, v, &mut msg);
        }
        if let Some(v) = &m.response_address {
            field_bytes(5, v, &mut msg);
        }
        if let Some(v) = m.query_port {
            field_varint(6, v, &mut msg);
        }
        if let Some(v) = m.response_port {
            field_varint(7, v, &mut msg);
        }
        if let Some((s, n)) = m.query_time {
            field_varint(8, s, &mut msg);
            field_fixed32(9, n, &mut msg);
        }
        if let Some(v) = &m.query_message {
            field_bytes(10, v, &mut msg);
        }
        if let Some(v) = &m.query_zone {
            field_bytes(11, v, &mut msg);
        }
        if let Some((s, n)) = m.response_time {
            field_varint(12, s, &mut msg);
            field_fixed32(13, n, &mut msg);
        }
        if let Some(v) = &m.response_message {
            field_bytes(14, v, &mut msg);
        }
        let mut d = Vec::new();
        if let Some(v) = &m.identity {
            field_bytes(1, v, &mut d);
        }
        if let Some(v) = &m.version {
            field_bytes(2, v, &mut d);
        }
        field_bytes(14, &msg, &mut d);
        field_varint(15, 1, &mut d);
        d
    }

    /// Frame Streams: START (content type dnstap), the data frames, STOP.
    fn fstrm(payloads: &[Vec<u8>]) -> Vec<u8> {
        let be = |v: usize| (v as u32).to_be_bytes();
        let ct = b"protobuf:dnstap.Dnstap";
        let mut start = Vec::new();
        start.extend_from_slice(&be(2));
        start.extend_from_slice(&be(1));
        start.extend_from_slice(&be(ct.len()));
        start.extend_from_slice(ct);
        let mut out = Vec::new();
        out.extend_from_slice(&be(0));
        out.extend_from_slice(&be(start.len()));
        out.extend_from_slice(&start);
        for p in payloads {
            out.extend_from_slice(&be(p.len()));
            out.extend_from_slice(p);
        }
        out.extend_from_slice(&be(0));
        out.extend_from_slice(&be(4));
        out.extend_from_slice(&be(3));
        out
    }

    /// A name in wire form from dotted text (no escapes; `.` is the root).
    pub fn name(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in s.split('.').filter(|l| !l.is_empty()) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    pub fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&flags.to_be_bytes());
        for c in counts {
            v.extend_from_slice(&c.to_be_bytes());
        }
        v
    }

    pub fn rr(owner: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut v = owner.to_vec();
        v.extend_from_slice(&rtype.to_be_bytes());
        v.extend_from_slice(&class.to_be_bytes());
        v.extend_from_slice(&ttl.to_be_bytes());
        v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        v.extend_from_slice(rdata);
        v
    }

    /// An OPT record with these options (`(code, data)`).
    pub fn opt(udp: u16, ttl: u32, options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut data = Vec::new();
        for (code, d) in options {
            data.extend_from_slice(&code.to_be_bytes());
            data.extend_from_slice(&(d.len() as u16).to_be_bytes());
            data.extend_from_slice(d);
        }
        rr(&[0], 41, udp, ttl, &data)
    }

    /// A response for `qname`/`qtype` carrying `answers` (type, rdata) and an OPT record.
    pub fn response(qtype: u16, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut m = header(0x1234, 0x8180, [1, answers.len() as u16, 0, 1]);
        m.extend_from_slice(&name("zoo.example."));
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        for (t, rd) in answers {
            // owner: a pointer to the question name
            m.extend_from_slice(&rr(&[0xc0, 12], *t, 1, 3600, rd));
        }
        m.extend_from_slice(&opt(1232, 0x8000, &[]));
        m
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn u16b(v: u16) -> [u8; 2] {
        v.to_be_bytes()
    }
    fn u32b(v: u32) -> [u8; 4] {
        v.to_be_bytes()
    }

    fn cs(s: &[u8]) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s);
        v
    }

    /// Every rdata type of src/dns/rdata.rs, several shapes each.
    fn rdata_cases() -> Vec<(u16, Vec<Vec<u8>>)> {
        let target = name("target.example.");
        let odd_name = [
            &b"\x05a b.c"[..],
            b"\x04@;()",
            b"\x04\"\\$'",
            b"\x03\x00\x7f\xff",
            b"\x00",
        ]
        .concat();
        let bitmap = [
            &[0u8, 6, 0x40, 0x01, 0, 0, 0, 0x03][..],
            &[1, 1, 0x80],
            &[0xff, 1, 1],
        ]
        .concat();
        let key: Vec<u8> = (0u8..67).collect();
        vec![
            (1, vec![vec![192, 0, 2, 7], vec![0, 0, 0, 0]]),
            (2, vec![target.clone(), odd_name.clone(), vec![0]]),
            (3, vec![target.clone()]),
            (4, vec![target.clone()]),
            (5, vec![target.clone(), vec![0xc0, 12]]),
            (
                6,
                vec![cat(&[
                    &name("ns1.example."),
                    &name("host\\.master.example."),
                    &u32b(2026120101),
                    &u32b(7200),
                    &u32b(1800),
                    &u32b(1209600),
                    &u32b(4294967295),
                ])],
            ),
            (7, vec![target.clone()]),
            (8, vec![target.clone()]),
            (9, vec![target.clone()]),
            (12, vec![target.clone(), odd_name.clone()]),
            (
                13,
                vec![
                    cat(&[&cs(b"INTEL-386"), &cs(b"Linux \"x\"")]),
                    cat(&[&cs(b""), &cs(b"\x00\xff")]),
                ],
            ),
            (14, vec![cat(&[&name("r.example."), &name("e.example.")])]),
            (15, vec![cat(&[&u16b(10), &target]), cat(&[&u16b(0), &[0]])]),
            (
                16,
                vec![
                    cs(b"v=spf1 -all"),
                    cat(&[
                        &cs(b"a"),
                        &cs(b""),
                        &cs(b"quote \" back \\ semi ; tab\t nul\x00 hi\xff"),
                    ]),
                    cs(&[b'x'; 255]),
                ],
            ),
            (
                17,
                vec![cat(&[&name("mbox.example."), &name("txt.example.")])],
            ),
            (18, vec![cat(&[&u16b(1), &target])]),
            (21, vec![cat(&[&u16b(2), &target])]),
            (
                24,
                vec![cat(&[
                    &u16b(1),
                    &[8, 2],
                    &u32b(3600),
                    &u32b(1767225600),
                    &u32b(1764547200),
                    &u16b(12345),
                    &name("example."),
                    &key,
                ])],
            ),
            (25, vec![cat(&[&u16b(256), &[3, 8], &key])]),
            (
                28,
                vec![
                    vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    vec![0; 16],
                    cat(&[&[0; 10], &[0xff, 0xff, 10, 0, 0, 1]]),
                    vec![0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
                ],
            ),
            (
                33,
                vec![
                    cat(&[&u16b(0), &u16b(5), &u16b(5060), &target]),
                    cat(&[&u16b(1), &u16b(2), &u16b(3), &[0]]),
                ],
            ),
            (
                35,
                vec![
                    cat(&[
                        &u16b(100),
                        &u16b(10),
                        &cs(b"S"),
                        &cs(b"SIP+D2U"),
                        &cs(b"!^.*$!sip:info@example.com!"),
                        &name("_sip._udp.example."),
                    ]),
                    cat(&[
                        &u16b(1),
                        &u16b(2),
                        &cs(b"u"),
                        &cs(b"E2U+sip"),
                        &cs(b"a\"b\\c"),
                        &[0],
                    ]),
                ],
            ),
            (36, vec![cat(&[&u16b(5), &target])]),
            (39, vec![target.clone()]),
            (
                43,
                vec![cat(&[
                    &u16b(60485),
                    &[5, 1],
                    &[
                        0x2b, 0xb1, 0x83, 0xaf, 0x5f, 0x22, 0x58, 0x81, 0x79, 0xa5, 0x3b, 0x0a,
                        0x98, 0x63, 0x1f, 0xad, 0x1a, 0x29, 0x21, 0x18,
                    ],
                ])],
            ),
            (44, vec![cat(&[&[4, 2], &[0xab; 32]])]),
            (
                46,
                vec![
                    cat(&[
                        &u16b(1),
                        &[13, 2],
                        &u32b(3600),
                        &u32b(1767225600),
                        &u32b(1764547200),
                        &u16b(2371),
                        &name("example."),
                        &key,
                    ]),
                    cat(&[
                        &u16b(65280),
                        &[253, 0],
                        &u32b(0),
                        &u32b(0),
                        &u32b(4294967295),
                        &u16b(0),
                        &[0],
                        &[1],
                    ]),
                ],
            ),
            (
                47,
                vec![
                    cat(&[&name("next.example."), &bitmap]),
                    name("next.example."),
                ],
            ),
            (
                48,
                vec![
                    cat(&[&u16b(257), &[3, 15], &key[..32]]),
                    cat(&[&u16b(256), &[3, 8], &key[..1]]),
                ],
            ),
            (
                50,
                vec![
                    cat(&[
                        &[1, 1],
                        &u16b(10),
                        &[4, 0xaa, 0xbb, 0xcc, 0xdd],
                        &[20],
                        &[0x5a; 20],
                        &bitmap,
                    ]),
                    cat(&[&[1, 0], &u16b(0), &[0], &[20], &[0x01; 20]]),
                    cat(&[&[1, 0], &u16b(0), &[0], &[7], &[0xfe; 7], &[0, 1, 0x40]]),
                ],
            ),
            (
                51,
                vec![
                    cat(&[&[1, 0], &u16b(10), &[2, 0xab, 0xcd]]),
                    cat(&[&[1, 0], &u16b(0), &[0]]),
                ],
            ),
            (52, vec![cat(&[&[3, 1, 1], &[0xde, 0xad, 0xbe, 0xef]])]),
            (53, vec![cat(&[&[3, 0, 2], &[0x0a; 12]])]),
            (59, vec![cat(&[&u16b(2371), &[13, 2], &[0x11; 32]])]),
            (60, vec![cat(&[&u16b(257), &[3, 13], &key[..64]])]),
            (
                64,
                vec![
                    cat(&[&u16b(0), &target]),
                    cat(&[
                        &u16b(1),
                        &[0],
                        &u16b(0),
                        &u16b(4),
                        &u16b(1),
                        &u16b(3),
                        &u16b(1),
                        &u16b(6),
                        &cs(b"h2"),
                        &cs(b"h3"),
                        &u16b(2),
                        &u16b(0),
                        &u16b(3),
                        &u16b(2),
                        &u16b(8443),
                        &u16b(4),
                        &u16b(8),
                        &[192, 0, 2, 1, 192, 0, 2, 2],
                    ]),
                    cat(&[
                        &u16b(2),
                        &target,
                        &u16b(5),
                        &u16b(5),
                        b"hello",
                        &u16b(6),
                        &u16b(16),
                        &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                        &u16b(9999),
                        &u16b(7),
                        b"a\"b c\x01",
                    ]),
                ],
            ),
            (
                65,
                vec![cat(&[
                    &u16b(1),
                    &[0],
                    &u16b(1),
                    &u16b(3),
                    &cs(b"h2"),
                    &u16b(4),
                    &u16b(4),
                    &[198, 51, 100, 1],
                ])],
            ),
            (99, vec![cs(b"v=spf1 include:example.com ~all")]),
            (
                256,
                vec![
                    cat(&[&u16b(10), &u16b(1), b"https://www.example.com/path"]),
                    cat(&[&u16b(1), &u16b(0), b"a\"b\\065\x01"]),
                ],
            ),
            (
                257,
                vec![
                    cat(&[&[0], &cs(b"issue"), b"ca.example.net; account=230123"]),
                    cat(&[&[128], &cs(b"iodef"), b"mailto:security@example.com"]),
                    cat(&[&[0], &cs(b"issuewild"), b";"]),
                ],
            ),
            (32769, vec![cat(&[&u16b(60485), &[5, 1], &[0x01; 20]])]),
            // types the receiver prints generically, and the zero-length forms of a few
            (10, vec![vec![1, 2, 3]]),
            (65280, vec![vec![0xde, 0xad], vec![]]),
            (19, vec![cs(b"311061700956")]),
            (
                26,
                vec![cat(&[&u16b(10), &name("a.example."), &name("b.example.")])],
            ),
            (
                27,
                vec![cat(&[&cs(b"-32.6882"), &cs(b"116.8652"), &cs(b"10.0")])],
            ),
            (31, vec![vec![0xab, 0xcd]]),
            (32, vec![vec![0x12]]),
            (49, vec![key[..20].to_vec()]),
            (56, vec![cat(&[&cs(b"info"), &cs(b"more")])]),
            (57, vec![cat(&[&u16b(0), &[3, 1], &key[..10]])]),
            (
                58,
                vec![cat(&[&name("prev.example."), &name("next.example.")])],
            ),
            (61, vec![key[..30].to_vec()]),
            (100, vec![cs(b"user info")]),
            (101, vec![u32b(1000).to_vec()]),
            (102, vec![u32b(100).to_vec()]),
            (
                104,
                vec![cat(&[
                    &u16b(10),
                    &[0xff, 0xee, 0, 0, 0x12, 0x34, 0x56, 0x78],
                ])],
            ),
            (
                105,
                vec![cat(&[&u16b(10), &[10, 1, 2, 3]]), u16b(5).to_vec()],
            ),
            (
                106,
                vec![cat(&[
                    &u16b(10),
                    &[0x20, 0x01, 0x0d, 0xb8, 0x14, 0x03, 0, 0],
                ])],
            ),
            (107, vec![cat(&[&u16b(10), &name("l64.example.")])]),
            (108, vec![vec![0, 0, 0x5e, 0, 0x53, 0x2a]]),
            (109, vec![vec![0, 0, 0x5e, 0xef, 0x10, 0, 0, 0x2a]]),
            (
                249,
                vec![cat(&[
                    &name("gss.example."),
                    &u32b(1764547200),
                    &u32b(1767225600),
                    &u16b(3),
                    &u16b(0),
                    &u16b(2),
                    &[0xab, 0xcd],
                    &u16b(1),
                    &[0xef],
                ])],
            ),
            (
                250,
                vec![cat(&[
                    &name("hmac-sha256."),
                    &[0, 0, 0x69, 0x2d, 0x1f, 0x80],
                    &u16b(300),
                    &u16b(4),
                    &[0xde, 0xad, 0xbe, 0xef],
                    &u16b(0x1234),
                    &u16b(0),
                    &u16b(0),
                ])],
            ),
            (255, vec![vec![]]),
            (103, vec![vec![7]]),
            (15, vec![vec![]]),
            (1, vec![vec![]]),
            (6, vec![vec![]]),
            (46, vec![vec![]]),
        ]
    }

    fn cases() -> Vec<Msg> {
        let mut v = Vec::new();
        for (t, shapes) in rdata_cases() {
            let answers: Vec<(u16, Vec<u8>)> = shapes.into_iter().map(|s| (t, s)).collect();
            v.push(Msg {
                response_message: Some(response(t, &answers)),
                ..Msg::default()
            });
        }
        // EDNS options as the CLI names them, header flags, extended rcodes.
        let ecs4: &[u8] = &[0, 1, 24, 0, 192, 0, 2];
        let ecs6: &[u8] = &[0, 2, 56, 48, 0x20, 1, 0xd, 0xb8, 0, 0, 0];
        let options: Vec<(u16, &[u8])> = vec![
            (3, b"lab-ns1\xe9"),
            (8, ecs4),
            (8, ecs6),
            (10, &[1, 2, 3, 4, 5, 6, 7, 8]),
            (9, &[0, 0, 14, 16]),
            (11, &[0, 50]),
            (11, &[]),
            (5, &[8, 13, 15, 99]),
            (6, &[1, 2, 9]),
            (7, &[1]),
            (12, &[0, 0, 0]),
            (15, b"\x00\x12blocked <by> policy & \"x\""),
            (15, &[0, 99]),
            (65001, &[0xca, 0xfe]),
            (2, &[0, 0, 0x0e, 0x10]),
            (1, &[0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ];
        for (i, flags) in [0x0100u16, 0x8580, 0xffff, 0x7a40, 0x2810, 0x9383]
            .iter()
            .enumerate()
        {
            let mut m = header(i as u16, *flags, [1, 0, 0, 1]);
            m.extend_from_slice(&name("flags.example."));
            m.extend_from_slice(&[0, 1, 0, 1]);
            let ttl = (i as u32) << 24 | if i % 2 == 0 { 0x8000 } else { 0 };
            m.extend_from_slice(&opt(4096, ttl, &options[i * 2 % options.len()..]));
            v.push(Msg {
                mtype: 5,
                query_message: Some(m),
                ..Msg::default()
            });
        }
        // Questions with odd names, classes and types; an update; sections at once.
        for (qname, qtype, qclass) in [
            (
                &b"\x05a b.c\x04@;()\x04\"\\$'\x03\x00\x7f\xff\x00"[..],
                1u16,
                3u16,
            ),
            (b"\x00", 2, 255),
            (b"\x01x\x00", 65535, 254),
            (b"\x01x\x00", 0, 4),
            (b"\x01x\x00", 23, 2),
        ] {
            let mut m = header(7, 0x0120, [1, 0, 0, 0]);
            m.extend_from_slice(qname);
            m.extend_from_slice(&qtype.to_be_bytes());
            m.extend_from_slice(&qclass.to_be_bytes());
            v.push(Msg {
                mtype: 3,
                query_message: Some(m),
                ..Msg::default()
            });
        }
        let mut update = header(9, 0x2800, [1, 0, 2, 1]);
        update.extend_from_slice(&name("dyn.example."));
        update.extend_from_slice(&[0, 6, 0, 1]);
        update.extend_from_slice(&rr(&name("a.dyn.example."), 1, 255, 0, &[]));
        update.extend_from_slice(&rr(&name("b.dyn.example."), 1, 254, 0, &[192, 0, 2, 9]));
        update.extend_from_slice(&rr(&name("key."), 250, 255, 0, &[]));
        v.push(Msg {
            mtype: 13,
            query_message: Some(update),
            ..Msg::default()
        });
        let mut full = header(10, 0x8400, [1, 1, 1, 2]);
        full.extend_from_slice(&name("www.example."));
        full.extend_from_slice(&[0, 1, 0, 1]);
        full.extend_from_slice(&rr(&[0xc0, 12], 5, 1, 60, &name("web.example.")));
        full.extend_from_slice(&rr(&name("example."), 2, 1, 86400, &name("ns.example.")));
        full.extend_from_slice(&rr(&name("ns.example."), 1, 1, 86400, &[192, 0, 2, 53]));
        full.extend_from_slice(&opt(512, 0, &[(10, &[9; 24])]));
        // dnstap fields: absent, empty, odd; every message type; query zones.
        let base = Msg {
            query_message: Some(full.clone()),
            response_message: Some(full.clone()),
            ..Msg::default()
        };
        for mtype in 1..=14 {
            v.push(Msg {
                mtype,
                ..base.clone()
            });
        }
        v.push(Msg {
            mtype: 99,
            ..base.clone()
        });
        v.push(Msg {
            mtype: 5,
            family: None,
            protocol: None,
            query_address: None,
            response_address: None,
            query_port: None,
            response_port: None,
            query_time: None,
            response_time: None,
            response_message: None,
            identity: None,
            version: None,
            ..base.clone()
        });
        v.push(Msg {
            mtype: 6,
            family: Some(2),
            protocol: Some(4),
            query_address: Some(vec![
                0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x35,
            ]),
            response_address: Some(cat(&[&[0; 10], &[0xff, 0xff, 127, 0, 0, 1]])),
            query_port: Some(0),
            response_time: Some((1_700_000_001, 0)),
            query_time: Some((1_700_000_000, 1_500_000_000)),
            query_message: None,
            identity: Some(b"a\"b\\c\x01\x7f\xff\xc3\xa9\xc2\x85\xe2\x80\xa8<>&\t\n".to_vec()),
            version: Some(Vec::new()),
            ..base.clone()
        });
        for protocol in [0, 2, 3, 5, 9] {
            v.push(Msg {
                protocol: Some(protocol),
                family: Some(protocol % 4),
                ..base.clone()
            });
        }
        for zone in [&name("example.")[..], b"\x00", b"\x03a.b\x00", b"\x05ab"] {
            v.push(Msg {
                mtype: 3,
                query_zone: Some(zone.to_vec()),
                ..base.clone()
            });
        }
        // Messages miekg cannot unpack (the CLI prints `X` / "parse failed").
        let mut short_rr = header(11, 0x8180, [1, 1, 0, 0]);
        short_rr.extend_from_slice(&name("x."));
        short_rr.extend_from_slice(&[0, 1, 0, 1]);
        short_rr.extend_from_slice(&rr(&[0xc0, 12], 1, 1, 60, &[1, 2, 3]));
        let mut over = header(12, 0x8180, [1, 1, 0, 0]);
        over.extend_from_slice(&name("x."));
        over.extend_from_slice(&[0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 9, 1]);
        let mut counts_lie = header(13, 0x8180, [1, 3, 2, 0]);
        counts_lie.extend_from_slice(&name("x."));
        counts_lie.extend_from_slice(&[0, 1, 0, 1]);
        counts_lie.extend_from_slice(&rr(&[0xc0, 12], 1, 1, 60, &[1, 2, 3, 4]));
        let mut bad_nsec = header(14, 0x8180, [1, 1, 0, 0]);
        bad_nsec.extend_from_slice(&name("x."));
        bad_nsec.extend_from_slice(&[0, 47, 0, 1]);
        bad_nsec.extend_from_slice(&rr(&[0xc0, 12], 47, 1, 60, &[0, 0, 0]));
        let mut no_class = header(15, 0x0100, [1, 0, 0, 0]);
        no_class.extend_from_slice(&name("x."));
        no_class.extend_from_slice(&[0, 1, 0]);
        for m in edge_cases() {
            v.push(Msg {
                mtype: 5,
                query_message: Some(m),
                ..base.clone()
            });
        }
        for zone in [&[0xc0u8, 0][..], b"\x03a\\b\x01\"\x00", b""] {
            v.push(Msg {
                mtype: 3,
                query_zone: Some(zone.to_vec()),
                ..base.clone()
            });
        }
        for m in [
            Vec::new(),
            vec![1, 2, 3],
            header(16, 0x0100, [0, 0, 0, 0]),
            header(17, 0x0100, [2, 0, 0, 0]),
            cat(&[&header(18, 0x0100, [1, 0, 0, 0]), &name("a.b.")]),
            cat(&[&header(19, 0x0100, [1, 0, 0, 0]), &name("a.b."), &[0]]),
            cat(&[
                &header(20, 0x0100, [2, 0, 0, 0]),
                &name("a.b."),
                &[0, 1, 0, 1],
            ]),
            cat(&[&header(21, 0x0100, [1, 0, 0, 0]), &[3, b'a', b'b']]),
            short_rr,
            over,
            counts_lie,
            bad_nsec,
            no_class,
        ] {
            v.push(Msg {
                mtype: 5,
                query_message: Some(m),
                ..base.clone()
            });
        }
        v
    }

    /// Messages at the edges of miekg's unpacking: names (forward pointers, loops, the
    /// 255-octet limit), rdata cut at or inside a field, records without rdata, odd
    /// SVCB parameters and EDNS options, misplaced OPT records, counts that lie.
    fn edge_cases() -> Vec<Vec<u8>> {
        let q = cat(&[&name("x.example."), &u16b(1), &u16b(1)]);
        let resp = |rrs: &[Vec<u8>]| {
            cat(&[
                &header(1, 0x8180, [1, rrs.len() as u16, 0, 0]),
                &q,
                &rrs.concat(),
            ])
        };
        let ans = |t: u16, rd: &[u8]| rr(&[0xc0, 12], t, 1, 60, rd);
        let query_opt = |options: &[(u16, &[u8])]| {
            cat(&[&header(2, 0x0100, [1, 0, 0, 1]), &q, &opt(1232, 0, options)])
        };
        let mut v = vec![
            // class ANY with rdata; rdata too long for its type
            cat(&[
                &header(3, 0x2800, [1, 2, 0, 0]),
                &q,
                &rr(&[0xc0, 12], 1, 255, 0, &[1, 2, 3, 4]),
                &rr(&[0xc0, 12], 1, 1, 0, &[1, 2, 3, 4]),
            ]),
            resp(&[rr(
                &[0xc0, 12],
                1,
                255,
                0,
                &[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0],
            )]),
            // a forward pointer into bytes after the last record; one past the end; a loop
            cat(&[
                &header(4, 0x8180, [1, 1, 0, 0]),
                &q,
                &rr(&[0xc0, 43], 1, 1, 0, &[1, 2, 3, 4]),
                b"\x01a\xc0\x0c",
            ]),
            cat(&[
                &header(5, 0x8180, [1, 1, 0, 0]),
                &q,
                &rr(&[0xc0, 0x30], 1, 1, 0, &[1, 2, 3, 4]),
                b"\x01a\x00",
            ]),
            cat(&[
                &header(6, 0x8180, [1, 1, 0, 0]),
                &q,
                &[0xc0, 27],
                &u16b(1),
                &u16b(1),
                &u32b(0),
                &u16b(0),
            ]),
            // names of 255 and 256 octets
            cat(&[
                &header(7, 0x0100, [1, 0, 0, 0]),
                &[&[63u8][..], &[b'a'; 63]].concat().repeat(3),
                &[61],
                &[b'b'; 61],
                &[0, 0, 1, 0, 1],
            ]),
            cat(&[
                &header(8, 0x0100, [1, 0, 0, 0]),
                &[&[63u8][..], &[b'a'; 63]].concat().repeat(3),
                &[62],
                &[b'b'; 62],
                &[0, 0, 1, 0, 1],
            ]),
            // a reserved label type
            cat(&[&header(9, 0x0100, [1, 0, 0, 0]), &[0x41, 0], &[0, 1, 0, 1]]),
            // misplaced and repeated OPT records
            resp(&[opt(1232, 0, &[(10, &[1, 2])])]),
            cat(&[
                &header(10, 0x8180, [1, 0, 0, 2]),
                &q,
                &opt(1232, 0, &[(10, &[1, 2])]),
                &opt(1232, 0x0100_8000, &[(10, &[3, 4])]),
            ]),
            // counts larger than the message, trailing bytes
            header(11, 0x0100, [3, 2, 0, 0]),
            cat(&[&header(12, 0x0100, [1, 0, 0, 0]), &q, &[0xff, 0xff, 0xff]]),
            cat(&[
                &header(13, 0x8180, [1, 1, 0, 0]),
                &q,
                &ans(1, &[1, 2, 3, 4]),
                b"junk",
            ]),
        ];
        // rdata cut at a field boundary (the rest reads as zero) or inside a field (fails)
        for (t, rd) in [
            (15, &u16b(10)[..]),
            (15, &[0]),
            (1, &[1, 2, 3]),
            (6, &name("a.")),
            (6, &cat(&[&name("a."), &name("b."), &u32b(1)])),
            (6, &cat(&[&name("a."), &name("b."), &u32b(1), &[0]])),
            (16, b"\x03ab"),
            (33, &[0, 1, 0, 2]),
            (43, &[0, 1, 2]),
            (48, &[1, 0]),
            (46, &[0, 1, 2, 3, 0, 0, 0, 1]),
            (13, b"\x01a"),
            (257, &[0]),
            (257, b"\x00\x05issue"),
            (256, &[0, 1]),
            (52, &[1, 2, 3]),
            (44, &[1, 2]),
            (50, &[1, 0, 0, 1, 2, 0xab]),
            (51, &[1, 0, 0, 1, 1]),
            (47, &cat(&[&name("n."), &[0]])),
            (47, &cat(&[&name("n."), &[1, 1, 0x40, 0, 1, 0x40]])),
            (47, &cat(&[&name("n."), &[0, 33], &[0; 33]])),
            (47, &cat(&[&name("n."), &[0, 4, 1]])),
            (64, &[0, 1]),
            (64, &[0, 1, 0, 0, 1]),
            (35, b"\x00\x01\x00\x02\x01S"),
            (104, &[0, 1, 2]),
            (108, &[1, 2, 3]),
            (250, &[0]),
        ] {
            v.push(resp(&[ans(t, rd)]));
        }
        // more types miekg prints its own way
        for (t, rd) in [
            (
                42,
                &cat(&[
                    &[0, 1, 24, 3, 192, 0, 2],
                    &[0, 2, 64, 0x84, 0x20, 1, 0xd, 0xb8],
                ])[..],
            ),
            (42, &[0, 2, 0, 0]),
            (42, &[0, 1, 33, 0]),
            (42, &[0, 3, 0, 0]),
            (42, &[0, 1, 8, 1, 0]),
            (42, &[0, 1, 8, 1, 10, 0, 1]),
            (42, &[0, 1, 24, 3, 10]),
            (37, &cat(&[&u16b(1), &u16b(12345), &[8], b"abcdef"])),
            (37, &[0, 0xfd, 0, 0, 0xfe, b'x', b'y']),
            (37, &[0, 99, 0, 1, 200]),
            (62, &cat(&[&u32b(5), &u16b(3), &[0, 1, 0x40]])),
            (
                55,
                &cat(&[
                    &[2, 8],
                    &u16b(3),
                    &[0xab, 0xcd],
                    &[1, 2, 3],
                    &name("rvs.example."),
                ]),
            ),
            (
                29,
                &[
                    0, 0x12, 0x16, 0x13, 0x89, 0x3b, 0x5e, 0x2c, 0x70, 0x3d, 0x3e, 0x1f, 0x00,
                    0x98, 0x96, 0x80,
                ],
            ),
            (
                29,
                &[
                    0, 0x00, 0x01, 0x99, 0x70, 0, 0, 0, 0x90, 0, 0, 0, 0x00, 0x98, 0x96, 0x4b,
                ],
            ),
            (
                29,
                &[
                    0, 0x00, 0x01, 0x99, 0x70, 0, 0, 0, 0x90, 0, 0, 0, 0x00, 0, 0, 0x32,
                ],
            ),
            (
                63,
                &cat(&[&u32b(1), &[1, 1], &(0u8..48).collect::<Vec<u8>>()]),
            ),
            (23, &name("nsap.")),
            (258, b"\x03abc"),
            (32768, &[0, 1, 2, 3, 0xaa]),
        ] {
            v.push(resp(&[ans(t, rd)]));
        }
        // SVCB parameters: escaped ALPN, dohpath, key 65535, order, hints, lengths
        for params in [
            &cat(&[&u16b(1), &u16b(7), b"\x06h2,h\\3"])[..],
            &cat(&[&u16b(7), &u16b(11), b"/q{?dns}\xff\x01"]),
            &cat(&[&u16b(65535), &u16b(0)]),
            &cat(&[&u16b(3), &u16b(2), &u16b(1), &u16b(1), &u16b(3), b"\x02h2"]),
            &cat(&[&u16b(6), &u16b(16), &[0; 10], &[0xff, 0xff, 1, 2, 3, 4]]),
            &cat(&[&u16b(0), &u16b(4), &u16b(1), &u16b(3)]),
            &cat(&[&u16b(2), &u16b(1), &[0]]),
            &cat(&[&u16b(3), &u16b(1), &[0]]),
            &cat(&[&u16b(4), &u16b(0)]),
            &cat(&[&u16b(1), &u16b(0)]),
            &cat(&[&u16b(1), &u16b(3), b"\x05h2"]),
            &cat(&[&u16b(0), &u16b(3), &[0, 1, 0]]),
            &cat(&[&u16b(1), &u16b(9)]),
        ] {
            v.push(resp(&[ans(65, &cat(&[&u16b(1), &[0], params]))]));
        }
        // EDNS options: odd texts, every ECS shape, wrong lengths
        let opts: [&[u8]; 21] = [
            b"\x00\x01line1\nline2\xff\xc3\xa9 \"q\" <b> end  ",
            &[0],
            &[0, 0, 0, 0],
            &[0, 0, 8, 0],
            &[0, 3, 0, 0],
            &[0, 1, 33, 0, 1, 2, 3, 4, 5],
            &[
                0, 2, 128, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            &[0, 2, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2],
            &[0, 1],
            &[],
            &[0],
            &[0, 0],
            &[0, 0, 0],
            &[0, 0, 0, 1, 0, 0, 0, 2],
            &[0; 17],
            &[0; 19],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[1, 2, 3, 4, 5],
            &[0xff; 3],
            &[0, 20],
            &[0x7f, 0x80, 0xff],
        ];
        let codes: [u16; 21] = [
            15, 15, 8, 8, 8, 8, 8, 8, 8, 3, 11, 11, 9, 2, 1, 1, 2, 12, 3, 15, 3,
        ];
        for (code, d) in codes.iter().zip(opts) {
            v.push(query_opt(&[(*code, d)]));
        }
        v.push(cat(&[
            &header(14, 0x0100, [1, 0, 0, 1]),
            &q,
            &rr(&[0], 41, 1232, 0, &[0, 10, 0]),
        ]));
        // every option miekg knows, at every length from 0 to 20 bytes
        for code in [1u16, 2, 3, 5, 8, 9, 10, 11, 12, 15] {
            for len in 0..=20 {
                let mut d = vec![1u8; len];
                if code == 8 {
                    // a plausible ECS head (IPv4, /32), then the address bytes
                    d[..len.min(4)].copy_from_slice(&[0, 1, 32, 0][..len.min(4)]);
                }
                v.push(query_opt(&[(code, &d)]));
            }
        }
        // records without rdata, for every type
        for t in [
            16, 2, 5, 6, 13, 15, 28, 33, 35, 43, 44, 46, 47, 48, 50, 51, 52, 64, 65, 256, 257, 10,
            19, 255, 249, 250, 105, 108, 109, 104, 29, 42, 55, 37, 62, 63, 23, 99,
        ] {
            v.push(resp(&[ans(t, &[])]));
        }
        v
    }

    pub fn file() -> Vec<u8> {
        let payloads: Vec<Vec<u8>> = cases().iter().map(payload).collect();
        fstrm(&payloads)
    }
}
