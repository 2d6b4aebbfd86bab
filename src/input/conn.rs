//! One Frame Streams connection, without I/O: the back-ends (epoll, io_uring) move bytes;
//! this owns the decoder, the carried tail of a partial frame, and the reply bytes.
//!
//! ```text
//!  pooled buffer:  [ carry | received bytes ........................ | free ]
//!                    └─ frames decoded in place; accepted payload ranges go in Batch.frames
//!                                                       [ tail ] ─► carry (copied once)
//! ```
//!
//! A frame that straddles two receives is the only thing copied: its tail becomes the
//! `carry` and is written at the start of the next buffer, before the next receive. A frame
//! larger than a pooled buffer is assembled in its own buffer (outside the pool, the rare
//! oversize path). Knows nothing of sockets, threads or the queue.
#![forbid(unsafe_code)]
// Wire bytes are read with `get`, `first_chunk` and patterns; a justified index carries an
// `#[allow]` with the reason it is in range.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::fmt;
use std::sync::Arc;

use crate::filter::{Filter, Verdict};
use crate::framestream::{Decoder, DecoderConfig, Event, CONTROL_FRAME_MAX};
use crate::pipeline::Batch;
use crate::stats::{InputStats, ThreadStats};

/// Why a connection was closed on error.
#[derive(Debug)]
pub enum ConnError {
    /// The peer broke the Frame Streams protocol.
    Protocol(crate::framestream::Error),
    /// A frame header announced more than `max-frame-size`.
    FrameTooLarge { len: usize, max: usize },
    /// Bytes arrived after STOP.
    AfterStop,
    /// The decoder made no progress (a decoder bug; never loop forever on it).
    Stalled,
    /// A socket error (or a TLS failure: see `input::tls::tls_failure`).
    Io(std::io::Error),
    /// The TLS and Frame Streams handshakes did not complete within `handshake-timeout`.
    HandshakeTimeout(std::time::Duration),
    /// A `powerdns` input's peer sent a malformed PBDNSMessage, or closed inside one.
    PowerDns(crate::powerdns::Error),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Protocol(e) => write!(f, "Frame Streams protocol error: {e}"),
            ConnError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds max-frame-size {max}")
            }
            ConnError::AfterStop => f.write_str("data after STOP"),
            ConnError::Stalled => f.write_str("decoder made no progress"),
            ConnError::Io(e) => write!(f, "socket error: {e}"),
            ConnError::HandshakeTimeout(d) => {
                write!(f, "handshake not complete after {:.1} s", d.as_secs_f64())
            }
            ConnError::PowerDns(e) => e.fmt(f),
        }
    }
}

/// Names of the kinds of [`ConnError`], by the slot [`ConnError::kind_slot`] gives (metric
/// labels). Protocol errors use the Frame Streams error kind's name; the last slot takes
/// anything unlisted.
pub const CONN_ERROR_KINDS: [&str; 21] = [
    "io",
    "frame_too_large",
    "after_stop",
    "stalled",
    "data_frame_too_large",
    "control_frame_too_large",
    "control_frame_too_short",
    "malformed_control",
    "unknown_control_type",
    "unexpected_control",
    "data_before_start",
    "unexpected_data_frame",
    "bytes_after_stop",
    "content_type_mismatch",
    "eof_mid_frame",
    "eof_before_start",
    "already_failed",
    "tls",
    "handshake_timeout",
    "powerdns_malformed",
    "other",
];

// Every kind has a counter slot.
const _: () = assert!(CONN_ERROR_KINDS.len() <= crate::stats::CONN_ERROR_SLOTS);

impl ConnError {
    /// Stable snake_case name of the kind of error (an entry of [`CONN_ERROR_KINDS`]).
    pub fn kind_name(&self) -> &'static str {
        match self {
            ConnError::Protocol(e) => e.kind.name(),
            ConnError::FrameTooLarge { .. } => "frame_too_large",
            ConnError::AfterStop => "after_stop",
            ConnError::Stalled => "stalled",
            ConnError::Io(_) => "io",
            ConnError::HandshakeTimeout(_) => "handshake_timeout",
            ConnError::PowerDns(_) => "powerdns_malformed",
        }
    }

    /// Index of [`ConnError::kind_name`] in [`CONN_ERROR_KINDS`] (the last, `other`, when
    /// unlisted). Called once per failed connection, not on the hot path.
    pub fn kind_slot(&self) -> usize {
        let name = self.kind_name();
        CONN_ERROR_KINDS
            .iter()
            .position(|k| *k == name)
            .unwrap_or(CONN_ERROR_KINDS.len() - 1)
    }
}

