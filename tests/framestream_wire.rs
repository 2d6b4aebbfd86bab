//! The Frame Streams decoder against real traffic from the lab.
//!
//! Oracles: `captures/wire/<server>-wire.fstrm.sender.bin` is exactly what a real DNS server
//! sent, `...receiver.bin` exactly what the reference collector answered, and
//! `<server>-wire.fstrm` the file that collector wrote (START, the data frames, STOP). The
//! capture files are also checked against `fstrm_dump`'s frame list when the tool is there.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use dnstap_receiver::framestream::{Decoder, DecoderConfig, Error, Event, Step};

const WIRE_SERVERS: [&str; 4] = ["bind", "dnsdist", "nsd", "unbound"];

fn lab_dir() -> PathBuf {
    let dir = support::lab::lab_dir();
    assert!(
        dir.join("captures").is_dir(),
        "lab not found at {}",
        dir.display()
    );
    dir
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a stream decoded to.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Vec<u8>>,
    controls: usize,
    finished: bool,
    reply: Vec<u8>,
    end: Result<(), Error>,
}

/// Feeds `stream` to a fresh decoder in reads of the given sizes (the rest in one last read),
/// the way the I/O layer does: undecoded bytes stay at the front of the buffer and new bytes
/// are appended.
fn decode_in_reads(stream: &[u8], reads: &mut dyn Iterator<Item = usize>) -> Outcome {
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = Outcome {
        frames: Vec::new(),
        controls: 0,
        finished: false,
        reply: Vec::new(),
        end: Ok(()),
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut rest = stream;
    while !rest.is_empty() {
        let n = reads.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        buf.drain(..start);
        start = 0;
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&buf[start..], &mut out.reply) {
                Err(e) => {
                    out.end = Err(e);
                    return out;
                }
                Ok(Step {
                    event: Event::NeedMore,
                    ..
                }) => break,
                Ok(Step { consumed, event }) => {
                    match event {
                        Event::Data { payload } => {
                            out.frames.push(buf[start..][payload].to_vec());
                        }
                        Event::Control => out.controls += 1,
                        Event::Finished => out.finished = true,
                        Event::NeedMore => unreachable!(),
                    }
                    start += consumed;
                }
            }
        }
    }
    out.end = dec.on_eof(buf.len() - start);
    out
}

fn decode_whole(stream: &[u8]) -> Outcome {
    decode_in_reads(stream, &mut std::iter::empty())
}

