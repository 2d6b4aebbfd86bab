//! Frame Streams (fstrm) codec, sans-io: bytes in, frames and reply bytes out.
//!
//! [`Decoder`] is the receiver side of one connection: it splits the byte stream into data
//! frames (ranges into the caller's buffer, no copy, no allocation), runs the handshake and
//! appends the replies (ACCEPT, FINISH) to a caller-owned `Vec` for the I/O layer to send.
//! [`SenderHandshake`] and the `write_*` functions are the sender side, for loadgen and tests.
//! This module knows nothing about sockets, buffers' ownership, clocks or dnstap's protobuf.
//!
//! ```text
//! data frame (integers 32-bit big-endian):
//! ┌──────────────────┬────────────────────────────────────────┐
//! │ frame len (> 0)  │ payload: one dnstap protobuf message    │
//! │ (4 bytes)        │ (frame len bytes, <= max_data_frame)    │
//! └──────────────────┴────────────────────────────────────────┘
//! a frame len of 0 is the escape: a control frame follows (layout in control.rs).
//!
//! bidirectional (unix/TCP/TLS senders: unbound, bind, nsd, knot, kresd, dnsdist, pdns):
//!   sender                              receiver (us)
//!   READY [content types]       ──►
//!                               ◄──     ACCEPT [protobuf:dnstap.Dnstap]
//!   START [content type]        ──►
//!   data frames ...             ──►
//!   STOP                        ──►     (or EOF: pdns-recursor and dnsdist just close)
//!                               ◄──     FINISH
//! unidirectional (files, unbound with dnstap-bidirectional: no):
//!   START [content type], data frames ..., STOP; no replies.
//! ```
//!
//! The handshake mode is taken from the first control frame: READY means bidirectional,
//! START means unidirectional.
#![forbid(unsafe_code)]
// Wire bytes are read with `get`, `first_chunk` and patterns; a justified index carries an
// `#[allow]` with the reason it is in range.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod control;
mod error;
mod sender;

pub use control::{
    write_control_frame, write_control_frame_types, write_data_frame, ContentTypes, ControlFrame,
    ControlType, FIELD_CONTENT_TYPE,
};
pub use error::{Error, ErrorKind};
pub use sender::{SenderEvent, SenderHandshake, SenderState, SenderStep};

use std::ops::Range;

use control::ControlSplit;

/// The only content type this receiver accepts.
pub const DNSTAP_CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// Control frames longer than this are an error (fstrm spec).
pub const CONTROL_FRAME_MAX: usize = 512;
/// Default limit on one data frame's payload.
pub const DEFAULT_DATA_FRAME_MAX: usize = 1 << 20;
/// Highest data frame limit the configuration accepts.
pub const DATA_FRAME_MAX_LIMIT: usize = 64 << 20;
/// Largest number of bytes one frame can occupy on the wire with the highest limit (length
/// word + payload): what an I/O buffer must be able to hold.
pub const FRAME_WIRE_MAX: usize = 4 + DATA_FRAME_MAX_LIMIT;

/// Decoder settings, validated at start-up.
#[derive(Clone, Copy, Debug)]
pub struct DecoderConfig {
    /// Largest data frame payload accepted (1 ..= DATA_FRAME_MAX_LIMIT).
    pub max_data_frame: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_data_frame: DEFAULT_DATA_FRAME_MAX,
        }
    }
}

impl DecoderConfig {
    /// Checks the limits, for start-up validation of user configuration.
    pub fn validate(&self) -> Result<(), String> {
        if (1..=DATA_FRAME_MAX_LIMIT).contains(&self.max_data_frame) {
            Ok(())
        } else {
            Err(format!(
                "maximum data frame size {} is out of range (1 ..= {DATA_FRAME_MAX_LIMIT} bytes)",
                self.max_data_frame
            ))
        }
    }
}

/// What one call to [`Decoder::decode`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The input holds no complete frame yet: read more bytes, then call again with the
    /// unconsumed bytes followed by the new ones. `consumed` is 0 in this case.
    NeedMore,
    /// One data frame; `payload` is a range into the `buf` given to `decode`.
    Data { payload: Range<usize> },
    /// A control frame was handled (READY, START); any reply is in the caller's buffer.
    Control,
    /// STOP was received. In bidirectional mode FINISH was appended to the reply buffer.
    /// The stream is over; more bytes afterwards are an error.
    Finished,
}