impl From<crate::framestream::Error> for ConnError {
    fn from(e: crate::framestream::Error) -> Self {
        ConnError::Protocol(e)
    }
}

/// Per-connection protocol state.
///
/// Invariants: `carry.len() < buffer_size` (a partial frame that would not fit a pooled
/// buffer is moved to `big`); `big_filled <= big.data.len()`.
#[derive(Debug)]
pub struct Connection {
    peer: String,
    decoder: Decoder,
    /// Undecoded bytes of the previous receive (the head of a partial frame).
    carry: Vec<u8>,
    /// An oversize frame being assembled: `data.len()` is the whole frame.
    big: Option<Box<Batch>>,
    big_filled: usize,
    /// Reply bytes (ACCEPT, FINISH) the back-end has not taken yet.
    reply: Vec<u8>,
    finished: bool,
    buffer_size: usize,
    max_frame: usize,
    /// The listener's counters, when the back-end said which listener this came from.
    input: Option<Arc<InputStats>>,
    /// `Some` on a `powerdns` input: the received bytes, copied out of the pooled buffer so
    /// that the converted dnstap payloads can be written into it (capacity kept between
    /// receives: no allocation per message).
    powerdns: Option<Vec<u8>>,
}

impl Connection {
    pub fn new(peer: String, config: DecoderConfig, buffer_size: usize) -> Connection {
        Connection {
            peer,
            decoder: Decoder::new(config),
            carry: Vec::new(),
            big: None,
            big_filled: 0,
            reply: Vec::with_capacity(256),
            finished: false,
            buffer_size,
            max_frame: config.max_data_frame,
            input: None,
            powerdns: None,
        }
    }

    /// A connection of a `powerdns` input: 2-byte length-prefixed PBDNSMessages, no
    /// handshake, each converted to a dnstap payload ([`crate::powerdns`]).
    pub fn new_powerdns(peer: String, buffer_size: usize) -> Connection {
        let mut c = Connection::new(peer, DecoderConfig::default(), buffer_size);
        c.powerdns = Some(Vec::with_capacity(buffer_size));
        c
    }

    /// Also counts this connection's bytes and frames in its listener's counters.
    pub fn set_input(&mut self, input: Arc<InputStats>) {
        self.input = Some(input);
    }

    /// The listener's counters, if set.
    pub fn input(&self) -> Option<&InputStats> {
        self.input.as_deref()
    }

    /// The peer's name for log lines (`tcp 127.0.0.1:5353`, `unix /run/x.sock`).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// True once the Frame Streams handshake is over (START received): the connection no
    /// longer runs against `handshake-timeout`.
    pub fn is_started(&self) -> bool {
        self.powerdns.is_some()
            || matches!(
                self.decoder.state(),
                crate::framestream::State::Data | crate::framestream::State::Stopped
            )
    }

    /// STOP was received: close once the reply is sent.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Writes the carried bytes at the start of `buf` and returns where received bytes go.
    /// The carry is kept until [`Connection::on_recv`], so a receive that fails loses nothing.
    pub fn load_carry(&self, buf: &mut Batch) -> usize {
        let n = self.carry.len().min(buf.data.len());
        if let (Some(to), Some(from)) = (buf.data.get_mut(..n), self.carry.get(..n)) {
            to.copy_from_slice(from);
        }
        n
    }

    /// True when the carry holds a whole frame: the last receive stopped early because its
    /// buffer's frame table was full. Decode it with an empty receive (`on_recv` with no new
    /// bytes) before waiting for the socket again.
    pub fn has_complete_frame(&self) -> bool {
        let hint = if self.powerdns.is_some() {
            crate::powerdns::frame_len_hint(&self.carry)
        } else {
            frame_len_hint(&self.carry)
        };
        hint.is_some_and(|n| n <= self.carry.len())
    }

    /// True while an oversize frame is assembled: receive into [`Connection::big_spare`].
    pub fn assembling(&self) -> bool {
        self.big.is_some()
    }

    /// Where to receive the rest of an oversize frame (empty when not assembling).
    pub fn big_spare(&mut self) -> &mut [u8] {
        match self.big.as_mut() {
            Some(b) => b.data.get_mut(self.big_filled..).unwrap_or_default(),
            None => &mut [],
        }
    }

