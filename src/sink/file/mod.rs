//! The file output: records appended to a file on disk, in any format or `raw` (a Frame
//! Streams `.fstrm` file, as `dnstap -r` and `fstrm_dump` read it), rotated by size and/or
//! age, the rotated files compressed, pruned to `max-files` and handed to a
//! `postrotate-command` by a background thread, so the writer thread only ever writes and
//! renames. Knows nothing of inputs, the queue or the config file.
//!
//! Files:
//! * `mod.rs`: [`FileConf`] (the validated settings) and [`FileOutput`], what the writer
//!   thread calls: the buffer, the size and age checks, the rotation, the reopen flag.
//! * `rotate.rs`: the rotated files' names, and the background thread that compresses,
//!   runs the command and prunes.
//!
//! ```text
//!  writer: record → format (or frame the raw payload) into buf ── ≥ 1 MiB / flush ──► write(2)
//!          would the file pass max-size?  → write what came before, rotate, go on
//!          older than rotate-interval?     → (checked at every write and flush) rotate
//!          reopen requested (SIGUSR1)?      → close, open `path` again (logrotate's rename)
//!  rotate: [raw: STOP] close → rename path → path's stem-UTCTIME.ext → open path [raw: START]
//!          → rotated name to the background thread: compress (.gz / .zst), postrotate, prune
//! ```
//!
//! A raw file is a unidirectional Frame Streams stream: START with the dnstap content type,
//! one data frame per accepted record (its payload byte for byte), STOP when the file is
//! closed or rotated. A file found non-empty at start (or at a reopen) in raw mode is
//! rotated first, since a second START after a STOP would end a reader there; a text file
//! is appended to.
//!
//! Errors: a failed write (a full disk, a quota) drops the records of that write, counted
//! in `dropped` and `write_errors` and logged (once per run of failures, and again at
//! recovery); the file is cut back to its last whole record (a raw file stays readable)
//! and the next write tries again. The output never returns an error for a failed write:
//! the disk may come back.
#![forbid(unsafe_code)]

mod rotate;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::rotate::{Rotated, Worker};
use crate::format::{FormatKind, Formatter};
use crate::framestream::{write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE};
use crate::record::Record;
use crate::sink::{Output, OUTPUT_FLUSH_AT};
use crate::stats::OutputStats;
use crate::{log_debug, log_warn};

/// What goes into the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// The accepted dnstap payloads as a Frame Streams file.
    Raw,
    /// One formatted record after another.
    Lines(FormatKind),
}

/// How rotated files are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    Gzip,
    Zstd,
}

impl Compress {
    pub fn suffix(self) -> &'static str {
        match self {
            Compress::Gzip => ".gz",
            Compress::Zstd => ".zst",
        }
    }
}

/// One file output, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileConf {
    /// The file written now; rotated files are made beside it.
    pub path: PathBuf,
    pub format: FileFormat,
    /// Rotate before the file would grow past this many bytes.
    pub max_size: Option<u64>,
    /// Rotate a file once it is this old (and not empty).
    pub rotate_interval: Option<Duration>,
    /// Rotated files kept (the oldest removed first); 0 keeps them all.
    pub max_files: usize,
    pub compress: Option<Compress>,
    /// Run with `sh -c` after each rotation, the rotated (compressed) file as `$1`.
    pub postrotate_command: Option<String>,
}

impl FileConf {
    /// `file PATH`: log lines and metric labels.
    pub fn name(&self) -> String {
        format!("file {}", self.path.display())
    }
}

/// Bumped by [`request_reopen`]; every file output reopens its file when it sees a new
/// value (between two writes).
static REOPEN: AtomicU64 = AtomicU64::new(0);

/// Asks every file output to close and reopen its file (after logrotate renamed it): the
/// SIGUSR1 handler, and whatever reload calls. Returns at once; the writer thread does it
/// at its next write or flush.
pub fn request_reopen() {
    REOPEN.fetch_add(1, Ordering::Release);
}

