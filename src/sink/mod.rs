//! Outputs: where decoded records go. The writer thread (`crate::pipeline`) decodes each
//! accepted message once and hands the [`Record`] to every [`Output`] in turn; each output
//! formats it its own way into its own buffer and moves the bytes on (stdout here; the
//! network or a broker in the sibling modules). Knows records and formats; knows nothing of
//! the inputs or the queue.
//!
//! ```text
//!  writer ── Record ──► Output::record ──► [own buffer] ──► fd / connection / broker
//!                  └──► Output::record ──► ...
//! ```
//!
//! Contract for every output: `record` never blocks for long unless the output's overflow
//! policy is `block` (back-pressure is then the point); every record it is handed ends up
//! counted in its [`OutputStats`] as delivered, dropped, buffered or spilled; an `Err` means
//! the output is gone for good (the writer then stops and the pipeline drops and counts).
//!
//! `unsafe` is forbidden here and in every output; the socket calls std lacks (keepalive,
//! `SIOCOUTQ`) are [`crate::sys::socket`]'s, named for the outputs in [`sockopt`].
#![forbid(unsafe_code)]

pub mod buffer;
pub mod file;
pub mod forward;
pub mod outputs;
pub mod relay;
pub mod sockopt;
pub mod spill;
pub mod staged;
pub mod syslog;

pub mod kafka;

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::format::Formatter;
use crate::record::Record;
use crate::stats::OutputStats;

/// Write an output's buffer once it holds this much.
pub const OUTPUT_FLUSH_AT: usize = 1 << 20;

/// One destination of records.
pub trait Output: Send {
    /// Name for log lines and metric labels (`stdout`, `forward 10.0.0.2:8192`).
    fn name(&self) -> &str;

    /// Takes one record; `raw` is its dnstap protobuf payload, for outputs that ship it as
    /// is. Buffers as the output sees fit.
    fn record(&mut self, rec: &Record<'_>, raw: &[u8]) -> io::Result<()>;

    /// The transforms before this output keep 1 record in `rate` by sampling: formats that
    /// carry the rate (the full ones) show it. Called before the first `record`.
    fn set_sample_rate(&mut self, _rate: u32) {}

    /// The writer has no more records for now (its queue is empty): write out what is
    /// buffered, so a quiet input still sees its records promptly.
    fn flush(&mut self) -> io::Result<()>;

    /// The pipeline is shutting down: deliver everything still held (bounded by the
    /// output's own timeouts), then stop. Called once, after the last `record`.
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
}

/// How a buffered output writes one record into its buffer: the format's line
/// ([`Formatter`]), or that line wrapped in a framed syslog message (`syslog`).
pub trait RecordWriter: Send + std::fmt::Debug {
    /// Appends one whole record to `out`.
    fn write_record(&mut self, rec: &Record<'_>, out: &mut Vec<u8>);

    /// See [`Output::set_sample_rate`].
    fn set_sample_rate(&mut self, rate: u32);
}

impl RecordWriter for Formatter {
    #[inline]
    fn write_record(&mut self, rec: &Record<'_>, out: &mut Vec<u8>) {
        self.write(rec, out);
    }

    fn set_sample_rate(&mut self, rate: u32) {
        self.sample_rate = rate.max(1);
    }
}

/// Formats records into a buffer and writes it to any `Write` in large writes: stdout, a
/// file, a pipe. Back-pressure is the writer's: a slow descriptor blocks the writer thread,
/// which blocks (or drops at) the queue.
#[derive(Debug)]
pub struct WriteOutput<W: Write + Send> {
    name: String,
    formatter: Formatter,
    buf: Vec<u8>,
    /// Records in `buf` not yet written.
    pending: u64,
    out: W,
    stats: Arc<OutputStats>,
}

impl<W: Write + Send> WriteOutput<W> {
    pub fn new(name: &str, formatter: Formatter, out: W, stats: Arc<OutputStats>) -> Self {
        WriteOutput {
            name: name.to_string(),
            formatter,
            buf: Vec::with_capacity(OUTPUT_FLUSH_AT + (256 << 10)),
            pending: 0,
            out,
            stats,
        }
    }

    fn write_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.out.write_all(&self.buf);
        let n = std::mem::take(&mut self.pending);
        match &r {
            Ok(()) => {
                self.stats.delivered.fetch_add(n, Ordering::Relaxed);
                self.stats
                    .bytes
                    .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.buf.clear();
        r
    }
}

impl<W: Write + Send> Output for WriteOutput<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn set_sample_rate(&mut self, rate: u32) {
        self.formatter.sample_rate = rate.max(1);
    }

    #[inline]
    fn record(&mut self, rec: &Record<'_>, _raw: &[u8]) -> io::Result<()> {
        self.formatter.write(rec, &mut self.buf);
        self.pending += 1;
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        if self.buf.len() >= OUTPUT_FLUSH_AT {
            self.write_buf()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_buf()?;
        self.out.flush()
    }
}

/// Standard output as a plain file handle: no line buffering, no lock per write.
#[derive(Debug)]
pub struct StdoutSink {
    file: File,
}

impl StdoutSink {
    pub fn open() -> io::Result<StdoutSink> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(StdoutSink {
            file: File::from(fd),
        })
    }
}

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A pipe or terminal has no user-space buffer here; nothing to do.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatKind;

    /// A writer that fails once it has taken `limit` bytes.
    struct Limited {
        got: Vec<u8>,
        limit: usize,
    }

    impl Write for Limited {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.got.len() + buf.len() > self.limit {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn record() -> Record<'static> {
        Record {
            identity: Some(b"ns1"),
            message_type: Some(5),
            ..Record::default()
        }
    }

    #[test]
    fn buffers_until_flush_and_counts_delivery() {
        let stats = Arc::new(OutputStats::default());
        let sink = Limited {
            got: Vec::new(),
            limit: usize::MAX,
        };
        let mut o = WriteOutput::new("t", Formatter::new(FormatKind::Json), sink, stats.clone());
        o.record(&record(), b"").unwrap();
        o.record(&record(), b"").unwrap();
        assert!(o.out.got.is_empty(), "small output waits for flush");
        o.flush().unwrap();
        let text = String::from_utf8(o.out.got.clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("\"ns1\""), "{text}");
        assert_eq!(stats.records.load(Ordering::Relaxed), 2);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 2);
        assert_eq!(stats.bytes.load(Ordering::Relaxed), text.len() as u64);
    }

    #[test]
    fn failed_write_counts_the_lost_records() {
        let stats = Arc::new(OutputStats::default());
        let sink = Limited {
            got: Vec::new(),
            limit: 0,
        };
        let mut o = WriteOutput::new("t", Formatter::new(FormatKind::Text), sink, stats.clone());
        for _ in 0..3 {
            o.record(&record(), b"").unwrap();
        }
        assert!(o.flush().is_err());
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
        assert_eq!(stats.write_errors.load(Ordering::Relaxed), 1);
    }
}
