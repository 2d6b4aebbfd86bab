//! [`ForwardOutput`]: the forward output as the writer thread sees it. Formats each record
//! into the current chunk (whole records, up to chunk-size), pushes full chunks (and, on a
//! flush, partial ones) to the [`ChunkBuffer`], whose overflow policy applies; starts one
//! sender thread per collector at start-up and joins them at shutdown within the shutdown
//! timeout. With `loadbalance: hash` there is one buffer (and one chunk being filled) per
//! collector, and each record goes to the chunk of the collector its key picks. Knows
//! nothing of sockets: the sender threads and their collectors own the connections.
#![forbid(unsafe_code)]

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use super::balance::Balance;
use super::collector::Collector;
use super::conf::{ForwardConf, LoadBalance};
use super::hash::{key_hash, pick, HashKey};
use super::sender::Sender;
use crate::format::Formatter;
use crate::log_debug;
use crate::record::Record;
use crate::sink::buffer::{BufferSpec, Chunk, ChunkBuffer};
use crate::sink::staged::{Mark, Staged, StagedOutput, Stager};
use crate::sink::{Output, RecordWriter};
use crate::stats::{CollectorStats, OutputStats};

/// A chunk being filled and how many records it holds.
#[derive(Debug)]
struct Filling {
    data: Vec<u8>,
    records: u32,
}

/// The output the writer thread calls. `W` writes each record into the chunk: the format's
/// line (a forward output), or that line as a framed syslog message (`sink::syslog`).
#[derive(Debug)]
pub struct ForwardOutput<W: RecordWriter = Formatter> {
    name: String,
    formatter: W,
    /// One per buffer (index-aligned with `buffers`).
    chunks: Vec<Filling>,
    chunk_bytes: usize,
    shutdown_timeout: Duration,
    /// One shared by every collector, or (`hash`) one per collector.
    buffers: Arc<Vec<Arc<ChunkBuffer>>>,
    /// `hash`: the key and the collectors' health the pick reads.
    hash: Option<(HashKey, Arc<Balance>)>,
    stats: Arc<OutputStats>,
    /// One sender thread per collector.
    senders: Vec<JoinHandle<()>>,
}

impl ForwardOutput {
    /// Opens the buffer(s) (and spill directory), builds TLS, and starts the sender
    /// threads. The first connections are made by the senders; a collector that is down at
    /// start is not an error (records wait in the buffer).
    pub fn start(conf: &ForwardConf, stats: Arc<OutputStats>) -> io::Result<ForwardOutput> {
        ForwardOutput::start_with(conf, conf.name(), Formatter::new(conf.format), stats)
    }
}

