//! The forward output: records as lines (JSON by default) over one TCP or TLS connection to
//! a collector (Logstash `tcp { codec => json_lines }`, syslog-ng, Vector...). This folder
//! owns the chunking of formatted records, the sender thread, reconnection and the
//! at-least-once replay; the overflow policy is [`crate::sink::buffer`]'s. Knows nothing of
//! inputs.
//!
//! Files, from the writer thread down to the socket:
//! * `conf.rs`: [`ForwardConf`] and [`TlsConf`], the validated settings; `tls.rs` builds
//!   the rustls client configuration from them once, at start-up.
//! * `output.rs`: [`ForwardOutput`], what the writer thread calls: formats records into
//!   chunks and pushes them to the [`ChunkBuffer`](crate::sink::buffer::ChunkBuffer); starts
//!   and joins the sender thread.
//! * `sender.rs`: the sender thread's loop: pops chunks, hands them to the collector, and
//!   decides when shutdown is over. It holds one `Collector`; a
//!   balancer over several collectors would sit between the two (same calls: connect,
//!   `write_chunk`, `poll_peer`, `update_acks`, `broken`, `drain_and_close`).
//! * `collector.rs`: one collector connection: connect (timeout, keepalive, TLS), write,
//!   SIOCOUTQ acknowledgements, the replay window, requeue on a break, clean close.
//! * `backoff.rs`: the reconnect wait (exponential, with jitter).
//!
//! ```text
//!  writer thread: record → format into the current chunk (≤ chunk-size, whole records)
//!                 full chunk, or queue empty (flush) → ChunkBuffer::push (overflow policy)
//!  sender thread: connect (timeout, keepalive, TLS) ── pop chunk ── write ── keep it in
//!                 `sent` with its end offset on the wire
//!                 SIOCOUTQ → bytes the peer acknowledged → chunks older than the replay
//!                 window are delivered (counted) and recycled
//!                 broken connection → every chunk in `sent` goes back to the buffer's front
//!                 (counted in `resent` when written again) → reconnect with backoff + jitter
//! ```
//!
//! At-least-once: a chunk stays in `sent` until the peer's TCP stack has acknowledged it
//! *and* at least `replay-window` more bytes have been acknowledged after it. An
//! acknowledgement only says the bytes reached the collector's socket buffer, not that the
//! collector read them: a collector stopped with unread data in its socket loses them. The
//! window covers that (it should be at least the collector's receive buffer plus what it
//! holds in memory before writing). With TLS the offsets are those of the encrypted bytes:
//! each chunk is encrypted and written whole before the next, so chunk boundaries are TLS
//! record boundaries and the same arithmetic holds. Duplicates after a break are at most
//! the records of the chunks in `sent` (unacknowledged bytes ≤ the socket send buffer, plus
//! the window, plus one chunk); each one re-sent is counted in `OutputStats::resent`.
#![forbid(unsafe_code)]

mod backoff;
mod balance;
mod collector;
mod conf;
mod hash;
mod output;
mod sender;
mod tls;

pub use conf::{CollectorAddr, ForwardConf, LoadBalance, TlsConf};
pub use hash::HashKey;
pub use output::ForwardOutput;
pub use tls::tls_client_config;
