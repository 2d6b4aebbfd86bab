//! Frame Streams control frames: splitting them off the byte stream, validating their field
//! list, and encoding them (plus data frames) for senders.
//!
//! Knows the wire layout only. Which control frame is acceptable when, and what to reply, is
//! the handshakes' business (`handshake.rs` for [`super::Decoder`], `sender.rs`).
//! The control types themselves are in `protocol.rs`.
//!
//! ```text
//! escape + control frame (all integers 32-bit big-endian):
//! ┌──────────────┬──────────────┬──────────────┬─────────────────────────────────────┐
//! │ escape = 0   │ control len  │ control type │ fields ...                          │
//! │ (4 bytes)    │ (4 bytes)    │ (4 bytes)    │ (control len - 4 bytes)             │
//! └──────────────┴──────────────┴──────────────┴─────────────────────────────────────┘
//!                 4 <= control len <= 512; it counts the control type and the fields.
//!
//! one field:
//! ┌──────────────┬──────────────┬──────────────────────────┐
//! │ field type   │ field len    │ field bytes (field len)  │
//! └──────────────┴──────────────┴──────────────────────────┘
//!   field type 1 = CONTENT_TYPE (e.g. "protobuf:dnstap.Dnstap"); other types are skipped.
//!
//! control types: ACCEPT 1, START 2, STOP 3, READY 4, FINISH 5.
//! READY and ACCEPT may carry several CONTENT_TYPE fields, START at most one,
//! STOP and FINISH none (fields there are ignored).
//! ```

use super::error::ErrorKind;
use super::protocol::{ControlType, CONTROL_FRAME_MAX};

/// Field type of a CONTENT_TYPE field.
pub const FIELD_CONTENT_TYPE: u32 = 0x01;

/// A control frame whose field list has been checked: every field header and every field
/// body lies inside the frame. Borrowed from the caller's buffer.
#[derive(Clone, Copy, Debug)]
pub struct ControlFrame<'a> {
    ctype: ControlType,
    /// The bytes after the control type; a well-formed field list (checked in `parse`).
    fields: &'a [u8],
}

impl<'a> ControlFrame<'a> {
    /// Parses a control frame body (control type + fields, without escape and length).
    pub fn parse(body: &'a [u8]) -> Result<ControlFrame<'a>, ErrorKind> {
        let Some((ctype, fields)) = body.split_first_chunk::<4>() else {
            return Err(ErrorKind::ControlFrameTooShort {
                len: body.len() as u32,
            });
        };
        let value = u32::from_be_bytes(*ctype);
        let Some(ctype) = ControlType::from_u32(value) else {
            return Err(ErrorKind::UnknownControlType { value });
        };
        // Walk the fields once so that the iterator below can never meet a bad length.
        let mut rest = fields;
        while !rest.is_empty() {
            match split_field(rest) {
                Ok((_, _, tail)) => rest = tail,
                Err(reason) => {
                    return Err(ErrorKind::MalformedControl {
                        control: ctype,
                        reason,
                    })
                }
            }
        }
        Ok(ControlFrame { ctype, fields })
    }

    pub fn control_type(&self) -> ControlType {
        self.ctype
    }

    /// The CONTENT_TYPE fields, in wire order.
    pub fn content_types(&self) -> ContentTypes<'a> {
        ContentTypes { rest: self.fields }
    }
}

/// Iterator over the CONTENT_TYPE field values of a [`ControlFrame`].
#[derive(Clone, Debug)]
pub struct ContentTypes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ContentTypes<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            // `parse` validated the list; an error here cannot happen, and ends the walk.
            let (ftype, value, tail) = split_field(self.rest).ok()?;
            self.rest = tail;
            if ftype == FIELD_CONTENT_TYPE {
                return Some(value);
            }
        }
    }
}

/// Splits one field off the front of a non-empty field list: (type, value, rest).
fn split_field(list: &[u8]) -> Result<(u32, &[u8], &[u8]), &'static str> {
    let Some((ftype, rest)) = list.split_first_chunk::<4>() else {
        return Err("truncated field header");
    };
    let Some((flen, rest)) = rest.split_first_chunk::<4>() else {
        return Err("truncated field header");
    };
    let flen = u32::from_be_bytes(*flen) as usize;
    if flen > rest.len() {
        return Err("field length runs past the end of the control frame");
    }
    let (value, rest) = rest.split_at(flen);
    Ok((u32::from_be_bytes(*ftype), value, rest))
}

/// What the front of a buffer holds once its first 4 bytes were the escape (0).
#[derive(Debug)]
pub enum ControlSplit<'a> {
    /// The control frame is incomplete: `needed` bytes in all (from the escape on) are needed.
    Incomplete { needed: usize },
    /// A complete control frame of `len` bytes on the wire (escape and length included).
    Complete { len: usize, frame: ControlFrame<'a> },
}

/// Looks at an escaped control frame at the start of `buf` (whose first 4 bytes are the zero
/// escape, or fewer bytes are present). Length errors are reported as soon as the length is
/// known, before the body arrives, so a peer cannot make us wait for 4 GiB.
pub fn split_control(buf: &[u8]) -> Result<ControlSplit<'_>, ErrorKind> {
    let len = match control_len(buf)? {
        Ok(len) => len,
        Err(needed) => return Ok(ControlSplit::Incomplete { needed }),
    };
    let wire_len = 8 + len;
    match buf.get(8..wire_len) {
        Some(body) => Ok(ControlSplit::Complete {
            len: wire_len,
            frame: ControlFrame::parse(body)?,
        }),
        None => Ok(ControlSplit::Incomplete { needed: wire_len }),
    }
}

