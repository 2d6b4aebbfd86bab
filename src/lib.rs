//! dnstap-receiver: receives dnstap over Frame Streams and turns it into records.
//!
//! ```text
//! socket bytes ──► frame ──► view ──► filter ──► queue ──► record ──► transform ──► format ──► sink
//!  (input, sys) (framestream) (dnstap, dns) (filter) (pipeline) (record) (transform) (format) (sink)
//!                    config (parsed once, on top) ──► typed values handed down to every floor
//! ```
//!
//! The map is docs/architecture.md: the floors, what each owns, and the places to touch to
//! add an input, an output or a transform. Imports run down the floors only (the sans-io
//! cores `framestream`, `dns`, `dnstap`, `filter`, `record`, `transform`, `format` at the
//! bottom; the I/O edges `sink`, `pipeline`, `input` above them; `config` on top, imported
//! by the binary alone), with no file circles: tests/layering.rs checks both.
//!
//! Start reading at [`framestream::Decoder`] (how bytes become frames), then
//! [`dnstap::DnstapView`] (the lazy view the filters run on), [`filter::Filter`],
//! [`record::Record`] (the full decode), [`transform::Chain`] and [`format`].

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
pub mod powerdns;
pub mod record;
pub mod sink;
pub mod stats;
#[allow(unsafe_code)]
pub mod sys;
pub mod transform;
