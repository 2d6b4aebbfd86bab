//! The Frame Streams vocabulary the rest of this folder shares: the control frame types, the
//! one content type this receiver speaks, and the control frame size limit (fstrm spec).
//!
//! Imports nothing from the folder, so that `error.rs`, `control.rs`, the handshakes and the
//! decoder all depend on it and never on each other in a circle. No parsing, no state.
#![forbid(unsafe_code)]

/// The only content type this receiver accepts.
pub const DNSTAP_CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// Control frames longer than this are an error (fstrm spec).
pub const CONTROL_FRAME_MAX: usize = 512;

/// Control frame types (fstrm spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlType {
    Accept = 0x01,
    Start = 0x02,
    Stop = 0x03,
    Ready = 0x04,
    Finish = 0x05,
}

impl ControlType {
    /// The control type for a wire value, `None` for values the spec does not define.
    pub fn from_u32(value: u32) -> Option<ControlType> {
        match value {
            0x01 => Some(ControlType::Accept),
            0x02 => Some(ControlType::Start),
            0x03 => Some(ControlType::Stop),
            0x04 => Some(ControlType::Ready),
            0x05 => Some(ControlType::Finish),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// Upper-case name as the spec writes it, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ControlType::Accept => "ACCEPT",
            ControlType::Start => "START",
            ControlType::Stop => "STOP",
            ControlType::Ready => "READY",
            ControlType::Finish => "FINISH",
        }
    }
}
