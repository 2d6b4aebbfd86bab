//! SVCB and HTTPS rdata (RFC 9460) as miekg/dns unpacks and prints them: priority,
//! target, then each parameter as `key="value"`, with miekg's checks and error texts.
#![forbid(unsafe_code)]

use super::gofmt::{write_base64, write_ip};
use super::wire::{num, sp, write_ddd, Fail, Reader};

/// SVCB/HTTPS: priority, target, then each parameter as `key="value"`.
pub(super) fn write_svcb(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    num(r.u16()?, out);
    sp(out);
    r.name(out)?;
    let mut last: Option<u16> = None;
    while !r.done() {
        let hdr = r
            .msg
            .get(r.pos..r.pos + 4)
            .ok_or(Fail::new("dns: overflow unpacking SVCB"))?;
        let key = u16::from_be_bytes([hdr[0], hdr[1]]);
        let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
        let value = r
            .msg
            .get(r.pos + 4..r.pos + 4 + len)
            .ok_or(Fail::new("dns: overflow unpacking SVCB"))?;
        if key == 65535 {
            return Err(Fail::new("dns: bad SVCB key"));
        }
        sp(out);
        write_svc_key(key, out);
        out.extend_from_slice(b"=\"");
        write_svc_value(key, value, out)?;
        out.push(b'"');
        if last.is_some_and(|k| key <= k) {
            return Err(Fail::new("dns: SVCB keys not in strictly increasing order"));
        }
        last = Some(key);
        r.pos += 4 + len;
    }
    Ok(())
}

fn write_svc_key(key: u16, out: &mut Vec<u8>) {
    let name: &[u8] = match key {
        0 => b"mandatory",
        1 => b"alpn",
        2 => b"no-default-alpn",
        3 => b"port",
        4 => b"ipv4hint",
        5 => b"ech",
        6 => b"ipv6hint",
        7 => b"dohpath",
        _ => {
            out.extend_from_slice(b"key");
            num(key, out);
            return;
        }
    };
    out.extend_from_slice(name);
}

fn write_svc_value(key: u16, v: &[u8], out: &mut Vec<u8>) -> Result<(), Fail> {
    match key {
        0 => {
            if v.len() % 2 != 0 {
                return Err(Fail::new(
                    "dns: svcbmandatory: value length is not a multiple of 2",
                ));
            }
            for (i, k) in v.chunks_exact(2).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_svc_key(u16::from_be_bytes([k[0], k[1]]), out);
            }
        }
        1 => {
            let mut i = 0;
            let mut first = true;
            while i < v.len() {
                let n = v[i] as usize;
                let id = v
                    .get(i + 1..i + 1 + n)
                    .ok_or(Fail::new("dns: svcbalpn: alpn array overflowing"))?;
                if !first {
                    out.push(b',');
                }
                first = false;
                // Commas and backslashes doubly escaped, as miekg writes them.
                for &b in id {
                    match b {
                        b'"' | b';' | b' ' => {
                            out.push(b'\\');
                            out.push(b);
                        }
                        b',' => out.extend_from_slice(b"\\\\\\044"),
                        b'\\' => out.extend_from_slice(b"\\\\\\092"),
                        b'!'..=b'~' => out.push(b),
                        _ => write_ddd(b, out),
                    }
                }
                i += 1 + n;
            }
        }
        2 => {
            if !v.is_empty() {
                return Err(Fail::new(
                    "dns: svcbnodefaultalpn: no-default-alpn must have no value",
                ));
            }
        }
        3 => {
            let &[a, b] = v else {
                return Err(Fail::new(
                    "dns: svcbport: port length is not exactly 2 octets",
                ));
            };
            num(u16::from_be_bytes([a, b]), out);
        }
        4 => {
            if v.is_empty() || v.len() % 4 != 0 {
                return Err(Fail::new(
                    "dns: svcbipv4hint: ipv4 address byte array length is not a multiple of 4",
                ));
            }
            for (i, a) in v.chunks_exact(4).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_ip(a, out);
            }
        }
        5 => write_base64(v, out),
        6 => {
            if v.is_empty() || v.len() % 16 != 0 {
                return Err(Fail::new(
                    "dns: svcbipv6hint: ipv6 address byte array length not a multiple of 16",
                ));
            }
            for (i, a) in v.chunks_exact(16).enumerate() {
                if a[..10].iter().all(|&b| b == 0) && a[10] == 0xff && a[11] == 0xff {
                    return Err(Fail::new("dns: svcbipv6hint: expected ipv6, got ipv4"));
                }
                if i > 0 {
                    out.push(b',');
                }
                write_ip(a, out);
            }
        }
        _ => {
            for &b in v {
                match b {
                    b'"' | b';' | b' ' | b'\\' => {
                        out.push(b'\\');
                        out.push(b);
                    }
                    b' '..=b'~' => out.push(b),
                    _ => write_ddd(b, out),
                }
            }
        }
    }
    Ok(())
}