impl<W: RecordWriter> ForwardOutput<W> {
    /// [`ForwardOutput::start`] under another `name`, each record written by `writer`.
    pub fn start_with(
        conf: &ForwardConf,
        name: String,
        writer: W,
        stats: Arc<OutputStats>,
    ) -> io::Result<ForwardOutput<W>> {
        let n = conf.collectors.len().max(1);
        let hash_key = match conf.loadbalance {
            LoadBalance::Hash(k) if n > 1 => Some(k),
            _ => None,
        };
        // `hash`: the memory bound and the spill bound are shared out; each collector
        // spills into a directory of its own under `spill-dir`.
        let specs: Vec<BufferSpec> = match hash_key {
            None => vec![conf.buffer.clone()],
            Some(_) => (0..n)
                .map(|i| {
                    let mut b = conf.buffer.clone();
                    b.max_bytes = (b.max_bytes / n).max(conf.chunk_bytes + (64 << 10));
                    if let Some(sp) = b.spill.as_mut() {
                        sp.dir = sp.dir.join(format!("collector-{i}"));
                        sp.max_bytes /= n as u64;
                        sp.segment_bytes = sp.segment_bytes.min(sp.max_bytes / 4).max(1);
                    }
                    b
                })
                .collect(),
        };
        let mut buffers = Vec::with_capacity(specs.len());
        for spec in &specs {
            let (buffer, recovered) = ChunkBuffer::new(&name, spec, Arc::clone(&stats))?;
            if let Some(r) = recovered.filter(|r| r.records > 0) {
                log_debug!(
                    "output {name}: {} records in {} spill segments from a previous run, sent first",
                    r.records,
                    r.segments
                );
            }
            buffers.push(Arc::new(buffer));
        }
        let buffers = Arc::new(buffers);
        // Compiled with the configuration: the files are not read again here.
        let tls_cfg = conf.tls.as_ref().map(|t| Arc::clone(&t.client.config));
        let _ = stats.collectors.set(
            conf.collectors
                .iter()
                .map(|a| CollectorStats {
                    addr: a.to_string(),
                    ..CollectorStats::default()
                })
                .collect(),
        );
        let per_host = conf.connections_per_host.max(1);
        let balance = Arc::new(Balance::new(conf.loadbalance, n, per_host));
        let several = n > 1;
        let mut senders = Vec::with_capacity(n);
        for (i, addr) in conf.collectors.iter().enumerate() {
            let tls = match (&conf.tls, &tls_cfg) {
                (Some(t), Some(cfg)) => {
                    let sn = t.server_name.clone().unwrap_or_else(|| addr.host.clone());
                    let sn =
                        ServerName::try_from(sn).map_err(|e| io::Error::other(e.to_string()))?;
                    Some((Arc::clone(cfg), sn))
                }
                _ => None,
            };
            // With one collector the log lines name the output only (as before).
            let cname = if several {
                format!("{name} collector {addr}")
            } else {
                name.clone()
            };
            let buffer = &buffers[if hash_key.is_some() { i } else { 0 }];
            // `connections-per-host`: that many connections (and sender threads) to this
            // collector, pulling from the same buffer, counted together.
            for c in 0..per_host {
                let collector = Collector::new(
                    cname.clone(),
                    i,
                    addr,
                    conf,
                    tls.clone(),
                    Arc::clone(buffer),
                    Arc::clone(&stats),
                );
                let mut sender = Sender::new(
                    name.clone(),
                    Arc::clone(buffer),
                    collector,
                    (i, i * per_host + c),
                    Arc::clone(&balance),
                    hash_key.map(|_| Arc::clone(&buffers)),
                );
                senders.push(
                    std::thread::Builder::new()
                        .name("forward".into())
                        .spawn(move || sender.run())?,
                );
            }
        }
        let chunks = buffers
            .iter()
            .map(|b| Filling {
                data: b.take_vec(conf.chunk_bytes + (64 << 10)),
                records: 0,
            })
            .collect();
        Ok(ForwardOutput {
            name,
            formatter: writer,
            chunks,
            chunk_bytes: conf.chunk_bytes,
            shutdown_timeout: conf.shutdown_timeout,
            buffers,
            hash: hash_key.map(|k| (k, balance)),
            stats,
            senders,
        })
    }

    /// The buffers, so that shutdown can set their give-up deadline
    /// ([`ChunkBuffer::give_up_at`]) while the writer may still be blocked in one.
    pub fn buffers(&self) -> Vec<Arc<ChunkBuffer>> {
        self.buffers.iter().map(Arc::clone).collect()
    }

    fn push_chunk(&mut self, i: usize) {
        let buffer = &self.buffers[i];
        let f = &mut self.chunks[i];
        if f.records == 0 {
            return;
        }
        // A small chunk (a flush at a low rate) is copied into an allocation of its own
        // size, so the buffer's memory bound (counted in allocated bytes) is not eaten by
        // mostly empty chunk-size allocations.
        let data = if f.data.len() < self.chunk_bytes / 4 {
            let small = f.data.as_slice().to_vec();
            f.data.clear();
            small
        } else {
            std::mem::replace(&mut f.data, buffer.take_vec(self.chunk_bytes + (64 << 10)))
        };
        let records = std::mem::take(&mut f.records);
        buffer.push(Chunk {
            data,
            records,
            resend: false,
        });
    }

    fn push_all(&mut self) {
        for i in 0..self.chunks.len() {
            self.push_chunk(i);
        }
    }
}

