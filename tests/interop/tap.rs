//! The tap: a relay between a server and the receiver that records what the server wrote,
//! and a small Frame Streams + protobuf walker that counts the data frames in those bytes
//! per dnstap message type. This is the oracle for servers that drop frames by themselves
//! and for pdns-recursor. Independent of the crate under test.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::check::TYPES;
use crate::Transport;

/// A relay the server connects to instead of the receiver: every connection is passed on to
/// the receiver byte for byte, both ways, and what the server wrote is kept per connection.
/// Those bytes are the oracle for what the receiver should print. (A relay of our own,
/// not socat, because pdns-recursor opens more than one connection.)
pub struct Tap {
    pub target: String,
    /// Bytes the server wrote, one buffer per accepted connection.
    recorded: Arc<Mutex<Vec<Recording>>>,
    pub stop: Arc<AtomicBool>,
    acceptor: std::thread::JoinHandle<Vec<std::thread::JoinHandle<()>>>,
}

/// The bytes one server connection wrote.
type Recording = Arc<Mutex<Vec<u8>>>;

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn try_clone(&self) -> std::io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }

    fn shutdown_write(&self) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
        };
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Unix(s) => s.write_all(buf),
            Conn::Tcp(s) => s.write_all(buf),
        }
    }
}

impl Tap {
    pub fn start(transport: Transport, sock: &Path, receiver: &str) -> Result<Tap, String> {
        enum Listener {
            Unix(UnixListener),
            Tcp(TcpListener),
        }
        let (listener, target) = match transport {
            Transport::Unix => {
                let l = UnixListener::bind(sock).map_err(|e| format!("tap: {e}"))?;
                (Listener::Unix(l), sock.display().to_string())
            }
            Transport::Tcp | Transport::Tls => {
                let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("tap: {e}"))?;
                let addr = l.local_addr().map_err(|e| e.to_string())?;
                (Listener::Tcp(l), addr.to_string())
            }
        };
        match &listener {
            Listener::Unix(l) => l.set_nonblocking(true),
            Listener::Tcp(l) => l.set_nonblocking(true),
        }
        .map_err(|e| e.to_string())?;
        let recorded: Arc<Mutex<Vec<Recording>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, stop2, receiver) = (recorded.clone(), stop.clone(), receiver.to_string());
        let acceptor = std::thread::spawn(move || {
            let mut relays = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let accepted = match &listener {
                    Listener::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
                    Listener::Tcp(l) => l.accept().map(|(s, _)| Conn::Tcp(s)),
                };
                let server = match accepted {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                let upstream = match transport {
                    Transport::Unix => UnixStream::connect(&receiver).map(Conn::Unix),
                    Transport::Tcp | Transport::Tls => TcpStream::connect(&receiver).map(Conn::Tcp),
                };
                let Ok(upstream) = upstream else { continue };
                if let Conn::Unix(s) = &server {
                    let _ = s.set_nonblocking(false);
                }
                if let Conn::Tcp(s) = &server {
                    let _ = s.set_nonblocking(false);
                }
                let buf = Arc::new(Mutex::new(Vec::new()));
                rec.lock().unwrap().push(buf.clone());
                relays.extend(relay(server, upstream, buf));
            }
            relays
        });
        Ok(Tap {
            target,
            recorded,
            stop,
            acceptor,
        })
    }

    /// Waits (up to `limit`) until every relayed connection has closed both ways, then
    /// returns the server's bytes per connection.
    pub fn finish(self, limit: Duration) -> Result<Vec<Vec<u8>>, String> {
        let deadline = Instant::now() + limit;
        self.stop.store(true, Ordering::Relaxed);
        let relays = self.acceptor.join().map_err(|_| "tap acceptor panicked")?;
        for r in relays {
            while !r.is_finished() {
                if Instant::now() > deadline {
                    return Err("tap: a connection stayed open after the server stopped".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            r.join().map_err(|_| "tap relay panicked")?;
        }
        let recorded = self.recorded.lock().unwrap();
        Ok(recorded.iter().map(|b| b.lock().unwrap().clone()).collect())
    }
}

/// Two threads: server → receiver (recorded) and receiver → server. Each passes EOF on as
/// a half-close, as the peers' Frame Streams handshake expects.
fn relay(
    server: Conn,
    upstream: Conn,
    record: Arc<Mutex<Vec<u8>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let pipe = |mut from: Conn, mut to: Conn, record: Option<Arc<Mutex<Vec<u8>>>>| {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Some(r) = &record {
                            r.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            to.shutdown_write();
        })
    };
    let (Ok(server2), Ok(upstream2)) = (server.try_clone(), upstream.try_clone()) else {
        return Vec::new();
    };
    vec![
        pipe(server, upstream, Some(record)),
        pipe(upstream2, server2, None),
    ]
}

/// Counts the data frames in a sender's raw byte stream per dnstap message type: the
/// independent oracle for tapped cases.
///
/// ```text
/// data frame:     u32 BE length (> 0) | payload (a dnstap protobuf)
/// control frame:  u32 BE 0 | u32 BE length | control type + fields (READY, START, STOP)
/// ```
pub fn wire_type_counts(bytes: &[u8]) -> Result<BTreeMap<String, u64>, String> {
    let mut counts = BTreeMap::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, after) = take_u32(rest).ok_or("truncated frame length")?;
        let len = len as usize;
        if len == 0 {
            let (clen, after) = take_u32(after).ok_or("truncated control frame")?;
            rest = after
                .get(clen as usize..)
                .ok_or("truncated control frame")?;
        } else {
            let body = after.get(..len).ok_or("truncated data frame")?;
            let t = message_type(body).ok_or("data frame without Message.type")?;
            let name = TYPES
                .get((t as usize).wrapping_sub(1))
                .copied()
                .unwrap_or("?");
            *counts.entry(name.to_string()).or_insert(0) += 1;
            rest = &after[len..];
        }
    }
    Ok(counts)
}