/// STOP's size on the wire: escape, length, control type.
const STOP_LEN: u64 = 12;
/// Look at the clock and the reopen flag every this many records (besides every write
/// and flush).
const CHECK_EVERY: u32 = 1024;

/// The output the writer thread calls.
#[derive(Debug)]
pub struct FileOutput {
    name: String,
    conf: FileConf,
    formatter: Option<Formatter>,
    buf: Vec<u8>,
    /// Records in `buf`.
    pending: u64,
    file: Option<File>,
    /// Bytes in the current file (what a reader sees), the raw header included.
    file_bytes: u64,
    /// Bytes of the raw header (START) or 0.
    header_len: u64,
    opened_at: Instant,
    reopen_seen: u64,
    since_check: u32,
    /// A failure was logged and no write has succeeded since.
    failing: bool,
    rotated: Rotated,
    worker: Option<Worker>,
    stats: Arc<OutputStats>,
}

impl FileOutput {
    /// Opens (creates) the file and starts the background thread. An existing raw file
    /// is rotated first.
    pub fn start(conf: &FileConf, stats: Arc<OutputStats>) -> io::Result<FileOutput> {
        let name = conf.name();
        let worker = Worker::start(&name, conf, Arc::clone(&stats))?;
        let mut o = FileOutput {
            formatter: match conf.format {
                FileFormat::Raw => None,
                FileFormat::Lines(k) => Some(Formatter::new(k)),
            },
            name,
            conf: conf.clone(),
            buf: Vec::with_capacity(OUTPUT_FLUSH_AT + (256 << 10)),
            pending: 0,
            file: None,
            file_bytes: 0,
            header_len: 0,
            opened_at: Instant::now(),
            reopen_seen: REOPEN.load(Ordering::Acquire),
            since_check: 0,
            failing: false,
            rotated: Rotated::new(&conf.path),
            worker: Some(worker),
            stats,
        };
        o.open_current()?;
        Ok(o)
    }

    fn raw(&self) -> bool {
        self.formatter.is_none()
    }

