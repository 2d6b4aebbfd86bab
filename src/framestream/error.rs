//! Frame Streams protocol errors: a small `Copy` kind (numbers and `&'static str`) for the
//! hot path and for counters, plus the stream offset, plus, only for a refused content type,
//! a bounded and escaped copy of what the peer offered.
//!
//! Knows nothing about connections: the I/O layer adds the peer and connection when it logs.

use std::fmt;

use super::protocol::{ControlType, CONTROL_FRAME_MAX, DNSTAP_CONTENT_TYPE};

/// How many offered content types an error keeps, and how many bytes of each.
const OFFERED_KEEP: usize = 3;
const OFFERED_TRUNCATE: usize = 128;

/// A protocol error: the connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// Stream offset (bytes since the connection opened) of the frame that was refused, or of
    /// the first undecoded byte for end-of-stream errors.
    pub offset: u64,
    /// For [`ErrorKind::ContentTypeMismatch`]: what the peer offered, quoted and escaped,
    /// e.g. `"protobuf:foo", "x" and 2 more`. `None` for every other kind.
    pub offered: Option<Box<str>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, offset: u64) -> Error {
        Error {
            kind,
            offset,
            offered: None,
        }
    }
}

/// What went wrong. Every variant is cheap to copy and to count (see [`ErrorKind::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A data frame longer than the configured limit; refused as soon as its length is read.
    DataFrameTooLarge { len: u32, limit: u32 },
    /// A control frame longer than [`CONTROL_FRAME_MAX`] (512) bytes.
    ControlFrameTooLarge { len: u32 },
    /// A control frame too short to hold its 4-byte control type.
    ControlFrameTooShort { len: u32 },
    /// A control frame whose field list does not add up.
    MalformedControl {
        control: ControlType,
        reason: &'static str,
    },
    /// A control type the spec does not define, kept as the number read.
    UnknownControlType { value: u32 },
    /// A known control frame at a point of the handshake where it is not allowed (a second
    /// START, READY after START, ACCEPT or FINISH from a sender...).
    UnexpectedControl {
        got: ControlType,
        expected: &'static str,
    },
    /// A data frame before START.
    DataBeforeStart { len: u32 },
    /// A data frame where only control frames may come (the receiver's side of a sender's
    /// handshake).
    UnexpectedDataFrame { len: u32 },
    /// Bytes after STOP.
    BytesAfterStop,
    /// The peer's READY offered no acceptable content type, its START named another one, or
    /// (sender side) the receiver's ACCEPT did not name ours. `offered` counts the
    /// CONTENT_TYPE fields; [`Error::offered`] holds the first few.
    ContentTypeMismatch { control: ControlType, offered: u32 },
    /// The stream ended inside a frame; `pending` bytes of it had arrived.
    EofMidFrame { pending: usize },
    /// The stream ended before START.
    EofBeforeStart { expected: &'static str },
    /// Sender side: a `write_*` call out of order (a caller bug, reported instead of a panic).
    SenderOutOfOrder {
        action: ControlType,
        expected: &'static str,
    },
    /// `decode` was called again after it had returned an error.
    AlreadyFailed,
}

impl ErrorKind {
    /// A stable snake_case name, for counters and log fields.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::DataFrameTooLarge { .. } => "data_frame_too_large",
            ErrorKind::ControlFrameTooLarge { .. } => "control_frame_too_large",
            ErrorKind::ControlFrameTooShort { .. } => "control_frame_too_short",
            ErrorKind::MalformedControl { .. } => "malformed_control",
            ErrorKind::UnknownControlType { .. } => "unknown_control_type",
            ErrorKind::UnexpectedControl { .. } => "unexpected_control",
            ErrorKind::DataBeforeStart { .. } => "data_before_start",
            ErrorKind::UnexpectedDataFrame { .. } => "unexpected_data_frame",
            ErrorKind::BytesAfterStop => "bytes_after_stop",
            ErrorKind::ContentTypeMismatch { .. } => "content_type_mismatch",
            ErrorKind::EofMidFrame { .. } => "eof_mid_frame",
            ErrorKind::EofBeforeStart { .. } => "eof_before_start",
            ErrorKind::SenderOutOfOrder { .. } => "sender_out_of_order",
            ErrorKind::AlreadyFailed => "already_failed",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::DataFrameTooLarge { len, limit } => write!(
                f,
                "data frame of {len} bytes exceeds the limit of {limit} bytes \
                 (stream offset {})",
                self.offset
            )?,
            ErrorKind::ControlFrameTooLarge { len } => write!(
                f,
                "control frame of {len} bytes exceeds the limit of {} bytes (stream offset {})",
                CONTROL_FRAME_MAX, self.offset
            )?,
            ErrorKind::ControlFrameTooShort { len } => write!(
                f,
                "control frame of {len} bytes is too short to hold a control type \
                 (stream offset {})",
                self.offset
            )?,
            ErrorKind::MalformedControl { control, reason } => write!(
                f,
                "malformed {} control frame: {reason} (stream offset {})",
                control.name(),
                self.offset
            )?,
            ErrorKind::UnknownControlType { value } => write!(
                f,
                "unknown control frame type {value:#x} (stream offset {})",
                self.offset
            )?,
            ErrorKind::UnexpectedControl { got, expected } => write!(
                f,
                "unexpected {} control frame while expecting {expected} (stream offset {})",
                got.name(),
                self.offset
            )?,
            ErrorKind::DataBeforeStart { len } => write!(
                f,
                "data frame of {len} bytes before START (stream offset {})",
                self.offset
            )?,
            ErrorKind::UnexpectedDataFrame { len } => write!(
                f,
                "unexpected data frame of {len} bytes where only control frames may come \
                 (stream offset {})",
                self.offset
            )?,
            ErrorKind::BytesAfterStop => {
                write!(f, "bytes after STOP (stream offset {})", self.offset)?
            }
            ErrorKind::ContentTypeMismatch { control, offered } => {
                f.write_str("content type mismatch: peer offered ")?;
                match (&self.offered, offered) {
                    (_, 0) => f.write_str("no content type")?,
                    (Some(text), _) => f.write_str(text)?,
                    (None, n) => write!(f, "{n} content types")?,
                }
                f.write_str(" (expected ")?;
                write_quoted(f, DNSTAP_CONTENT_TYPE)?;
                write!(f, ") in {}", control.name())?;
            }
            ErrorKind::EofMidFrame { pending } => write!(
                f,
                "connection closed in the middle of a frame ({pending} bytes pending, \
                 stream offset {})",
                self.offset
            )?,
            ErrorKind::EofBeforeStart { expected } => write!(
                f,
                "connection closed before the handshake completed (expecting {expected})"
            )?,
            ErrorKind::SenderOutOfOrder { action, expected } => write!(
                f,
                "cannot send {} now: the sender handshake is expecting {expected}",
                action.name()
            )?,
            ErrorKind::AlreadyFailed => f.write_str("the stream already failed with an error")?,
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Builds the bounded, escaped description of offered content types: the first
/// `OFFERED_KEEP`, each cut to `OFFERED_TRUNCATE` bytes. Cold path: allocates.
pub(crate) fn describe_offered<'a>(types: impl Iterator<Item = &'a [u8]>) -> Box<str> {
    let mut out = String::new();
    let mut count = 0usize;
    for t in types {
        if count < OFFERED_KEEP {
            if count > 0 {
                out.push_str(", ");
            }
            let (kept, cut) = match t.get(..OFFERED_TRUNCATE) {
                Some(head) if t.len() > OFFERED_TRUNCATE => (head, true),
                _ => (t, false),
            };
            // Writing to a String cannot fail.
            let _ = write_quoted(&mut out, kept);
            if cut {
                out.push_str("...");
            }
        }
        count += 1;
    }
    if count > OFFERED_KEEP {
        out.push_str(&format!(" and {} more", count - OFFERED_KEEP));
    }
    out.into_boxed_str()
}

