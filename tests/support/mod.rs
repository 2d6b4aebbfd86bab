//! The one support module of the integration tests; each test file says `mod support;`.
//!
//! - [`skip`]: the one decision "skip with a NOTICE" versus "fail" (under `CI=true`) for
//!   every missing peer, tool or kernel feature;
//! - [`lab`]: the lab at `<repo>/lab` and its captures;
//! - [`pyvenv`]: a venv with pinned PyPI packages, for the Python test-time oracles;
//! - [`receiver`]: running the receiver (logs, stdout, memory samples), senders, waits;
//! - [`tls`]: test certificates and a TLS sender;
//! - [`dns`]: DNS messages pulled out of the captures without the product's decoders;
//! - [`pb`]: protobuf written by hand (dnstap payloads built without the product's encoder).
#![allow(dead_code)]

pub mod alloc;
pub mod dns;
pub mod lab;
pub mod pb;
pub mod pyvenv;
pub mod receiver;
pub mod skip;
pub mod syslog;
pub mod tls;