/// One decoding step: how many bytes of `buf` were used, and what they were.
/// Invariant: `0 <= consumed <= buf.len()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub consumed: usize,
    pub event: Event,
}

/// Where the receiver's handshake is, named for what it expects next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing yet: READY (bidirectional) or START (unidirectional).
    ExpectReadyOrStart,
    /// READY was accepted (ACCEPT sent): START.
    ExpectStart,
    /// Data frames, until STOP or EOF.
    Data,
    /// STOP was received: nothing more.
    Stopped,
    /// An error was returned; the connection must be closed.
    Failed,
}

impl State {
    /// What this state waits for, for error messages.
    fn expecting(self) -> &'static str {
        match self {
            State::ExpectReadyOrStart => "READY or START",
            State::ExpectStart => "START",
            State::Data => "data frames or STOP",
            State::Stopped => "nothing (the stream was stopped)",
            State::Failed => "nothing (the stream failed)",
        }
    }
}

/// Receiver side of a Frame Streams connection (bidirectional or unidirectional, detected
/// from the first control frame).
///
/// Usage: keep the unread bytes of the connection in a buffer; call [`decode`] on them
/// until it returns [`Event::NeedMore`], dropping `consumed` bytes from the front after each
/// step; send whatever landed in `reply`; read more; at EOF call [`on_eof`] with the number
/// of bytes left. [`bytes_needed`] says how long the next frame is, so a buffer can be sized
/// (or a straddling frame moved) before reading.
///
/// [`decode`]: Decoder::decode
/// [`on_eof`]: Decoder::on_eof
/// [`bytes_needed`]: Decoder::bytes_needed
#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// Set by READY: STOP must then be answered with FINISH.
    bidirectional: bool,
    /// `config.max_data_frame` clamped to 1 ..= DATA_FRAME_MAX_LIMIT, so it fits a u32.
    max_data_frame: u32,
    /// Stream offset of `buf[0]` at the next `decode` call: the sum of every `consumed`
    /// returned so far (the caller drops exactly `consumed` bytes after each step).
    offset: u64,
}

impl Decoder {
    /// A decoder for one connection. An out-of-range `max_data_frame` is clamped (use
    /// [`DecoderConfig::validate`] to refuse it at start-up instead).
    pub fn new(config: DecoderConfig) -> Self {
        let max = config.max_data_frame.clamp(1, DATA_FRAME_MAX_LIMIT);
        Decoder {
            state: State::ExpectReadyOrStart,
            bidirectional: false,
            // Fits: DATA_FRAME_MAX_LIMIT < u32::MAX.
            max_data_frame: max as u32,
            offset: 0,
        }
    }

    /// Where the handshake is.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once READY was seen (replies are sent), false for a unidirectional stream or
    /// before the first control frame.
    pub fn is_bidirectional(&self) -> bool {
        self.bidirectional
    }

    /// The longest frame this decoder accepts, in wire bytes (length words included): an
    /// I/O buffer this large can always hold the next frame whole.
    pub fn max_frame_len(&self) -> usize {
        (4 + self.max_data_frame as usize).max(8 + CONTROL_FRAME_MAX)
    }

    /// Stream offset of the next byte `decode` will look at.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Decodes at most one frame from the start of `buf`; replies (ACCEPT, FINISH) are
    /// appended to `reply` for the I/O layer to send.
    ///
    /// Returns `NeedMore` with `consumed == 0` when `buf` holds no complete frame; otherwise
    /// `consumed` is the frame's whole wire length. Length errors are returned as soon as the
    /// length word is in `buf`, without waiting for the frame's body.
    #[inline]
    pub fn decode(&mut self, buf: &[u8], reply: &mut Vec<u8>) -> Result<Step, Error> {
        // PERF: the data-frame fast path (benches/framestream.rs, `decode/*`): one state
        // test, one range test on the length and one bounds test; everything else (control
        // frames, partial frames, errors) goes to the out-of-line slow path.
        if self.state == State::Data {
            if let Some(word) = buf.first_chunk::<4>() {
                let len = u32::from_be_bytes(*word);
                // `len - 1 < max` is `1 <= len <= max` in one compare: 0 is the escape.
                if len.wrapping_sub(1) < self.max_data_frame {
                    let end = 4 + len as usize;
                    if end <= buf.len() {
                        self.offset += end as u64;
                        return Ok(Step {
                            consumed: end,
                            event: Event::Data { payload: 4..end },
                        });
                    }
                }
            }
        }
        self.decode_slow(buf, reply)
    }

