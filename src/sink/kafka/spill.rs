//! The `spill` overflow of the Kafka output: records librdkafka had no room for, framed as
//! [`Chunk`]s into the shared bounded on-disk queue ([`crate::sink::spill::SpillQueue`])
//! and read back in the order they came. Knows the chunk framing and the replay position;
//! the segment files, their bound and their crash safety are the queue's.
//!
//! ```text
//!  oldest ◄───────────────────────────────────────────────────────── newest
//!  replay (chunk in memory, pos) │ queue (segment files) │ pending (chunk being filled)
//! ```
#![forbid(unsafe_code)]

use std::io;
use std::path::PathBuf;

use crate::sink::kafka::settings::SpillSettings;
use crate::sink::kafka::{chunk_record, Chunk, KeyValue};
use crate::sink::spill::{SpillQueue, SpillSpec, DEFAULT_SEGMENT_BYTES};

/// Records are written to the queue in chunks of about this size.
const CHUNK_BYTES: usize = 256 << 10;

pub struct KafkaSpill {
    queue: SpillQueue,
    dir: PathBuf,
    /// The newest records, not yet written to the queue.
    pending: Chunk,
    /// The chunk being replayed; the next record starts at `replay_pos`
    /// (`0 <= replay_pos <= replay.len()`), and `replay_left` records remain from there.
    replay: Vec<u8>,
    replay_pos: usize,
    replay_left: u32,
    /// Records lost to a damaged chunk since the last `take_lost`.
    lost: u64,
}

impl KafkaSpill {
    /// Opens the queue; records a previous run left there are replayed first.
    pub fn open(s: &SpillSettings) -> io::Result<KafkaSpill> {
        let spec = SpillSpec {
            dir: s.dir.clone(),
            max_bytes: s.max_bytes,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        };
        let (queue, found) = SpillQueue::open(&spec)
            .map_err(|e| io::Error::new(e.kind(), format!("spill {}: {e}", s.dir.display())))?;
        if found.records > 0 || found.truncated_bytes > 0 {
            crate::log_warn!(
                "kafka spill {}: {} record(s) left by a previous run will be sent first \
                 ({} damaged bytes cut)",
                s.dir.display(),
                found.records,
                found.truncated_bytes
            );
        }
        Ok(KafkaSpill {
            queue,
            dir: s.dir.clone(),
            pending: Chunk::default(),
            replay: Vec::new(),
            replay_pos: 0,
            replay_left: 0,
            lost: 0,
        })
    }

    pub fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    pub fn is_empty(&self) -> bool {
        self.replay_left == 0 && self.pending.records == 0 && self.queue.is_empty()
    }

    /// Records held, in memory and on disk.
    pub fn held(&self) -> u64 {
        u64::from(self.replay_left) + u64::from(self.pending.records) + self.queue.records()
    }

    /// Appends one record at the tail. Returns the records the bounded queue dropped to
    /// make room (or this one's own, when it cannot fit).
    pub fn add(&mut self, key: Option<&[u8]>, value: &[u8]) -> io::Result<u64> {
        self.pending.push(key, value);
        if self.pending.data.len() < CHUNK_BYTES {
            return Ok(0);
        }
        self.write_pending()
    }

    fn write_pending(&mut self) -> io::Result<u64> {
        if self.pending.records == 0 {
            return Ok(0);
        }
        let pushed = self.queue.push(&self.pending.data, self.pending.records)?;
        let own = if pushed.stored {
            0
        } else {
            u64::from(self.pending.records)
        };
        self.pending.clear();
        Ok(pushed.dropped_older + own)
    }

    /// Makes sure a whole record is at `replay_pos`, taking the next chunk (from the queue,
    /// then from `pending`) when the current one is used up. False: nothing is held.
    fn fill(&mut self) -> io::Result<bool> {
        loop {
            if self.replay_left > 0 {
                if chunk_record(&self.replay, self.replay_pos).is_some() {
                    return Ok(true);
                }
                // The chunk ends early: its frame passed the queue's CRC, so only a writer
                // bug gets here. Count what it claimed and move on.
                self.lost += u64::from(self.replay_left);
                self.replay_left = 0;
            }
            if let Some(n) = self.queue.pop(&mut self.replay)? {
                self.replay_pos = 0;
                self.replay_left = n;
                continue;
            }
            if self.pending.records > 0 {
                std::mem::swap(&mut self.replay, &mut self.pending.data);
                self.replay_pos = 0;
                self.replay_left = self.pending.records;
                self.pending.clear();
                continue;
            }
            return Ok(false);
        }
    }

