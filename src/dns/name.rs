//! Domain names on the wire: validation (RFC 1035 limits, compression pointers only
//! backwards), label iteration and presentation format written into caller buffers.
#![forbid(unsafe_code)]

use super::DnsError;

/// A validated name inside a message: `start` is the offset of its first length byte.
#[derive(Clone, Copy, Debug)]
pub struct Name<'a> {
    msg: &'a [u8],
    start: usize,
}

impl<'a> Name<'a> {
    /// Validates the name at `offset`; returns it and the offset just past it in place
    /// (after the first pointer, if any).
    pub fn parse(msg: &'a [u8], offset: usize) -> Result<(Name<'a>, usize), DnsError> {
        let _ = (msg, offset);
        todo!("dns helper")
    }

    /// Calls `f` with each label's bytes, from the leftmost label; the root label is not
    /// passed. The name was validated by `parse`, so this cannot fail.
    pub fn for_each_label(&self, mut f: impl FnMut(&'a [u8])) {
        let _ = (&mut f, self.msg, self.start);
        todo!("dns helper")
    }

    /// Writes the presentation form with a trailing dot ("." for the root), escaping as
    /// [`escape_label_into`] does.
    pub fn write_presentation(&self, _out: &mut Vec<u8>) {
        todo!("dns helper")
    }
}

/// Writes one label in presentation form as the seed tool (dnspython) renders it:
/// `"`, `(`, `)`, `.`, `;`, `\`, `@`, `$` get a backslash; bytes outside 0x21..=0x7e
/// (space included) are written `\DDD` (three decimal digits).
pub fn escape_label_into(_label: &[u8], _out: &mut Vec<u8>) {
    todo!("dns helper")
}
