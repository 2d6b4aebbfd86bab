//! The dnstap relay output: the accepted dnstap payloads, byte for byte (no re-encoding),
//! sent on over Frame Streams (bidirectional handshake: READY, ACCEPT, START ... STOP,
//! FINISH) to one or several downstream receivers over unix, TCP or TLS. `duplicate`: each
//! remote gets every frame; `split`: each frame goes to one remote, chosen by a hash of its
//! identity, client address or qname (rendezvous hashing over the healthy remotes).
//!
//! The buffering, overflow policies and counting are the forward output's
//! [`ChunkBuffer`] (one per remote), the reconnect wait its backoff and the hash its
//! rendezvous pick; this folder adds the Frame Streams framing and handshake (`link.rs`,
//! one sender thread per remote). Knows nothing of inputs or formats.
//!
//! ```text
//!  writer: record's raw payload → data frame into the chunk (duplicate: one chunk, copied
//!          to every remote's buffer when full; split: the chunk of the remote picked)
//!  link:   connect → READY → ACCEPT → START → chunks (kept until the peer's kernel took
//!          them plus replay-window bytes) ... STOP → FINISH → close
//!          broken → kept chunks back to the buffer's front (counted `resent`), backoff
//! ```
//!
//! One set of output counters (`dnstap REMOTE,...`): with `duplicate` a record counts once
//! per remote (it is delivered, dropped or buffered once per remote), so
//! `records = delivered + dropped + buffered` holds in both modes; each remote's own
//! deliveries, resends and connection failures are its collector counters.
#![forbid(unsafe_code)]

mod link;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::link::Link;
use crate::framestream::write_data_frame;
use crate::record::Record;
use crate::sink::buffer::{BufferSpec, Chunk, ChunkBuffer};
use crate::sink::forward::{key_hash, pick, HashKey, TlsConf};
use crate::sink::Output;
use crate::stats::{CollectorStats, OutputStats};

/// One downstream receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayAddr {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl std::fmt::Display for RelayAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            RelayAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            RelayAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// How frames are shared out over the remotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayMode {
    Duplicate,
    Split(HashKey),
}

/// One relay output, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConf {
    pub remotes: Vec<RelayAddr>,
    pub mode: RelayMode,
    /// TLS on the TCP remotes.
    pub tls: Option<TlsConf>,
    /// Per remote.
    pub buffer: BufferSpec,
    pub chunk_bytes: usize,
    pub connect_timeout: Duration,
    pub backoff_init: Duration,
    pub reconnect_max: Duration,
    pub shutdown_timeout: Duration,
    /// Bytes the peer's kernel has taken that are still kept for a resend after a break.
    pub replay_window: u64,
}

impl RelayConf {
    pub fn name(&self) -> String {
        let l: Vec<String> = self.remotes.iter().map(|r| r.to_string()).collect();
        format!("dnstap {}", l.join(","))
    }

    /// Remote `i`'s name in log lines.
    pub fn remote_name(&self, i: usize) -> String {
        let tls = match (&self.tls, &self.remotes[i]) {
            (Some(_), RelayAddr::Tcp { .. }) => "+tls",
            _ => "",
        };
        format!("dnstap{tls} {}", self.remotes[i])
    }
}

/// `-v` log line.
pub fn describe(c: &RelayConf) -> String {
    format!(
        "{} ({}, overflow {}, buffer {} KiB per remote)",
        c.name(),
        match c.mode {
            RelayMode::Duplicate => "duplicate".to_string(),
            RelayMode::Split(k) => format!("split by {}", k.name()),
        },
        c.buffer.policy.name(),
        c.buffer.max_bytes >> 10
    )
}

/// One remote as the writer sees it.
#[derive(Debug)]
struct Remote {
    buffer: Arc<ChunkBuffer>,
    /// split: the chunk being filled for this remote.
    chunk: Vec<u8>,
    records: u32,
}

/// The output the writer thread calls.
#[derive(Debug)]
pub struct RelayOutput {
    name: String,
    mode: RelayMode,
    remotes: Vec<Remote>,
    /// duplicate: the one chunk being filled.
    chunk: Vec<u8>,
    records: u32,
    chunk_bytes: usize,
    healthy: Arc<Vec<AtomicBool>>,
    shutdown_timeout: Duration,
    links: Vec<JoinHandle<()>>,
    stats: Arc<OutputStats>,
}