    /// `buf.data[..filled]` holds the carry followed by newly received bytes. Decodes every
    /// complete frame in place, records the accepted payload ranges in `buf.frames` and keeps
    /// the tail as the new carry. The caller then routes the buffer (or returns it on error).
    pub fn on_recv(
        &mut self,
        buf: &mut Batch,
        filled: usize,
        filter: &Filter,
        stats: &ThreadStats,
    ) -> Result<(), ConnError> {
        let filled = filled.min(buf.data.len());
        let fresh = filled.saturating_sub(self.carry.len());
        ThreadStats::add(&stats.bytes, fresh as u64);
        if let Some(i) = &self.input {
            ThreadStats::add(&i.bytes, fresh as u64);
        }
        if self.powerdns.is_some() {
            return self.on_recv_powerdns(buf, filled, filter, stats);
        }
        let pos = self.decode_frames(buf, filled, filter, stats)?;
        self.carry.clear();
        // `pos <= filled <= buf.data.len()`: decode_frames consumes at most what it was given.
        self.carry
            .extend_from_slice(buf.data.get(pos..filled).unwrap_or_default());
        self.check_tail()
    }

    /// `n` more bytes landed in [`Connection::big_spare`]. Returns the frame's batch once the
    /// frame is complete and accepted.
    pub fn on_big_recv(
        &mut self,
        n: usize,
        filter: &Filter,
        stats: &ThreadStats,
    ) -> Result<Option<Box<Batch>>, ConnError> {
        ThreadStats::add(&stats.bytes, n as u64);
        if let Some(i) = &self.input {
            ThreadStats::add(&i.bytes, n as u64);
        }
        let Some(len) = self.big.as_ref().map(|b| b.data.len()) else {
            return Ok(None);
        };
        self.big_filled = (self.big_filled + n).min(len);
        if self.big_filled < len {
            return Ok(None);
        }
        let Some(mut b) = self.big.take() else {
            return Ok(None);
        };
        self.big_filled = 0;
        let pos = self.decode_frames(&mut b, len, filter, stats)?;
        if pos != len {
            // The whole buffer is exactly one frame; anything else is a decoder disagreement.
            return Err(ConnError::Stalled);
        }
        Ok(Some(b))
    }

    /// Decodes frames from `buf.data[..filled]`; returns how many bytes were consumed.
    fn decode_frames(
        &mut self,
        buf: &mut Batch,
        filled: usize,
        filter: &Filter,
        stats: &ThreadStats,
    ) -> Result<usize, ConnError> {
        let check = !filter.is_empty();
        let mut pos = 0;
        let (mut frames, mut filtered) = (0u64, 0u64);
        let result = loop {
            if pos >= filled {
                break Ok(());
            }
            if self.finished {
                break Err(ConnError::AfterStop);
            }
            if buf.frames_full() {
                // The rest is carried to the next buffer (only with many tiny frames).
                break Ok(());
            }
            let Some(bytes) = buf.data.get(pos..filled) else {
                break Err(ConnError::Stalled);
            };
            let step = match self.decoder.decode(bytes, &mut self.reply) {
                Ok(s) => s,
                Err(e) => break Err(e.into()),
            };
            if step.consumed > filled - pos {
                break Err(ConnError::Stalled);
            }
            match step.event {
                Event::NeedMore => break Ok(()),
                Event::Data { payload } => {
                    if step.consumed == 0 || payload.end > step.consumed {
                        break Err(ConnError::Stalled);
                    }
                    frames += 1;
                    let range = pos + payload.start..pos + payload.end;
                    let Some(payload) = buf.data.get(range.clone()) else {
                        break Err(ConnError::Stalled);
                    };
                    let accept = !check || filter.check(payload) == Verdict::Accept;
                    if accept {
                        buf.push_frame(range);
                    } else {
                        filtered += 1;
                    }
                }
                Event::Control => {
                    if step.consumed == 0 {
                        break Err(ConnError::Stalled);
                    }
                }
                Event::Finished => self.finished = true,
            }
            pos += step.consumed;
        };
        ThreadStats::add(&stats.frames, frames);
        ThreadStats::add(&stats.filtered, filtered);
        if let Some(i) = &self.input {
            ThreadStats::add(&i.frames, frames);
            ThreadStats::add(&i.filtered, filtered);
        }
        result.map(|()| pos)
    }