/// Writes `bytes` in double quotes: printable ASCII as is, `"` and `\` backslashed, anything
/// else as `\xNN`, so a hostile peer cannot put control characters into our logs.
fn write_quoted(w: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    w.write_char('"')?;
    for &b in bytes {
        match b {
            b'"' => w.write_str("\\\"")?,
            b'\\' => w.write_str("\\\\")?,
            0x20..=0x7e => w.write_char(b as char)?,
            _ => write!(w, "\\x{b:02x}")?,
        }
    }
    w.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_mismatch_reads_as_a_sentence() {
        let e = Error {
            kind: ErrorKind::ContentTypeMismatch {
                control: ControlType::Start,
                offered: 1,
            },
            offset: 0,
            offered: Some(describe_offered([&b"protobuf:foo"[..]].into_iter())),
        };
        assert_eq!(
            e.to_string(),
            "content type mismatch: peer offered \"protobuf:foo\" \
             (expected \"protobuf:dnstap.Dnstap\") in START"
        );
        let none = Error::new(
            ErrorKind::ContentTypeMismatch {
                control: ControlType::Ready,
                offered: 0,
            },
            0,
        );
        assert_eq!(
            none.to_string(),
            "content type mismatch: peer offered no content type \
             (expected \"protobuf:dnstap.Dnstap\") in READY"
        );
    }

    #[test]
    fn offered_types_are_bounded_and_escaped() {
        let long = [b'a'; 300];
        let types: [&[u8]; 5] = [b"x\"\\\n\xff", &long, b"c", b"d", b"e"];
        let text = describe_offered(types.into_iter());
        let want = format!(
            r#""x\"\\\x0a\xff", "{}"..., "c" and 2 more"#,
            "a".repeat(128)
        );
        assert_eq!(&*text, want);
    }

    #[test]
    fn every_kind_reads_as_a_sentence_with_a_distinct_name() {
        let c = ControlType::Start;
        let kinds = [
            ErrorKind::DataFrameTooLarge { len: 9, limit: 8 },
            ErrorKind::ControlFrameTooLarge { len: 600 },
            ErrorKind::ControlFrameTooShort { len: 2 },
            ErrorKind::MalformedControl {
                control: c,
                reason: "truncated field header",
            },
            ErrorKind::UnknownControlType { value: 9 },
            ErrorKind::UnexpectedControl {
                got: c,
                expected: "START",
            },
            ErrorKind::DataBeforeStart { len: 3 },
            ErrorKind::UnexpectedDataFrame { len: 3 },
            ErrorKind::BytesAfterStop,
            ErrorKind::ContentTypeMismatch {
                control: c,
                offered: 2,
            },
            ErrorKind::EofMidFrame { pending: 5 },
            ErrorKind::EofBeforeStart { expected: "START" },
            ErrorKind::SenderOutOfOrder {
                action: c,
                expected: "ACCEPT",
            },
            ErrorKind::AlreadyFailed,
        ];
        let mut names = std::collections::BTreeSet::new();
        for kind in kinds {
            let text = Error::new(kind, 7).to_string();
            let first = text.chars().next().unwrap();
            assert!(first.is_ascii_lowercase(), "{text}");
            assert!(!text.contains('{') && !text.contains("Some("), "{text}");
            assert!(names.insert(kind.name()), "{}", kind.name());
        }
    }

    #[test]
    fn kinds_are_small() {
        // The kind travels in every Result on the hot path; keep it a few words.
        assert!(std::mem::size_of::<ErrorKind>() <= 32);
    }
}
