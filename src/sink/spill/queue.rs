//! The spill queue over a directory of segment files ([`SpillQueue`]): chunks out in the
//! order they went in, the `max_bytes` bound (dropping the oldest segment and counting its
//! records), `push_front` for chunks older than the whole queue, the read cursor saved by
//! `sync` so a restart does not replay, and recovery of what a previous run left. The file
//! format of one segment is `segment.rs`; this file never reads or writes a frame's bytes
//! itself.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::segment::{
    create_segment, parse_name, read_frame, scan_segment, write_frame, FRAME_HEADER, MAGIC,
    MAX_FRAME_PAYLOAD, SUFFIX,
};

/// What a user configures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpillSpec {
    /// Directory of the segment files (created if missing). One queue per directory.
    pub dir: PathBuf,
    /// Most bytes the segment files may hold together.
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size (capped to `max_bytes / 4`).
    pub segment_bytes: u64,
}

/// Default segment size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 16 << 20;
/// The first segment number of an empty queue; `push_front` counts down from there.
const FIRST_SEQ: u64 = 1 << 40;

/// What [`SpillQueue::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// False when the chunk alone is larger than the whole queue may be (then it is not
    /// stored: the caller counts it as dropped).
    pub stored: bool,
    /// Unread records of the older segments deleted to make room.
    pub dropped_older: u64,
}

/// What [`SpillQueue::open`] found on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    /// Bytes cut off the end of segments (torn or corrupt frames).
    pub truncated_bytes: u64,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Bytes of the file (header included).
    bytes: u64,
    /// Records in the frames not read yet.
    records_left: u64,
    /// Where the next unread frame starts (`MAGIC.len() <= read_offset <= bytes`).
    read_offset: u64,
}

/// The open file of the segment being read (always the first one).
#[derive(Debug)]
struct ReadPos {
    seq: u64,
    file: File,
}

/// The on-disk queue. Not thread-safe by itself: the owner wraps it in its lock.
///
/// Invariants: `segments` is sorted by `seq`; the write segment, if any, is the last one;
/// the read position, if any, is on the first one; `bytes` is the sum of `segments[].bytes`.
#[derive(Debug)]
pub struct SpillQueue {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// Open file of the last segment while it is appended to.
    writer: Option<File>,
    reader: Option<ReadPos>,
    bytes: u64,
    records: u64,
}

