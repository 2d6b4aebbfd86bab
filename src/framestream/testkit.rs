//! Test-only driver for the receiver's [`Decoder`]: frame builders and a loop that feeds a
//! stream in chunks the way the I/O layer does, checking the `consumed` and `bytes_needed`
//! invariants on every call. Shared by the tests of `decoder.rs` and `handshake.rs`.
#![forbid(unsafe_code)]

use super::config::DecoderConfig;
use super::control::{write_control_frame_types, write_data_frame};
use super::decoder::{Decoder, Event, Step};
use super::error::{Error, ErrorKind};
use super::protocol::{ControlType, DNSTAP_CONTENT_TYPE};

pub(super) const DT: &[u8] = DNSTAP_CONTENT_TYPE;

pub(super) fn ctrl(ctype: ControlType, types: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    write_control_frame_types(ctype, types, &mut v);
    v
}

pub(super) fn data(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_data_frame(payload, &mut v);
    v
}

/// Raw escape + length + body words, for frames the writers refuse to build.
pub(super) fn raw_control(len: u32, body: &[u8]) -> Vec<u8> {
    [&0u32.to_be_bytes()[..], &len.to_be_bytes(), body].concat()
}

/// What a stream decoded to, as a caller driving the decoder would see it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Transcript {
    pub(super) events: Vec<(Event, Vec<u8>)>,
    pub(super) reply: Vec<u8>,
    pub(super) end: Result<(), Error>,
}

/// Drives `decoder` like the I/O layer does: the stream arrives in `chunks` (sizes; the
/// rest in one last read), undecoded bytes are kept, `on_eof` at the end. Checks the
/// `consumed` and `bytes_needed` invariants on every call. `slow_only` bypasses the
/// data-frame fast path, so the general path serves as its reference.
pub(super) fn drive_with(
    config: DecoderConfig,
    stream: &[u8],
    chunks: &[usize],
    slow_only: bool,
) -> Transcript {
    let mut dec = Decoder::new(config);
    let mut pending: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut reply = Vec::new();
    let mut rest = stream;
    let mut sizes = chunks.iter().copied();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        pending.extend_from_slice(chunk);
        loop {
            let needed = dec.bytes_needed(&pending);
            let before = dec.offset();
            let step = if slow_only {
                dec.decode_slow(&pending, &mut reply)
            } else {
                dec.decode(&pending, &mut reply)
            };
            match step {
                Err(e) => {
                    return Transcript {
                        events,
                        reply,
                        end: Err(e),
                    }
                }
                Ok(Step {
                    consumed,
                    event: Event::NeedMore,
                }) => {
                    assert_eq!(consumed, 0);
                    assert!(pending.len() < needed, "NeedMore with {needed} needed");
                    break;
                }
                Ok(Step { consumed, event }) => {
                    assert!(pending.len() >= needed);
                    assert!(consumed > 0 && consumed <= pending.len());
                    assert_eq!(dec.offset(), before + consumed as u64);
                    let bytes = match &event {
                        Event::Data { payload } => {
                            assert!(payload.end == consumed && payload.start == 4);
                            pending[payload.clone()].to_vec()
                        }
                        _ => Vec::new(),
                    };
                    events.push((event, bytes));
                    pending.drain(..consumed);
                }
            }
        }
    }
    let end = dec.on_eof(pending.len());
    Transcript { events, reply, end }
}

pub(super) fn drive(config: DecoderConfig, stream: &[u8], chunks: &[usize]) -> Transcript {
    drive_with(config, stream, chunks, false)
}

pub(super) fn one_shot(stream: &[u8]) -> Transcript {
    drive(DecoderConfig::default(), stream, &[])
}

pub(super) fn err_kind(t: &Transcript) -> ErrorKind {
    t.end.as_ref().unwrap_err().kind
}
