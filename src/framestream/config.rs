//! Decoder settings and the data frame size limits they are checked against: validated once
//! at start-up, then read by every [`super::Decoder`]. Knows nothing of frames or state.
#![forbid(unsafe_code)]

/// Default limit on one data frame's payload.
pub const DEFAULT_DATA_FRAME_MAX: usize = 1 << 20;
/// Highest data frame limit the configuration accepts.
pub const DATA_FRAME_MAX_LIMIT: usize = 64 << 20;
/// Largest number of bytes one frame can occupy on the wire with the highest limit (length
/// word + payload): what an I/O buffer must be able to hold.
pub const FRAME_WIRE_MAX: usize = 4 + DATA_FRAME_MAX_LIMIT;

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

impl DecoderConfig {
    /// Checks the limits, for start-up validation of user configuration.
    pub fn validate(&self) -> Result<(), String> {
        if (1..=DATA_FRAME_MAX_LIMIT).contains(&self.max_data_frame) {
            Ok(())
        } else {
            Err(format!(
                "maximum data frame size {} is out of range (1 ..= {DATA_FRAME_MAX_LIMIT} bytes)",
                self.max_data_frame
            ))
        }
    }
}
