//! EDNS(0) (RFC 6891): the OPT pseudo-record's fields and a lazy iterator over its
//! options, with presentation writers for the options formatters print: Client Subnet
//! (RFC 7871), Extended DNS Errors (RFC 8914), COOKIE (RFC 7873), NSID (RFC 5001); any
//! other option is shown as its code and hex. Knows nothing of output formats beyond
//! the text of one option value.
#![forbid(unsafe_code)]

use super::rr::Rr;
use super::text::{
    write_escaped, write_hex_lower, write_ipv4, write_ipv6, write_quoted, write_u64,
};
use super::{types, DnsError, DnsErrorKind};

pub const OPTION_NSID: u16 = 3;
pub const OPTION_ECS: u16 = 8;
pub const OPTION_COOKIE: u16 = 10;
pub const OPTION_EDE: u16 = 15;

/// The OPT record, decoded.
///
/// ```text
/// NAME   = root (0)
/// TYPE   = 41
/// CLASS  = requestor's UDP payload size
/// TTL    = | EXTENDED-RCODE (8) | VERSION (8) | DO | Z (15) |
/// RDATA  = { | OPTION-CODE (16) | OPTION-LENGTH (16) | OPTION-DATA | }*
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns<'a> {
    pub udp_size: u16,
    /// Upper 8 bits of the 12-bit rcode.
    pub ext_rcode: u8,
    pub version: u8,
    /// The 16 flag bits: DO is the top bit, the rest is Z.
    pub flags: u16,
    /// The OPT rdata: the options, not yet checked.
    pub options: &'a [u8],
    /// Offset of `options` in the message, for error offsets.
    pub options_offset: usize,
}

impl<'a> Edns<'a> {
    pub const DO: u16 = 0x8000;

    /// Reads an OPT record found by the caller. Its owner must be the root name.
    pub fn from_rr(msg: &'a [u8], rr: &Rr<'a>) -> Result<Edns<'a>, DnsError> {
        if !rr.name.is_root() || rr.rtype != types::OPT {
            return Err(DnsError::new(DnsErrorKind::BadEdns, rr.name.start()));
        }
        let Some(options) = msg.get(rr.rdata.clone()) else {
            return Err(DnsError::new(DnsErrorKind::Truncated, rr.rdata.start));
        };
        Ok(Edns {
            udp_size: rr.class,
            ext_rcode: (rr.ttl >> 24) as u8,
            version: (rr.ttl >> 16) as u8,
            flags: rr.ttl as u16,
            options,
            options_offset: rr.rdata.start,
        })
    }

    /// The DNSSEC OK bit (RFC 3225).
    pub fn dnssec_ok(&self) -> bool {
        self.flags & Self::DO != 0
    }

    /// The OPT summary as dig prints it: `version 0; flags: do; udp: 1232`. Flag bits
    /// other than DO are shown as `MBZ: 0x....` when set.
    pub fn write_presentation(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"version ");
        write_u64(self.version.into(), out);
        out.extend_from_slice(b"; flags:");
        if self.dnssec_ok() {
            out.extend_from_slice(b" do");
        }
        let z = self.flags & !Self::DO;
        if z != 0 {
            out.extend_from_slice(b"; MBZ: 0x");
            write_hex_lower(&z.to_be_bytes(), out);
        }
        out.extend_from_slice(b"; udp: ");
        write_u64(self.udp_size.into(), out);
    }

    /// The options in order; yields at most one error, then stops.
    pub fn options(&self) -> EdnsOptions<'a> {
        EdnsOptions {
            data: self.options,
            pos: 0,
            base: self.options_offset,
        }
    }
}

