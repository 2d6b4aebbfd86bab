//! One sender = one connection loop: connect, Frame Streams handshake, write the block's
//! frames until the message budget or the deadline is reached, STOP, wait for FINISH.
//! Blocking std sockets only; nothing here knows where the payloads came from.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{SenderEvent, SenderHandshake, CONTROL_FRAME_MAX};

use crate::progress;
use crate::tls::{TlsClient, TlsStream};
use crate::wire::Block;

/// Where the receiver listens.
#[derive(Clone, Debug)]
pub enum Target {
    Unix(PathBuf),
    /// `host:port`, as `TcpStream::connect` resolves it.
    Tcp(String),
    /// `host:port` with TLS on top (`--tls`).
    Tls(String, TlsClient),
}

impl Target {
    pub fn transport(&self) -> &'static str {
        match self {
            Target::Unix(_) => "unix",
            Target::Tcp(_) => "tcp",
            Target::Tls(..) => "tls",
        }
    }
}

/// Handshake style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// READY → ACCEPT, START, data, STOP → FINISH.
    Bidirectional,
    /// START, data, STOP: nothing is read back.
    Unidirectional,
}

/// What one connection is asked to do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Messages to send (the block is looped as often as needed).
    pub messages: u64,
    /// Stop early (after the current write) once this instant has passed.
    pub deadline: Option<Instant>,
    /// Longest wait for ACCEPT or FINISH.
    pub reply_timeout: Duration,
    /// Messages per second for this connection, paced smoothly; `None`: as fast as the
    /// receiver takes them.
    pub rate: Option<f64>,
}

/// What one connection did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    pub messages: u64,
    /// Data frame bytes written (length prefixes included, control frames not).
    pub bytes: u64,
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    fn connect(target: &Target) -> io::Result<Stream> {
        Ok(match target {
            Target::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            Target::Tcp(addr) => Stream::Tcp(TcpStream::connect(addr.as_str())?),
            Target::Tls(addr, client) => {
                Stream::Tls(Box::new(client.wrap(TcpStream::connect(addr.as_str())?)?))
            }
        })
    }

    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(Some(t)),
            Stream::Tcp(s) => s.set_read_timeout(Some(t)),
            Stream::Tls(s) => s.sock.set_read_timeout(Some(t)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

/// Runs one connection to completion.
pub fn run_connection(
    target: &Target,
    mode: Mode,
    block: &Block,
    budget: Budget,
) -> io::Result<ConnStats> {
    let mut stream = Stream::connect(target)?;
    stream.set_read_timeout(budget.reply_timeout)?;
    let mut handshake = SenderHandshake::new();
    let mut control = Vec::with_capacity(64);
    if mode == Mode::Bidirectional {
        handshake.write_ready(&mut control).map_err(protocol)?;
        stream.write_all(&control)?;
        stream.flush()?;
        await_reply(&mut stream, &mut handshake, SenderEvent::Accepted)?;
    }
    control.clear();
    handshake.write_start(&mut control).map_err(protocol)?;
    stream.write_all(&control)?;

    let stats = send_frames(&mut stream, block, budget)?;

    control.clear();
    handshake.write_stop(&mut control).map_err(protocol)?;
    stream.write_all(&control)?;
    stream.flush()?;
    if mode == Mode::Bidirectional {
        await_reply(&mut stream, &mut handshake, SenderEvent::Finished)?;
    }
    Ok(stats)
}

/// The data phase: loops over the block until the budget is spent.
fn send_frames(w: &mut impl Write, block: &Block, budget: Budget) -> io::Result<ConnStats> {
    if let Some(rate) = budget.rate {
        return send_paced(w, block, budget, rate);
    }
    let mut stats = ConnStats::default();
    let per_block = block.messages() as u64;
    while stats.messages < budget.messages {
        let want = (budget.messages - stats.messages).min(per_block) as usize;
        let mut sent_here = 0;
        for (slice, frames_after) in block.chunks(want) {
            w.write_all(slice)?;
            stats.bytes += slice.len() as u64;
            stats.messages += (frames_after - sent_here) as u64;
            progress::record((frames_after - sent_here) as u64, slice.len() as u64);
            sent_here = frames_after;
            if budget.deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(stats);
            }
        }
    }
    Ok(stats)
}

/// A paced write carries about this much time's worth of messages: smooth at millisecond
/// scale, yet large writes at high rates (1 ms of 1 M msg/s is 1,000 frames).
const PACE_STEP: Duration = Duration::from_millis(1);
/// Most messages in one paced write (about one [`crate::wire::CHUNK_BYTES`] write).
const PACE_STEP_MAX: usize = 2048;
/// A sender that falls further behind its schedule than this (the receiver stalled)
/// forgets the debt instead of bursting to catch up.
const PACE_MAX_DEBT: Duration = Duration::from_millis(20);

