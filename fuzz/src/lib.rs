//! Shared pieces of the fuzz targets: how a fuzz input is split into a decoder configuration,
//! read sizes and a byte stream, and a driver that feeds a stream to the Frame Streams
//! decoder the way the I/O layer does while checking the decoder's documented invariants.
//!
//! The input layouts here are the contract with `seed/main.rs`, which writes the seed corpora
//! in the same layout. Knows nothing of libFuzzer: the targets call in with plain slices.
#![forbid(unsafe_code)]

use dnstap_receiver::framestream::{
    Decoder, DecoderConfig, Error, Event, Step, DEFAULT_DATA_FRAME_MAX,
};

/// Data frame limits a framestream input can pick (low two bits of its first byte): the
/// default, and small ones so that "too large" and "exactly at the limit" are reachable.
pub const DATA_FRAME_LIMITS: [usize; 4] = [DEFAULT_DATA_FRAME_MAX, 1, 64, 300];

/// Most reads a framestream input can describe.
pub const MAX_READS: usize = 32;

/// A framestream fuzz input, decoded from the raw bytes:
///
/// ```text
/// ┌───────┬────────┬──────────────────────────────┬──────────────────────────┐
/// │ flags │ nreads │ nreads × u16 LE read sizes   │ the Frame Streams stream │
/// │ 1 B   │ 1 B    │ (nreads mod 33; 0 means 1)   │ (the rest)               │
/// └───────┴────────┴──────────────────────────────┴──────────────────────────┘
/// flags: bits 0-1 pick DATA_FRAME_LIMITS; a missing header byte reads as 0.
/// ```
/// Reads past the described ones take the rest of the stream in one read.
#[derive(Debug)]
pub struct SplitInput<'a> {
    pub config: DecoderConfig,
    pub reads: Vec<usize>,
    pub stream: &'a [u8],
}

