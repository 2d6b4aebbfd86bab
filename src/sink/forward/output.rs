//! [`ForwardOutput`]: the forward output as the writer thread sees it. Formats each record
//! into the current chunk (whole records, up to chunk-size), pushes full chunks (and, on a
//! flush, partial ones) to the [`ChunkBuffer`], whose overflow policy applies; starts the
//! sender thread at start-up and joins it at shutdown within the shutdown timeout. Knows
//! nothing of sockets: the sender thread and its collector own the connection.
#![forbid(unsafe_code)]

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use super::collector::Collector;
use super::conf::ForwardConf;
use super::sender::Sender;
use super::tls::tls_client_config;
use crate::format::Formatter;
use crate::log_debug;
use crate::record::Record;
use crate::sink::buffer::{Chunk, ChunkBuffer};
use crate::sink::Output;
use crate::stats::OutputStats;

/// The output the writer thread calls.
#[derive(Debug)]
pub struct ForwardOutput {
    name: String,
    formatter: Formatter,
    chunk: Vec<u8>,
    chunk_records: u32,
    chunk_bytes: usize,
    shutdown_timeout: Duration,
    buffer: Arc<ChunkBuffer>,
    stats: Arc<OutputStats>,
    sender: Option<JoinHandle<()>>,
}

impl ForwardOutput {
    /// Opens the buffer (and spill directory), builds TLS, and starts the sender thread. The
    /// first connection is made by the sender; a collector that is down at start is not an
    /// error (records wait in the buffer).
    pub fn start(conf: &ForwardConf, stats: Arc<OutputStats>) -> io::Result<ForwardOutput> {
        let name = conf.name();
        let (buffer, recovered) = ChunkBuffer::new(&name, &conf.buffer, Arc::clone(&stats))?;
        if let Some(r) = recovered.filter(|r| r.records > 0) {
            log_debug!(
                "output {name}: {} records in {} spill segments from a previous run, sent first",
                r.records,
                r.segments
            );
        }
        let buffer = Arc::new(buffer);
        let tls = match &conf.tls {
            Some(t) => {
                let cfg = tls_client_config(t).map_err(io::Error::other)?;
                let sn = ServerName::try_from(t.server_name.clone())
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Some((cfg, sn))
            }
            None => None,
        };
        let collector = Collector::new(
            name.clone(),
            conf,
            tls,
            Arc::clone(&buffer),
            Arc::clone(&stats),
        );
        let mut sender = Sender::new(name.clone(), Arc::clone(&buffer), collector);
        let handle = std::thread::Builder::new()
            .name("forward".into())
            .spawn(move || sender.run())?;
        Ok(ForwardOutput {
            name,
            formatter: Formatter::new(conf.format),
            chunk: buffer.take_vec(conf.chunk_bytes + (64 << 10)),
            chunk_records: 0,
            chunk_bytes: conf.chunk_bytes,
            shutdown_timeout: conf.shutdown_timeout,
            buffer,
            stats,
            sender: Some(handle),
        })
    }

    /// The buffer, so that shutdown can set its give-up deadline
    /// ([`ChunkBuffer::give_up_at`]) while the writer may still be blocked in it.
    pub fn buffer(&self) -> Arc<ChunkBuffer> {
        Arc::clone(&self.buffer)
    }

    fn push_chunk(&mut self) {
        if self.chunk_records == 0 {
            return;
        }
        // A small chunk (a flush at a low rate) is copied into an allocation of its own
        // size, so the buffer's memory bound (counted in allocated bytes) is not eaten by
        // mostly empty chunk-size allocations.
        let data = if self.chunk.len() < self.chunk_bytes / 4 {
            let small = self.chunk.as_slice().to_vec();
            self.chunk.clear();
            small
        } else {
            std::mem::replace(
                &mut self.chunk,
                self.buffer.take_vec(self.chunk_bytes + (64 << 10)),
            )
        };
        let records = std::mem::take(&mut self.chunk_records);
        self.buffer.push(Chunk {
            data,
            records,
            resend: false,
        });
    }
}

impl Output for ForwardOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn set_sample_rate(&mut self, rate: u32) {
        self.formatter.sample_rate = rate.max(1);
    }

    #[inline]
    fn record(&mut self, rec: &Record<'_>, _raw: &[u8]) -> io::Result<()> {
        self.formatter.write(rec, &mut self.chunk);
        self.chunk_records += 1;
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        if self.chunk.len() >= self.chunk_bytes || self.chunk_records == u32::MAX {
            self.push_chunk();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push_chunk();
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.push_chunk();
        self.buffer
            .give_up_at(Instant::now() + self.shutdown_timeout);
        self.buffer.close();
        if let Some(h) = self.sender.take() {
            if h.join().is_err() {
                return Err(io::Error::other(format!(
                    "{}: sender thread panicked",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

impl Drop for ForwardOutput {
    fn drop(&mut self) {
        if self.sender.is_some() {
            let _ = self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatKind;
    use crate::sink::buffer::{BufferSpec, OverflowPolicy};
    use std::io::Read;
    use std::net::TcpListener;

    fn conf(port: u16, policy: OverflowPolicy) -> ForwardConf {
        ForwardConf {
            host: "127.0.0.1".into(),
            port,
            format: FormatKind::Json,
            tls: None,
            connect_timeout: Duration::from_secs(2),
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
}