fn take_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (h, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*h), rest))
}

/// `Dnstap.message` (field 14) → `Message.type` (field 1), by walking protobuf fields.
fn message_type(dnstap: &[u8]) -> Option<u64> {
    let message = proto_fields(dnstap)?.into_iter().find(|f| f.0 == 14)?.1?;
    let t = proto_fields(message)?.into_iter().find(|f| f.0 == 1)?.2;
    t
}

/// (field number, length-delimited bytes, varint value) for each field.
#[allow(clippy::type_complexity)]
fn proto_fields(mut b: &[u8]) -> Option<Vec<(u64, Option<&[u8]>, Option<u64>)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (key, r) = varint(b)?;
        b = r;
        match key & 7 {
            0 => {
                let (v, r) = varint(b)?;
                out.push((key >> 3, None, Some(v)));
                b = r;
            }
            1 => b = b.get(8..)?,
            2 => {
                let (n, r) = varint(b)?;
                let n = usize::try_from(n).ok()?;
                out.push((key >> 3, Some(r.get(..n)?), None));
                b = r.get(n..)?;
            }
            5 => b = b.get(4..)?,
            _ => return None,
        }
    }
    Some(out)
}

fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((v, &b[i + 1..]));
        }
    }
    None
}

#[test]
fn wire_counter_reads_frames_and_types() {
    // READY control frame, one CLIENT_QUERY data frame, STOP.
    let mut b = vec![0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4];
    let payload = [0x72, 2, 0x08, 5]; // field 14 (LEN 2) { field 1 = 5 }
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&payload);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
    let counts = wire_type_counts(&b).unwrap();
    assert_eq!(counts.get("CLIENT_QUERY"), Some(&1));
    assert_eq!(counts.len(), 1);
    assert!(wire_type_counts(&b[..b.len() - 1]).is_err());
}