impl<'a> SplitInput<'a> {
    pub fn parse(data: &'a [u8]) -> SplitInput<'a> {
        let flags = data.first().copied().unwrap_or(0);
        let nreads = usize::from(data.get(1).copied().unwrap_or(0)) % (MAX_READS + 1);
        let mut rest = data.get(2..).unwrap_or(&[]);
        let mut reads = Vec::with_capacity(nreads);
        for _ in 0..nreads {
            match rest.split_first_chunk::<2>() {
                Some((word, tail)) => {
                    reads.push(usize::from(u16::from_le_bytes(*word)).max(1));
                    rest = tail;
                }
                None => break,
            }
        }
        let limit = DATA_FRAME_LIMITS[usize::from(flags & 3)];
        SplitInput {
            config: DecoderConfig {
                max_data_frame: limit,
            },
            reads,
            stream: rest,
        }
    }

    /// The raw layout for `parse`: what the seed generator writes.
    pub fn encode(flags: u8, reads: &[u16], stream: &[u8]) -> Vec<u8> {
        let n = reads.len().min(MAX_READS);
        let mut out = Vec::with_capacity(2 + 2 * n + stream.len());
        out.push(flags);
        out.push(n as u8);
        for r in &reads[..n] {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(stream);
        out
    }
}

/// What a stream decoded to, as a caller driving the decoder sees it: the events with their
/// payload bytes, every reply byte, and how the stream ended (the first error, or `on_eof`).
#[derive(Debug, PartialEq, Eq)]
pub struct Transcript {
    pub events: Vec<(Event, Vec<u8>)>,
    pub reply: Vec<u8>,
    pub end: Result<(), Error>,
}

/// Drives a fresh decoder over `stream` arriving in reads of the sizes `reads` yields (the
/// rest in one last read): undecoded bytes stay at the front of the buffer, new bytes are
/// appended, `on_eof` runs at the end. Panics if a documented invariant is broken:
/// `0 < consumed <= buf.len()` for an event, `consumed == 0` for `NeedMore`, `bytes_needed`
/// agreeing with `NeedMore`, `offset` advancing by `consumed`, payload ranges inside the
/// buffer, and a failed decoder staying failed.
pub fn drive(
    config: DecoderConfig,
    stream: &[u8],
    reads: &mut dyn Iterator<Item = usize>,
) -> Transcript {
    let mut dec = Decoder::new(config);
    let max_frame = dec.max_frame_len();
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut reply = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = reads.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        buf.extend_from_slice(chunk);
        loop {
            let needed = dec.bytes_needed(&buf);
            assert!(
                needed <= max_frame,
                "bytes_needed {needed} > max_frame_len {max_frame}"
            );
            let before = dec.offset();
            match dec.decode(&buf, &mut reply) {
                Err(e) => {
                    assert!(needed <= buf.len(), "error while bytes_needed said wait");
                    // The error's Display must not panic either.
                    let _ = e.to_string();
                    let again = dec.decode(&buf, &mut reply);
                    assert!(again.is_err(), "decoder accepted input after an error");
                    assert!(
                        dec.on_eof(buf.len()).is_err(),
                        "failed decoder ended cleanly"
                    );
                    return Transcript {
                        events,
                        reply,
                        end: Err(e),
                    };
                }
                Ok(Step {
                    consumed,
                    event: Event::NeedMore,
                }) => {
                    assert_eq!(consumed, 0, "NeedMore consumed bytes");
                    assert!(
                        buf.len() < needed,
                        "NeedMore with {needed} needed, {} held",
                        buf.len()
                    );
                    assert_eq!(dec.offset(), before);
                    break;
                }
                Ok(Step { consumed, event }) => {
                    assert!(buf.len() >= needed, "progress with {needed} needed");
                    assert!(consumed > 0 && consumed <= buf.len(), "consumed {consumed}");
                    assert_eq!(dec.offset(), before + consumed as u64);
                    let bytes = match &event {
                        Event::Data { payload } => {
                            assert!(payload.start <= payload.end && payload.end <= consumed);
                            buf[payload.clone()].to_vec()
                        }
                        _ => Vec::new(),
                    };
                    events.push((event, bytes));
                    buf.drain(..consumed);
                }
            }
        }
    }
    let end = dec.on_eof(buf.len());
    if let Err(e) = &end {
        let _ = e.to_string();
    }
    Transcript { events, reply, end }
}

/// A slow, separately written reader for a wire name at `offset`: the labels (root
/// excluded) and the offset just past the name in place. The rules are the ones the crate's
/// `dns::Name::parse` documents: labels of 0..=63 bytes, 0x40 and 0x80 label types refused,
/// at most 255 wire bytes in all (root byte included), and a pointer must land strictly
/// before the run of labels it interrupts, and at most 128 pointers (127 labels is the most
/// a legal name has; the cap bounds pointer-to-pointer chains).
pub fn slow_name(msg: &[u8], offset: usize) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut labels = Vec::new();
    let mut total = 1; // the root byte
    let mut pos = offset;
    let mut run_start = offset;
    let mut end_in_place = None;
    let mut pointers = 0;
    loop {
        let len = *msg.get(pos)?;
        match len >> 6 {
            0 if len == 0 => break,
            0 => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(len))?;
                total += 1 + label.len();
                if total > 255 {
                    return None;
                }
                labels.push(label.to_vec());
                pos += 1 + label.len();
            }
            3 => {
                let low = *msg.get(pos + 1)?;
                let target = usize::from(len & 0x3f) * 256 + usize::from(low);
                pointers += 1;
                if target >= run_start || pointers > 128 {
                    return None;
                }
                end_in_place.get_or_insert(pos + 2);
                run_start = target;
                pos = target;
            }
            _ => return None,
        }
    }
    Some((labels, end_in_place.unwrap_or(pos + 1)))
}

/// Presentation form of a label list, written from the escaping rules as documented
/// (dnspython's): `"();.\@$` get a backslash, bytes outside 0x21..=0x7e are `\DDD`; labels
/// are joined with dots and the name ends with a dot (`.` alone for the root).
pub fn slow_presentation(labels: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for label in labels {
        for &b in label {
            match b {
                b'"' | b'(' | b')' | b'.' | b';' | b'\\' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out.push('.');
    }
    if labels.is_empty() {
        out.push('.');
    }
    out
}