/// Iterator over the options of an OPT record.
/// Invariant: `pos <= data.len()`, or `pos == usize::MAX` after an error.
#[derive(Clone, Debug)]
pub struct EdnsOptions<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Iterator for EdnsOptions<'a> {
    type Item = Result<EdnsOption<'a>, DnsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let at = self.pos;
        let Some(h) = self.data.get(at..).and_then(<[u8]>::first_chunk::<4>) else {
            self.pos = usize::MAX;
            return Some(Err(DnsError::new(DnsErrorKind::Truncated, self.base + at)));
        };
        let code = u16::from_be_bytes([h[0], h[1]]);
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let Some(data) = self.data.get(at + 4..at + 4 + len) else {
            self.pos = usize::MAX;
            return Some(Err(DnsError::new(
                DnsErrorKind::Truncated,
                self.base + at + 2,
            )));
        };
        self.pos = at + 4 + len;
        Some(Ok(EdnsOption {
            code,
            data,
            offset: self.base + at,
        }))
    }
}

/// One option: its code and raw data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdnsOption<'a> {
    pub code: u16,
    pub data: &'a [u8],
    /// Offset of the option's code in the message.
    pub offset: usize,
}

/// An option's decoded value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionValue<'a> {
    Ecs(ClientSubnet<'a>),
    /// Extended DNS Error: info code and its (UTF-8, not checked) extra text.
    Ede {
        info_code: u16,
        extra_text: &'a [u8],
    },
    /// Client cookie (8 bytes) and server cookie (empty or 8..=32 bytes).
    Cookie {
        client: &'a [u8],
        server: &'a [u8],
    },
    Nsid(&'a [u8]),
    Other(&'a [u8]),
}

/// EDNS Client Subnet (RFC 7871 §6).
///
/// ```text
/// | FAMILY (16) | SOURCE PREFIX-LENGTH (8) | SCOPE PREFIX-LENGTH (8) | ADDRESS ... |
/// ```
/// `address` holds exactly ceil(source / 8) bytes; the rest is implied zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSubnet<'a> {
    /// 1 = IPv4, 2 = IPv6 (the only families accepted).
    pub family: u16,
    pub source_prefix: u8,
    pub scope_prefix: u8,
    pub address: &'a [u8],
}

impl ClientSubnet<'_> {
    /// Writes the address padded with zeros, then `/source`: `192.0.2.0/24`.
    pub fn write_address(&self, out: &mut Vec<u8>) {
        if self.family == 1 {
            let mut a = [0u8; 4];
            for (d, s) in a.iter_mut().zip(self.address) {
                *d = *s;
            }
            write_ipv4(a, out);
        } else {
            let mut a = [0u8; 16];
            for (d, s) in a.iter_mut().zip(self.address) {
                *d = *s;
            }
            write_ipv6(a, out);
        }
        out.push(b'/');
        write_u64(self.source_prefix.into(), out);
    }
}