impl RelayOutput {
    /// Builds TLS and the buffers, and starts one link thread per remote. A remote down
    /// at start is not an error.
    pub fn start(conf: &RelayConf, stats: Arc<OutputStats>) -> io::Result<RelayOutput> {
        let healthy: Arc<Vec<AtomicBool>> =
            Arc::new(conf.remotes.iter().map(|_| AtomicBool::new(true)).collect());
        let _ = stats.collectors.set(
            conf.remotes
                .iter()
                .map(|a| CollectorStats {
                    addr: a.to_string(),
                    ..CollectorStats::default()
                })
                .collect(),
        );
        let mut remotes = Vec::new();
        let mut links = Vec::new();
        for (i, addr) in conf.remotes.iter().enumerate() {
            let name = conf.remote_name(i);
            let (buffer, _) = ChunkBuffer::new(&name, &conf.buffer, Arc::clone(&stats))?;
            let buffer = Arc::new(buffer);
            let tls = match (addr, &conf.tls) {
                (RelayAddr::Tcp { host, .. }, Some(t)) => {
                    let sn = t.server_name.clone().unwrap_or_else(|| host.clone());
                    let sn = rustls::pki_types::ServerName::try_from(sn)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    Some((Arc::clone(&t.client.config), sn))
                }
                _ => None,
            };
            let mut link = Link::new(
                name,
                addr.clone(),
                conf,
                tls,
                Arc::clone(&buffer),
                Arc::clone(&stats),
                (Arc::clone(&healthy), i),
            );
            links.push(
                std::thread::Builder::new()
                    .name("relay".into())
                    .spawn(move || link.run())?,
            );
            remotes.push(Remote {
                chunk: buffer.take_vec(conf.chunk_bytes + (64 << 10)),
                buffer,
                records: 0,
            });
        }
        Ok(RelayOutput {
            name: conf.name(),
            mode: conf.mode,
            remotes,
            chunk: Vec::with_capacity(conf.chunk_bytes + (64 << 10)),
            records: 0,
            chunk_bytes: conf.chunk_bytes,
            healthy,
            shutdown_timeout: conf.shutdown_timeout,
            links,
            stats,
        })
    }

    /// The buffers, for shutdown's give-up deadline.
    pub fn buffers(&self) -> Vec<Arc<ChunkBuffer>> {
        self.remotes.iter().map(|r| Arc::clone(&r.buffer)).collect()
    }

    /// duplicate: the filled chunk to every remote (copies for all but the last).
    fn push_shared(&mut self) {
        if self.records == 0 {
            return;
        }
        let records = std::mem::take(&mut self.records);
        let n = self.remotes.len();
        for (i, r) in self.remotes.iter().enumerate() {
            let data = if i + 1 == n {
                std::mem::replace(
                    &mut self.chunk,
                    r.buffer.take_vec(self.chunk_bytes + (64 << 10)),
                )
            } else {
                let mut v = r.buffer.take_vec(self.chunk.len());
                v.extend_from_slice(&self.chunk);
                v
            };
            r.buffer.push(Chunk {
                data,
                records,
                resend: false,
            });
        }
    }

    /// split: remote `i`'s chunk to its buffer.
    fn push_own(&mut self, i: usize) {
        let chunk_bytes = self.chunk_bytes;
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        if r.records == 0 {
            return;
        }
        let data = if r.chunk.len() < chunk_bytes / 4 {
            let small = r.chunk.clone();
            r.chunk.clear();
            small
        } else {
            std::mem::replace(&mut r.chunk, r.buffer.take_vec(chunk_bytes + (64 << 10)))
        };
        let records = std::mem::take(&mut r.records);
        r.buffer.push(Chunk {
            data,
            records,
            resend: false,
        });
    }

    fn push_all(&mut self) {
        match self.mode {
            RelayMode::Duplicate => self.push_shared(),
            RelayMode::Split(_) => {
                for i in 0..self.remotes.len() {
                    self.push_own(i);
                }
            }
        }
    }
}

