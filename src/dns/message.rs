//! The message view: header and first question parsed eagerly (the per-message hot path),
//! everything else walked lazily on demand: the remaining questions, the records of the
//! three sections, and the OPT record for the full rcode. Knows nothing of dnstap.
#![forbid(unsafe_code)]

use super::edns::Edns;
use super::name::{Name, Visit};
use super::rr::Rr;
use super::{types, DnsError, DnsErrorKind};
use std::ops::ControlFlow;

/// RFC 1035 §4.1.1 header.
///
/// ```text
///                                 1  1  1  1  1  1
///   0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
/// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
/// |                      ID                       |
/// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
/// |QR|   Opcode  |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
/// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
/// |                    QDCOUNT                    |
/// |                    ANCOUNT                    |
/// |                    NSCOUNT                    |
/// |                    ARCOUNT                    |
/// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
/// ```
/// (AD and CD from RFC 4035 §3.2.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub const LEN: usize = 12;

    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const Z: u16 = 0x0040;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;

    /// Reads the 12 header bytes; a shorter message is `Truncated`.
    #[inline]
    pub fn parse(msg: &[u8]) -> Result<Header, DnsError> {
        let Some(h) = msg.first_chunk::<12>() else {
            return Err(DnsError::new(DnsErrorKind::Truncated, msg.len()));
        };
        Ok(Header {
            id: u16::from_be_bytes([h[0], h[1]]),
            flags: u16::from_be_bytes([h[2], h[3]]),
            qdcount: u16::from_be_bytes([h[4], h[5]]),
            ancount: u16::from_be_bytes([h[6], h[7]]),
            nscount: u16::from_be_bytes([h[8], h[9]]),
            arcount: u16::from_be_bytes([h[10], h[11]]),
        })
    }
    /// The 4-bit header rcode.
    pub fn rcode(&self) -> u8 {
        (self.flags & 0x000f) as u8
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
    pub fn is_response(&self) -> bool {
        self.flags & Self::QR != 0
    }

    /// Writes the set flags as lower-case mnemonics separated by spaces, in header order
    /// (`qr aa tc rd ra z ad cd`), the way dig lists them.
    pub fn write_flags(&self, out: &mut Vec<u8>) {
        let all = [
            (Self::QR, "qr"),
            (Self::AA, "aa"),
            (Self::TC, "tc"),
            (Self::RD, "rd"),
            (Self::RA, "ra"),
            (Self::Z, "z"),
            (Self::AD, "ad"),
            (Self::CD, "cd"),
        ];
        let mut first = true;
        for (bit, name) in all {
            if self.flags & bit != 0 {
                if !first {
                    out.push(b' ');
                }
                out.extend_from_slice(name.as_bytes());
                first = false;
            }
        }
    }
}

/// The question: name, type, class.
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    pub name: Name<'a>,
    pub qtype: u16,
    pub qclass: u16,
}

impl<'a> Question<'a> {
    /// Parses one question at `pos`; returns it and the offset after it.
    ///
    /// ```text
    /// | QNAME (variable) | QTYPE (16) | QCLASS (16) |
    /// ```
    #[inline]
    pub fn parse(msg: &'a [u8], pos: usize) -> Result<(Question<'a>, usize), DnsError> {
        match Question::visit(msg, pos, |_| Visit::Next)? {
            ControlFlow::Continue(parsed) => Ok(parsed),
            ControlFlow::Break(()) => unreachable!("this visitor never stops"),
        }
    }

    /// [`Question::parse`] handing the name's labels to `visit` as [`Name::visit`] does
    /// (`Break` when it stopped; nothing after that label was read).
    #[inline(always)]
    pub fn visit(
        msg: &'a [u8],
        pos: usize,
        visit: impl FnMut(&'a [u8]) -> Visit,
    ) -> Result<ControlFlow<(), (Question<'a>, usize)>, DnsError> {
        let (name, pos) = match Name::visit(msg, pos, visit)? {
            ControlFlow::Continue(parsed) => parsed,
            ControlFlow::Break(()) => return Ok(ControlFlow::Break(())),
        };
        let Some(f) = msg.get(pos..).and_then(<[u8]>::first_chunk::<4>) else {
            return Err(DnsError::new(DnsErrorKind::Truncated, pos));
        };
        let q = Question {
            name,
            qtype: u16::from_be_bytes([f[0], f[1]]),
            qclass: u16::from_be_bytes([f[2], f[3]]),
        };
        Ok(ControlFlow::Continue((q, pos + 4)))
    }
}

/// Which section a resource record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Answer => "answer",
            Section::Authority => "authority",
            Section::Additional => "additional",
        }
    }
}