    /// [`Connection::on_recv`] on a `powerdns` input. The received bytes are copied aside,
    /// then each complete PBDNSMessage is converted into the buffer, from its start; what
    /// does not fit (a partial message, or messages beyond the buffer's room or frame
    /// table) becomes the carry.
    ///
    /// PERF: one copy of the received bytes per receive (the converted payload has to go
    /// somewhere; writing it over the input would need the output to be smaller).
    fn on_recv_powerdns(
        &mut self,
        buf: &mut Batch,
        filled: usize,
        filter: &Filter,
        stats: &ThreadStats,
    ) -> Result<(), ConnError> {
        use crate::powerdns::{convert, frame_len_hint, Converted, HEADER_LEN};
        let mut input = self.powerdns.take().unwrap_or_default();
        input.clear();
        input.extend_from_slice(buf.data.get(..filled).unwrap_or_default());
        let check = !filter.is_empty();
        let (mut pos, mut out) = (0usize, 0usize);
        let (mut frames, mut filtered) = (0u64, 0u64);
        let result = loop {
            let rest = input.get(pos..).unwrap_or_default();
            let Some(total) = frame_len_hint(rest).filter(|t| *t <= rest.len()) else {
                break Ok(());
            };
            if buf.frames_full() {
                break Ok(());
            }
            let msg = rest.get(HEADER_LEN..total).unwrap_or_default();
            let room = buf.data.get_mut(out..).unwrap_or_default();
            match convert(msg, room) {
                Err(e) => break Err(ConnError::PowerDns(e)),
                Ok(Converted::NoRoom) if out == 0 => {
                    break Err(ConnError::FrameTooLarge {
                        len: msg.len(),
                        max: buf.data.len(),
                    })
                }
                Ok(Converted::NoRoom) => break Ok(()),
                Ok(Converted::Skipped) => {}
                Ok(Converted::Written(n)) => {
                    frames += 1;
                    let payload = buf.data.get(out..out + n).unwrap_or_default();
                    if !check || filter.check(payload) == Verdict::Accept {
                        buf.push_frame(out..out + n);
                        out += n;
                    } else {
                        filtered += 1;
                    }
                }
            }
            pos += total;
        };
        ThreadStats::add(&stats.frames, frames);
        ThreadStats::add(&stats.filtered, filtered);
        if let Some(i) = &self.input {
            ThreadStats::add(&i.frames, frames);
            ThreadStats::add(&i.filtered, filtered);
        }
        self.carry.clear();
        self.carry
            .extend_from_slice(input.get(pos..).unwrap_or_default());
        self.powerdns = Some(input);
        result?;
        // A partial message must leave room in the next buffer for the rest of it.
        match frame_len_hint(&self.carry) {
            Some(need) if need >= self.buffer_size => Err(ConnError::FrameTooLarge {
                len: need - HEADER_LEN,
                max: self.buffer_size - HEADER_LEN - 1,
            }),
            _ => Ok(()),
        }
    }

    /// Looks at the carried partial frame's header: refuses one above the limit, and moves
    /// one larger than a pooled buffer to its own buffer.
    fn check_tail(&mut self) -> Result<(), ConnError> {
        let Some(need) = frame_len_hint(&self.carry) else {
            return Ok(());
        };
        let is_data = self.carry.get(..4).is_some_and(|h| h != [0, 0, 0, 0]);
        if is_data && need - 4 > self.max_frame {
            return Err(ConnError::FrameTooLarge {
                len: need - 4,
                max: self.max_frame,
            });
        }
        if !is_data && need - 8 > CONTROL_FRAME_MAX {
            return Err(ConnError::FrameTooLarge {
                len: need - 8,
                max: CONTROL_FRAME_MAX,
            });
        }
        if need >= self.buffer_size {
            let mut b = Box::new(Batch::oversize(need));
            let have = self.carry.len().min(need);
            if let (Some(to), Some(from)) = (b.data.get_mut(..have), self.carry.get(..have)) {
                to.copy_from_slice(from);
            }
            self.big_filled = have;
            self.big = Some(b);
            self.carry.clear();
        }
        Ok(())
    }

