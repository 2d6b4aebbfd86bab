//! The Kafka output: each record becomes one Kafka record (key chosen for partition
//! locality, value the JSON line or the raw dnstap protobuf), produced through librdkafka
//! (the `rdkafka` crate's bundled build). A record counts as delivered only when the broker
//! acknowledged it (`acks=all` by default, idempotent): the count is made in librdkafka's
//! delivery report, not at `send`. Knows records, formats and Kafka; nothing of the inputs
//! or the queue.
//!
//! ```text
//!  writer thread                        librdkafka threads            broker
//!  record() ─ key, value ─► send ──► [bounded queue] ── batches ──► produce (acks=all)
//!     │            QueueFull │        ◄── delivery reports ◄──────── acknowledged
//!     │   block: poll, retry │          (served by poll() on the writer thread:
//!     │   drop:  count       │           delivered / dropped counted there)
//!     │   spill: ─► spill file queue ── replayed in order when there is room
//! ```
//!
//! Memory is bounded by librdkafka's queue (`queue-messages`, `queue-kbytes`): with `block`
//! and `spill` a record is never given up on time alone (`message.timeout.ms=0`), so a
//! broker outage fills that queue and the overflow policy takes over. Delivery reports are
//! served on the writer thread (`BaseProducer::poll`), so no lock is shared with a callback
//! thread and the spill is only ever touched by one thread.
//!
//! A producer that fails for good (librdkafka's fatal error, e.g. an idempotent producer
//! whose broker forgot it) is replaced: what it held comes back through its delivery
//! reports (`reports.rs`) and is sent first by the new one (counted in `resent`;
//! at-least-once). Per-message cost outside our code: librdkafka copies each record into
//! its own allocation, and the crate builds a C string of the topic per send.
#![forbid(unsafe_code)]

#[cfg(feature = "kafka")]
mod output;
#[cfg(feature = "kafka")]
mod reports;
pub mod settings;
#[cfg(feature = "kafka")]
mod spill;

#[cfg(feature = "kafka")]
pub use output::{describe, librdkafka_version, KafkaOutput};
pub use settings::{KafkaSettings, KeyKind, ValueKind};

/// Records framed for the spill queue, in order.
///
/// ```text
///  record = | key_len u32 LE (u32::MAX: no key) | value_len u32 LE | key | value |
/// ```
#[derive(Debug, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub records: u32,
}

/// No key, in [`Chunk`] framing.
const NO_KEY: u32 = u32::MAX;

impl Chunk {
    pub fn push(&mut self, key: Option<&[u8]>, value: &[u8]) {
        let klen = key.map_or(NO_KEY, |k| k.len() as u32);
        self.data.extend_from_slice(&klen.to_le_bytes());
        self.data
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        if let Some(k) = key {
            self.data.extend_from_slice(k);
        }
        self.data.extend_from_slice(value);
        self.records += 1;
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.records = 0;
    }
}

/// A Kafka record's key (if any) and value.
pub type KeyValue<'a> = (Option<&'a [u8]>, &'a [u8]);

/// One record of a chunk starting at `pos`: its key and value, and where the next record
/// starts; `None` when the bytes there do not hold a whole record (end of chunk, or a
/// damaged one).
pub fn chunk_record(data: &[u8], pos: usize) -> Option<(KeyValue<'_>, usize)> {
    let head = data.get(pos..pos.checked_add(8)?)?;
    let klen = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let vlen = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let mut at = pos + 8;
    let key = if klen == NO_KEY {
        None
    } else {
        let end = at.checked_add(klen as usize)?;
        let k = data.get(at..end)?;
        at = end;
        Some(k)
    };
    let end = at.checked_add(vlen)?;
    let value = data.get(at..end)?;
    Some(((key, value), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_framing_round_trips_and_refuses_short_bytes() {
        let mut c = Chunk::default();
        c.push(Some(b"k1"), b"v1");
        c.push(None, b"");
        c.push(Some(b""), b"value three");
        assert_eq!(c.records, 3);
        let mut pos = 0;
        let mut got = Vec::new();
        while let Some(((k, v), next)) = chunk_record(&c.data, pos) {
            got.push((k.map(<[u8]>::to_vec), v.to_vec()));
            pos = next;
        }
        assert_eq!(pos, c.data.len());
        assert_eq!(
            got,
            vec![
                (Some(b"k1".to_vec()), b"v1".to_vec()),
                (None, Vec::new()),
                (Some(Vec::new()), b"value three".to_vec()),
            ]
        );
        // Every truncation is refused, never a panic.
        for cut in 0..c.data.len() {
            let mut pos = 0;
            while let Some((_, next)) = chunk_record(&c.data[..cut], pos) {
                pos = next;
            }
            assert!(pos <= cut);
        }
        let mut huge = Vec::new();
        huge.extend_from_slice(&(u32::MAX - 1).to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(chunk_record(&huge, 0).is_none());
    }
}