    #[inline(never)]
    fn decode_slow(&mut self, buf: &[u8], reply: &mut Vec<u8>) -> Result<Step, Error> {
        match self.next_frame(buf) {
            Ok(Next::Incomplete { .. }) => Ok(Step {
                consumed: 0,
                event: Event::NeedMore,
            }),
            // Reached only when the fast path is bypassed (tests use this path as its reference).
            Ok(Next::Data { len }) => {
                let end = 4 + len as usize;
                self.offset += end as u64;
                Ok(Step {
                    consumed: end,
                    event: Event::Data { payload: 4..end },
                })
            }
            Ok(Next::Control { len, frame }) => match self.on_control(frame, reply) {
                Ok(event) => {
                    self.offset += len as u64;
                    Ok(Step {
                        consumed: len,
                        event,
                    })
                }
                Err(e) => Err(self.fail(e)),
            },
            Err(kind) => Err(self.fail(Error::new(kind, self.offset))),
        }
    }

    /// How many bytes `buf` must hold for [`decode`](Decoder::decode) to make progress: the
    /// whole wire length of the next frame (length word included) once its length is known,
    /// else the length of the header still needed (4, or 8 after an escape).
    ///
    /// Invariant: `decode(buf)` returns `NeedMore` exactly when
    /// `buf.len() < bytes_needed(buf)`. When the next frame is to be refused (too long, wrong
    /// place), the result is at most `buf.len()` because `decode` will return the error now.
    /// The result never exceeds [`FRAME_WIRE_MAX`].
    pub fn bytes_needed(&self, buf: &[u8]) -> usize {
        match self.next_frame(buf) {
            Ok(Next::Incomplete { needed }) => needed,
            Ok(Next::Data { len }) => 4 + len as usize,
            Ok(Next::Control { len, .. }) => len,
            Err(_) => 0,
        }
    }

    /// The peer closed the connection. `unconsumed` is how many bytes were left undecoded.
    /// EOF without STOP after START is a clean end; EOF inside a frame or before START is not.
    /// EOF inside a frame is `EofMidFrame` in every state, so `EofBeforeStart` means the peer
    /// stopped between whole frames of the handshake.
    /// (A peer that connects and closes without sending a byte gets `EofBeforeStart` at
    /// offset 0; the I/O layer may log that more quietly, e.g. for health probes.)
    pub fn on_eof(&self, unconsumed: usize) -> Result<(), Error> {
        let kind = match self.state {
            State::Data | State::Stopped if unconsumed == 0 => return Ok(()),
            State::Stopped => ErrorKind::BytesAfterStop,
            State::Failed => ErrorKind::AlreadyFailed,
            // Inside a frame, handshake or not: a peer that sent half a START is not a
            // probe that sent nothing.
            State::Data | State::ExpectReadyOrStart | State::ExpectStart if unconsumed > 0 => {
                ErrorKind::EofMidFrame {
                    pending: unconsumed,
                }
            }
            State::Data => ErrorKind::EofMidFrame {
                pending: unconsumed,
            },
            State::ExpectReadyOrStart | State::ExpectStart => ErrorKind::EofBeforeStart {
                expected: self.state.expecting(),
            },
        };
        Err(Error::new(kind, self.offset))
    }

