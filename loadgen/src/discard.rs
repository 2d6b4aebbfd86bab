//! The discard receiver (`--discard`): a minimal Frame Streams receiver inside loadgen that
//! does the handshake, splits frames and throws them away. It measures the sender alone
//! (how fast loadgen can push frames through a socket into a receiver that does no work),
//! and counts what arrived so the run can show that nothing went missing.
//! Blocking std sockets, one thread per connection; nothing is decoded past the framing.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;

use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event, DATA_FRAME_MAX_LIMIT};

use crate::sender::Target;

/// Each connection reads into a buffer this big (grown only for a frame larger than it).
const READ_BYTES: usize = 4 << 20;

/// What the discard receiver took in, over all connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub connections: u64,
    pub frames: u64,
    /// Data frame bytes, length words included (as loadgen counts what it sends).
    pub bytes: u64,
    /// Connections that ended with a protocol or socket error.
    pub errors: u64,
}

pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    /// Listens where the senders will connect. A unix socket path must not exist yet.
    pub fn bind(target: &Target) -> io::Result<Listener> {
        match target {
            Target::Unix(path) => UnixListener::bind(path).map(Listener::Unix),
            Target::Tcp(addr) => TcpListener::bind(addr.as_str()).map(Listener::Tcp),
            Target::Tls(..) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "--discard does not serve TLS",
            )),
        }
    }

    /// Accepts exactly `connections` connections, drains each on its own thread, and returns
    /// the totals once every one of them has ended.
    pub fn serve(self, connections: u64) -> Received {
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for _ in 0..connections {
                let accepted = match &self {
                    Listener::Unix(l) => l.accept().map(|(s, _)| Box::new(s) as Box<dyn Conn>),
                    Listener::Tcp(l) => l.accept().map(|(s, _)| {
                        let _ = s.set_nodelay(true);
                        Box::new(s) as Box<dyn Conn>
                    }),
                };
                match accepted {
                    Ok(s) => handles.push(scope.spawn(move || drain(s))),
                    Err(e) => {
                        eprintln!("loadgen: discard receiver: accept: {e}");
                        break;
                    }
                }
            }
            let mut total = Received::default();
            for h in handles {
                total.connections += 1;
                match h.join() {
                    Ok(Ok((frames, bytes))) => {
                        total.frames += frames;
                        total.bytes += bytes;
                    }
                    Ok(Err(e)) => {
                        eprintln!("loadgen: discard receiver: {e}");
                        total.errors += 1;
                    }
                    Err(_) => total.errors += 1,
                }
            }
            total
        })
    }
}

trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

/// Reads one connection to its end (STOP, or EOF after START); returns data frames and
/// their wire bytes.
fn drain(mut s: impl Read + Write) -> io::Result<(u64, u64)> {
    let mut decoder = Decoder::new(DecoderConfig {
        max_data_frame: DATA_FRAME_MAX_LIMIT,
    });
    let mut buf = vec![0u8; READ_BYTES];
    let mut reply = Vec::new();
    // Invariant: buf[..filled] holds received bytes not yet decoded.
    let mut filled = 0;
    let (mut frames, mut bytes) = (0u64, 0u64);
    loop {
        if filled == buf.len() {
            // One frame larger than the buffer: make room for it (bounded by the limit).
            let need = decoder.bytes_needed(&buf[..filled]).max(filled + 1);
            buf.resize(need, 0);
        }
        let n = s.read(&mut buf[filled..])?;
        if n == 0 {
            decoder.on_eof(filled).map_err(invalid)?;
            return Ok((frames, bytes));
        }
        filled += n;
        let mut off = 0;
        loop {
            let step = decoder
                .decode(&buf[off..filled], &mut reply)
                .map_err(invalid)?;
            if !reply.is_empty() {
                s.write_all(&reply)?;
                reply.clear();
            }
            match step.event {
                Event::NeedMore => break,
                Event::Data { .. } => {
                    frames += 1;
                    bytes += step.consumed as u64;
                }
                Event::Control => {}
                Event::Finished => return Ok((frames, bytes)),
            }
            off += step.consumed;
        }
        buf.copy_within(off..filled, 0);
        filled -= off;
    }
}

fn invalid(e: dnstap_receiver::framestream::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;
    use crate::sender::{run_connection, Budget, Mode};
    use crate::wire::Block;
    use std::time::Duration;

    #[test]
    fn counts_everything_both_handshakes_over_unix_and_tcp() {
        let mut c = Corpus::new();
        for i in 0..50 {
            c.push(format!("frame {i}").repeat(i + 1).as_bytes());
        }
        let block = Block::encode(&c);
        let dir = std::env::temp_dir().join(format!("loadgen-discard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let unix = Target::Unix(dir.join("d.sock"));
        let _ = std::fs::remove_file(dir.join("d.sock"));
        let tcp_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = Target::Tcp(tcp_listener.local_addr().unwrap().to_string());
        let listeners = [
            (Listener::bind(&unix).unwrap(), unix),
            (Listener::Tcp(tcp_listener), tcp),
        ];
        for (listener, target) in listeners {
            let server = std::thread::spawn(move || listener.serve(2));
            let mut sent = (0, 0);
            for (mode, n) in [(Mode::Bidirectional, 1234), (Mode::Unidirectional, 77)] {
                let budget = Budget {
                    messages: n,
                    deadline: None,
                    reply_timeout: Duration::from_secs(5),
                    rate: None,
                };
                let s = run_connection(&target, mode, &block, budget).unwrap();
                sent.0 += s.messages;
                sent.1 += s.bytes;
            }
            let got = server.join().unwrap();
            assert_eq!((got.frames, got.bytes), sent);
            assert_eq!((got.connections, got.errors), (2, 0));
            assert_eq!(got.frames, 1234 + 77);
        }
    }

    #[test]
    fn frame_larger_than_the_read_buffer_is_assembled() {
        let mut c = Corpus::new();
        c.push(&vec![7u8; READ_BYTES + 100]);
        c.push(b"small");
        let block = Block::encode(&c);
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let rx = std::thread::spawn(move || drain(b));
        let mut a = a;
        let mut start = Vec::new();
        dnstap_receiver::framestream::write_control_frame(
            dnstap_receiver::framestream::ControlType::Start,
            Some(dnstap_receiver::framestream::DNSTAP_CONTENT_TYPE),
            &mut start,
        );
        a.write_all(&start).unwrap();
        a.write_all(block.frames(0, 2)).unwrap();
        drop(a);
        let (frames, bytes) = rx.join().unwrap().unwrap();
        assert_eq!((frames, bytes), (2, (READ_BYTES + 104 + 9) as u64));
    }
}
