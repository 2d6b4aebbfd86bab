//! A bounded on-disk FIFO of chunks, for outputs whose peer is away: the `spill` overflow
//! policy of [`crate::sink::buffer::ChunkBuffer`]. Owns a directory of append-only segment
//! files; knows nothing of records, formats, sockets or threads (the caller locks).
//!
//! Two files: `segment.rs` owns one segment file (its name, its frame format with the
//! checksum, writing a frame, reading one back, and the scan that cuts a torn tail);
//! `queue.rs` owns the queue over a directory of them ([`SpillQueue`]: order, the byte
//! bound, the saved read cursor, `fsync`).
//!
//! * Order: chunks come out in the order they went in, oldest segment first.
//!   [`SpillQueue::push_front`] writes a segment numbered below every existing one, so
//!   chunks that are older than the whole queue (the in-memory ones at shutdown) come out
//!   first.
//! * Bound: the segment files never hold more than `max_bytes`. When a push would pass it,
//!   the oldest segment is deleted and its unread records are reported as dropped; if only
//!   the segment being written is left, the pushed chunk itself is dropped.
//! * Crash safety: a segment is read back frame by frame; a short or corrupt frame (a torn
//!   write at a crash or a full disk) ends that segment: the file is truncated there and the
//!   loss is logged. A segment is deleted as soon as its last frame has been read: from then
//!   on its chunks live in the caller's memory.
//! * Restart: [`SpillQueue::open`] finds the segments a previous run left and queues them
//!   first.
//! * Durability: segments are `fsync`ed when they are closed (rotation, [`SpillQueue::sync`]);
//!   a process crash loses nothing written, a power loss may lose the current segment's tail.
#![forbid(unsafe_code)]

mod queue;
mod segment;

pub use queue::{Pushed, Recovered, SpillQueue, SpillSpec, DEFAULT_SEGMENT_BYTES};
pub use segment::MAX_FRAME_PAYLOAD;