/// Lazy view over one DNS message: the header and the first question are parsed when the
/// view is made; records are walked on demand.
#[derive(Clone, Debug)]
pub struct MessageView<'a> {
    pub msg: &'a [u8],
    pub header: Header,
    pub question: Option<Question<'a>>,
    /// Offset of the first byte after the question section (0 when it could not be read).
    pub after_question: usize,
}

impl<'a> MessageView<'a> {
    /// Parses the header and the first question (if qdcount > 0).
    ///
    /// Errors: fewer than 12 bytes, or a first question that is malformed. When qdcount
    /// is larger than 1 the remaining questions are skipped here too (rare, and it keeps
    /// `after_question` meaning "end of the section"); if that fails the view is still
    /// returned, with `after_question == 0`, and [`MessageView::records`] reports the error.
    #[inline]
    pub fn parse(msg: &'a [u8]) -> Result<MessageView<'a>, DnsError> {
        MessageView::parse_inlined(msg)
    }

    /// [`MessageView::parse`], always inlined: for the writer's decode of every record
    /// (`Record::parse_dns`), so that the view is built where the record keeps it.
    // PERF: out of line, the view came back through a stack slot and was copied into the
    // record, whose wide loads then waited on the callee's narrow stores (a quarter of
    // Record::parse_in_place's samples; scripts/perf.sh, synthetic corpus).
    #[inline(always)]
    pub fn parse_inlined(msg: &'a [u8]) -> Result<MessageView<'a>, DnsError> {
        let header = Header::parse(msg)?;
        if header.qdcount == 0 {
            return Ok(MessageView {
                msg,
                header,
                question: None,
                after_question: Header::LEN,
            });
        }
        let (question, mut after_question) = Question::parse(msg, Header::LEN)?;
        if header.qdcount > 1 {
            after_question = skip_questions(msg, after_question, header.qdcount - 1).unwrap_or(0);
        }
        Ok(MessageView {
            msg,
            header,
            question: Some(question),
            after_question,
        })
    }

    /// The first question's name, label by label, as [`MessageView::parse`] reads it, for
    /// callers that want to stop early (the qname prefilter). `None` when `parse` would
    /// give no question (none, or an error); `Some(Break(()))` when `visit` stopped
    /// ([`Visit::Stop`]: nothing after that label was checked); `Some(Continue(()))` when
    /// `parse` would give a question (every label was offered until `visit` said
    /// [`Visit::Check`]).
    #[inline]
    pub fn visit_qname(
        msg: &'a [u8],
        visit: impl FnMut(&'a [u8]) -> Visit,
    ) -> Option<ControlFlow<()>> {
        let header = Header::parse(msg).ok()?;
        if header.qdcount == 0 {
            return None;
        }
        Some(
            Question::visit(msg, Header::LEN, visit)
                .ok()?
                .map_continue(|_| ()),
        )
    }

    /// All questions, the first one included (for qdcount > 1), stopping after an error.
    pub fn questions(&self) -> Questions<'a> {
        Questions {
            msg: self.msg,
            pos: Header::LEN,
            left: self.header.qdcount,
        }
    }

    /// Offset where the answer section starts, or the error that hid it.
    fn records_start(&self) -> Result<usize, DnsError> {
        if self.after_question != 0 {
            return Ok(self.after_question);
        }
        let n = self.header.qdcount;
        skip_questions(self.msg, Header::LEN, n)
    }

    /// Every answer, authority and additional record in order, with its section. The
    /// iterator yields at most one `Err` and then stops.
    pub fn records(&self) -> Records<'a> {
        let h = &self.header;
        let (pos, error) = match self.records_start() {
            Ok(p) => (p, None),
            Err(e) => (0, Some(e)),
        };
        Records {
            msg: self.msg,
            pos,
            section: 0,
            left: [h.ancount, h.nscount, h.arcount],
            error,
        }
    }

    /// The OPT record of the additional section, if any (RFC 6891 §6.1.1). `Some(Err)`
    /// when the message breaks before the additional section is reached, or the OPT
    /// record itself is malformed. Answer and authority records are skipped without
    /// following compression pointers, which is all that is needed to find the offsets.
    pub fn edns(&self) -> Option<Result<Edns<'a>, DnsError>> {
        if self.header.arcount == 0 {
            return None;
        }
        let mut pos = match self.records_start() {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let skip = self.header.ancount as usize + self.header.nscount as usize;
        for _ in 0..skip {
            pos = match skip_rr(self.msg, pos) {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
        }
        for _ in 0..self.header.arcount {
            match Rr::parse(self.msg, pos) {
                Ok((rr, _)) if rr.rtype == types::OPT => {
                    return Some(Edns::from_rr(self.msg, &rr));
                }
                Ok((_, next)) => pos = next,
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }

    /// Offset just past the last record, after walking all of them (names validated,
    /// rdata not decoded). A value below `msg.len()` means trailing bytes, which strict
    /// parsers (dnspython's `TrailingJunk`) reject.
    pub fn records_end(&self) -> Result<usize, DnsError> {
        let mut it = self.records();
        for r in &mut it {
            r?;
        }
        Ok(it.pos)
    }

    /// The full rcode (RFC 6891 §6.1.3): the 4 header bits plus, when an OPT record is
    /// present and readable, its 8 extended bits above them. Costs a walk to the
    /// additional section; the 4-bit [`Header::rcode`] is free.
    pub fn rcode(&self) -> u16 {
        let low = self.header.rcode() as u16;
        match self.edns() {
            Some(Ok(e)) => (e.ext_rcode as u16) << 4 | low,
            _ => low,
        }
    }
}

/// Skips `n` questions from `pos`, validating their names.
fn skip_questions(msg: &[u8], mut pos: usize, n: u16) -> Result<usize, DnsError> {
    for _ in 0..n {
        pos = Question::parse(msg, pos)?.1;
    }
    Ok(pos)
}

/// Skips one record without following its name's pointers: labels are bounds-checked,
/// and a pointer ends the owner name.
fn skip_rr(msg: &[u8], mut pos: usize) -> Result<usize, DnsError> {
    loop {
        let len = *msg
            .get(pos)
            .ok_or(DnsError::new(DnsErrorKind::Truncated, pos))? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                pos += 1;
                break;
            }
            0x00 => pos += 1 + len,
            0xc0 => {
                pos += 2;
                break;
            }
            _ => return Err(DnsError::new(DnsErrorKind::BadLabel, pos)),
        }
    }
    let Some(f) = msg.get(pos..).and_then(<[u8]>::first_chunk::<10>) else {
        return Err(DnsError::new(DnsErrorKind::Truncated, pos));
    };
    let end = pos + 10 + u16::from_be_bytes([f[8], f[9]]) as usize;
    if end > msg.len() {
        return Err(DnsError::new(DnsErrorKind::Truncated, pos + 8));
    }
    Ok(end)
}

/// Iterator over the questions; yields at most one error, then stops.
#[derive(Clone, Debug)]
pub struct Questions<'a> {
    msg: &'a [u8],
    pos: usize,
    left: u16,
}

impl<'a> Iterator for Questions<'a> {
    type Item = Result<Question<'a>, DnsError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        match Question::parse(self.msg, self.pos) {
            Ok((q, next)) => {
                self.left -= 1;
                self.pos = next;
                Some(Ok(q))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

/// Iterator over the answer, authority and additional records; yields at most one error,
/// then stops. Invariant: `section < 3` while records remain; `left[s]` counts what is
/// still to be read of section `s`.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    msg: &'a [u8],
    pos: usize,
    section: usize,
    left: [u16; 3],
    /// An error found before the first record (questions unreadable), reported first.
    error: Option<DnsError>,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(Section, Rr<'a>), DnsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.left = [0; 3];
            return Some(Err(e));
        }
        let section = loop {
            match self.left.get(self.section) {
                None => return None,
                Some(0) => self.section += 1,
                Some(_) => break self.section,
            }
        };
        match Rr::parse(self.msg, self.pos) {
            Ok((rr, next)) => {
                self.pos = next;
                if let Some(n) = self.left.get_mut(section) {
                    *n -= 1;
                }
                let s = match section {
                    0 => Section::Answer,
                    1 => Section::Authority,
                    _ => Section::Additional,
                };
                Some(Ok((s, rr)))
            }
            Err(e) => {
                self.left = [0; 3];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Query for www.example.test/A with 2 answers (compressed), 1 NS, 1 additional A.
    fn response() -> Vec<u8> {
        let mut m = vec![0xab, 0xcd, 0x85, 0x80, 0, 1, 0, 2, 0, 1, 0, 1];
        m.extend_from_slice(b"\x03www\x07example\x04test\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 6]);
        m.extend_from_slice(&[3, b'w', b'e', b'b', 0xc0, 16]); // web.example.test
        m.extend_from_slice(&[0xc0, 46, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
        m.extend_from_slice(&[0xc0, 16, 0, 2, 0, 1, 0, 0, 0, 60, 0, 6]);
        m.extend_from_slice(&[3, b'n', b's', b'1', 0xc0, 16]);
        m.extend_from_slice(&[0xc0, 80, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        m
    }

    fn render(v: &MessageView<'_>) -> Vec<String> {
        let mut lines = Vec::new();
        for r in v.records() {
            match r {
                Ok((s, rr)) => {
                    let mut o = Vec::new();
                    rr.write_presentation(v.msg, &mut o).unwrap();
                    lines.push(format!("{} {}", s.as_str(), String::from_utf8(o).unwrap()));
                }
                Err(e) => lines.push(format!("error {:?}", e.kind)),
            }
        }
        lines
    }

    #[test]
    fn header_and_question() {
        let m = response();
        let v = MessageView::parse(&m).unwrap();
        assert_eq!(v.header.id, 0xabcd);
        assert!(v.header.is_response());
        assert_eq!(v.header.opcode(), 0);
        assert_eq!(v.header.rcode(), 0);
        let mut f = Vec::new();
        v.header.write_flags(&mut f);
        assert_eq!(f, b"qr aa rd ra");
        let q = v.question.unwrap();
        assert_eq!((q.qtype, q.qclass), (1, 1));
        let mut n = Vec::new();
        q.name.write_presentation(&mut n);
        assert_eq!(n, b"www.example.test.");
        assert_eq!(v.after_question, 34);
        assert_eq!(v.rcode(), 0);
        assert!(v.edns().is_none());
        assert_eq!(v.records_end(), Ok(m.len()));
        let mut longer = m.clone();
        longer.push(0);
        assert_eq!(
            MessageView::parse(&longer).unwrap().records_end(),
            Ok(m.len())
        );
    }

    #[test]
    fn records_in_order() {
        let m = response();
        let v = MessageView::parse(&m).unwrap();
        assert_eq!(
            render(&v),
            [
                "answer www.example.test. 3600 IN CNAME web.example.test.",
                "answer web.example.test. 60 IN A 192.0.2.7",
                "authority example.test. 60 IN NS ns1.example.test.",
                "additional ns1.example.test. 60 IN A 127.0.0.1",
            ]
        );
    }

    #[test]
    fn short_and_truncated_messages() {
        let m = response();
        for cut in 0..12 {
            assert_eq!(
                MessageView::parse(&m[..cut]).unwrap_err().kind,
                DnsErrorKind::Truncated
            );
        }
        for cut in 12..34 {
            assert!(MessageView::parse(&m[..cut]).is_err(), "cut {cut}");
        }
        // Every cut in the record sections: the view parses, the walk ends in one error.
        for cut in 34..m.len() {
            let v = MessageView::parse(&m[..cut]).unwrap();
            let all: Vec<_> = v.records().collect();
            assert!(all.last().unwrap().is_err(), "cut {cut}");
            assert_eq!(all.iter().filter(|r| r.is_err()).count(), 1);
            let _ = v.rcode();
        }
    }

    #[test]
    fn counts_beyond_data_error() {
        let mut m = response();
        m[7] = 9; // ancount 9
        let v = MessageView::parse(&m).unwrap();
        let all: Vec<_> = v.records().collect();
        assert!(all.last().unwrap().is_err());
    }

    #[test]
    fn no_question() {
        let m = [0u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let v = MessageView::parse(&m).unwrap();
        assert!(v.question.is_none());
        assert_eq!(v.after_question, 12);
        assert_eq!(v.records().count(), 0);
    }

    #[test]
    fn several_questions() {
        let mut m = vec![0, 1, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01\x01b\xc0\x0c\x00\x1c\x00\x01");
        m.extend_from_slice(&[0xc0, 19, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        let v = MessageView::parse(&m).unwrap();
        assert_eq!(v.after_question, 12 + 7 + 8);
        let qs: Vec<u16> = v.questions().map(|q| q.unwrap().qtype).collect();
        assert_eq!(qs, [1, 28]);
        assert_eq!(render(&v), ["answer b.a. 1 IN A 1.2.3.4"]);
        // second question broken: view still usable, the record walk reports it
        let mut bad = m.clone();
        bad[19] = 0xc0;
        bad[20] = 19; // self pointer
        bad[11] = 1; // arcount, so that edns() has to look
        let v = MessageView::parse(&bad).unwrap();
        assert_eq!(v.after_question, 0);
        assert!(v.question.is_some());
        assert_eq!(render(&v), ["error BadPointer"]);
        assert_eq!(
            v.edns().unwrap().unwrap_err().kind,
            DnsErrorKind::BadPointer
        );
    }
}