    /// Opens `path` for appending; in raw mode a non-empty file is rotated away first and
    /// the START frame written.
    fn open_current(&mut self) -> io::Result<()> {
        if self.raw() && std::fs::metadata(&self.conf.path).is_ok_and(|m| m.len() > 0) {
            self.rename_current();
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.conf.path)?;
        self.file_bytes = f.metadata()?.len();
        self.header_len = 0;
        if self.raw() {
            let mut start = Vec::with_capacity(64);
            write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut start);
            f.write_all(&start)?;
            self.file_bytes = start.len() as u64;
            self.header_len = self.file_bytes;
        }
        self.file = Some(f);
        self.opened_at = Instant::now();
        Ok(())
    }

    /// Ends the current file (raw: STOP) and closes it.
    fn close_current(&mut self) {
        let Some(mut f) = self.file.take() else {
            return;
        };
        if self.raw() {
            let mut stop = Vec::with_capacity(STOP_LEN as usize);
            write_control_frame(ControlType::Stop, None, &mut stop);
            if let Err(e) = f.write_all(&stop) {
                self.error(&format!("cannot end the file with STOP: {e}"));
                let _ = f.set_len(self.file_bytes);
            }
        }
        if let Err(e) = f.sync_data() {
            self.error(&format!("cannot sync the file: {e}"));
        }
    }

    /// Renames `path` to the next rotated name and hands it to the background thread.
    fn rename_current(&mut self) {
        let to = self.rotated.next_name();
        match std::fs::rename(&self.conf.path, &to) {
            Ok(()) => {
                log_debug!("output {}: rotated to {}", self.name, to.display());
                if let Some(w) = &self.worker {
                    w.send(to);
                }
            }
            Err(e) => self.error(&format!("cannot rename to {}: {e}", to.display())),
        }
    }

    /// Closes, renames, opens a new file.
    fn rotate(&mut self) {
        self.close_current();
        self.rename_current();
        if let Err(e) = self.open_current() {
            self.error(&format!("cannot open the file: {e}"));
        }
    }

    /// Close and open `path` again (logrotate moved it away).
    fn reopen(&mut self) {
        self.close_current();
        match self.open_current() {
            Ok(()) => log_debug!("output {}: reopened", self.name),
            Err(e) => self.error(&format!("cannot reopen the file: {e}")),
        }
    }

    fn error(&mut self, what: &str) {
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        if !self.failing {
            log_warn!("output {}: {what}", self.name);
        }
        self.failing = true;
    }

    /// Writes `buf[..len]`, holding `records` records, to the file; on failure those
    /// records are counted dropped and the file is cut back to its last whole record.
    fn write_out(&mut self, len: usize, records: u64) {
        if len == 0 {
            return;
        }
        if self.file.is_none() {
            if let Err(e) = self.open_current() {
                self.stats.dropped.fetch_add(records, Ordering::Relaxed);
                self.error(&format!(
                    "cannot open the file ({records} records dropped): {e}"
                ));
                return;
            }
        }
        let Some(f) = self.file.as_mut() else {
            return;
        };
        #[allow(clippy::indexing_slicing, reason = "len <= buf.len() by every caller")]
        let r = f.write_all(&self.buf[..len]);
        match r {
            Ok(()) => {
                self.file_bytes += len as u64;
                self.stats.delivered.fetch_add(records, Ordering::Relaxed);
                self.stats.bytes.fetch_add(len as u64, Ordering::Relaxed);
                if std::mem::take(&mut self.failing) {
                    log_warn!("output {}: writing again", self.name);
                }
            }
            Err(e) => {
                // The part that went out is taken back, so the file ends on a whole record.
                let _ = f.set_len(self.file_bytes);
                self.stats.dropped.fetch_add(records, Ordering::Relaxed);
                self.error(&format!("write failed ({records} records dropped): {e}"));
            }
        }
    }

    fn write_buf(&mut self) {
        let n = std::mem::take(&mut self.pending);
        self.write_out(self.buf.len(), n);
        self.buf.clear();
    }

    /// Something beyond the header is in the file or the buffer.
    fn has_content(&self) -> bool {
        self.file_bytes > self.header_len || !self.buf.is_empty()
    }

    /// The age and reopen checks: at every write, flush and CHECK_EVERY records.
    fn check_time_and_reopen(&mut self) {
        self.since_check = 0;
        let gen = REOPEN.load(Ordering::Acquire);
        if gen != self.reopen_seen {
            self.reopen_seen = gen;
            self.write_buf();
            self.reopen();
        }
        if let Some(iv) = self.conf.rotate_interval {
            if self.opened_at.elapsed() >= iv {
                if self.has_content() {
                    self.write_buf();
                    self.rotate();
                } else {
                    self.opened_at = Instant::now();
                }
            }
        }
    }
}

impl Output for FileOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn set_sample_rate(&mut self, rate: u32) {
        if let Some(f) = self.formatter.as_mut() {
            f.sample_rate = rate.max(1);
        }
    }

    #[inline]
    fn record(&mut self, rec: &Record<'_>, raw: &[u8]) -> io::Result<()> {
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        let mark = self.buf.len();
        match &self.formatter {
            Some(f) => f.write(rec, &mut self.buf),
            None if raw.is_empty() => {
                // A record a transform made (no payload): nothing to frame.
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            None => write_data_frame(raw, &mut self.buf),
        }
        self.pending += 1;
        if let Some(max) = self.conf.max_size {
            let trailer = if self.raw() { STOP_LEN } else { 0 };
            let before = self.file_bytes + mark as u64;
            if before > self.header_len && before + (self.buf.len() - mark) as u64 + trailer > max {
                // This record would take the file past max-size: what came before closes
                // the file, the record starts the next one.
                self.write_out(mark, self.pending - 1);
                self.buf.drain(..mark);
                self.pending = 1;
                self.rotate();
            }
        }
        self.since_check += 1;
        if self.buf.len() >= OUTPUT_FLUSH_AT {
            self.write_buf();
            self.check_time_and_reopen();
        } else if self.since_check >= CHECK_EVERY {
            self.check_time_and_reopen();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_buf();
        self.check_time_and_reopen();
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.write_buf();
        self.close_current();
        if let Some(w) = self.worker.take() {
            w.finish();
        }
        Ok(())
    }
}

impl Drop for FileOutput {
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.finish();
        }
    }
}

