//! Offline mode (`dnstap_receiver -r FILE`): a Frame Streams capture file through the same
//! filter, decode, transform chains and format as live input (a user tries a configuration
//! on a capture before deploying it). Owns the file reading and the output batching;
//! knows nothing of sockets, threads or the configuration file.
//!
//! A capture file is a unidirectional Frame Streams stream (fstrm_capture, named, knotd and
//! socat all write START, data frames, STOP; no READY/ACCEPT):
//!
//! ```text
//! | 0x00000000 | len:u32 BE | START (content type) |   control frame
//! | len:u32 BE | payload (one dnstap protobuf)    |   data frame, repeated
//! | 0x00000000 | len:u32 BE | STOP                 |   control frame
//! ```
//!
//! The file is read in large chunks into one buffer; frames are decoded in place. Output is
//! gathered into a 256 KiB buffer and written to `out` in big writes.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::filter::{Filter, Verdict};
use crate::format::Formatter;
use crate::framestream::{Decoder, DecoderConfig, Event, DATA_FRAME_MAX_LIMIT};
use crate::record::Enrichment;
use crate::record::Record;
use crate::transform::{Chain, Origin, ReasonCounts, Verdict as Kept};

/// What one file held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfflineStats {
    /// Data frames read.
    pub frames: u64,
    /// Records written to the output.
    pub written: u64,
    /// Frames the prefilter rejected.
    pub filtered: u64,
    /// Frames whose protobuf could not be decoded (counted, not written).
    pub undecodable: u64,
    /// Records the global transform chain removed, by `DropReason::index`.
    pub transform_filtered: ReasonCounts,
    /// Records the output's own chain withheld, by `DropReason::index`.
    pub output_filtered: ReasonCounts,
    /// Records a stateful transform took, released later, and made (as the daemon's
    /// `transform_held` / `_released` / `_generated`); at the end of the file every held
    /// record has been released.
    pub held: u64,
    pub released: u64,
    pub generated: u64,
}

/// The chains a record goes through before it is written: the global one, then the one of
/// the output the file stands in for (stdout).
#[derive(Clone, Copy, Debug)]
pub struct OfflineChains<'a> {
    pub global: &'a Chain,
    pub output: &'a Chain,
}

impl Default for OfflineChains<'_> {
    fn default() -> Self {
        OfflineChains {
            global: Chain::empty(),
            output: Chain::empty(),
        }
    }
}

/// A failure while reading a capture: which file, at which byte, and what.
#[derive(Debug)]
pub struct OfflineError {
    pub path: PathBuf,
    /// Offset in the file of the frame (or read) that failed.
    pub offset: u64,
    pub what: String,
}

impl std::fmt::Display for OfflineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: at byte {}: {}",
            self.path.display(),
            self.offset,
            self.what
        )
    }
}
impl std::error::Error for OfflineError {}

/// Size of each read from the file (the buffer grows past it only for a larger frame).
const READ_CHUNK: usize = 1 << 20;
/// Output is handed to `out` when this much has been gathered.
pub const OUT_FLUSH: usize = 256 << 10;

/// Reads `path`, writes every accepted record to `out`. Errors name the file and the offset.
/// The records formatted before an error are written out before it is returned.
pub fn run(
    path: &Path,
    filter: &Filter,
    formatter: &Formatter,
    out: &mut dyn Write,
) -> Result<OfflineStats, Box<dyn std::error::Error + Send + Sync>> {
    run_with(path, filter, OfflineChains::default(), formatter, out)
}

/// [`run`] with transform chains: a record is written when the global chain and then the
/// output's chain keep it; the others are counted by reason.
pub fn run_with(
    path: &Path,
    filter: &Filter,
    chains: OfflineChains<'_>,
    formatter: &Formatter,
    out: &mut dyn Write,
) -> Result<OfflineStats, Box<dyn std::error::Error + Send + Sync>> {
    let mut stats = OfflineStats::default();
    let mut obuf: Vec<u8> = Vec::with_capacity(OUT_FLUSH + (64 << 10));
    // The full formats show the rate at which the chains sample; samplers nest
    // (transform::Chain::sample_rate): the larger rate is the stream's.
    let rate = chains.global.sample_rate().max(chains.output.sample_rate());
    let formatter = &formatter.clone().with_sample_rate(rate);
    let sink = Sink {
        chains,
        formatter,
        out: &mut *out,
    };
    let result = pump(path, filter, sink, &mut obuf, &mut stats);
    let written = out.write_all(&obuf).and_then(|()| out.flush());
    let end = match &result {
        Ok(end) => *end,
        Err(e) => e.offset,
    };
    result?;
    written.map_err(|e| OfflineError {
        path: path.to_path_buf(),
        offset: end,
        what: format!("write to output failed: {e}"),
    })?;
    Ok(stats)
}

