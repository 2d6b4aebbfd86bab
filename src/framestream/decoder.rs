//! The receiver side of one Frame Streams connection, sans-io: [`Decoder`] splits the byte
//! stream into data frames (ranges into the caller's buffer, no copy, no allocation) and
//! hands whole control frames to the handshake (`handshake.rs`), whose replies land in a
//! caller-owned `Vec` for the I/O layer to send. It owns the framing: length words, the
//! escape, size limits, "need more bytes", stream offsets. It knows nothing about sockets,
//! buffers' ownership, clocks or dnstap's protobuf.
//!
//! ```text
//! data frame (integers 32-bit big-endian):
//! ┌──────────────────┬────────────────────────────────────────┐
//! │ frame len (> 0)  │ payload: one dnstap protobuf message    │
//! │ (4 bytes)        │ (frame len bytes, <= max_data_frame)    │
//! └──────────────────┴────────────────────────────────────────┘
//! a frame len of 0 is the escape: a control frame follows (layout in control.rs).
//! ```
#![forbid(unsafe_code)]

use std::ops::Range;

use super::config::{DecoderConfig, DATA_FRAME_MAX_LIMIT};
use super::control::{self, ControlFrame, ControlSplit};
use super::error::{Error, ErrorKind};
use super::handshake::{Handshake, State};
use super::protocol::CONTROL_FRAME_MAX;

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
    /// Where the handshake is, and whether STOP must be answered with FINISH.
    handshake: Handshake,
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
            handshake: Handshake::new(),
            // Fits: DATA_FRAME_MAX_LIMIT < u32::MAX.
            max_data_frame: max as u32,
            offset: 0,
        }
    }

    /// Where the handshake is.
    pub fn state(&self) -> State {
        self.handshake.state
    }

    /// True once READY was seen (replies are sent), false for a unidirectional stream or
    /// before the first control frame.
    pub fn is_bidirectional(&self) -> bool {
        self.handshake.bidirectional
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
        if self.handshake.state == State::Data {
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

    /// `pub(super)` for the tests only (testkit.rs), which use it as the fast path's
    /// reference.
    #[inline(never)]
    pub(super) fn decode_slow(&mut self, buf: &[u8], reply: &mut Vec<u8>) -> Result<Step, Error> {
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
            Ok(Next::Control { len, frame }) => {
                match self.handshake.on_control(frame, self.offset, reply) {
                    Ok(()) => {
                        self.offset += len as u64;
                        let event = if self.handshake.state == State::Stopped {
                            Event::Finished
                        } else {
                            Event::Control
                        };
                        Ok(Step {
                            consumed: len,
                            event,
                        })
                    }
                    Err(e) => Err(self.fail(e)),
                }
            }
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
        self.handshake.on_eof(unconsumed, self.offset)
    }

    /// Classifies the frame at the front of `buf` without changing any state; shared by
    /// `decode_slow` and `bytes_needed` so that the two agree by construction.
    fn next_frame<'b>(&self, buf: &'b [u8]) -> Result<Next<'b>, ErrorKind> {
        match self.handshake.state {
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
            if self.handshake.state != State::Data {
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

    fn fail(&mut self, e: Error) -> Error {
        self.handshake.state = State::Failed;
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

#[cfg(test)]
mod tests {
    use super::super::config::{DecoderConfig, DATA_FRAME_MAX_LIMIT, DEFAULT_DATA_FRAME_MAX};
    use super::super::control::{write_control_frame, write_control_frame_types, write_data_frame};
    use super::super::protocol::{ControlType, CONTROL_FRAME_MAX};
    use super::super::testkit::{
        ctrl, data, drive, drive_with, err_kind, one_shot, raw_control, DT,
    };
    use super::{Decoder, ErrorKind};

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