    /// Classifies the frame at the front of `buf` without changing any state; shared by
    /// `decode_slow` and `bytes_needed` so that the two agree by construction.
    fn next_frame<'b>(&self, buf: &'b [u8]) -> Result<Next<'b>, ErrorKind> {
        match self.state {
            State::Failed => return Err(ErrorKind::AlreadyFailed),
            State::Stopped if buf.is_empty() => return Ok(Next::Incomplete { needed: 1 }),
            State::Stopped => return Err(ErrorKind::BytesAfterStop),
            _ => {}
        }
        let Some(word) = buf.first_chunk::<4>() else {
            return Ok(Next::Incomplete { needed: 4 });
        };
        let len = u32::from_be_bytes(*word);
        if len != 0 {
            if self.state != State::Data {
                return Err(ErrorKind::DataBeforeStart { len });
            }
            if len > self.max_data_frame {
                return Err(ErrorKind::DataFrameTooLarge {
                    len,
                    limit: self.max_data_frame,
                });
            }
            let end = 4 + len as usize;
            return Ok(if end <= buf.len() {
                Next::Data { len }
            } else {
                Next::Incomplete { needed: end }
            });
        }
        Ok(match control::split_control(buf)? {
            ControlSplit::Incomplete { needed } => Next::Incomplete { needed },
            ControlSplit::Complete { len, frame } => Next::Control { len, frame },
        })
    }

    /// Runs the handshake for one complete control frame.
    fn on_control(&mut self, frame: ControlFrame<'_>, reply: &mut Vec<u8>) -> Result<Event, Error> {
        let at = self.offset;
        let got = frame.control_type();
        match (self.state, got) {
            (State::ExpectReadyOrStart, ControlType::Ready) => {
                if !frame.content_types().any(|t| t == DNSTAP_CONTENT_TYPE) {
                    return Err(mismatch(&frame, at));
                }
                write_control_frame(ControlType::Accept, Some(DNSTAP_CONTENT_TYPE), reply);
                self.bidirectional = true;
                self.state = State::ExpectStart;
                Ok(Event::Control)
            }
            (State::ExpectReadyOrStart | State::ExpectStart, ControlType::Start) => {
                let mut types = frame.content_types();
                match (types.next(), types.next()) {
                    (None, _) => {}
                    (Some(t), None) if t == DNSTAP_CONTENT_TYPE => {}
                    (Some(_), None) => return Err(mismatch(&frame, at)),
                    (Some(_), Some(_)) => {
                        return Err(Error::new(
                            ErrorKind::MalformedControl {
                                control: got,
                                reason: "START carries more than one content type",
                            },
                            at,
                        ))
                    }
                }
                self.state = State::Data;
                Ok(Event::Control)
            }
            (State::Data, ControlType::Stop) => {
                if self.bidirectional {
                    write_control_frame(ControlType::Finish, None, reply);
                }
                self.state = State::Stopped;
                Ok(Event::Finished)
            }
            (state, got) => Err(Error::new(
                ErrorKind::UnexpectedControl {
                    got,
                    expected: state.expecting(),
                },
                at,
            )),
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.state = State::Failed;
        e
    }
}

/// The frame at the front of a buffer, as far as the bytes present tell.
enum Next<'b> {
    /// `needed` bytes in all are needed before anything can be decided.
    Incomplete { needed: usize },
    /// A complete, acceptable data frame with a `len`-byte payload.
    Data { len: u32 },
    /// A complete control frame of `len` wire bytes (escape and length included).
    Control { len: usize, frame: ControlFrame<'b> },
}