/// Where decoded records go: through the chains, into the format, out.
struct Sink<'a, 'o> {
    chains: OfflineChains<'a>,
    formatter: &'a Formatter,
    out: &'o mut dyn Write,
}

/// The read-decode-format loop; returns the file offset where it stopped.
fn pump(
    path: &Path,
    filter: &Filter,
    sink: Sink<'_, '_>,
    obuf: &mut Vec<u8>,
    stats: &mut OfflineStats,
) -> Result<u64, OfflineError> {
    let Sink {
        chains,
        formatter,
        out,
    } = sink;
    let mut stage = Stage {
        chains,
        formatter,
        en: Enrichment::default(),
        en_out: Enrichment::default(),
        stateful: chains.global.is_stateful() || chains.output.is_stateful(),
    };
    let err = |offset: u64, what: String| OfflineError {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let mut file = File::open(path).map_err(|e| err(0, format!("cannot open: {e}")))?;

    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    // Invariant: 0 <= start <= end <= buf.len(); buf[start..end] is read but not decoded;
    // `base` is the file offset of buf[0].
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut start, mut end, mut base) = (0usize, 0usize, 0u64);
    let check_filter = !filter.is_empty();
    // The stateful transforms' clock, read once per read of the file (as the daemon's
    // writer reads it once per batch), not per record.
    // PERF: a clock read per record was 3 % of an enriched `-r` run (perf record).
    let mut now = Instant::now();

    loop {
        let offset = base + start as u64;
        let step = decoder
            .decode(&buf[start..end], &mut reply)
            .map_err(|e| err(offset, format!("Frame Streams: {e}")))?;
        reply.clear(); // a file has nobody to answer
        if step.consumed == 0 && step.event != Event::NeedMore {
            return Err(err(offset, "Frame Streams decoder made no progress".into()));
        }
        match step.event {
            Event::NeedMore => {
                if start > 0 {
                    buf.copy_within(start..end, 0);
                    base += start as u64;
                    end -= start;
                    start = 0;
                }
                if end == buf.len() {
                    // One frame larger than the buffer: grow, up to the largest frame any
                    // decoder configuration accepts (the decoder refuses anything beyond).
                    let cap = DATA_FRAME_MAX_LIMIT + 16;
                    if buf.len() >= cap {
                        return Err(err(base, "frame larger than the decoder limit".into()));
                    }
                    buf.resize((buf.len() * 2).min(cap), 0);
                }
                // Time passes for the stateful transforms between reads.
                now = Instant::now();
                stage.drain(now, false, obuf, stats);
                let n = read_some(&mut file, &mut buf[end..])
                    .map_err(|e| err(base + end as u64, format!("read failed: {e}")))?;
                if n == 0 {
                    decoder
                        .on_eof(end - start)
                        .map_err(|e| err(base + start as u64, format!("Frame Streams: {e}")))?;
                    break;
                }
                end += n;
            }
            Event::Control => start += step.consumed,
            Event::Finished => {
                start += step.consumed;
                let trailing = end > start
                    || read_some(&mut file, &mut buf[..1])
                        .map_err(|e| err(base + end as u64, format!("read failed: {e}")))?
                        > 0;
                if trailing {
                    return Err(err(base + start as u64, "data after STOP".into()));
                }
                break;
            }
            Event::Data { payload } => {
                stats.frames += 1;
                let Some(p) = buf[start..end].get(payload) else {
                    return Err(err(
                        offset,
                        "decoder returned a payload out of range".into(),
                    ));
                };
                start += step.consumed;
                if check_filter && filter.check(p) != Verdict::Accept {
                    stats.filtered += 1;
                    continue;
                }
                match Record::parse(p) {
                    Ok(rec) => {
                        stage.record(&rec, p, now, obuf, stats);
                        if obuf.len() >= OUT_FLUSH {
                            out.write_all(obuf)
                                .map_err(|e| err(offset, format!("write to output failed: {e}")))?;
                            obuf.clear();
                        }
                    }
                    Err(_) => stats.undecodable += 1,
                }
            }
        }
    }
    // End of the file: what the stateful transforms still hold goes out.
    stage.drain(Instant::now(), true, obuf, stats);
    Ok(base + end as u64)
}

