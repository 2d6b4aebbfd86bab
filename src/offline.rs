//! Offline mode (`dnstap_receiver -r FILE`): a Frame Streams capture file through the same
//! filter, decode and format as live input. Owns the file reading and the output batching;
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

use crate::filter::{Filter, Verdict};
use crate::format::Formatter;
use crate::framestream::{Decoder, DecoderConfig, Event, DATA_FRAME_MAX_LIMIT};
use crate::record::Record;

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
pub fn run(
    path: &Path,
    filter: &Filter,
    formatter: &Formatter,
    out: &mut dyn Write,
) -> Result<OfflineStats, Box<dyn std::error::Error + Send + Sync>> {
    let err = |offset: u64, what: String| OfflineError {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let mut file = File::open(path).map_err(|e| err(0, format!("cannot open: {e}")))?;

    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    let mut stats = OfflineStats::default();
    let mut obuf: Vec<u8> = Vec::with_capacity(OUT_FLUSH + (64 << 10));
    // Invariant: 0 <= start <= end <= buf.len(); buf[start..end] is read but not decoded;
    // `base` is the file offset of buf[0].
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut start, mut end, mut base) = (0usize, 0usize, 0u64);
    let check_filter = !filter.is_empty();

    loop {
        let offset = base + start as u64;
        let step = decoder
            .decode(&buf[start..end], &mut reply)
            .map_err(|e| err(offset, format!("Frame Streams: {e}")))?;
        reply.clear(); // a file has nobody to answer
        if step.consumed == 0 && step.event != Event::NeedMore {
            return Err(err(offset, "Frame Streams decoder made no progress".into()).into());
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
                        return Err(err(base, "frame larger than the decoder limit".into()).into());
                    }
                    buf.resize((buf.len() * 2).min(cap), 0);
                }
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
                    return Err(err(base + start as u64, "data after STOP".into()).into());
                }
                break;
            }
            Event::Data { payload } => {
                stats.frames += 1;
                let Some(p) = buf[start..end].get(payload) else {
                    return Err(
                        err(offset, "decoder returned a payload out of range".into()).into(),
                    );
                };
                start += step.consumed;
                if check_filter && filter.check(p) != Verdict::Accept {
                    stats.filtered += 1;
                    continue;
                }
                match Record::decode(p) {
                    Ok(rec) => {
                        formatter.write(&rec, &mut obuf);
                        stats.written += 1;
                        if obuf.len() >= OUT_FLUSH {
                            out.write_all(&obuf)
                                .map_err(|e| err(offset, format!("write to output failed: {e}")))?;
                            obuf.clear();
                        }
                    }
                    Err(_) => stats.undecodable += 1,
                }
            }
        }
    }
    out.write_all(&obuf)
        .map_err(|e| err(base + end as u64, format!("write to output failed: {e}")))?;
    out.flush()
        .map_err(|e| err(base + end as u64, format!("flush of output failed: {e}")))?;
    Ok(stats)
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