/// The checked control length after the escape: `Ok(Ok(len))`, `Ok(Err(needed))` when the
/// length word is not there yet, or the length error.
pub fn control_len(buf: &[u8]) -> Result<Result<usize, usize>, ErrorKind> {
    let Some(word) = buf.get(4..8) else {
        return Ok(Err(8));
    };
    let mut be = [0u8; 4];
    be.copy_from_slice(word);
    let len = u32::from_be_bytes(be);
    if len as usize > CONTROL_FRAME_MAX {
        return Err(ErrorKind::ControlFrameTooLarge { len });
    }
    if len < 4 {
        return Err(ErrorKind::ControlFrameTooShort { len });
    }
    Ok(Ok(len as usize))
}

/// Appends one data frame (length prefix + payload) to `out`. For senders (loadgen, tests).
///
/// # Panics
/// If `payload` is empty (a zero length is the control escape, so an empty data frame cannot
/// be expressed) or longer than `u32::MAX` bytes. Both are caller bugs, not wire input.
#[allow(
    clippy::expect_used,
    reason = "sender side: an empty or 4 GiB payload is a caller bug, documented in # Panics"
)]
pub fn write_data_frame(payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        !payload.is_empty(),
        "an empty data frame cannot be encoded (0 is the escape)"
    );
    let len = u32::try_from(payload.len()).expect("data frame longer than u32::MAX");
    out.reserve(4 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Appends one control frame, with a content-type field when `content_type` is given.
pub fn write_control_frame(ctype: ControlType, content_type: Option<&[u8]>, out: &mut Vec<u8>) {
    write_control_frame_types(ctype, content_type.as_slice(), out);
}

/// Appends one control frame carrying one CONTENT_TYPE field per entry of `content_types`
/// (READY and ACCEPT may carry several).
///
/// The 512-byte control limit is not enforced here, so tests can build oversized frames.
///
/// # Panics
/// If the frame would be longer than `u32::MAX` bytes (a caller bug).
#[allow(
    clippy::expect_used,
    reason = "sender side: a 4 GiB control frame is a caller bug, documented in # Panics"
)]
pub fn write_control_frame_types(ctype: ControlType, content_types: &[&[u8]], out: &mut Vec<u8>) {
    let body_len = content_types.iter().fold(4usize, |n, t| n + 8 + t.len());
    let body_len = u32::try_from(body_len).expect("control frame longer than u32::MAX");
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(&ctype.as_u32().to_be_bytes());
    for t in content_types {
        out.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        // Fits: the whole body length fitted in u32 above.
        out.extend_from_slice(&(t.len() as u32).to_be_bytes());
        out.extend_from_slice(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(words: &[u32], tail: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn encodes_the_reference_accept_frame() {
        // What the reference collector replied to every READY in the lab's wire dumps.
        let mut out = Vec::new();
        write_control_frame(
            ControlType::Accept,
            Some(b"protobuf:dnstap.Dnstap"),
            &mut out,
        );
        let mut want = body(&[0, 0x22, 1, 1, 0x16], b"protobuf:dnstap.Dnstap");
        assert_eq!(out, want);
        out.clear();
        write_control_frame(ControlType::Finish, None, &mut out);
        want = body(&[0, 4, 5], b"");
        assert_eq!(out, want);
    }

    #[test]
    fn parses_several_content_types_and_skips_unknown_fields() {
        let b = body(&[4, 1, 1], b"a");
        let b = [
            b,
            body(&[7, 2], b"zz"),
            body(&[1, 0], b""),
            body(&[1, 3], b"xyz"),
        ]
        .concat();
        let f = ControlFrame::parse(&b).unwrap();
        assert_eq!(f.control_type(), ControlType::Ready);
        let types: Vec<&[u8]> = f.content_types().collect();
        assert_eq!(types, [&b"a"[..], b"", b"xyz"]);
    }

    #[test]
    fn rejects_field_running_past_the_frame() {
        let b = body(&[4, 1, 5], b"abcd");
        assert_eq!(
            ControlFrame::parse(&b).unwrap_err(),
            ErrorKind::MalformedControl {
                control: ControlType::Ready,
                reason: "field length runs past the end of the control frame"
            }
        );
        let b = body(&[2, 1], b"abc");
        assert!(matches!(
            ControlFrame::parse(&b).unwrap_err(),
            ErrorKind::MalformedControl {
                reason: "truncated field header",
                ..
            }
        ));
    }

    #[test]
    fn unknown_control_type_is_kept_as_a_number() {
        let b = body(&[9], b"");
        assert_eq!(
            ControlFrame::parse(&b).unwrap_err(),
            ErrorKind::UnknownControlType { value: 9 }
        );
        let b = body(&[0], b"");
        assert_eq!(
            ControlFrame::parse(&b).unwrap_err(),
            ErrorKind::UnknownControlType { value: 0 }
        );
    }

    #[test]
    fn split_control_reports_lengths_before_the_body_arrives() {
        assert!(matches!(
            split_control(&[0, 0]),
            Ok(ControlSplit::Incomplete { needed: 8 })
        ));
        let big = body(&[0, 513], b"");
        assert_eq!(
            split_control(&big).unwrap_err(),
            ErrorKind::ControlFrameTooLarge { len: 513 }
        );
        let short = body(&[0, 3], b"");
        assert_eq!(
            split_control(&short).unwrap_err(),
            ErrorKind::ControlFrameTooShort { len: 3 }
        );
        let start = body(&[0, 4, 2], b"");
        assert!(matches!(
            split_control(&start[..11]),
            Ok(ControlSplit::Incomplete { needed: 12 })
        ));
        assert!(matches!(
            split_control(&start),
            Ok(ControlSplit::Complete { len: 12, .. })
        ));
    }

    #[test]
    fn data_frame_encoding() {
        let mut out = Vec::new();
        write_data_frame(b"abc", &mut out);
        assert_eq!(out, [0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
