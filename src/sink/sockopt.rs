//! The few socket calls the forward output needs that `std` does not offer: TCP keepalive
//! tuning, `TCP_USER_TIMEOUT`, the count of sent-but-unacknowledged bytes (`SIOCOUTQ`), and a
//! non-blocking receive. They live at the crate's system-call edge, [`crate::sys::socket`];
//! this module names the ones the output side uses. Knows nothing of records, chunks or TLS.
#![forbid(unsafe_code)]

pub use crate::sys::socket::{recv_nonblocking, set_keepalive, unacked_bytes};