/// Independent, deliberately plain reader for the files the reference collector wrote:
/// START control frame, data frames, STOP control frame, nothing else.
fn reference_file_frames(file: &[u8]) -> Vec<Vec<u8>> {
    let word = |at: usize| u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(word(0), 0, "file starts with an escape");
    assert_eq!(word(8), 2, "first control frame is START");
    let mut at = 8 + word(4);
    let mut frames = Vec::new();
    loop {
        let len = word(at);
        if len == 0 {
            assert_eq!(word(at + 8), 3, "file ends with STOP");
            assert_eq!(at + 8 + word(at + 4), file.len(), "nothing after STOP");
            return frames;
        }
        frames.push(file[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
}

struct Wire {
    name: &'static str,
    sender: Vec<u8>,
    receiver: Vec<u8>,
    frames: Vec<Vec<u8>>,
}

fn wire_dumps() -> Vec<Wire> {
    let dir = lab_dir().join("captures/wire");
    WIRE_SERVERS
        .iter()
        .map(|&name| {
            let base = dir.join(format!("{name}-wire.fstrm"));
            let with = |ext: &str| PathBuf::from(format!("{}{ext}", base.display()));
            Wire {
                name,
                sender: read(&with(".sender.bin")),
                receiver: read(&with(".receiver.bin")),
                frames: reference_file_frames(&read(&base)),
            }
        })
        .collect()
}

/// The decoded outcome must be what the reference collector saw and said.
fn check_against_reference(w: &Wire, got: &Outcome, how: &str) {
    assert_eq!(got.end, Ok(()), "{}: {how}", w.name);
    assert_eq!(
        got.frames.len(),
        w.frames.len(),
        "{}: {how}: frame count",
        w.name
    );
    assert!(
        got.frames == w.frames,
        "{}: {how}: frames differ from the collector's file",
        w.name
    );
    assert_eq!(
        got.reply, w.receiver,
        "{}: {how}: reply bytes differ",
        w.name
    );
    assert_eq!(got.controls, 2, "{}: {how}: READY and START", w.name);
}

#[test]
fn wire_dumps_decode_like_the_reference_collector_whole() {
    for w in wire_dumps() {
        assert!(w.frames.len() > 100, "{}: suspiciously few frames", w.name);
        let got = decode_whole(&w.sender);
        check_against_reference(&w, &got, "whole");
        // dnsdist closes without STOP, so the collector never sent FINISH.
        assert_eq!(got.finished, w.name != "dnsdist", "{}: STOP seen", w.name);
    }
}

#[test]
fn wire_dumps_split_at_every_offset_of_the_handshake() {
    for w in wire_dumps() {
        for split in 1..=200.min(w.sender.len() - 1) {
            let got = decode_in_reads(&w.sender, &mut [split].into_iter());
            check_against_reference(&w, &got, &format!("split at {split}"));
        }
    }
}

#[test]
fn wire_dumps_in_random_size_reads() {
    let wires = wire_dumps();
    for seed in [0x2545_f491_4f6c_dd1d_u64, 7, 0xdead_beef, 42] {
        let mut state = seed;
        let mut next = move || {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for w in &wires {
            for max_read in [1usize, 7, 64, 700, 4096, 65536] {
                let sizes: Vec<usize> = (0..w.sender.len())
                    .map(|_| 1 + (next() % max_read as u64) as usize)
                    .collect();
                let got = decode_in_reads(&w.sender, &mut sizes.into_iter());
                let how = format!("seed {seed:#x}, reads of 1..={max_read} bytes");
                check_against_reference(w, &got, &how);
            }
        }
    }
}

#[test]
fn truncated_wire_dump_is_an_eof_mid_frame() {
    let w = wire_dumps().remove(0);
    // Cut in the middle of a frame: every complete frame before the cut is still delivered.
    let got = decode_whole(&w.sender[..w.sender.len() / 2]);
    let err = got.end.unwrap_err();
    assert!(
        matches!(err.kind, dnstap_receiver::framestream::ErrorKind::EofMidFrame { pending } if pending > 0),
        "{err}"
    );
    assert_eq!(got.frames[..], w.frames[..got.frames.len()]);
}

/// Data frame sizes as `fstrm_dump` lists them (it writes its frame list to stderr).
fn fstrm_dump_sizes(path: &Path) -> Option<Vec<usize>> {
    let out = Command::new("fstrm_dump").arg(path).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let sizes = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Data frame (")?
                .split(')')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    Some(sizes)
}

/// Message count from the `dnstap` CLI, the second opinion.
fn dnstap_cli_count(path: &Path) -> Option<usize> {
    let out = Command::new("dnstap")
        .arg("-r")
        .arg(path)
        .arg("-q")
        .output()
        .ok()?;
    out.status.success().then(|| {
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
    })
}

#[test]
fn every_capture_decodes_as_a_unidirectional_stream() {
    let dir = lab_dir().join("captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fstrm"))
        .collect();
    files.extend(
        WIRE_SERVERS
            .iter()
            .map(|s| dir.join(format!("wire/{s}-wire.fstrm"))),
    );
    files.sort();
    assert!(files.len() >= 10, "captures missing in {}", dir.display());
    let mut checked_with_tool = 0;
    for path in &files {
        let name = path.display();
        let bytes = read(path);
        let got = decode_whole(&bytes);
        assert_eq!(got.end, Ok(()), "{name}");
        assert!(got.finished, "{name}: STOP");
        assert!(
            got.reply.is_empty(),
            "{name}: a unidirectional stream gets no replies"
        );
        assert_eq!(got.controls, 1, "{name}: START only");
        assert!(
            got.frames == reference_file_frames(&bytes),
            "{name}: frames"
        );
        if let Some(sizes) = fstrm_dump_sizes(path) {
            let ours: Vec<usize> = got.frames.iter().map(Vec::len).collect();
            assert_eq!(ours, sizes, "{name}: frame sizes differ from fstrm_dump");
            checked_with_tool += 1;
        } else if let Some(count) = dnstap_cli_count(path) {
            assert_eq!(
                got.frames.len(),
                count,
                "{name}: frame count differs from dnstap -q"
            );
            checked_with_tool += 1;
        }
    }
    if checked_with_tool == 0 {
        support::skip::missing(
            "frame counts cross-checked against a Frame Streams tool",
            "neither fstrm_dump nor dnstap found in PATH",
        );
    }
}

#[test]
fn mutated_wire_dumps_never_panic_and_read_sizes_never_matter() {
    let mut seed: u64 = 0x0123_4567_89ab_cdef;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    let mut clean = 0;
    for w in wire_dumps() {
        for _ in 0..250 {
            // The handshake and the first frames, bent a little.
            let mut s = w.sender[..3000].to_vec();
            for _ in 0..1 + next() % 3 {
                let at = next() % s.len();
                match next() % 3 {
                    0 => s[at] ^= 1 << (next() % 8),
                    1 => s[at] = [0, 1, 2, 3, 4, 0x22, 0xff][next() % 7],
                    _ => s.truncate(at.max(1)),
                }
            }
            let whole = decode_whole(&s);
            clean += usize::from(whole.end.is_ok());
            let sizes: Vec<usize> = (0..s.len()).map(|_| 1 + next() % 50).collect();
            let split = decode_in_reads(&s, &mut sizes.into_iter());
            assert_eq!(split, whole, "{}: mutated stream {s:?}", w.name);
        }
    }
    assert!(
        clean > 0 && clean < 1000,
        "mutations should sometimes, not always, break: {clean}"
    );
}