    /// The oldest record held (stays held until [`KafkaSpill::advance`]).
    pub fn peek(&mut self) -> io::Result<Option<KeyValue<'_>>> {
        if !self.fill()? {
            return Ok(None);
        }
        Ok(chunk_record(&self.replay, self.replay_pos).map(|(kv, _)| kv))
    }

    /// The record [`KafkaSpill::peek`] returned has been taken.
    pub fn advance(&mut self) {
        if self.replay_left == 0 {
            return;
        }
        if let Some((_, next)) = chunk_record(&self.replay, self.replay_pos) {
            self.replay_pos = next;
            self.replay_left -= 1;
        }
    }

    /// Records lost to damaged chunks since the last call.
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    /// Shutdown: `older` (records librdkafka still held, older than anything spilled) and
    /// the rest of the replay chunk go back to the head of the queue, `pending` to its
    /// tail, and the queue is synced. Returns the records that did not fit.
    pub fn save_front(&mut self, older: Chunk) -> io::Result<u64> {
        let rest = self.replay.get(self.replay_pos..).unwrap_or(&[]);
        let mut chunks: Vec<(&[u8], u32)> = Vec::with_capacity(2);
        if older.records > 0 {
            chunks.push((&older.data, older.records));
        }
        if self.replay_left > 0 {
            chunks.push((rest, self.replay_left));
        }
        let mut dropped = 0;
        if !chunks.is_empty() {
            dropped += self.queue.push_front(chunks)?;
        }
        self.replay.clear();
        self.replay_pos = 0;
        self.replay_left = 0;
        dropped += self.write_pending()?;
        Ok(dropped)
    }

    /// Writes what is in memory to the queue and syncs it (end of run).
    pub fn close(&mut self) -> io::Result<u64> {
        let dropped = self.save_front(Chunk::default())?;
        self.queue.sync()?;
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kafka-spill-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn settings(d: &std::path::Path) -> SpillSettings {
        SpillSettings {
            dir: d.to_path_buf(),
            max_bytes: 64 << 20,
        }
    }

    fn drain(sp: &mut KafkaSpill) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
        let mut v = Vec::new();
        while let Some((k, val)) = sp.peek().unwrap() {
            v.push((k.map(<[u8]>::to_vec), val.to_vec()));
            sp.advance();
        }
        v
    }

    fn rec(i: usize) -> (Option<Vec<u8>>, Vec<u8>) {
        let key = (i % 3 != 0).then(|| format!("k{}", i % 7).into_bytes());
        (
            key,
            format!("value {i} {}", "x".repeat(i % 900)).into_bytes(),
        )
    }

    #[test]
    fn records_come_back_in_order_across_chunks() {
        let d = dir("order");
        let mut sp = KafkaSpill::open(&settings(&d)).unwrap();
        let want: Vec<_> = (0..3000).map(rec).collect();
        for (k, v) in &want {
            assert_eq!(sp.add(k.as_deref(), v).unwrap(), 0);
        }
        assert_eq!(sp.held(), 3000);
        // Take a few, add more: still one order.
        let mut got = Vec::new();
        for _ in 0..10 {
            let (k, v) = sp.peek().unwrap().unwrap();
            got.push((k.map(<[u8]>::to_vec), v.to_vec()));
            sp.advance();
        }
        let more: Vec<_> = (3000..3100).map(rec).collect();
        for (k, v) in &more {
            sp.add(k.as_deref(), v).unwrap();
        }
        got.extend(drain(&mut sp));
        let mut all = want;
        all.extend(more);
        assert_eq!(got, all);
        assert!(sp.is_empty());
        assert_eq!(sp.held(), 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn close_and_reopen_keeps_everything_with_older_records_first() {
        let d = dir("reopen");
        let mut sp = KafkaSpill::open(&settings(&d)).unwrap();
        let recs: Vec<_> = (0..2000).map(rec).collect();
        for (k, v) in &recs {
            sp.add(k.as_deref(), v).unwrap();
        }
        // Half replayed...
        let mut got = Vec::new();
        for _ in 0..1000 {
            let (k, v) = sp.peek().unwrap().unwrap();
            got.push((k.map(<[u8]>::to_vec), v.to_vec()));
            sp.advance();
        }
        // ...of which the last 5 were still in librdkafka at shutdown: they come back
        // first, then the rest of the spill.
        let mut older = Chunk::default();
        for (k, v) in &got[995..] {
            older.push(k.as_deref(), v);
        }
        assert_eq!(sp.save_front(older).unwrap(), 0);
        sp.close().unwrap();
        drop(sp);
        let mut sp = KafkaSpill::open(&settings(&d)).unwrap();
        assert_eq!(sp.held(), 1005);
        let again = drain(&mut sp);
        assert_eq!(again[..5], got[995..]);
        assert_eq!(again[5..], recs[1000..]);
        let _ = std::fs::remove_dir_all(&d);
    }
}
