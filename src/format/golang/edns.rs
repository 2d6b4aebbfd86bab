//! The OPT pseudosection's option lines as miekg/dns's `OPT.String()` writes them (NSID,
//! SUBNET, COOKIE, KEEPALIVE, UPDATE LEASE, LONG LIVED QUERIES, the algorithm lists,
//! PADDING, EDE; any other code as `LOCAL OPT`), with its unpacking checks.
#![forbid(unsafe_code)]

use super::gofmt::{write_hex_lower, write_hex_upper, write_ip};
use super::tables::{algorithm_name, hash_name};
use super::wire::{num, sp, Fail, ERR_BUF};
use crate::dns::types::ede_name_rfc8914;

/// The EDNS options of an OPT record at `start..msg.len()`, each on its own line as
/// miekg's `OPT.String()` writes them (options it does not know print as `LOCAL OPT`).
pub(super) fn write_edns_options(msg: &[u8], start: usize, out: &mut Vec<u8>) -> Result<(), Fail> {
    let mut pos = start;
    while pos < msg.len() {
        let hdr = msg
            .get(pos..pos + 4)
            .ok_or(Fail::new("dns: overflow unpacking opt"))?;
        let code = u16::from_be_bytes([hdr[0], hdr[1]]);
        let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
        let data = msg
            .get(pos + 4..pos + 4 + len)
            .ok_or(Fail::new("dns: overflow unpacking opt"))?;
        write_option(code, data, out)?;
        pos += 4 + len;
    }
    Ok(())
}

fn write_option(code: u16, d: &[u8], out: &mut Vec<u8>) -> Result<(), Fail> {
    match code {
        3 => {
            out.extend_from_slice(b"\n; NSID: ");
            write_hex_lower(d, out);
            // Each byte as the character of that code point, in parentheses.
            out.extend_from_slice(b"  ");
            for &b in d {
                out.push(b'(');
                if b < 0x80 {
                    out.push(b);
                } else {
                    out.push(0xc0 | b >> 6);
                    out.push(0x80 | (b & 0x3f));
                }
                out.push(b')');
            }
        }
        8 => {
            out.extend_from_slice(b"\n; SUBNET: ");
            write_subnet(d, out)?;
        }
        10 => {
            out.extend_from_slice(b"\n; COOKIE: ");
            write_hex_lower(d, out);
        }
        // EXPIRE: unpacked (and checked) but not among the options miekg 1.1 prints.
        9 => {
            // Empty, or at least the 32-bit value (more is ignored).
            if (1..4).contains(&d.len()) {
                return Err(ERR_BUF);
            }
        }
        11 => {
            out.extend_from_slice(b"\n; KEEPALIVE: use tcp keep-alive");
            match *d {
                [] => out.extend_from_slice(b", timeout omitted"),
                [a, b] => {
                    let t = u16::from_be_bytes([a, b]);
                    if t == 0 {
                        out.extend_from_slice(b", timeout omitted");
                    } else {
                        out.extend_from_slice(b", timeout ");
                        num(u64::from(t) * 100, out);
                        out.extend_from_slice(b"ms");
                    }
                }
                _ => {
                    return Err(Fail {
                        text: "dns: length mismatch, want 0/2 but got ",
                        number: Some(d.len()),
                    })
                }
            }
        }
        2 => {
            out.extend_from_slice(b"\n; UPDATE LEASE: ");
            let (lease, key_lease) = match *d {
                [a, b, c, e] => (u32::from_be_bytes([a, b, c, e]), 0),
                [a, b, c, e, f, g, h, i] => (
                    u32::from_be_bytes([a, b, c, e]),
                    u32::from_be_bytes([f, g, h, i]),
                ),
                _ => return Err(ERR_BUF),
            };
            num(lease, out);
            sp(out);
            num(key_lease, out);
        }
        1 => {
            out.extend_from_slice(b"\n; LONG LIVED QUERIES: ");
            if d.len() < 18 {
                return Err(ERR_BUF);
            }
            let be16 = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
            for i in [0, 2, 4] {
                num(be16(i), out);
                sp(out);
            }
            num(
                u64::from_be_bytes(d[6..14].try_into().unwrap_or_default()),
                out,
            );
            sp(out);
            num(
                u32::from_be_bytes(d[14..18].try_into().unwrap_or_default()),
                out,
            );
        }
        5..=7 => {
            out.extend_from_slice(match code {
                5 => b"\n; DNSSEC ALGORITHM UNDERSTOOD: ".as_slice(),
                6 => b"\n; DS HASH UNDERSTOOD: ",
                _ => b"\n; NSEC3 HASH UNDERSTOOD: ",
            });
            for &a in d {
                sp(out);
                let name = if code == 5 {
                    algorithm_name(a)
                } else {
                    hash_name(a)
                };
                match name {
                    Some(s) => out.extend_from_slice(s.as_bytes()),
                    None => num(a, out),
                }
            }
        }
        12 => {
            out.extend_from_slice(b"\n; PADDING: ");
            write_hex_upper(d, out);
        }
        15 => {
            out.extend_from_slice(b"\n; EDE: ");
            let (Some(&a), Some(&b)) = (d.first(), d.get(1)) else {
                return Err(ERR_BUF);
            };
            let info = u16::from_be_bytes([a, b]);
            num(info, out);
            if let Some(name) = ede_name_rfc8914(info) {
                out.extend_from_slice(b" (");
                out.extend_from_slice(name.as_bytes());
                out.push(b')');
            }
            out.extend_from_slice(b": (");
            out.extend_from_slice(&d[2..]);
            out.push(b')');
        }
        _ => {
            out.extend_from_slice(b"\n; LOCAL OPT: ");
            num(code, out);
            out.extend_from_slice(b":0x");
            write_hex_lower(d, out);
        }
    }
    Ok(())
}

/// EDNS Client Subnet (RFC 7871): `address/source/scope`, an IPv6 address in brackets.
fn write_subnet(d: &[u8], out: &mut Vec<u8>) -> Result<(), Fail> {
    let &[f0, f1, source, scope, ref addr @ ..] = d else {
        return Err(ERR_BUF);
    };
    let family = u16::from_be_bytes([f0, f1]);
    let mut a = [0u8; 16];
    match family {
        0 => {
            if source != 0 {
                return Err(Fail::new("dns: bad address family"));
            }
            out.extend_from_slice(b"0.0.0.0");
        }
        1 => {
            if source > 32 || scope > 32 {
                return Err(Fail::new("dns: bad netmask"));
            }
            let n = addr.len().min(4);
            a[..n].copy_from_slice(&addr[..n]);
            write_ip(&a[..4], out);
        }
        2 => {
            if source > 128 || scope > 128 {
                return Err(Fail::new("dns: bad netmask"));
            }
            let n = addr.len().min(16);
            a[..n].copy_from_slice(&addr[..n]);
            if a[..10].iter().all(|&b| b == 0) && a[10] == 0xff && a[11] == 0xff {
                write_ip(&a, out);
            } else {
                out.push(b'[');
                write_ip(&a, out);
                out.push(b']');
            }
        }
        _ => return Err(Fail::new("dns: bad address family")),
    }
    out.push(b'/');
    num(source, out);
    out.push(b'/');
    num(scope, out);
    Ok(())
}