impl<W: RecordWriter> Output for ForwardOutput<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn set_sample_rate(&mut self, rate: u32) {
        self.formatter.set_sample_rate(rate);
    }

    #[inline]
    fn record(&mut self, rec: &Record<'_>, _raw: &[u8]) -> io::Result<()> {
        let i = match &self.hash {
            Some((key, balance)) => pick(key_hash(*key, rec), balance.healthy()),
            None => 0,
        };
        let f = &mut self.chunks[i];
        self.formatter.write_record(rec, &mut f.data);
        f.records += 1;
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        if f.data.len() >= self.chunk_bytes || f.records == u32::MAX {
            self.push_chunk(i);
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
        for b in self.buffers.iter() {
            b.give_up_at(deadline);
            b.close();
        }
        let mut panicked = false;
        for h in self.senders.drain(..) {
            panicked |= h.join().is_err();
        }
        if panicked {
            return Err(io::Error::other(format!(
                "{}: sender thread panicked",
                self.name
            )));
        }
        Ok(())
    }
}

/// A forward output's formatting half for the ordered writers: the line, and with
/// `loadbalance: hash` the collector (lane) its key picks.
#[derive(Debug)]
struct LaneStager {
    hash: Option<(HashKey, Arc<Balance>)>,
}

impl Stager for LaneStager {
    #[inline]
    fn stage(&self, fmt: &Formatter, rec: &Record<'_>, _raw: &[u8], out: &mut Staged) {
        let lane = match &self.hash {
            Some((key, balance)) => pick(key_hash(*key, rec), balance.healthy()) as u32,
            None => 0,
        };
        let start = out.bytes.len();
        fmt.write(rec, &mut out.bytes);
        out.marks.push(Mark {
            end: out.bytes.len(),
            value_at: start,
            keyed: false,
            lane,
        });
    }
}

impl ForwardOutput<Formatter> {
    /// [`StagedOutput::commit`] with one buffer (no `hash`): the lines between two chunk
    /// cuts are copied with one `memcpy`.
    fn commit_one_lane(&mut self, staged: &Staged) {
        let bytes = &staged.bytes;
        // `from..` is copied to the chunk yet; `n` records lie in between.
        let (mut from, mut n) = (0usize, 0u32);
        for m in &staged.marks {
            n += 1;
            let f = &self.chunks[0];
            let len = f.data.len() + (m.end - from);
            // The cut one writer makes: after the record that reaches chunk-size.
            if len >= self.chunk_bytes || f.records.saturating_add(n) == u32::MAX {
                let f = &mut self.chunks[0];
                f.data
                    .extend_from_slice(bytes.get(from..m.end).unwrap_or_default());
                f.records += n;
                (from, n) = (m.end, 0);
                self.push_chunk(0);
            }
        }
        let end = staged.marks.last().map_or(0, |m| m.end);
        let f = &mut self.chunks[0];
        f.data
            .extend_from_slice(bytes.get(from..end).unwrap_or_default());
        f.records += n;
    }
}

/// Several writers: each batch's lines are appended, in queue order, to the chunk of their
/// lane, cut where one writer would have cut them (after the record that reaches
/// chunk-size), so the bytes each collector receives are one writer's.
impl StagedOutput for ForwardOutput<Formatter> {
    fn stager(&self) -> Arc<dyn Stager> {
        Arc::new(LaneStager {
            hash: self.hash.clone(),
        })
    }

    fn commit(&mut self, staged: &Staged, records: u64) -> io::Result<()> {
        self.stats.records.fetch_add(records, Ordering::Relaxed);
        if self.chunks.len() == 1 {
            self.commit_one_lane(staged);
            return Ok(());
        }
        // PERF: one copy of each line into its chunk, in the one thread that holds the
        // turn (a memcpy of ~300 bytes against ~0.35 µs of formatting done in parallel;
        // docs/performance.md "Parallel writers for forward and Kafka").
        for (_, line, lane) in staged.records() {
            let i = (lane as usize).min(self.chunks.len() - 1);
            let f = &mut self.chunks[i];
            f.data.extend_from_slice(line);
            f.records += 1;
            if f.data.len() >= self.chunk_bytes || f.records == u32::MAX {
                self.push_chunk(i);
            }
        }
        Ok(())
    }
}

