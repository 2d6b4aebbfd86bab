//! The corpus: the dnstap payloads a load run sends, in order. Today they come from Frame
//! Streams capture files; a synthetic generator will fill the same type later. Knows nothing
//! of sockets or of how the payloads are framed on the wire.
#![forbid(unsafe_code)]

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event, DATA_FRAME_MAX_LIMIT};

/// An ordered list of payloads, stored back to back in one buffer so that a corpus of
/// millions of messages costs two allocations, not millions.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    /// Every payload, concatenated.
    data: Vec<u8>,
    /// `data[ranges[i]]` is payload `i`; ranges are contiguous and ascending.
    ranges: Vec<Range<usize>>,
}

impl Corpus {
    pub fn new() -> Corpus {
        Corpus::default()
    }

    /// Appends one payload. An empty payload cannot be sent as a data frame (a zero length
    /// is the control frame escape), so it is not added; returns whether it was.
    pub fn push(&mut self, payload: &[u8]) -> bool {
        if payload.is_empty() {
            return false;
        }
        let start = self.data.len();
        self.data.extend_from_slice(payload);
        self.ranges.push(start..self.data.len());
        true
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Sum of the payload sizes (without any framing).
    pub fn payload_bytes(&self) -> usize {
        self.data.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        // The ranges were made by `push` from this very buffer, so they are in bounds.
        self.ranges.iter().map(move |r| &self.data[r.clone()])
    }

    /// Appends every data frame of a Frame Streams file (START, data frames, optional STOP:
    /// what fstrm_capture, named, knotd and unidirectional senders write). Returns how
    /// many payloads the file held.
    pub fn read_fstrm_file(&mut self, path: &Path) -> Result<usize, CorpusError> {
        let bytes = std::fs::read(path).map_err(|e| CorpusError::new(path, 0, e.to_string()))?;
        self.read_fstrm_bytes(&bytes)
            .map_err(|(offset, what)| CorpusError::new(path, offset, what))
    }

    /// Like [`Corpus::read_fstrm_file`] on bytes already in memory; on error returns the
    /// offset of the frame that could not be decoded and why.
    pub fn read_fstrm_bytes(&mut self, bytes: &[u8]) -> Result<usize, (usize, String)> {
        // A file may hold frames larger than a live receiver would accept: take the
        // highest limit, the file is trusted as much as the user who names it.
        let mut decoder = Decoder::new(DecoderConfig {
            max_data_frame: DATA_FRAME_MAX_LIMIT,
        });
        // A file is a unidirectional stream: the decoder never has a reply to give.
        let mut reply = Vec::new();
        let mut offset = 0;
        let mut count = 0;
        loop {
            let rest = bytes.get(offset..).unwrap_or_default();
            let step = decoder
                .decode(rest, &mut reply)
                .map_err(|e| (offset, e.to_string()))?;
            match step.event {
                Event::NeedMore => {
                    decoder
                        .on_eof(rest.len())
                        .map_err(|e| (offset, e.to_string()))?;
                    break;
                }
                Event::Data { payload } => {
                    let frame = rest
                        .get(payload)
                        .ok_or((offset, "payload out of range".into()))?;
                    count += usize::from(self.push(frame));
                }
                Event::Control => {}
                Event::Finished => break,
            }
            offset += step.consumed;
        }
        Ok(count)
    }
}

/// A capture file that could not be read: which file, at which byte offset, and why.
#[derive(Debug)]
pub struct CorpusError {
    pub path: PathBuf,
    pub offset: usize,
    pub what: String,
}

impl CorpusError {
    fn new(path: &Path, offset: usize, what: String) -> CorpusError {
        CorpusError {
            path: path.to_path_buf(),
            offset,
            what,
        }
    }
}

impl fmt::Display for CorpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: offset {}: {}",
            self.path.display(),
            self.offset,
            self.what
        )
    }
}

impl std::error::Error for CorpusError {}

/// The tests' one skip-or-fail helper, shared with the receiver's tests.
#[cfg(test)]
#[path = "../../tests/support/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use super::*;
    use dnstap_receiver::framestream::{
        write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
    };

    fn file_of(payloads: &[&[u8]], stop: bool) -> Vec<u8> {
        let mut out = Vec::new();
        write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut out);
        for p in payloads {
            write_data_frame(p, &mut out);
        }
        if stop {
            write_control_frame(ControlType::Stop, None, &mut out);
        }
        out
    }

    #[test]
    fn reads_every_data_frame_in_order() {
        let mut c = Corpus::new();
        let n = c
            .read_fstrm_bytes(&file_of(&[b"one", b"2", b"three"], true))
            .unwrap();
        assert_eq!(n, 3);
        let got: Vec<&[u8]> = c.iter().collect();
        assert_eq!(got, vec![&b"one"[..], b"2", b"three"]);
        assert_eq!(c.payload_bytes(), 9);
        assert!(!c.push(b""), "an empty payload has no data frame");
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn file_without_stop_is_complete() {
        let mut c = Corpus::new();
        assert_eq!(
            c.read_fstrm_bytes(&file_of(&[b"a", b"b"], false)).unwrap(),
            2
        );
    }

    #[test]
    fn truncated_file_is_an_error() {
        let bytes = file_of(&[b"abcdef"], false);
        let mut c = Corpus::new();
        assert!(c.read_fstrm_bytes(&bytes[..bytes.len() - 2]).is_err());
    }

    #[test]
    fn lab_capture_matches_golang_dnstap_count() {
        // Oracle: the count of the Go `dnstap -r FILE -y` (agreeing with dnstap-ldns), which
        // lab/capture.sh wrote to captures/summary.tsv when it recorded the file.
        let Some(lab) = lab_dir() else { return };
        let mut c = Corpus::new();
        let n = c
            .read_fstrm_file(&lab.join("captures/nsd-unix.fstrm"))
            .unwrap();
        let summary = std::fs::read_to_string(lab.join("captures/summary.tsv")).unwrap();
        let want: usize = summary
            .lines()
            .find_map(|l| l.strip_prefix("nsd-unix.fstrm\t"))
            .and_then(|rest| rest.split('\t').nth(1))
            .expect("summary.tsv has a line for nsd-unix.fstrm")
            .parse()
            .unwrap();
        assert_eq!(n, want);
    }

    fn lab_dir() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab");
        if dir.join("captures").is_dir() {
            return Some(dir);
        }
        // CI must not pass by skipping: there the lab is a prerequisite.
        super::skip::missing(
            "corpus tests on the lab captures",
            &format!("lab not found at {}", dir.display()),
        );
        None
    }
}