/// The content-type refusal for `frame`, with a bounded copy of what it offered.
fn mismatch(frame: &ControlFrame<'_>, at: u64) -> Error {
    let offered = frame.content_types().count();
    Error {
        kind: ErrorKind::ContentTypeMismatch {
            control: frame.control_type(),
            offered: u32::try_from(offered).unwrap_or(u32::MAX),
        },
        offset: at,
        offered: Some(error::describe_offered(frame.content_types())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: &[u8] = DNSTAP_CONTENT_TYPE;

    fn ctrl(ctype: ControlType, types: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        write_control_frame_types(ctype, types, &mut v);
        v
    }

    fn data(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        write_data_frame(payload, &mut v);
        v
    }

    /// Raw escape + length + body words, for frames the writers refuse to build.
    fn raw_control(len: u32, body: &[u8]) -> Vec<u8> {
        [&0u32.to_be_bytes()[..], &len.to_be_bytes(), body].concat()
    }

    /// What a stream decoded to, as a caller driving the decoder would see it.
    #[derive(Debug, PartialEq, Eq)]
    struct Transcript {
        events: Vec<(Event, Vec<u8>)>,
        reply: Vec<u8>,
        end: Result<(), Error>,
    }

    /// Drives `decoder` like the I/O layer does: the stream arrives in `chunks` (sizes; the
    /// rest in one last read), undecoded bytes are kept, `on_eof` at the end. Checks the
    /// `consumed` and `bytes_needed` invariants on every call. `slow_only` bypasses the
    /// data-frame fast path, so the general path serves as its reference.
    fn drive_with(
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

    fn drive(config: DecoderConfig, stream: &[u8], chunks: &[usize]) -> Transcript {
        drive_with(config, stream, chunks, false)
    }

    fn one_shot(stream: &[u8]) -> Transcript {
        drive(DecoderConfig::default(), stream, &[])
    }

    fn err_kind(t: &Transcript) -> ErrorKind {
        t.end.as_ref().unwrap_err().kind
    }

    #[test]
    fn unidirectional_stream_has_no_replies() {
        let s = [
            ctrl(ControlType::Start, &[DT]),
            data(b"one"),
            data(b"two"),
            ctrl(ControlType::Stop, &[]),
        ]
        .concat();
        let t = one_shot(&s);
        assert_eq!(t.end, Ok(()));
        assert!(t.reply.is_empty());
        let payloads: Vec<&[u8]> = t.events.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(payloads, [&b""[..], b"one", b"two", b""]);
        assert_eq!(t.events.last().map(|e| &e.0), Some(&Event::Finished));
    }

    #[test]
    fn bidirectional_stream_gets_accept_and_finish() {
        let s = [
            ctrl(ControlType::Ready, &[b"protobuf:other", DT]),
            ctrl(ControlType::Start, &[DT]),
            data(b"x"),
            ctrl(ControlType::Stop, &[]),
        ]
        .concat();
        let t = one_shot(&s);
        assert_eq!(t.end, Ok(()));
        let want = [
            ctrl(ControlType::Accept, &[DT]),
            ctrl(ControlType::Finish, &[]),
        ]
        .concat();
        assert_eq!(t.reply, want);
    }

    #[test]
    fn start_without_content_type_is_accepted() {
        let s = [ctrl(ControlType::Start, &[]), data(b"x")].concat();
        assert_eq!(one_shot(&s).end, Ok(()));
    }

    #[test]
    fn ready_without_dnstap_content_type_names_what_was_offered() {
        let s = ctrl(ControlType::Ready, &[b"protobuf:foo", b"a\nb"]);
        let t = one_shot(&s);
        let err = t.end.unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::ContentTypeMismatch {
                control: ControlType::Ready,
                offered: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "content type mismatch: peer offered \"protobuf:foo\", \"a\\x0ab\" \
             (expected \"protobuf:dnstap.Dnstap\") in READY"
        );
        assert!(t.reply.is_empty(), "no ACCEPT for a refused READY");
        let t = one_shot(&ctrl(ControlType::Ready, &[]));
        assert_eq!(
            err_kind(&t),
            ErrorKind::ContentTypeMismatch {
                control: ControlType::Ready,
                offered: 0
            }
        );
    }

    #[test]
    fn start_with_another_content_type_is_refused() {
        let t = one_shot(&ctrl(ControlType::Start, &[b"protobuf:foo"]));
        let err = t.end.unwrap_err();
        assert_eq!(
            err.to_string(),
            "content type mismatch: peer offered \"protobuf:foo\" \
             (expected \"protobuf:dnstap.Dnstap\") in START"
        );
        let s = [
            ctrl(ControlType::Ready, &[DT]),
            ctrl(ControlType::Start, &[b"x"]),
        ]
        .concat();
        assert!(matches!(
            err_kind(&one_shot(&s)),
            ErrorKind::ContentTypeMismatch { .. }
        ));
        let t = one_shot(&ctrl(ControlType::Start, &[DT, DT]));
        assert!(matches!(err_kind(&t), ErrorKind::MalformedControl { .. }));
    }

    #[test]
    fn control_frame_over_512_bytes_is_refused_before_its_body_arrives() {
        let t = one_shot(&raw_control(513, &[]));
        assert_eq!(err_kind(&t), ErrorKind::ControlFrameTooLarge { len: 513 });
        // Exactly 512 is fine.
        let long = vec![b'a'; 512 - 12];
        let s = [ctrl(ControlType::Start, &[&long]), data(b"x")].concat();
        assert!(matches!(
            err_kind(&one_shot(&s)),
            ErrorKind::ContentTypeMismatch { .. }
        ));
        let s = [ctrl(
            ControlType::Ready,
            &[&long[..512 - 12 - 8 - DT.len()], DT],
        )]
        .concat();
        assert_eq!(s.len(), 8 + 512);
        assert_eq!(
            err_kind(&one_shot(&s)),
            ErrorKind::EofBeforeStart { expected: "START" }
        );
    }

    #[test]
    fn control_frame_shorter_than_its_type_is_refused() {
        for len in 0..4 {
            let t = one_shot(&raw_control(len, &[0; 8]));
            assert_eq!(err_kind(&t), ErrorKind::ControlFrameTooShort { len });
        }
    }

    #[test]
    fn data_frame_over_limit_names_length_and_limit() {
        let config = DecoderConfig {
            max_data_frame: 100,
        };
        let start = ctrl(ControlType::Start, &[DT]);
        let ok = [&start[..], &data(&[7; 100])].concat();
        assert_eq!(drive(config, &ok, &[]).end, Ok(()));
        // Only the length word of the big frame is present: refused anyway.
        let big = [&start[..], &101u32.to_be_bytes()].concat();
        let err = drive(config, &big, &[]).end.unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::DataFrameTooLarge {
                len: 101,
                limit: 100
            }
        );
        assert_eq!(err.offset, start.len() as u64);
        assert_eq!(
            err.to_string(),
            "data frame of 101 bytes exceeds the limit of 100 bytes (stream offset 42)"
        );
        let huge = [&start[..], &u32::MAX.to_be_bytes()].concat();
        assert!(matches!(
            err_kind(&one_shot(&huge)),
            ErrorKind::DataFrameTooLarge { .. }
        ));
    }

    #[test]
    fn config_limits_are_validated_and_clamped() {
        assert!(DecoderConfig::default().validate().is_ok());
        assert!(DecoderConfig { max_data_frame: 0 }.validate().is_err());
        assert!(DecoderConfig {
            max_data_frame: DATA_FRAME_MAX_LIMIT + 1
        }
        .validate()
        .is_err());
        let dec = Decoder::new(DecoderConfig {
            max_data_frame: usize::MAX,
        });
        assert_eq!(dec.max_data_frame as usize, DATA_FRAME_MAX_LIMIT);
        let dec = Decoder::new(DecoderConfig { max_data_frame: 0 });
        assert_eq!(dec.max_data_frame, 1);
    }

    #[test]
    fn data_before_start_is_refused() {
        assert_eq!(
            err_kind(&one_shot(&data(b"abc"))),
            ErrorKind::DataBeforeStart { len: 3 }
        );
        let s = [ctrl(ControlType::Ready, &[DT]), data(b"abc")].concat();
        assert_eq!(
            err_kind(&one_shot(&s)),
            ErrorKind::DataBeforeStart { len: 3 }
        );
    }

    #[test]
    fn second_start_and_ready_after_start_are_refused() {
        let start = ctrl(ControlType::Start, &[DT]);
        let s = [&start[..], &data(b"a"), &start].concat();
        assert_eq!(
            err_kind(&one_shot(&s)),
            ErrorKind::UnexpectedControl {
                got: ControlType::Start,
                expected: "data frames or STOP"
            }
        );
        let s = [&start[..], &ctrl(ControlType::Ready, &[DT])].concat();
        assert!(matches!(
            err_kind(&one_shot(&s)),
            ErrorKind::UnexpectedControl {
                got: ControlType::Ready,
                ..
            }
        ));
        let s = [
            ctrl(ControlType::Ready, &[DT]),
            ctrl(ControlType::Ready, &[DT]),
        ]
        .concat();
        assert!(matches!(
            err_kind(&one_shot(&s)),
            ErrorKind::UnexpectedControl { .. }
        ));
        for odd in [ControlType::Accept, ControlType::Finish, ControlType::Stop] {
            let t = one_shot(&ctrl(odd, &[]));
            assert_eq!(
                err_kind(&t),
                ErrorKind::UnexpectedControl {
                    got: odd,
                    expected: "READY or START"
                }
            );
        }
    }

    #[test]
    fn unknown_control_type_is_refused_with_its_number() {
        let s = [
            ctrl(ControlType::Start, &[DT]),
            raw_control(4, &[0, 0, 0, 0x2a]),
        ]
        .concat();
        let err = one_shot(&s).end.unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownControlType { value: 0x2a });
        assert_eq!(
            err.to_string(),
            "unknown control frame type 0x2a (stream offset 42)"
        );
    }

    #[test]
    fn bytes_after_stop_are_refused() {
        let s = [
            ctrl(ControlType::Start, &[DT]),
            ctrl(ControlType::Stop, &[]),
            vec![0],
        ]
        .concat();
        assert_eq!(err_kind(&one_shot(&s)), ErrorKind::BytesAfterStop);
        // And the decoder reports nothing else afterwards.
        let mut dec = Decoder::new(DecoderConfig::default());
        let mut reply = Vec::new();
        assert!(dec.decode(&data(b"x"), &mut reply).is_err());
        assert_eq!(
            dec.decode(&[], &mut reply).unwrap_err().kind,
            ErrorKind::AlreadyFailed
        );
        assert_eq!(dec.on_eof(0).unwrap_err().kind, ErrorKind::AlreadyFailed);
    }

    #[test]
    fn eof_mid_frame_says_how_much_was_pending() {
        let s = [ctrl(ControlType::Start, &[DT]), data(b"abcdef")].concat();
        let t = one_shot(&s[..s.len() - 2]);
        let err = t.end.unwrap_err();
        assert_eq!(err.kind, ErrorKind::EofMidFrame { pending: 8 });
        assert_eq!(
            err.to_string(),
            "connection closed in the middle of a frame (8 bytes pending, stream offset 42)"
        );
        // Inside the length word, too.
        let t = one_shot(&s[..44]);
        assert_eq!(err_kind(&t), ErrorKind::EofMidFrame { pending: 2 });
    }

    #[test]
    fn eof_without_stop_is_clean_end() {
        // pdns-recursor and dnsdist close the socket without STOP.
        let s = [
            ctrl(ControlType::Ready, &[DT]),
            ctrl(ControlType::Start, &[DT]),
            data(b"a"),
        ]
        .concat();
        let t = one_shot(&s);
        assert_eq!(t.end, Ok(()));
        assert_eq!(
            t.reply,
            ctrl(ControlType::Accept, &[DT]),
            "no FINISH without STOP"
        );
    }

    #[test]
    fn eof_before_start_is_an_error() {
        assert_eq!(
            err_kind(&one_shot(&[])),
            ErrorKind::EofBeforeStart {
                expected: "READY or START"
            }
        );
        let t = one_shot(&ctrl(ControlType::Ready, &[DT]));
        assert_eq!(
            err_kind(&t),
            ErrorKind::EofBeforeStart { expected: "START" }
        );
    }

    #[test]
    fn eof_inside_a_handshake_frame_is_mid_frame() {
        // Half a START: the peer sent something, so this is not a silent probe.
        let start = ctrl(ControlType::Start, &[DT]);
        for cut in 1..start.len() {
            let t = one_shot(&start[..cut]);
            assert_eq!(
                err_kind(&t),
                ErrorKind::EofMidFrame { pending: cut },
                "{cut}"
            );
        }
        let mut s = ctrl(ControlType::Ready, &[DT]);
        s.extend_from_slice(&start[..5]);
        assert_eq!(
            err_kind(&one_shot(&s)),
            ErrorKind::EofMidFrame { pending: 5 }
        );
    }

    #[test]
    fn bytes_needed_reports_whole_frame_lengths() {
        let mut dec = Decoder::new(DecoderConfig::default());
        let start = ctrl(ControlType::Start, &[DT]);
        assert_eq!(dec.bytes_needed(&[]), 4);
        assert_eq!(dec.bytes_needed(&start[..4]), 8);
        assert_eq!(dec.bytes_needed(&start[..9]), start.len());
        dec.decode(&start, &mut Vec::new()).unwrap();
        let frame = data(&[1; 1000]);
        assert_eq!(dec.bytes_needed(&frame[..3]), 4);
        assert_eq!(dec.bytes_needed(&frame[..4]), 1004);
        assert_eq!(dec.bytes_needed(&frame), 1004);
        assert_eq!(
            dec.bytes_needed(&(2u32 << 20).to_be_bytes()),
            0,
            "refused now"
        );
        assert_eq!(dec.max_frame_len(), 4 + DEFAULT_DATA_FRAME_MAX);
        let small = Decoder::new(DecoderConfig { max_data_frame: 10 });
        assert_eq!(small.max_frame_len(), 8 + CONTROL_FRAME_MAX);
    }

    /// Small xorshift64* generator: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    /// A plausible stream, sometimes bent: random handshake form, frames, STOP or not.
    fn random_stream(rng: &mut Rng) -> Vec<u8> {
        let mut s = Vec::new();
        let types: [&[u8]; 4] = [DT, b"protobuf:foo", b"", b"\x00\xff\"\\"];
        if rng.chance(50) {
            let n = rng.below(4);
            let offered: Vec<&[u8]> = (0..n).map(|_| types[rng.below(4)]).collect();
            let mut offered = offered;
            if rng.chance(80) {
                offered.push(DT);
            }
            write_control_frame_types(ControlType::Ready, &offered, &mut s);
        }
        let start: Vec<&[u8]> = match rng.below(10) {
            0 => vec![],
            1 => vec![types[rng.below(4)]],
            2 => vec![DT, DT],
            _ => vec![DT],
        };
        write_control_frame_types(ControlType::Start, &start, &mut s);
        for _ in 0..rng.below(12) {
            match rng.below(20) {
                0 => {
                    let ctype = ControlType::from_u32(1 + rng.below(5) as u32);
                    write_control_frame(ctype.unwrap_or(ControlType::Stop), None, &mut s);
                }
                1 => s.extend_from_slice(&raw_control(rng.below(600) as u32, &[0, 0, 0, 9])),
                _ => {
                    let max = if rng.chance(10) { 400 } else { 40 };
                    let len = 1 + rng.below(max);
                    let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    write_data_frame(&payload, &mut s);
                }
            }
        }
        if rng.chance(60) {
            write_control_frame(ControlType::Stop, None, &mut s);
        }
        // Mutations: flip bytes, insert bytes, truncate.
        for _ in 0..rng.below(4) {
            if s.is_empty() {
                break;
            }
            let at = rng.below(s.len());
            match rng.below(4) {
                0 => s[at] ^= 1 << rng.below(8),
                1 => s[at] = [0, 1, 4, 0xff][rng.below(4)],
                2 => s.insert(at, rng.next() as u8),
                _ => s.truncate(at),
            }
        }
        if rng.chance(3) {
            s = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        }
        s
    }

    #[test]
    fn random_streams_never_panic_and_splitting_never_changes_the_result() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut outcomes = std::collections::BTreeMap::new();
        for round in 0..4000 {
            let stream = random_stream(&mut rng);
            let config = DecoderConfig {
                max_data_frame: [1, 30, 300, 1 << 20][round % 4],
            };
            let whole = drive(config, &stream, &[]);
            assert_eq!(
                drive_with(config, &stream, &[], true),
                whole,
                "fast path differs"
            );
            let name = whole.end.as_ref().map_or_else(|e| e.kind.name(), |()| "ok");
            *outcomes.entry(name).or_insert(0) += 1;
            for _ in 0..4 {
                let max_chunk = [1, 3, 9, 64][rng.below(4)];
                let chunks: Vec<usize> = (0..stream.len())
                    .map(|_| 1 + rng.below(max_chunk))
                    .collect();
                let split = drive(config, &stream, &chunks);
                assert_eq!(
                    split, whole,
                    "round {round}, chunks {chunks:?}, stream {stream:?}"
                );
            }
        }
        // The generator must reach clean ends and most refusals, or the test proves little.
        println!("outcomes: {outcomes:?}");
        assert!(outcomes.get("ok").is_some_and(|&n| n > 200), "{outcomes:?}");
        assert!(outcomes.len() >= 11, "{outcomes:?}");
    }
}
