//! Outputs that several writer threads feed in queue order (`--writers N`,
//! `crate::pipeline::ordered`). Each writer formats a whole batch, in parallel with the
//! others, into its own [`Staged`] records with the output's [`Stager`]; then, one writer
//! at a time and in the order the batches left the queue, the output takes them
//! ([`StagedOutput::commit`]). The output therefore sees its records in exactly the order
//! one writer would have handed them over, and formatting (most of the writer's work) runs
//! on every writer at once. Knows records and formats; nothing of the queue or threads.
//!
//! ```text
//!  writer k: record ── Stager::stage ──► Staged { bytes | r0 | r1 | r2 ... , marks }
//!                                                   (each mark: end, key/value split, lane)
//!  in ticket order: StagedOutput::commit(&Staged) ──► fd (stdout) / chunks per collector
//!                                                       (forward) / producer (Kafka)
//! ```
//!
//! Which outputs can: stdout ([`WriteOutput`]), forward (`ForwardOutput`) and Kafka
//! (`KafkaOutput`). The format is the configuration's for the output (reloadable for
//! stdout), handed to [`Stager::stage`] with every record, so a stager holds only what its
//! output decides per record (the collector a `hash` key picks, the Kafka key).
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::format::Formatter;
use crate::record::Record;
use crate::sink::{Output, WriteOutput};
#[cfg(doc)]
use crate::stats::OutputStats;

/// One formatted record's place in [`Staged::bytes`]: it starts where the previous one
/// ended (0 for the first) and ends at `end`.
///
/// Invariants: `start <= value_at <= end <= bytes.len()`, and `end` never decreases from
/// one mark to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub end: usize,
    /// Where the record's key ends and its value starts (`start` when it has none).
    pub value_at: usize,
    /// Whether `bytes[start..value_at]` is a key (an empty key is still a key).
    pub keyed: bool,
    /// Which of the output's lanes takes it: with `loadbalance: hash`, the collector whose
    /// buffer the key picked; 0 otherwise.
    pub lane: u32,
}

/// A writer's formatted records for one batch, kept from batch to batch (cleared, never
/// shrunk): no allocation per message once they reached the size of a batch.
#[derive(Debug, Default)]
pub struct Staged {
    pub bytes: Vec<u8>,
    /// One per record, in order; outputs that need no record boundaries (stdout) leave it
    /// empty.
    pub marks: Vec<Mark>,
}

impl Staged {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.marks.clear();
    }

    /// The records, each with its key (if any) and its value or line.
    pub fn records(&self) -> impl Iterator<Item = (Option<&[u8]>, &[u8], u32)> + '_ {
        let mut start = 0;
        self.marks.iter().map(move |m| {
            let s = start.min(m.end);
            start = m.end;
            let at = m.value_at.clamp(s, m.end);
            let key = m.keyed.then(|| self.bytes.get(s..at).unwrap_or_default());
            let value = self.bytes.get(at..m.end).unwrap_or_default();
            (key, value, m.lane)
        })
    }
}

/// How an output formats one record, on any writer thread. Holds no mutable state.
pub trait Stager: Send + Sync {
    /// Appends `rec` (its dnstap payload `raw`) to `out`, formatted with `fmt` (the
    /// configuration's format for this output, with its sample rate).
    fn stage(&self, fmt: &Formatter, rec: &Record<'_>, raw: &[u8], out: &mut Staged);
}

/// An output the ordered writers can feed: besides [`Output`] (whose `flush` and `finish`
/// they call as one writer does; `record` they do not call), its formatting half and how
/// it takes a batch of staged records.
pub trait StagedOutput: Output {
    /// The formatting half, shared by every writer thread.
    fn stager(&self) -> Arc<dyn Stager>;

    /// Takes one batch's `records` staged records, after every earlier batch's. Counts
    /// them in its [`OutputStats`] as [`Output::record`] does. An `Err` means the output is
    /// gone for good.
    fn commit(&mut self, staged: &Staged, records: u64) -> io::Result<()>;
}

/// Each record as its line, one after the other.
#[derive(Debug)]
pub struct LineStager;

impl Stager for LineStager {
    #[inline]
    fn stage(&self, fmt: &Formatter, rec: &Record<'_>, _raw: &[u8], out: &mut Staged) {
        fmt.write(rec, &mut out.bytes);
    }
}

/// A descriptor (stdout) fed in queue order: one `write_all` per batch, straight from the
/// writer's staged bytes.
impl<W: Write + Send> StagedOutput for WriteOutput<W> {
    fn stager(&self) -> Arc<dyn Stager> {
        Arc::new(LineStager)
    }

    fn commit(&mut self, staged: &Staged, records: u64) -> io::Result<()> {
        // Nothing is buffered when only the ordered writers feed it; kept in order if so.
        self.write_buf()?;
        let out = &self.stats;
        out.records.fetch_add(records, Ordering::Relaxed);
        let buf = &staged.bytes;
        let r = if buf.is_empty() {
            Ok(())
        } else {
            self.out.write_all(buf)
        };
        match &r {
            Ok(()) => {
                out.delivered.fetch_add(records, Ordering::Relaxed);
                out.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                out.write_errors.fetch_add(1, Ordering::Relaxed);
                out.dropped.fetch_add(records, Ordering::Relaxed);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_keys_values_and_lanes() {
        let mut s = Staged::default();
        s.bytes.extend_from_slice(b"k1v1line");
        s.marks.push(Mark {
            end: 4,
            value_at: 2,
            keyed: true,
            lane: 0,
        });
        s.marks.push(Mark {
            end: 8,
            value_at: 4,
            keyed: false,
            lane: 3,
        });
        let got: Vec<_> = s.records().collect();
        assert_eq!(
            got,
            vec![(Some(&b"k1"[..]), &b"v1"[..], 0), (None, &b"line"[..], 3)]
        );
        // Marks that break the invariants yield empty slices, never a panic.
        s.marks.push(Mark {
            end: 100,
            value_at: 1,
            keyed: true,
            lane: 0,
        });
        assert_eq!(s.records().nth(2), Some((Some(&b""[..]), &b""[..], 0)));
    }
}
