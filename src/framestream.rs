//! Frame Streams (fstrm) codec, sans-io: bytes in, frames and reply bytes out.
//!
//! CONTRACT STUB: the framestream helper replaces the bodies; the public names below are what
//! the rest of the crate builds against.
#![forbid(unsafe_code)]

use std::ops::Range;

/// The only content type this receiver accepts.
pub const DNSTAP_CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// Control frames longer than this are an error (fstrm spec).
pub const CONTROL_FRAME_MAX: usize = 512;
/// Default limit on one data frame's payload.
pub const DEFAULT_DATA_FRAME_MAX: usize = 1 << 20;
/// Highest data frame limit the configuration accepts.
pub const DATA_FRAME_MAX_LIMIT: usize = 64 << 20;

/// Decoder settings, validated at start-up.
#[derive(Clone, Copy, Debug)]
pub struct DecoderConfig {
    /// Largest data frame payload accepted (1 ..= DATA_FRAME_MAX_LIMIT).
    pub max_data_frame: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_data_frame: DEFAULT_DATA_FRAME_MAX,
        }
    }
}

/// What one call to [`Decoder::decode`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The input holds no complete frame yet: read more bytes, then call again with the
    /// unconsumed bytes followed by the new ones. `consumed` is 0 in this case.
    NeedMore,
    /// One data frame; `payload` is a range into the `buf` given to `decode`.
    Data { payload: Range<usize> },
    /// A control frame was handled (READY, START); any reply is in the caller's buffer.
    Control,
    /// STOP was received. In bidirectional mode FINISH was appended to the reply buffer.
    /// The stream is over; more bytes afterwards are an error.
    Finished,
}

/// One decoding step: how many bytes of `buf` were used, and what they were.
/// Invariant: `0 <= consumed <= buf.len()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub consumed: usize,
    pub event: Event,
}

/// A protocol error: the connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Placeholder,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.kind)
    }
}
impl std::error::Error for Error {}

/// Control frame types (fstrm spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlType {
    Accept = 0x01,
    Start = 0x02,
    Stop = 0x03,
    Ready = 0x04,
    Finish = 0x05,
}

/// Appends one data frame (length prefix + payload) to `out`. For senders (loadgen, tests).
pub fn write_data_frame(_payload: &[u8], _out: &mut Vec<u8>) {
    todo!("framestream helper")
}

/// Appends one control frame, with a content-type field when `content_type` is given.
pub fn write_control_frame(_ctype: ControlType, _content_type: Option<&[u8]>, _out: &mut Vec<u8>) {
    todo!("framestream helper")
}

/// Receiver side of a Frame Streams connection (bidirectional or unidirectional, detected
/// from the first control frame).
#[derive(Debug)]
pub struct Decoder {
    _config: DecoderConfig,
}

impl Decoder {
    pub fn new(config: DecoderConfig) -> Self {
        Decoder { _config: config }
    }

    /// Decodes at most one frame from the start of `buf`; replies (ACCEPT, FINISH) are
    /// appended to `reply` for the I/O layer to send.
    pub fn decode(&mut self, _buf: &[u8], _reply: &mut Vec<u8>) -> Result<Step, Error> {
        todo!("framestream helper")
    }

    /// The peer closed the connection. `unconsumed` is how many bytes were left undecoded.
    /// EOF without STOP after START is a clean end; EOF inside a frame or before START is not.
    pub fn on_eof(&self, _unconsumed: usize) -> Result<(), Error> {
        todo!("framestream helper")
    }
}