    /// Moves pending reply bytes to the end of `out` (the back-end's send buffer).
    pub fn take_reply(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.reply);
        self.reply.clear();
    }

    /// The peer closed its side. Ok for a clean end (after STOP, or EOF between frames
    /// after START); an error when it stopped inside a frame or before the stream started.
    pub fn on_eof(&self) -> Result<(), ConnError> {
        if self.powerdns.is_some() {
            return match self.carry.len() {
                0 => Ok(()),
                n => Err(ConnError::PowerDns(crate::powerdns::Error {
                    what: "connection closed inside a message",
                    offset: n,
                })),
            };
        }
        let unconsumed = self.carry.len() + self.big_filled;
        self.decoder.on_eof(unconsumed).map_err(ConnError::from)
    }
}

/// Total length of the frame that starts `bytes` (header included), when its header is there.
///
/// ```text
///  data frame:    | length (u32 BE, != 0) | payload (length bytes) |
///  control frame: | 0 (u32) | length (u32 BE) | control payload (length bytes) |
/// ```
pub fn frame_len_hint(bytes: &[u8]) -> Option<usize> {
    let head: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let n = u32::from_be_bytes(head) as usize;
    if n != 0 {
        return Some(4 + n);
    }
    let ctl: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    Some(8 + u32::from_be_bytes(ctl) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FilterSpec;
    use crate::framestream::DNSTAP_CONTENT_TYPE as CT;
    use crate::framestream::{write_control_frame, write_data_frame, ControlType};
    use crate::pipeline::Pool;

    fn no_filter() -> Filter {
        Filter::compile(&FilterSpec::default()).unwrap()
    }

    fn ctrl(t: ControlType, ct: bool) -> Vec<u8> {
        let mut v = Vec::new();
        write_control_frame(t, ct.then_some(CT), &mut v);
        v
    }

    fn stream(payloads: &[Vec<u8>], bidi: bool, stop: bool) -> Vec<u8> {
        let mut v = Vec::new();
        if bidi {
            v.extend(ctrl(ControlType::Ready, true));
        }
        v.extend(ctrl(ControlType::Start, true));
        for p in payloads {
            write_data_frame(p, &mut v);
        }
        if stop {
            v.extend(ctrl(ControlType::Stop, false));
        }
        v
    }

    fn payloads(n: usize, size: impl Fn(usize) -> usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| (0..size(i)).map(|j| (i * 7 + j) as u8).collect())
            .collect()
    }

    /// Feeds `bytes` to a connection in receives of at most `chunk` bytes, the way the
    /// back-ends do, and returns the accepted payloads, the reply bytes and the result.
    fn feed(
        conn: &mut Connection,
        pool: &Pool,
        bytes: &[u8],
        chunk: usize,
    ) -> (Vec<Vec<u8>>, Vec<u8>, Result<(), ConnError>) {
        let (filter, stats) = (no_filter(), ThreadStats::default());
        let (mut got, mut reply) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < bytes.len() {
            if conn.assembling() {
                let spare = conn.big_spare();
                let n = spare.len().min(chunk).min(bytes.len() - at);
                spare[..n].copy_from_slice(&bytes[at..at + n]);
                at += n;
                match conn.on_big_recv(n, &filter, &stats) {
                    Ok(Some(b)) => {
                        got.extend((0..b.frames.len()).map(|i| b.payload(i).unwrap().to_vec()))
                    }
                    Ok(None) => {}
                    Err(e) => return (got, reply, Err(e)),
                }
                continue;
            }
            let mut b = pool.take().unwrap();
            let off = conn.load_carry(&mut b);
            let n = (b.data.len() - off).min(chunk).min(bytes.len() - at);
            b.data[off..off + n].copy_from_slice(&bytes[at..at + n]);
            at += n;
            let mut r = conn.on_recv(&mut b, off + n, &filter, &stats);
            got.extend((0..b.frames.len()).map(|i| b.payload(i).unwrap().to_vec()));
            pool.give(b);
            while r.is_ok() && conn.has_complete_frame() {
                let mut b = pool.take().unwrap();
                let off = conn.load_carry(&mut b);
                r = conn.on_recv(&mut b, off, &filter, &stats);
                got.extend((0..b.frames.len()).map(|i| b.payload(i).unwrap().to_vec()));
                pool.give(b);
            }
            conn.take_reply(&mut reply);
            if let Err(e) = r {
                return (got, reply, Err(e));
            }
        }
        conn.take_reply(&mut reply);
        (got, reply, Ok(()))
    }

    fn new_conn(buffer: usize) -> Connection {
        Connection::new("test".into(), DecoderConfig::default(), buffer)
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let p = payloads(20, |i| 1 + i * 13);
        let bytes = stream(&p, true, true);
        let pool = Pool::new(4, 4096);
        for chunk in 1..=bytes.len().min(300) {
            let mut c = new_conn(4096);
            let (got, reply, r) = feed(&mut c, &pool, &bytes, chunk);
            assert!(r.is_ok(), "chunk {chunk}: {r:?}");
            assert_eq!(got, p, "chunk {chunk}");
            let mut want = ctrl(ControlType::Accept, true);
            want.extend(ctrl(ControlType::Finish, false));
            assert_eq!(reply, want, "ACCEPT then FINISH");
            assert!(c.is_finished());
            assert!(c.on_eof().is_ok());
        }
    }

    #[test]
    fn frames_larger_than_a_buffer_are_assembled_apart() {
        let p = payloads(6, |i| if i % 2 == 0 { 3000 + i } else { 10 });
        let bytes = stream(&p, false, true);
        let pool = Pool::new(4, 1024);
        for chunk in [1, 7, 100, 1000, 5000] {
            let mut c = new_conn(1024);
            let (got, reply, r) = feed(&mut c, &pool, &bytes, chunk);
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(got, p, "chunk {chunk}");
            assert!(reply.is_empty(), "unidirectional: no replies");
        }
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn a_full_frame_table_carries_the_rest_over() {
        // 4096-byte buffers hold 64 frame ranges; send 500 tiny frames in one go.
        let p = payloads(500, |_| 3);
        let bytes = stream(&p, true, true);
        let pool = Pool::new(4, 4096);
        let mut c = new_conn(4096);
        let (got, _, r) = feed(&mut c, &pool, &bytes, 4096);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(got, p);
    }

    #[test]
    fn oversized_frame_header_is_refused_before_buffering() {
        let mut bytes = stream(&[], true, false);
        bytes.extend_from_slice(&(64u32 << 20).to_be_bytes());
        bytes.extend_from_slice(&[0; 100]);
        let pool = Pool::new(2, 4096);
        let mut c = new_conn(4096);
        let (_, _, r) = feed(&mut c, &pool, &bytes, 4096);
        assert!(
            r.is_err(),
            "64 MiB frame with a 1 MiB limit must be refused"
        );
        assert!(!c.assembling());
    }

    #[test]
    fn data_after_stop_is_an_error() {
        let mut bytes = stream(&payloads(2, |_| 5), true, true);
        write_data_frame(b"late", &mut bytes);
        let pool = Pool::new(2, 4096);
        let mut c = new_conn(4096);
        let (got, _, r) = feed(&mut c, &pool, &bytes, 4096);
        assert_eq!(got.len(), 2, "frames before STOP are kept");
        assert!(r.is_err());
    }

    #[test]
    fn eof_without_stop_is_clean_end() {
        let bytes = stream(&payloads(3, |_| 50), true, false);
        let pool = Pool::new(2, 4096);
        let mut c = new_conn(4096);
        let (got, _, r) = feed(&mut c, &pool, &bytes, 64);
        assert!(r.is_ok());
        assert_eq!(got.len(), 3);
        assert!(
            c.on_eof().is_ok(),
            "EOF between frames after START is clean"
        );
    }

    #[test]
    fn eof_inside_a_frame_is_an_error() {
        let mut bytes = stream(&payloads(1, |_| 50), true, false);
        bytes.extend_from_slice(&[0, 0, 0, 9, 1, 2]);
        let pool = Pool::new(2, 4096);
        let mut c = new_conn(4096);
        let (_, _, r) = feed(&mut c, &pool, &bytes, 4096);
        assert!(r.is_ok());
        assert!(c.on_eof().is_err());
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let pool = Pool::new(2, 4096);
        let mut c = new_conn(4096);
        let (got, _, r) = feed(&mut c, &pool, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 4096);
        assert!(got.is_empty());
        assert!(r.is_err());
    }

    #[test]
    fn frame_len_hint_reads_both_headers() {
        assert_eq!(frame_len_hint(&[0, 0, 1]), None);
        assert_eq!(frame_len_hint(&[0, 0, 1, 0]), Some(4 + 256));
        assert_eq!(frame_len_hint(&[0, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            frame_len_hint(&[0, 0, 0, 0, 0, 0, 0, 0x22, 9]),
            Some(8 + 0x22)
        );
        assert_eq!(
            frame_len_hint(&[0xff, 0xff, 0xff, 0xff]),
            Some(4 + 0xffff_ffff)
        );
    }
}
