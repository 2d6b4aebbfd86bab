//! The forward output: records as lines (JSON by default) over TCP or TLS to one or several
//! collectors (Logstash `tcp { codec => json_lines }`, syslog-ng, Vector...), one connection
//! each. This folder owns the chunking of formatted records, the sender threads, the load
//! balancing, reconnection and the at-least-once replay; the overflow policy is
//! [`crate::sink::buffer`]'s. Knows nothing of inputs.
//!
//! Files, from the writer thread down to the socket:
//! * `conf.rs`: [`ForwardConf`] and [`TlsConf`], the validated settings; `tls.rs` builds
//!   the rustls client configuration from them once, at start-up.
//! * `output.rs`: [`ForwardOutput`], what the writer thread calls: formats records into
//!   chunks (once, whatever the number of collectors) and pushes them to the
//!   [`ChunkBuffer`](crate::sink::buffer::ChunkBuffer) (with `hash`, to the buffer of the
//!   collector the record's key picks, `hash.rs`); starts and joins one sender thread per
//!   collector.
//! * `balance.rs`: `loadbalance`: which senders take chunks now (`failover`: the active
//!   collector's, the home one taking the turn back once it is up again; `round-robin`: a
//!   strict rotation over the healthy collectors' senders, skipping a stalled one; `hash`:
//!   each from its own buffer), the turn passed on a failure, the collectors' health that
//!   `hash` picks from.
//! * `sender.rs`: one sender thread's loop: pops chunks, hands them to its collector, and
//!   decides when shutdown is over; on a failure tells the balance (and with `hash` hands
//!   its buffer's chunks to a healthy collector).
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
//!                 (one such thread per collector connection, taking chunks in the
//!                 turn `balance.rs` gives; the next healthy one takes what a failing one
//!                 put back)
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

pub(crate) mod backoff;
mod balance;
mod collector;
mod conf;
mod hash;
mod output;
mod sender;
mod tls;

pub use conf::{CollectorAddr, ForwardConf, LoadBalance, TlsConf};
pub use hash::HashKey;
pub(crate) use hash::{key_hash, pick};
pub use output::ForwardOutput;
pub use tls::{tls_client_config, ClientTls};