/// The paced data phase: write `step` messages every `step / rate` seconds on an absolute
/// schedule (so sleep overshoot does not accumulate into a lower rate).
fn send_paced(
    w: &mut impl Write,
    block: &Block,
    budget: Budget,
    rate: f64,
) -> io::Result<ConnStats> {
    let mut stats = ConnStats::default();
    let rate = rate.max(1e-3);
    let step = ((rate * PACE_STEP.as_secs_f64()).ceil() as usize).clamp(1, PACE_STEP_MAX);
    let interval = Duration::from_secs_f64(step as f64 / rate);
    let mut next = Instant::now();
    let mut pos = 0;
    while stats.messages < budget.messages {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > PACE_MAX_DEBT {
            next = now;
        }
        let n = ((budget.messages - stats.messages) as usize)
            .min(step)
            .min(block.messages() - pos);
        let slice = block.frames(pos, pos + n);
        w.write_all(slice)?;
        stats.messages += n as u64;
        stats.bytes += slice.len() as u64;
        progress::record(n as u64, slice.len() as u64);
        pos = (pos + n) % block.messages();
        next += interval;
        if budget.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    Ok(stats)
}

/// Reads the receiver's bytes until the handshake reports `want` (ACCEPT or FINISH). The
/// receiver sends nothing else, so nothing read past that control frame is lost.
fn await_reply(
    r: &mut impl Read,
    handshake: &mut SenderHandshake,
    want: SenderEvent,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CONTROL_FRAME_MAX + 8);
    let mut chunk = [0u8; 256];
    loop {
        let step = handshake.on_read(&buf).map_err(protocol)?;
        if step.event == want {
            return Ok(());
        }
        if step.event != SenderEvent::NeedMore || buf.len() > CONTROL_FRAME_MAX + 8 {
            let what = format!("waiting for {want:?}, got {:?}", step.event);
            return Err(io::Error::new(io::ErrorKind::InvalidData, what));
        }
        let n = r
            .read(&mut chunk)
            .map_err(|e| io::Error::new(e.kind(), format!("waiting for {want:?}: {e}")))?;
        if n == 0 {
            let what = format!("the receiver closed the connection before {want:?}");
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn protocol(e: dnstap_receiver::framestream::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;
    use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};
    use std::os::unix::net::UnixListener;

    fn block(n: usize) -> Block {
        let mut c = Corpus::new();
        for i in 0..n {
            c.push(format!("m{i}").as_bytes());
        }
        Block::encode(&c)
    }

    /// A receiver made of the crate's decoder: the independent side of the handshake.
    fn receive_all(mut s: UnixStream) -> Vec<Vec<u8>> {
        let mut dec = Decoder::new(DecoderConfig::default());
        let mut buf = Vec::new();
        let mut reply = Vec::new();
        let mut out = Vec::new();
        let mut tmp = [0u8; 65536];
        loop {
            let n = s.read(&mut tmp).unwrap();
            if n == 0 {
                return out;
            }
            buf.extend_from_slice(&tmp[..n]);
            let mut off = 0;
            loop {
                let step = dec.decode(&buf[off..], &mut reply).unwrap();
                s.write_all(&reply).unwrap();
                reply.clear();
                match step.event {
                    Event::NeedMore => break,
                    Event::Data { payload } => out.push(buf[off..][payload].to_vec()),
                    Event::Control => {}
                    Event::Finished => {
                        off += step.consumed;
                        assert_eq!(off, buf.len());
                        return out;
                    }
                }
                off += step.consumed;
            }
            buf.drain(..off);
        }
    }

    fn roundtrip(mode: Mode, messages: u64) -> (ConnStats, Vec<Vec<u8>>) {
        let dir =
            std::env::temp_dir().join(format!("loadgen-test-{}-{messages}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{mode:?}.sock"));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let rx = std::thread::spawn(move || receive_all(listener.accept().unwrap().0));
        let budget = Budget {
            messages,
            deadline: None,
            reply_timeout: Duration::from_secs(5),
            rate: None,
        };
        let stats = run_connection(&Target::Unix(path), mode, &block(7), budget).unwrap();
        (stats, rx.join().unwrap())
    }

    #[test]
    fn bidirectional_sends_exactly_the_budget_in_corpus_order() {
        let (stats, got) = roundtrip(Mode::Bidirectional, 17);
        assert_eq!(stats.messages, 17);
        assert_eq!(got.len(), 17);
        assert_eq!(got[0], b"m0");
        assert_eq!(got[16], b"m2"); // 17 = 2 passes of 7 + 3: looped from the start
        assert_eq!(
            stats.bytes,
            got.iter().map(|p| 4 + p.len() as u64).sum::<u64>()
        );
    }

    #[test]
    fn paced_sends_the_budget_in_order_at_about_the_rate() {
        let b = block(7);
        let mut out = Vec::new();
        let budget = Budget {
            messages: 200,
            deadline: None,
            reply_timeout: Duration::from_secs(5),
            rate: Some(2000.0),
        };
        let t = Instant::now();
        let stats = send_paced(&mut out, &b, budget, 2000.0).unwrap();
        let took = t.elapsed();
        assert_eq!(stats.messages, 200);
        assert_eq!(stats.bytes, out.len() as u64);
        // 200 messages at 2,000/s: 2 per 1 ms write, the last write 99 ms after the first.
        // Only a lower bound: a loaded machine may be slower, never faster.
        assert!(took >= Duration::from_millis(95), "{took:?}");
        let mut want = Vec::new();
        for i in 0..200 {
            let pos = i % b.messages();
            want.extend_from_slice(b.frames(pos, pos + 1));
        }
        assert_eq!(out, want);
    }

    #[test]
    fn unidirectional_needs_no_reply() {
        let (stats, got) = roundtrip(Mode::Unidirectional, 5);
        assert_eq!((stats.messages, got.len()), (5, 5));
    }

    #[test]
    fn accept_for_another_content_type_is_refused() {
        use dnstap_receiver::framestream::{write_control_frame, ControlType};
        let mut accept = Vec::new();
        write_control_frame(ControlType::Accept, Some(b"protobuf:other"), &mut accept);
        let mut hs = SenderHandshake::new();
        hs.write_ready(&mut Vec::new()).unwrap();
        let err = await_reply(&mut &accept[..], &mut hs, SenderEvent::Accepted).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn receiver_closing_before_accept_is_an_error() {
        let mut hs = SenderHandshake::new();
        hs.write_ready(&mut Vec::new()).unwrap();
        let err = await_reply(&mut &[0u8, 0, 0][..], &mut hs, SenderEvent::Accepted).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