/// The transform chains and the format, as one writer runs them.
struct Stage<'a> {
    chains: OfflineChains<'a>,
    formatter: &'a Formatter,
    /// What the global chain changed in the current record, and the output's chain on top.
    en: Enrichment,
    en_out: Enrichment,
    stateful: bool,
}

impl Stage<'_> {
    /// The global chain, then the output's.
    fn record(
        &mut self,
        rec: &Record<'_>,
        _payload: &[u8],
        now: Instant,
        obuf: &mut Vec<u8>,
        stats: &mut OfflineStats,
    ) {
        self.en.reset();
        match self.chains.global.apply(rec, &mut self.en, now) {
            Kept::Keep => self.output(rec, now, obuf, stats),
            Kept::Drop(r) => stats.transform_filtered[r.index()] += 1,
            Kept::Held => stats.held += 1,
        }
    }

    /// The output's chain on a record the global chain kept (its changes in `en`), then
    /// the format.
    fn output(
        &mut self,
        rec: &Record<'_>,
        now: Instant,
        obuf: &mut Vec<u8>,
        stats: &mut OfflineStats,
    ) {
        self.en_out.clone_from(&self.en);
        match self.chains.output.apply(rec, &mut self.en_out, now) {
            Kept::Keep => {
                if self.en_out.is_clear() {
                    self.formatter.write(rec, obuf);
                } else {
                    self.formatter.write(&rec.overlaid(&self.en_out), obuf);
                }
                stats.written += 1;
            }
            Kept::Drop(r) => stats.output_filtered[r.index()] += 1,
            Kept::Held => stats.held += 1,
        }
    }

    /// Emits what the stateful chains hold and is due (everything when `all`).
    fn drain(&mut self, now: Instant, all: bool, obuf: &mut Vec<u8>, stats: &mut OfflineStats) {
        if !self.stateful {
            return;
        }
        let chains = self.chains;
        chains.global.drain(now, all, &mut |e| {
            count_origin(stats, e.origin);
            match e.verdict {
                Kept::Keep => {
                    self.en.clone_from(e.en);
                    self.output(e.rec, now, obuf, stats);
                }
                Kept::Drop(r) => stats.transform_filtered[r.index()] += 1,
                Kept::Held => stats.held += 1,
            }
        });
        let formatter = self.formatter;
        chains.output.drain(now, all, &mut |e| {
            count_origin(stats, e.origin);
            match e.verdict {
                Kept::Keep => {
                    formatter.write(e.rec, obuf);
                    stats.written += 1;
                }
                Kept::Drop(r) => stats.output_filtered[r.index()] += 1,
                Kept::Held => stats.held += 1,
            }
        });
    }
}

fn count_origin(stats: &mut OfflineStats, origin: Origin) {
    match origin {
        Origin::Released => stats.released += 1,
        Origin::Generated => stats.generated += 1,
    }
}