/// One line for the `-v` log: `file /var/log/dnstap.fstrm (raw, max-size 100 MiB, ...)`.
pub fn describe(c: &FileConf) -> String {
    let mut s = format!(
        "{} ({}",
        c.name(),
        match c.format {
            FileFormat::Raw => "raw".to_string(),
            FileFormat::Lines(k) => format!("{k:?}"),
        }
    );
    if let Some(m) = c.max_size {
        s.push_str(&format!(", max-size {m}"));
    }
    if let Some(t) = c.rotate_interval {
        s.push_str(&format!(", rotate-interval {}s", t.as_secs_f64()));
    }
    if c.max_files > 0 {
        s.push_str(&format!(", max-files {}", c.max_files));
    }
    if let Some(z) = c.compress {
        s.push_str(&format!(", compress {z:?}"));
    }
    s.push(')');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record<'static> {
        Record {
            identity: Some(b"ns1"),
            message_type: Some(5),
            ..Record::default()
        }
    }

    fn conf(path: PathBuf, format: FileFormat) -> FileConf {
        FileConf {
            path,
            format,
            max_size: None,
            rotate_interval: None,
            max_files: 0,
            compress: None,
            postrotate_command: None,
        }
    }

    #[test]
    fn a_device_that_is_full_is_counted_not_fatal() {
        let stats = Arc::new(OutputStats::default());
        let c = conf(
            PathBuf::from("/dev/full"),
            FileFormat::Lines(FormatKind::Json),
        );
        let mut o = FileOutput::start(&c, Arc::clone(&stats)).unwrap();
        for _ in 0..10 {
            o.record(&rec(), b"x").unwrap();
        }
        o.flush().unwrap();
        o.record(&rec(), b"x").unwrap();
        o.finish().unwrap();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(g(&stats.records), 11);
        assert_eq!(g(&stats.dropped), 11);
        assert_eq!(g(&stats.delivered), 0);
        assert!(g(&stats.write_errors) >= 2);
    }

    #[test]
    fn raw_files_never_pass_max_size_and_hold_every_frame() {
        let dir = std::env::temp_dir().join(format!("file-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = conf(dir.join("d.fstrm"), FileFormat::Raw);
        c.max_size = Some(1024);
        let stats = Arc::new(OutputStats::default());
        let mut o = FileOutput::start(&c, Arc::clone(&stats)).unwrap();
        let payload = [7u8; 100];
        for i in 0..100 {
            o.record(&rec(), &payload).unwrap();
            if i % 7 == 0 {
                o.flush().unwrap();
            }
        }
        o.finish().unwrap();
        let mut frames = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let b = std::fs::read(e.unwrap().path()).unwrap();
            assert!(b.len() <= 1024, "{}", b.len());
            assert!(b.ends_with(&[0, 0, 0, 4, 0, 0, 0, 3]), "STOP last");
            frames += b.windows(4).filter(|w| *w == [0, 0, 0, 100]).count();
        }
        // START (42) + 9 frames (104 each) + STOP (12) = 990 bytes per full file.
        assert_eq!(frames, 100);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 100);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