impl SpillQueue {
    /// Opens (creating if needed) the directory and queues the segments found there, oldest
    /// first, after checking every frame. A read position saved by [`SpillQueue::sync`]
    /// skips the frames a previous run had already taken.
    pub fn open(spec: &SpillSpec) -> io::Result<(SpillQueue, Recovered)> {
        if spec.max_bytes < 4096 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spill max-bytes must be at least 4096",
            ));
        }
        fs::create_dir_all(&spec.dir)?;
        let segment_bytes = spec
            .segment_bytes
            .min(spec.max_bytes / 4)
            .max(MAGIC.len() as u64 + 1);
        let mut q = SpillQueue {
            dir: spec.dir.clone(),
            max_bytes: spec.max_bytes,
            segment_bytes,
            segments: VecDeque::new(),
            writer: None,
            reader: None,
            bytes: 0,
            records: 0,
        };
        let mut seqs = Vec::new();
        for e in fs::read_dir(&spec.dir)? {
            let e = e?;
            if let Some(seq) = parse_name(&e.file_name().to_string_lossy()) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let cursor = read_cursor(&q.cursor_path());
        let mut rec = Recovered::default();
        for seq in seqs {
            let path = q.path(seq);
            let skip = cursor
                .iter()
                .find(|(s, _)| *s == seq)
                .map_or(MAGIC.len() as u64, |&(_, off)| off);
            let scan = scan_segment(&path, skip)?;
            rec.truncated_bytes += scan.cut;
            if scan.records_after == 0 {
                let _ = fs::remove_file(&path);
                continue;
            }
            rec.segments += 1;
            rec.records += scan.records_after;
            rec.bytes += scan.bytes;
            q.bytes += scan.bytes;
            q.records += scan.records_after;
            q.segments.push_back(Segment {
                seq,
                bytes: scan.bytes,
                records_left: scan.records_after,
                read_offset: scan.read_offset,
            });
        }
        // The cursor file stays: until the next `sync` it still says correctly (if not
        // completely) what was taken; a stale one only means more replay.
        Ok((q, rec))
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Records not read yet.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes of the segment files.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Appends one chunk, deleting the oldest segments when the bound needs it. An `Err`
    /// means the chunk was not stored; the caller decides (and counts).
    pub fn push(&mut self, data: &[u8], records: u32) -> io::Result<Pushed> {
        let frame = (FRAME_HEADER + data.len()) as u64;
        if data.len() as u64 > MAX_FRAME_PAYLOAD as u64
            || frame + MAGIC.len() as u64 > self.max_bytes
        {
            return Ok(Pushed {
                stored: false,
                dropped_older: 0,
            });
        }
        let mut dropped = 0;
        loop {
            let need_new = self.writer.is_none()
                || self
                    .segments
                    .back()
                    .is_none_or(|s| s.bytes + frame > self.segment_bytes);
            let extra = frame + if need_new { MAGIC.len() as u64 } else { 0 };
            if self.bytes + extra <= self.max_bytes {
                if need_new {
                    self.rotate()?;
                }
                break;
            }
            // Never drop the segment being appended to: then the new chunk is the one lost.
            let only_writer = self.segments.len() == 1 && self.writer.is_some();
            if self.segments.is_empty() || (only_writer && !need_new) {
                return Ok(Pushed {
                    stored: false,
                    dropped_older: dropped,
                });
            }
            dropped += self.drop_oldest()?;
        }
        let Some(w) = self.writer.as_mut() else {
            return Err(io::Error::other("spill: no write segment"));
        };
        write_frame(w, data, records)?;
        if let Some(s) = self.segments.back_mut() {
            s.bytes += frame;
            s.records_left += records as u64;
        }
        self.bytes += frame;
        self.records += records as u64;
        Ok(Pushed {
            stored: true,
            dropped_older: dropped,
        })
    }

    /// Deletes the oldest segment, read or not (after a read error); returns the records it
    /// still held.
    pub fn drop_front(&mut self) -> io::Result<u64> {
        self.drop_oldest()
    }

    /// Reads the oldest chunk into `buf` (replacing its contents) and returns its record
    /// count; `None` when the queue is empty. A segment is deleted once fully read.
    pub fn pop(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<u32>> {
        loop {
            let Some(first) = self.segments.front() else {
                return Ok(None);
            };
            let (seq, offset) = (first.seq, first.read_offset);
            if self.reader.as_ref().is_none_or(|r| r.seq != seq) {
                let mut file = File::open(self.path(seq))?;
                file.seek(SeekFrom::Start(offset))?;
                self.reader = Some(ReadPos { seq, file });
            }
            let is_writer = self.writer.is_some() && self.segments.len() == 1;
            let Some(r) = self.reader.as_mut() else {
                return Ok(None);
            };
            let got = read_frame(&mut r.file, buf)?;
            match got {
                Some(records) => {
                    if let Some(s) = self.segments.front_mut() {
                        s.read_offset += (FRAME_HEADER + buf.len()) as u64;
                        s.records_left = s.records_left.saturating_sub(records as u64);
                    }
                    self.records = self.records.saturating_sub(records as u64);
                    return Ok(Some(records));
                }
                None => {
                    // End of this segment (a torn tail was cut at open).
                    if is_writer {
                        // Everything written has been read: close and delete it, so the
                        // next push starts a fresh segment.
                        self.writer = None;
                    }
                    self.reader = None;
                    self.remove_front()?;
                    if is_writer {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Writes `chunks` (oldest first) as a new segment that comes out before everything
    /// queued now. Used at shutdown for chunks still in memory. Bounded like `push`:
    /// chunks that do not fit are dropped, counted in the returned total.
    pub fn push_front<'c>(
        &mut self,
        chunks: impl IntoIterator<Item = (&'c [u8], u32)>,
    ) -> io::Result<u64> {
        let seq = match self.segments.front() {
            Some(s) => s.seq.saturating_sub(1),
            None => FIRST_SEQ,
        };
        let path = self.path(seq);
        let mut file = create_segment(&path)?;
        let mut seg = Segment {
            seq,
            bytes: MAGIC.len() as u64,
            records_left: 0,
            read_offset: MAGIC.len() as u64,
        };
        let mut dropped = 0;
        for (data, records) in chunks {
            let frame = (FRAME_HEADER + data.len()) as u64;
            if self.bytes + seg.bytes + frame > self.max_bytes {
                dropped += records as u64;
                continue;
            }
            write_frame(&mut file, data, records)?;
            seg.bytes += frame;
            seg.records_left += records as u64;
        }
        file.sync_all()?;
        drop(file);
        if seg.records_left == 0 {
            let _ = fs::remove_file(&path);
            return Ok(dropped);
        }
        if self.segments.is_empty() {
            // No segment to append to any more: the next push starts a new one after it.
            self.writer = None;
        }
        // The reader (if any) keeps its file; `pop` reopens by sequence number and offset.
        self.reader = None;
        self.bytes += seg.bytes;
        self.records += seg.records_left;
        self.segments.push_front(seg);
        Ok(dropped)
    }

    /// Closes the write segment (with `fsync`) so the next push starts a new one, and saves
    /// the read position, so a restart does not replay frames already taken.
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(w) = self.writer.take() {
            w.sync_all()?;
        }
        // Every partly read segment: after a `push_front` the partly read one is no longer
        // the first.
        let mut text = String::new();
        for s in self
            .segments
            .iter()
            .filter(|s| s.read_offset > MAGIC.len() as u64)
        {
            text.push_str(&format!("{} {}\n", s.seq, s.read_offset));
        }
        if text.is_empty() {
            let _ = fs::remove_file(self.cursor_path());
        } else {
            let tmp = self.dir.join("cursor.tmp");
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, self.cursor_path())?;
        }
        Ok(())
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{SUFFIX}"))
    }

    fn cursor_path(&self) -> PathBuf {
        self.dir.join("cursor")
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(w) = self.writer.take() {
            w.sync_all()?;
        }
        let seq = match self.segments.back() {
            Some(s) => s.seq + 1,
            None => FIRST_SEQ,
        };
        let file = create_segment(&self.path(seq))?;
        self.writer = Some(file);
        self.segments.push_back(Segment {
            seq,
            bytes: MAGIC.len() as u64,
            records_left: 0,
            read_offset: MAGIC.len() as u64,
        });
        self.bytes += MAGIC.len() as u64;
        Ok(())
    }

    /// Deletes the oldest segment; returns its unread records.
    fn drop_oldest(&mut self) -> io::Result<u64> {
        let Some(first) = self.segments.front() else {
            return Ok(0);
        };
        let left = first.records_left;
        if self.segments.len() == 1 {
            self.writer = None;
        }
        if self.reader.as_ref().is_some_and(|r| r.seq == first.seq) {
            self.reader = None;
        }
        self.records = self.records.saturating_sub(left);
        self.remove_front()?;
        Ok(left)
    }

    fn remove_front(&mut self) -> io::Result<()> {
        if let Some(s) = self.segments.pop_front() {
            self.bytes = self.bytes.saturating_sub(s.bytes);
            match fs::remove_file(self.path(s.seq)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// `SEQ OFFSET` saved by `sync`; anything else is ignored.
/// The saved read positions: one `SEQ OFFSET` line per partly read segment.
fn read_cursor(path: &Path) -> Vec<(u64, u64)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (a, b) = l.trim().split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "spill-unit-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let _ = fs::remove_dir_all(&p);
        p
    }

    fn spec(dir: &Path, max: u64, seg: u64) -> SpillSpec {
        SpillSpec {
            dir: dir.to_path_buf(),
            max_bytes: max,
            segment_bytes: seg,
        }
    }

    fn chunk(i: u32, len: usize) -> Vec<u8> {
        let mut v = format!("chunk-{i:08}:").into_bytes();
        v.resize(len, b'a' + (i % 26) as u8);
        v
    }

    fn drain(q: &mut SpillQueue) -> Vec<(Vec<u8>, u32)> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(n) = q.pop(&mut buf).unwrap() {
            out.push((buf.clone(), n));
        }
        out
    }

    #[test]
    fn fifo_across_segments_and_deletes_read_segments() {
        let d = tmp("fifo");
        let (mut q, rec) = SpillQueue::open(&spec(&d, 1 << 20, 1000)).unwrap();
        assert_eq!(rec, Recovered::default());
        for i in 0..20 {
            let p = q.push(&chunk(i, 300), i + 1).unwrap();
            assert!(p.stored && p.dropped_older == 0);
        }
        assert_eq!(q.records(), (1..=20).sum::<u32>() as u64);
        assert!(fs::read_dir(&d).unwrap().count() > 5, "rotated");
        let got = drain(&mut q);
        assert_eq!(got.len(), 20);
        for (i, (data, n)) in got.iter().enumerate() {
            assert_eq!(data, &chunk(i as u32, 300));
            assert_eq!(*n, i as u32 + 1);
        }
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0, "all segments deleted");
        // Usable again after draining.
        q.push(b"x", 1).unwrap();
        assert_eq!(drain(&mut q), vec![(b"x".to_vec(), 1)]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn interleaved_push_and_pop_keep_order() {
        let d = tmp("interleave");
        let (mut q, _) = SpillQueue::open(&spec(&d, 1 << 20, 2000)).unwrap();
        let mut next_in = 0;
        let mut next_out = 0;
        let mut buf = Vec::new();
        for round in 0..50 {
            for _ in 0..(round % 4) {
                q.push(&chunk(next_in, 100 + next_in as usize), next_in)
                    .unwrap();
                next_in += 1;
            }
            for _ in 0..(round % 3) {
                if let Some(n) = q.pop(&mut buf).unwrap() {
                    assert_eq!(n, next_out);
                    assert_eq!(buf, chunk(next_out, 100 + next_out as usize));
                    next_out += 1;
                }
            }
        }
        for (data, n) in drain(&mut q) {
            assert_eq!(n, next_out);
            assert_eq!(data, chunk(next_out, 100 + next_out as usize));
            next_out += 1;
        }
        assert_eq!(next_in, next_out);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn survives_reopen_and_cuts_a_torn_tail() {
        let d = tmp("reopen");
        {
            let (mut q, _) = SpillQueue::open(&spec(&d, 1 << 20, 1500)).unwrap();
            for i in 0..10 {
                q.push(&chunk(i, 400), 2).unwrap();
            }
            // Read two: they are the caller's now; `sync` saves the read position.
            let mut buf = Vec::new();
            q.pop(&mut buf).unwrap();
            q.pop(&mut buf).unwrap();
            q.sync().unwrap();
        }
        // Tear the newest segment: a frame header and half its payload.
        let mut names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "spill"))
            .collect();
        names.sort();
        let last = names.last().unwrap().clone();
        let mut f = OpenOptions::new().append(true).open(&last).unwrap();
        let mut head = Vec::new();
        head.extend_from_slice(&400u32.to_le_bytes());
        head.extend_from_slice(&2u32.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        f.write_all(&head).unwrap();
        f.write_all(&[7; 200]).unwrap();
        drop(f);

        let (mut q, rec) = SpillQueue::open(&spec(&d, 1 << 20, 1500)).unwrap();
        assert_eq!(rec.records, 2 * 8);
        assert!(names.len() >= 3, "{names:?}");
        assert_eq!(rec.truncated_bytes, (FRAME_HEADER + 200) as u64);
        let got = drain(&mut q);
        let want: Vec<_> = (2..10).map(|i| (chunk(i, 400), 2)).collect();
        assert_eq!(got, want);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn without_sync_a_restart_replays_the_partly_read_segment() {
        let d = tmp("nosync");
        {
            let (mut q, _) = SpillQueue::open(&spec(&d, 1 << 20, 1 << 20)).unwrap();
            for i in 0..4 {
                q.push(&chunk(i, 100), 1).unwrap();
            }
            let mut buf = Vec::new();
            q.pop(&mut buf).unwrap();
        }
        let (mut q, rec) = SpillQueue::open(&spec(&d, 1 << 20, 1 << 20)).unwrap();
        assert_eq!(rec.records, 4, "at most one segment comes again");
        assert_eq!(drain(&mut q).len(), 4);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn corrupt_payload_ends_the_segment() {
        let d = tmp("corrupt");
        {
            let (mut q, _) = SpillQueue::open(&spec(&d, 1 << 20, 1 << 20)).unwrap();
            for i in 0..3 {
                q.push(&chunk(i, 100), 1).unwrap();
            }
        }
        let path = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "spill"))
            .unwrap();
        let mut b = fs::read(&path).unwrap();
        // Flip one payload byte of the second frame.
        let second = MAGIC.len() + FRAME_HEADER + 100 + FRAME_HEADER + 5;
        b[second] ^= 0x40;
        fs::write(&path, &b).unwrap();
        let (mut q, rec) = SpillQueue::open(&spec(&d, 1 << 20, 1 << 20)).unwrap();
        assert_eq!(rec.records, 1);
        assert_eq!(drain(&mut q), vec![(chunk(0, 100), 1)]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn full_queue_drops_the_oldest_segment_and_counts_it() {
        let d = tmp("full");
        // 8 KiB total, 2 KiB segments: each ~1 KiB chunk takes half a segment.
        let (mut q, _) = SpillQueue::open(&spec(&d, 8192, 2048)).unwrap();
        let mut dropped = 0;
        for i in 0..40 {
            let p = q.push(&chunk(i, 1000), 3).unwrap();
            dropped += p.dropped_older + if p.stored { 0 } else { 3 };
            assert!(q.bytes() <= 8192, "bound kept: {}", q.bytes());
        }
        let got = drain(&mut q);
        assert_eq!(
            dropped + 3 * got.len() as u64,
            40 * 3,
            "every record accounted"
        );
        // What is left is the newest, in order.
        let first = 40 - got.len() as u32;
        for (k, (data, _)) in got.iter().enumerate() {
            assert_eq!(data, &chunk(first + k as u32, 1000));
        }
        // A chunk larger than the whole budget is refused and counted.
        let p = q.push(&vec![0; 9000], 5).unwrap();
        assert!(!p.stored);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn push_front_comes_out_first() {
        let d = tmp("front");
        let (mut q, _) = SpillQueue::open(&spec(&d, 1 << 20, 700)).unwrap();
        for i in 10..16 {
            q.push(&chunk(i, 200), 1).unwrap();
        }
        // Read one, so the reader is mid-segment when the front segment appears.
        let mut buf = Vec::new();
        assert_eq!(q.pop(&mut buf).unwrap(), Some(1));
        assert_eq!(buf, chunk(10, 200));
        let front: Vec<Vec<u8>> = (0..3).map(|i| chunk(i, 150)).collect();
        let dropped = q
            .push_front(front.iter().map(|c| (c.as_slice(), 1)))
            .unwrap();
        assert_eq!(dropped, 0);
        q.push(&chunk(16, 200), 1).unwrap();
        let got: Vec<Vec<u8>> = drain(&mut q).into_iter().map(|(d, _)| d).collect();
        let mut want: Vec<Vec<u8>> = (0..3).map(|i| chunk(i, 150)).collect();
        want.extend((11..17).map(|i| chunk(i, 200)));
        assert_eq!(got, want);
        // And across a reopen.
        let (mut q, _) = SpillQueue::open(&spec(&d, 1 << 20, 700)).unwrap();
        for i in 0..4 {
            q.push(&chunk(20 + i, 200), 1).unwrap();
        }
        assert_eq!(q.pop(&mut buf).unwrap(), Some(1));
        q.sync().unwrap();
        drop(q);
        let (mut q, _) = SpillQueue::open(&spec(&d, 1 << 20, 700)).unwrap();
        q.push_front([(b"first".as_slice(), 1)]).unwrap();
        drop(q);
        let (mut q, rec) = SpillQueue::open(&spec(&d, 1 << 20, 700)).unwrap();
        assert_eq!(rec.records, 4);
        let got: Vec<Vec<u8>> = drain(&mut q).into_iter().map(|(d, _)| d).collect();
        let mut want = vec![b"first".to_vec()];
        want.extend((21..24).map(|i| chunk(i, 200)));
        assert_eq!(got, want);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn push_front_then_sync_keeps_the_partly_read_segment_position() {
        // Shutdown order of an output: take a chunk, put older ones back in front, sync.
        // The partly read segment is then the second one; its position must survive.
        let d = tmp("front-sync");
        let (mut q, _) = SpillQueue::open(&spec(&d, 1 << 20, 1 << 20)).unwrap();
        for i in 0..5 {
            q.push(&chunk(i, 200), 1).unwrap();
        }
        let mut buf = Vec::new();
        assert_eq!(q.pop(&mut buf).unwrap(), Some(1));
        assert_eq!(q.pop(&mut buf).unwrap(), Some(1));
        q.push_front([(b"older".as_slice(), 1)]).unwrap();
        q.sync().unwrap();
        drop(q);
        let (mut q, rec) = SpillQueue::open(&spec(&d, 1 << 20, 1 << 20)).unwrap();
        assert_eq!(rec.records, 4);
        let got: Vec<Vec<u8>> = drain(&mut q).into_iter().map(|(d, _)| d).collect();
        let mut want = vec![b"older".to_vec()];
        want.extend((2..5).map(|i| chunk(i, 200)));
        assert_eq!(got, want);
        let _ = fs::remove_dir_all(&d);
    }
}