impl<'a> EdnsOption<'a> {
    /// The option's mnemonic if known ("ECS", "EDE", "COOKIE", "NSID", ...).
    pub fn name(&self) -> Option<&'static str> {
        types::edns_option_name(self.code)
    }

    /// Writes the mnemonic, or `OPT<code>` for an unknown option.
    pub fn write_name(&self, out: &mut Vec<u8>) {
        match self.name() {
            Some(n) => out.extend_from_slice(n.as_bytes()),
            None => {
                out.extend_from_slice(b"OPT");
                write_u64(self.code.into(), out);
            }
        }
    }

    /// Decodes the options formatters know; every other code is `Other`.
    pub fn value(&self) -> Result<OptionValue<'a>, DnsError> {
        let bad = DnsError::new(DnsErrorKind::BadEdns, self.offset);
        let d = self.data;
        Ok(match self.code {
            OPTION_ECS => {
                let [f0, f1, source, scope, ref address @ ..] = *d else {
                    return Err(bad);
                };
                let family = u16::from_be_bytes([f0, f1]);
                let max = match family {
                    1 => 32,
                    2 => 128,
                    _ => return Err(bad),
                };
                if source > max || scope > max || address.len() != (source as usize).div_ceil(8) {
                    return Err(bad);
                }
                OptionValue::Ecs(ClientSubnet {
                    family,
                    source_prefix: source,
                    scope_prefix: scope,
                    address,
                })
            }
            OPTION_EDE => {
                let [c0, c1, ref extra_text @ ..] = *d else {
                    return Err(bad);
                };
                OptionValue::Ede {
                    info_code: u16::from_be_bytes([c0, c1]),
                    extra_text,
                }
            }
            OPTION_COOKIE => {
                let ok = d.len() == 8 || (16..=40).contains(&d.len());
                let (Some(client), Some(server), true) = (d.get(..8), d.get(8..), ok) else {
                    return Err(bad);
                };
                OptionValue::Cookie { client, server }
            }
            OPTION_NSID => OptionValue::Nsid(d),
            _ => OptionValue::Other(d),
        })
    }

    /// Writes the value's presentation, as dig shows it in its OPT pseudosection:
    /// - ECS: `192.0.2.0/24/0` (address/source/scope)
    /// - EDE: `18 (Prohibited)` then `: "extra text"` when there is text
    /// - COOKIE: client then server cookie, lower-case hex, no separator
    /// - NSID: lower-case hex, then ` ("text")` (escaped like a character-string)
    /// - others: lower-case hex of the data (empty for no data)
    ///
    /// A malformed ECS, EDE or COOKIE is an error and nothing is written.
    pub fn write_value(&self, out: &mut Vec<u8>) -> Result<(), DnsError> {
        match self.value()? {
            OptionValue::Ecs(ecs) => {
                ecs.write_address(out);
                out.push(b'/');
                write_u64(ecs.scope_prefix.into(), out);
            }
            OptionValue::Ede {
                info_code,
                extra_text,
            } => {
                write_u64(info_code.into(), out);
                if let Some(n) = types::ede_name(info_code) {
                    out.extend_from_slice(b" (");
                    out.extend_from_slice(n.as_bytes());
                    out.push(b')');
                }
                if !extra_text.is_empty() {
                    out.extend_from_slice(b": ");
                    write_quoted(extra_text, out);
                }
            }
            OptionValue::Cookie { client, server } => {
                write_hex_lower(client, out);
                write_hex_lower(server, out);
            }
            OptionValue::Nsid(d) => {
                write_hex_lower(d, out);
                if !d.is_empty() {
                    out.extend_from_slice(b" (\"");
                    write_escaped(d, out);
                    out.extend_from_slice(b"\")");
                }
            }
            OptionValue::Other(d) => write_hex_lower(d, out),
        }
        Ok(())
    }

    /// `NAME: value` (see [`EdnsOption::write_value`]); a malformed value is written as
    /// hex instead, so this never fails.
    pub fn write_presentation(&self, out: &mut Vec<u8>) {
        self.write_name(out);
        out.extend_from_slice(b": ");
        let mark = out.len();
        if self.write_value(out).is_err() {
            out.truncate(mark);
            write_hex_lower(self.data, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::MessageView;
    use super::*;

    /// A response with one answer (compressed owner) and an OPT record with `options`.
    fn msg_with_opt(ttl: u32, options: &[u8]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x83, 0, 1, 0, 1, 0, 0, 0, 1];
        m.extend_from_slice(b"\x03www\x07example\x04test\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0]);
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(options.len() as u16).to_be_bytes());
        m.extend_from_slice(options);
        m
    }

    fn opt(code: u16, data: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn present(o: &EdnsOption<'_>) -> String {
        let mut v = Vec::new();
        o.write_presentation(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn opt_fields_and_full_rcode() {
        // ext rcode 1, version 0, DO set: full rcode = 1 << 4 | 3 = 19
        let m = msg_with_opt(0x0100_8000, &[]);
        let v = MessageView::parse(&m).unwrap();
        let e = v.edns().unwrap().unwrap();
        assert_eq!(e.udp_size, 1232);
        assert_eq!(e.ext_rcode, 1);
        assert_eq!(e.version, 0);
        assert!(e.dnssec_ok());
        assert_eq!(v.header.rcode(), 3);
        assert_eq!(v.rcode(), 0x13);
        assert_eq!(e.options().count(), 0);
        let mut p = Vec::new();
        e.write_presentation(&mut p);
        assert_eq!(p, b"version 0; flags: do; udp: 1232");
        let z = Edns { flags: 0x0001, ..e };
        p.clear();
        z.write_presentation(&mut p);
        assert_eq!(p, b"version 0; flags:; MBZ: 0x0001; udp: 1232");
        // no OPT: header rcode only
        let mut m2 = m.clone();
        m2[11] = 0;
        let v2 = MessageView::parse(&m2).unwrap();
        assert!(v2.edns().is_none());
        assert_eq!(v2.rcode(), 3);
    }

    #[test]
    fn options_presented() {
        let mut o = opt(OPTION_ECS, &[0, 1, 24, 0, 192, 0, 2]);
        o.extend(opt(
            OPTION_ECS,
            &[0, 2, 56, 48, 0x20, 1, 0xd, 0xb8, 0, 1, 2],
        ));
        o.extend(opt(OPTION_EDE, b"\x00\x12blocked \"x\""));
        o.extend(opt(OPTION_EDE, &[0, 99]));
        o.extend(opt(
            OPTION_COOKIE,
            &[0x1c, 0xdd, 0x26, 0xb3, 0x51, 0x64, 0x2f, 0xf7],
        ));
        o.extend(opt(OPTION_NSID, b"ns1"));
        o.extend(opt(12, &[0, 0]));
        o.extend(opt(65001, &[0xab]));
        o.extend(opt(OPTION_ECS, &[0, 1, 24, 0, 192, 0])); // bad: 2 address bytes for /24
        let m = msg_with_opt(0, &o);
        let v = MessageView::parse(&m).unwrap();
        let e = v.edns().unwrap().unwrap();
        let got: Vec<String> = e.options().map(|o| present(&o.unwrap())).collect();
        assert_eq!(
            got,
            [
                "ECS: 192.0.2.0/24/0",
                "ECS: 2001:db8:1:200::/56/48",
                "EDE: 18 (Prohibited): \"blocked \\\"x\\\"\"",
                "EDE: 99",
                "COOKIE: 1cdd26b351642ff7",
                "NSID: 6e7331 (\"ns1\")",
                "PADDING: 0000",
                "OPT65001: ab",
                "ECS: 00011800c000",
            ]
        );
        let last = e.options().last().unwrap().unwrap();
        assert_eq!(last.value().unwrap_err().kind, DnsErrorKind::BadEdns);
    }

    #[test]
    fn truncated_options_error_once() {
        let mut o = opt(OPTION_NSID, b"abc");
        o.extend_from_slice(&[0, 3, 0, 9, 1]);
        let m = msg_with_opt(0, &o);
        let v = MessageView::parse(&m).unwrap();
        let e = v.edns().unwrap().unwrap();
        let all: Vec<_> = e.options().collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].is_ok());
        assert_eq!(all[1].unwrap_err().kind, DnsErrorKind::Truncated);
        // only 3 header bytes left
        let m = msg_with_opt(0, &[0, 3, 0]);
        let v = MessageView::parse(&m).unwrap();
        let e = v.edns().unwrap().unwrap();
        assert!(e.options().next().unwrap().is_err());
    }

    #[test]
    fn cookie_lengths() {
        let check = |len: usize| {
            let o = EdnsOption {
                code: OPTION_COOKIE,
                data: &[7u8; 48][..len],
                offset: 0,
            };
            o.value().is_ok()
        };
        assert!(check(8));
        assert!(check(16));
        assert!(check(40));
        assert!(!check(0));
        assert!(!check(9));
        assert!(!check(41));
    }

    #[test]
    fn non_root_opt_owner_is_bad() {
        let mut m = msg_with_opt(0, &[]);
        // replace the OPT owner (root, 1 byte) by a pointer to the qname
        let at = m.len() - 11;
        m.splice(at..at + 1, [0xc0, 12]);
        let v = MessageView::parse(&m).unwrap();
        assert_eq!(v.edns().unwrap().unwrap_err().kind, DnsErrorKind::BadEdns);
        assert_eq!(v.rcode(), 3);
    }
}