impl<W: RecordWriter> Drop for ForwardOutput<W> {
    fn drop(&mut self) {
        if !self.senders.is_empty() {
            let _ = self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatKind;
    use crate::sink::buffer::{BufferSpec, OverflowPolicy};
    use crate::sink::forward::{CollectorAddr, LoadBalance};
    use std::io::Read;
    use std::net::TcpListener;

    fn conf(port: u16, policy: OverflowPolicy) -> ForwardConf {
        ForwardConf {
            collectors: vec![CollectorAddr {
                host: "127.0.0.1".into(),
                port,
            }],
            loadbalance: LoadBalance::Failover,
            format: FormatKind::Json,
            tls: None,
            connect_timeout: Duration::from_secs(2),
            backoff_init: Duration::from_millis(100),
            ttl: None,
            connections_per_host: 1,
            reconnect_max: Duration::from_millis(400),
            shutdown_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(30),
            chunk_bytes: 4096,
            buffer: BufferSpec {
                max_bytes: 1 << 20,
                policy,
                spill: None,
            },
            replay_window: 0,
        }
    }

    fn rec(i: u16) -> Record<'static> {
        let id: &'static str = Box::leak(format!("ns{i}").into_boxed_str());
        Record {
            identity: Some(id.as_bytes()),
            message_type: Some(5),
            ..Record::default()
        }
    }

    fn read_lines(l: &TcpListener, want: usize) -> Vec<String> {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut all = Vec::new();
        let mut b = [0u8; 65536];
        while all.iter().filter(|&&c| c == b'\n').count() < want {
            match s.read(&mut b) {
                Ok(0) => break,
                Ok(n) => all.extend_from_slice(&b[..n]),
                Err(e) => panic!("{e}"),
            }
        }
        String::from_utf8(all)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn lines_arrive_in_order_and_are_counted_delivered() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stats = Arc::new(OutputStats::default());
        let mut o =
            ForwardOutput::start(&conf(port, OverflowPolicy::Block), stats.clone()).unwrap();
        let reader = std::thread::spawn(move || read_lines(&l, 500));
        for i in 0..500 {
            o.record(&rec(i), b"").unwrap();
        }
        o.finish().unwrap();
        let lines = reader.join().unwrap();
        assert_eq!(lines.len(), 500);
        for (i, l) in lines.iter().enumerate() {
            assert!(l.contains(&format!("\"identity\": \"ns{i}\"")), "{l}");
        }
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 500);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
        assert_eq!(stats.buffered.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn collector_down_at_shutdown_counts_everything_dropped() {
        // Nothing listens on this port.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let stats = Arc::new(OutputStats::default());
        let mut c = conf(port, OverflowPolicy::DropNewest);
        c.shutdown_timeout = Duration::from_millis(300);
        let mut o = ForwardOutput::start(&c, stats.clone()).unwrap();
        for i in 0..100 {
            o.record(&rec(i), b"").unwrap();
        }
        let t0 = Instant::now();
        o.finish().unwrap();
        assert!(t0.elapsed() < Duration::from_secs(3), "bounded shutdown");
        assert_eq!(stats.records.load(Ordering::Relaxed), 100);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 100);
        assert!(stats.write_errors.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn shutdown_is_bounded_when_the_collector_stops_reading() {
        // Accepts, then never reads: the socket buffers fill and writes stall.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hold = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_secs(6));
            drop(s);
        });
        let stats = Arc::new(OutputStats::default());
        let mut c = conf(port, OverflowPolicy::DropNewest);
        c.shutdown_timeout = Duration::from_millis(500);
        let mut o = ForwardOutput::start(&c, stats.clone()).unwrap();
        for i in 0..100_000u32 {
            o.record(&rec((i % 1000) as u16), b"").unwrap();
        }
        let t0 = Instant::now();
        o.finish().unwrap();
        assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        assert!(get(&stats.dropped) > 0);
        assert_eq!(
            get(&stats.delivered) + get(&stats.dropped),
            100_000,
            "every record delivered or counted dropped"
        );
        assert_eq!(get(&stats.buffered), 0);
        hold.join().unwrap();
    }

    #[test]
    fn a_broken_connection_resends_what_was_not_confirmed() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stats = Arc::new(OutputStats::default());
        let mut c = conf(port, OverflowPolicy::Block);
        // Keep everything for replay: the first collector "loses" what it read.
        c.replay_window = 1 << 30;
        let mut o = ForwardOutput::start(&c, stats.clone()).unwrap();
        for i in 0..50 {
            o.record(&rec(i), b"").unwrap();
        }
        o.flush().unwrap();
        // First connection: read 50 lines, then close without a word.
        let first = read_lines(&l, 50);
        assert_eq!(first.len(), 50);
        // The sender notices the close and reconnects; the second collector gets all 50
        // again plus the new ones.
        for i in 50..60 {
            o.record(&rec(i), b"").unwrap();
        }
        o.flush().unwrap();
        let reader = std::thread::spawn(move || read_lines(&l, 60));
        std::thread::sleep(Duration::from_millis(200));
        o.finish().unwrap();
        let second = reader.join().unwrap();
        assert_eq!(second.len(), 60, "{second:?}");
        // The chunk of 50..60 may or may not have been written before the break showed.
        let resent = stats.resent.load(Ordering::Relaxed);
        assert!((50..=60).contains(&resent), "{resent}");
        for (i, l) in second.iter().enumerate() {
            assert!(l.contains(&format!("\"identity\": \"ns{i}\"")), "{l}");
        }
        assert_eq!(stats.reconnects.load(Ordering::Relaxed), 1);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 60);
    }

    #[test]
    fn ttl_reopens_the_connection_without_a_loss_or_a_counted_reconnect() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stats = Arc::new(OutputStats::default());
        let mut c = conf(port, OverflowPolicy::Block);
        c.ttl = Some(Duration::from_millis(300));
        let mut o = ForwardOutput::start(&c, stats.clone()).unwrap();
        let (closed_tx, closed_rx) = std::sync::mpsc::channel();
        // The first connection is read to its end (the receiver closes it after the ttl),
        // then the second one.
        let reader = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut first = Vec::new();
            s.read_to_end(&mut first).unwrap();
            closed_tx.send(()).unwrap();
            (String::from_utf8(first).unwrap(), read_lines(&l, 20))
        });
        for i in 0..20 {
            o.record(&rec(i), b"").unwrap();
        }
        o.flush().unwrap();
        closed_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the first connection closed after its ttl");
        for i in 20..40 {
            o.record(&rec(i), b"").unwrap();
        }
        o.flush().unwrap();
        let (first, second) = reader.join().unwrap();
        o.finish().unwrap();
        assert_eq!(first.lines().count(), 20, "{first}");
        assert_eq!(second.len(), 20, "{second:?}");
        assert!(second[0].contains("\"identity\": \"ns20\""), "{second:?}");
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 40);
        assert_eq!(stats.reconnects.load(Ordering::Relaxed), 0);
        assert_eq!(stats.resent.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn connections_per_host_opens_that_many_and_delivers_each_record_once() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stats = Arc::new(OutputStats::default());
        let mut c = conf(port, OverflowPolicy::Block);
        c.connections_per_host = 2;
        c.loadbalance = LoadBalance::RoundRobin;
        let mut o = ForwardOutput::start(&c, stats.clone()).unwrap();
        let reader = std::thread::spawn(move || {
            let conns: Vec<_> = (0..2).map(|_| l.accept().unwrap().0).collect();
            let readers: Vec<_> = conns
                .into_iter()
                .map(|mut s| {
                    std::thread::spawn(move || {
                        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        let mut all = Vec::new();
                        s.read_to_end(&mut all).unwrap();
                        String::from_utf8(all).unwrap()
                    })
                })
                .collect();
            readers
                .into_iter()
                .map(|r| r.join().unwrap())
                .collect::<Vec<String>>()
        });
        for i in 0..2000 {
            o.record(&rec(i % 1000), b"").unwrap();
        }
        o.finish().unwrap();
        let got = reader.join().unwrap();
        let lines: usize = got.iter().map(|g| g.lines().count()).sum();
        assert_eq!(lines, 2000);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 2000);
    }
}
