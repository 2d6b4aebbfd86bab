//! The wire image of a corpus: its data frames encoded once, ahead of the run, into one large
//! buffer, so the send loop does nothing but large `write_all` calls. Knows nothing of
//! sockets; the sender decides how many messages to take from it.
#![forbid(unsafe_code)]

use dnstap_receiver::framestream::write_data_frame;

use crate::corpus::Corpus;

/// A block should be at least this big, so that even a tiny corpus is sent with large
/// writes (the corpus is repeated inside the block to get there).
pub const BLOCK_MIN_BYTES: usize = 4 << 20;
/// One write carries about this many bytes (always whole frames), so a `--duration` limit
/// is checked often enough without making writes small.
pub const CHUNK_BYTES: usize = 256 << 10;

/// The corpus encoded as data frames, repeated `repeats` times.
#[derive(Debug)]
pub struct Block {
    /// The encoded frames (4-byte big-endian length + payload each), back to back.
    bytes: Vec<u8>,
    /// `frame_ends[i]` is the end offset in `bytes` of frame `i`; ascending, last = len.
    frame_ends: Vec<usize>,
    /// Frame counts at which a write ends: ascending, last = `frame_ends.len()`.
    chunk_ends: Vec<usize>,
}

impl Block {
    /// Encodes `corpus` (at least one payload) as many times as it takes to reach
    /// [`BLOCK_MIN_BYTES`].
    pub fn encode(corpus: &Corpus) -> Block {
        Block::encode_with(corpus, BLOCK_MIN_BYTES, CHUNK_BYTES)
    }

    fn encode_with(corpus: &Corpus, min_bytes: usize, chunk_bytes: usize) -> Block {
        let pass_bytes = corpus.payload_bytes() + 4 * corpus.len();
        let repeats = min_bytes.div_ceil(pass_bytes.max(1)).max(1);
        let mut bytes = Vec::with_capacity(pass_bytes * repeats);
        let mut frame_ends = Vec::with_capacity(corpus.len() * repeats);
        let mut chunk_ends = Vec::new();
        let mut chunk_start = 0;
        for _ in 0..repeats {
            for payload in corpus.iter() {
                write_data_frame(payload, &mut bytes);
                frame_ends.push(bytes.len());
                if bytes.len() - chunk_start >= chunk_bytes {
                    chunk_ends.push(frame_ends.len());
                    chunk_start = bytes.len();
                }
            }
        }
        if chunk_ends.last() != Some(&frame_ends.len()) {
            chunk_ends.push(frame_ends.len());
        }
        Block {
            bytes,
            frame_ends,
            chunk_ends,
        }
    }

    /// Messages in the block.
    pub fn messages(&self) -> usize {
        self.frame_ends.len()
    }

    /// Encoded size of the first `frames` frames.
    pub fn bytes_of(&self, frames: usize) -> usize {
        match frames {
            0 => 0,
            n => self
                .frame_ends
                .get(n - 1)
                .copied()
                .unwrap_or(self.bytes.len()),
        }
    }

    /// Frames `from..to` of the block, encoded (`from <= to <= messages()`).
    pub fn frames(&self, from: usize, to: usize) -> &[u8] {
        let end = self.bytes_of(to.min(self.messages()));
        &self.bytes[self.bytes_of(from).min(end)..end]
    }

    /// The writes that send the first `frames` frames of the block (capped at the block):
    /// slices of whole frames, each about [`CHUNK_BYTES`], with the frame count after each.
    pub fn chunks(&self, frames: usize) -> impl Iterator<Item = (&[u8], usize)> + '_ {
        let frames = frames.min(self.messages());
        let mut done = 0;
        self.chunk_ends.iter().map_while(move |&end| {
            if done >= frames {
                return None;
            }
            let end = end.min(frames);
            let slice = &self.bytes[self.bytes_of(done)..self.bytes_of(end)];
            done = end;
            Some((slice, end))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};

    fn corpus(n: usize) -> Corpus {
        let mut c = Corpus::new();
        for i in 0..n {
            c.push(format!("payload-{i}").as_bytes());
        }
        c
    }

    /// Oracle: the receiver's decoder, run over a START frame + the block.
    fn decode(start_and_frames: &[u8]) -> Vec<Vec<u8>> {
        let mut dec = Decoder::new(DecoderConfig::default());
        let mut reply = Vec::new();
        let mut off = 0;
        let mut out = Vec::new();
        loop {
            let step = dec.decode(&start_and_frames[off..], &mut reply).unwrap();
            match step.event {
                Event::NeedMore => break,
                Event::Data { payload } => out.push(start_and_frames[off..][payload].to_vec()),
                Event::Control => {}
                Event::Finished => break,
            }
            off += step.consumed;
        }
        out
    }

    #[test]
    fn small_corpus_is_repeated_to_fill_the_block() {
        let b = Block::encode_with(&corpus(3), 100, 30);
        assert!(b.bytes.len() >= 100);
        assert!(b.messages() > 3);
        assert_eq!(b.messages() % 3, 0, "whole copies of the corpus");
        assert_eq!(b.bytes_of(b.messages()), b.bytes.len());
    }

    #[test]
    fn chunks_are_whole_frames_and_stop_at_the_limit() {
        let c = corpus(10);
        let b = Block::encode_with(&c, 1, 40);
        for limit in [0, 1, 5, 10, 99] {
            let mut wire = Vec::new();
            dnstap_receiver::framestream::write_control_frame(
                dnstap_receiver::framestream::ControlType::Start,
                Some(dnstap_receiver::framestream::DNSTAP_CONTENT_TYPE),
                &mut wire,
            );
            let mut last = 0;
            for (slice, after) in b.chunks(limit) {
                assert!(after > last);
                last = after;
                wire.extend_from_slice(slice);
            }
            let want: Vec<Vec<u8>> = c.iter().take(limit).map(<[u8]>::to_vec).collect();
            assert_eq!(decode(&wire), want, "limit {limit}");
            assert_eq!(last, limit.min(10));
        }
    }

    #[test]
    fn frames_slices_whole_frames() {
        let c = corpus(10);
        let b = Block::encode_with(&c, 1, 40);
        let mut wire = Vec::new();
        dnstap_receiver::framestream::write_control_frame(
            dnstap_receiver::framestream::ControlType::Start,
            Some(dnstap_receiver::framestream::DNSTAP_CONTENT_TYPE),
            &mut wire,
        );
        wire.extend_from_slice(b.frames(3, 6));
        let want: Vec<Vec<u8>> = c.iter().skip(3).take(3).map(<[u8]>::to_vec).collect();
        assert_eq!(decode(&wire), want);
        assert!(b.frames(4, 4).is_empty());
        assert_eq!(b.frames(0, 99).len(), b.bytes.len());
    }
}