impl Output for RelayOutput {
    fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn record(&mut self, rec: &Record<'_>, raw: &[u8]) -> io::Result<()> {
        match self.mode {
            RelayMode::Duplicate => {
                let n = self.remotes.len() as u64;
                self.stats.records.fetch_add(n, Ordering::Relaxed);
                if raw.is_empty() {
                    // A record a transform made: no payload to relay.
                    self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                    return Ok(());
                }
                write_data_frame(raw, &mut self.chunk);
                self.records += 1;
                if self.chunk.len() >= self.chunk_bytes {
                    self.push_shared();
                }
            }
            RelayMode::Split(key) => {
                let i = pick(key_hash(key, rec), &self.healthy);
                let chunk_bytes = self.chunk_bytes;
                self.stats.records.fetch_add(1, Ordering::Relaxed);
                if raw.is_empty() {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                let Some(r) = self.remotes.get_mut(i) else {
                    return Ok(());
                };
                write_data_frame(raw, &mut r.chunk);
                r.records += 1;
                if r.chunk.len() >= chunk_bytes {
                    self.push_own(i);
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push_all();
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.push_all();
        let deadline = Instant::now() + self.shutdown_timeout;
        for r in &self.remotes {
            r.buffer.give_up_at(deadline);
            r.buffer.close();
        }
        let mut panicked = false;
        for h in self.links.drain(..) {
            panicked |= h.join().is_err();
        }
        if panicked {
            return Err(io::Error::other(format!(
                "{}: link thread panicked",
                self.name
            )));
        }
        Ok(())
    }
}

impl Drop for RelayOutput {
    fn drop(&mut self) {
        if !self.links.is_empty() {
            let _ = self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framestream::{Decoder, DecoderConfig, Event};
    use crate::sink::buffer::OverflowPolicy;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    /// A Frame Streams receiver on `l` for one connection: answers the handshake with the
    /// crate's own decoder and returns the data frames up to STOP.
    fn receive(l: UnixListener) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut dec = Decoder::new(DecoderConfig::default());
            let (mut buf, mut reply, mut frames) = (Vec::new(), Vec::new(), Vec::new());
            let mut b = [0u8; 65536];
            loop {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0, "closed before STOP");
                buf.extend_from_slice(&b[..n]);
                loop {
                    let step = dec.decode(&buf, &mut reply).unwrap();
                    if !reply.is_empty() {
                        s.write_all(&reply).unwrap();
                        reply.clear();
                    }
                    match step.event {
                        Event::NeedMore => break,
                        Event::Data { payload } => frames.push(buf[payload].to_vec()),
                        Event::Control => {}
                        Event::Finished => return frames,
                    }
                    buf.drain(..step.consumed);
                }
            }
        })
    }

    fn conf(remotes: Vec<RelayAddr>, mode: RelayMode) -> RelayConf {
        RelayConf {
            remotes,
            mode,
            tls: None,
            buffer: BufferSpec {
                max_bytes: 1 << 20,
                policy: OverflowPolicy::Block,
                spill: None,
            },
            chunk_bytes: 4096,
            connect_timeout: Duration::from_secs(2),
            backoff_init: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(200),
            shutdown_timeout: Duration::from_secs(5),
            replay_window: 0,
        }
    }

    fn rec(i: u32) -> (Record<'static>, Vec<u8>) {
        let id: &'static str = Box::leak(format!("ns{}", i % 7).into_boxed_str());
        let r = Record {
            identity: Some(id.as_bytes()),
            message_type: Some(5),
            ..Record::default()
        };
        (r, format!("payload-{i}").into_bytes())
    }

    fn run(mode: RelayMode, n: usize) -> (Vec<Vec<Vec<u8>>>, Arc<OutputStats>) {
        let dir = std::env::temp_dir().join(format!("relay-unit-{}-{mode:?}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut addrs = Vec::new();
        let mut rx = Vec::new();
        for i in 0..n {
            let p = dir.join(format!("r{i}.sock"));
            rx.push(receive(UnixListener::bind(&p).unwrap()));
            addrs.push(RelayAddr::Unix(p));
        }
        let stats = Arc::new(OutputStats::default());
        let mut o = RelayOutput::start(&conf(addrs, mode), Arc::clone(&stats)).unwrap();
        for i in 0..1000 {
            let (r, p) = rec(i);
            o.record(&r, &p).unwrap();
        }
        o.finish().unwrap();
        let got = rx.into_iter().map(|h| h.join().unwrap()).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        (got, stats)
    }

    #[test]
    fn duplicate_gives_every_remote_every_frame_in_order() {
        let (got, stats) = run(RelayMode::Duplicate, 2);
        let want: Vec<Vec<u8>> = (0..1000).map(|i| rec(i).1).collect();
        for g in &got {
            assert!(*g == want);
        }
        // Once per remote.
        assert_eq!(stats.records.load(Ordering::Relaxed), 2000);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 2000);
        for c in stats.collectors.get().unwrap() {
            assert_eq!(c.delivered.load(Ordering::Relaxed), 1000, "{}", c.addr);
        }
    }

    #[test]
    fn split_by_identity_sends_each_frame_once_and_keeps_keys_together() {
        let (got, stats) = run(RelayMode::Split(HashKey::Identity), 3);
        let total: usize = got.iter().map(Vec::len).sum();
        assert_eq!(total, 1000);
        assert_eq!(stats.records.load(Ordering::Relaxed), 1000);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 1000);
        for (c, g) in stats.collectors.get().unwrap().iter().zip(&got) {
            assert_eq!(c.delivered.load(Ordering::Relaxed), g.len() as u64);
        }
        // The same identity (i % 7) always on the same remote.
        for (r, frames) in got.iter().enumerate() {
            for f in frames {
                let i: u32 = std::str::from_utf8(&f[8..]).unwrap().parse().unwrap();
                for (o, others) in got.iter().enumerate() {
                    if o != r {
                        assert!(!others.iter().any(|g| {
                            let j: u32 = std::str::from_utf8(&g[8..]).unwrap().parse().unwrap();
                            j % 7 == i % 7
                        }));
                    }
                }
            }
        }
    }
}
