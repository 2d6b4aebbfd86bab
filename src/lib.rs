//! dnstap-receiver: receives dnstap over Frame Streams and turns it into records.
//!
//! ```text
//! socket bytes ──► frame ──► view ──► filter ──► queue ──► record ──► format ──► sink
//!  (input/io)   (framestream) (dnstap, dns) (filter)  (pipeline) (record)  (format)  (sink)
//!                    config (parsed once, on top) ──► typed values handed down to every floor
//! ```
//!
//! A module imports only modules to its left. The protocol cores (`framestream`, `dnstap`,
//! `dns`, `filter`, `record`, `format`) are sans-io: bytes in, values or bytes out, into
//! buffers the caller supplies. Sockets, threads, clocks and logging live in `input`,
//! `pipeline`, `sink`, `metrics` (counters shown to Prometheus; an observer of the writer)
//! and the binary. `config` (the file and the command line) is imported by the binary only;
//! no floor imports it.
//!
//! Start reading at [`framestream::Decoder`] (how bytes become frames), then
//! [`dnstap::DnstapView`] (the lazy view the filters run on), [`filter::Filter`],
//! [`record::Record`] (the full decode) and [`format`].

// No panics on what the network sends: enforced where clippy can (outside tests, which
// unwrap freely). The modules that parse wire bytes also deny `indexing_slicing`
// (framestream, dnstap, dns, input::conn); see docs/hardening.md.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// `unsafe` only at the system-call edge (`sys`, and the io_uring back-end's two buffer-
// lending calls in `input::uring`); every block says why it is sound. The root denies
// rather than forbids, so that those two modules can allow it.
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod config;
pub mod dns;
pub mod dnstap;
pub mod filter;
pub mod format;
pub mod framestream;
pub mod input;
pub mod metrics;
pub mod offline;
pub mod pipeline;
pub mod record;
pub mod sink;
pub mod stats;
#[allow(unsafe_code)]
pub mod sys;
pub mod transform;