/// One read, retried on `Interrupted`.
fn read_some(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{run, OfflineError, OUT_FLUSH};
    use crate::filter::{Filter, FilterSpec};
    use crate::format::{FormatKind, Formatter};
    use crate::framestream::{
        write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
    };
    use std::path::PathBuf;

    /// A minimal dnstap payload: identity, type MESSAGE, Message { type }.
    fn payload(identity: &[u8], mtype: u8) -> Vec<u8> {
        let mut p = vec![0x0a, identity.len() as u8];
        p.extend_from_slice(identity);
        p.extend_from_slice(&[0x72, 2, 0x08, mtype, 0x78, 1]);
        p
    }

    fn file(name: &str, frames: &[Vec<u8>], stop: bool) -> (PathBuf, Vec<u8>) {
        let mut b = Vec::new();
        write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut b);
        for f in frames {
            write_data_frame(f, &mut b);
        }
        if stop {
            write_control_frame(ControlType::Stop, None, &mut b);
        }
        let path = std::env::temp_dir().join(format!(
            "dnstap-offline-{}-{name}.fstrm",
            std::process::id()
        ));
        std::fs::write(&path, &b).unwrap();
        (path, b)
    }

    fn filter(identities: Option<&str>) -> Filter {
        Filter::compile(&FilterSpec {
            identities: identities.map(String::from),
            qname_regex: None,
        })
        .unwrap()
    }

    #[test]
    fn counts_written_filtered_and_undecodable() {
        let frames = vec![
            payload(b"a", 5),
            payload(b"b", 6),
            vec![0xff; 9],
            payload(b"a", 1),
        ];
        let (path, _) = file("counts", &frames, true);
        let mut out = Vec::new();
        let stats = run(
            &path,
            &filter(Some("a")),
            &Formatter::new(FormatKind::Text),
            &mut out,
        )
        .unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(
            (
                stats.frames,
                stats.written,
                stats.filtered,
                stats.undecodable
            ),
            (4, 2, 1, 1)
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text
            .lines()
            .next()
            .unwrap()
            .starts_with("- a CLIENT_QUERY - - - - - - - -"));
    }

    #[test]
    fn output_is_written_in_big_batches_and_whole() {
        let frames: Vec<Vec<u8>> = (0..20_000).map(|_| payload(b"lab-identity", 3)).collect();
        let (path, _) = file("batches", &frames, false); // EOF without STOP is a clean end
        struct Sink {
            writes: Vec<usize>,
            bytes: usize,
        }
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.writes.push(b.len());
                self.bytes += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = Sink {
            writes: Vec::new(),
            bytes: 0,
        };
        let stats = run(
            &path,
            &filter(None),
            &Formatter::new(FormatKind::Json),
            &mut sink,
        )
        .unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(stats.written, 20_000);
        assert!(sink.writes.len() > 1, "more than one buffer of output");
        let last = sink.writes.len() - 1;
        assert!(
            sink.writes[..last].iter().all(|&n| n >= OUT_FLUSH),
            "{:?}",
            sink.writes
        );
        let mut one = Vec::new();
        Formatter::new(FormatKind::Json).write(
            &crate::record::Record::decode(&frames[0]).unwrap(),
            &mut one,
        );
        assert_eq!(sink.bytes, one.len() * 20_000);
    }

    #[test]
    fn truncated_file_names_path_and_offset() {
        let frames = vec![payload(b"a", 5), payload(b"b", 6)];
        let (path, bytes) = file("truncated", &frames, false);
        let cut = bytes.len() - 3;
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let mut out = Vec::new();
        let err = run(
            &path,
            &filter(None),
            &Formatter::new(FormatKind::Text),
            &mut out,
        )
        .unwrap_err();
        std::fs::remove_file(&path).ok();
        let e = err.downcast_ref::<OfflineError>().expect("an OfflineError");
        assert_eq!(e.path, path);
        let second_frame = (cut - (4 + frames[1].len() - 3)) as u64;
        assert_eq!(e.offset, second_frame, "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        // The first frame was still written.
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
    }

    #[test]
    fn missing_file_names_path() {
        let path = std::env::temp_dir().join("dnstap-offline-does-not-exist.fstrm");
        let mut out = Vec::new();
        let err = run(
            &path,
            &filter(None),
            &Formatter::new(FormatKind::Text),
            &mut out,
        )
        .unwrap_err();
        assert!(err.to_string().contains("does-not-exist"), "{err}");
    }

    #[test]
    fn data_after_stop_is_an_error() {
        let (path, mut bytes) = file("after-stop", &[payload(b"a", 5)], true);
        let stop_end = bytes.len();
        write_data_frame(&payload(b"a", 5), &mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        let mut out = Vec::new();
        let err = run(
            &path,
            &filter(None),
            &Formatter::new(FormatKind::Text),
            &mut out,
        )
        .unwrap_err();
        std::fs::remove_file(&path).ok();
        let e = err.downcast_ref::<OfflineError>().unwrap();
        assert_eq!(e.offset, stop_end as u64, "{e}");
    }
}
