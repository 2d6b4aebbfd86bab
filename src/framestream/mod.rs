//! Frame Streams (fstrm) codec, sans-io: bytes in, frames and reply bytes out.
//!
//! [`Decoder`] (decoder.rs) is the receiver side of one connection: it splits the byte stream
//! into data frames and hands control frames to the receiver's handshake (handshake.rs),
//! whose replies (ACCEPT, FINISH) go to a caller-owned `Vec` for the I/O layer to send.
//! [`SenderHandshake`] (sender.rs) and the `write_*` functions (control.rs) are the sender
//! side, for loadgen and tests. control.rs owns the control frame layout; protocol.rs the
//! shared vocabulary (control types, content type, control limit) that imports nothing from
//! here; config.rs the decoder settings and data frame limits; error.rs the protocol errors.
//! Imports go one way: protocol ← error ← control ← handshake ← decoder.
//! This folder knows nothing about sockets, buffers' ownership, clocks or dnstap's protobuf.
#![forbid(unsafe_code)]
// Wire bytes are read with `get`, `first_chunk` and patterns; a justified index carries an
// `#[allow]` with the reason it is in range.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod config;
mod control;
mod decoder;
mod error;
mod handshake;
mod protocol;
mod sender;
#[cfg(test)]
mod testkit;

pub use config::{DecoderConfig, DATA_FRAME_MAX_LIMIT, DEFAULT_DATA_FRAME_MAX, FRAME_WIRE_MAX};
pub use control::{
    write_control_frame, write_control_frame_types, write_data_frame, ContentTypes, ControlFrame,
    FIELD_CONTENT_TYPE,
};
pub use decoder::{Decoder, Event, Step};
pub use error::{Error, ErrorKind};
pub use handshake::State;
pub use protocol::{ControlType, CONTROL_FRAME_MAX, DNSTAP_CONTENT_TYPE};
pub use sender::{SenderEvent, SenderHandshake, SenderState, SenderStep};
