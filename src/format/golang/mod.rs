//! The `dnstap` CLI's output formats (golang-dnstap 0.4 as Debian ships it, with miekg/dns
//! for the DNS messages), byte for byte, for users who move from `dnstap -r FILE -q|-y|-j`:
//!
//! - [`write_text`] (`golang-text`, `-q`): one line per message,
//!   `22:13:20.123456 CQ 127.0.0.1 UDP 29b "example.com." IN A`;
//! - [`write_yaml`] (`golang-yaml`, `-y`): one YAML document per message, the DNS
//!   messages as dig-like literal blocks;
//! - [`write_json`] (`golang-json`, `-j`): one JSON object per line, the same dig-like
//!   text as strings.
//!
//! [`gofmt`] renders Go values (addresses, times, quoted strings); [`dig`] (the message),
//! [`rdata`], [`svcb`] and [`edns`] follow miekg's unpacking and `String()` methods over
//! [`wire`] (its errors, names and field reader); [`tables`] holds its names. Everything
//! is written into the caller's buffer; the YAML indentation and the JSON escaping of the
//! dig text are applied in that buffer (the raw text is written past the end, transformed
//! behind it, then removed), so nothing allocates per record.
//!
//! Differences from the CLI, all outside what the lab's servers send, are listed in
//! docs/formats.md ("golang-text, golang-yaml, golang-json").
#![forbid(unsafe_code)]

mod dig;
mod edns;
mod gofmt;
mod rdata;
mod svcb;
mod tables;
mod wire;

use crate::dns::write_u64;
use crate::record::{Record, Timestamp};

use tables::{dnstap_type_name, family_name, message_type_name, protocol_name, write_enum};

/// Message types the quiet text prints, with their two-letter mnemonic; `None` for the
/// types it does not handle (it prints `[unhandled Message.Type]`).
fn mnemonic(t: u32) -> Option<&'static [u8; 2]> {
    Some(match t {
        1 => b"AQ",
        2 => b"AR",
        3 => b"RQ",
        4 => b"RR",
        5 => b"CQ",
        6 => b"CR",
        7 => b"FQ",
        8 => b"FR",
        11 => b"TQ",
        12 => b"TR",
        13 => b"UQ",
        14 => b"UR",
        _ => return None,
    })
}

/// `-q`: time, mnemonic, address, protocol, size, question.
pub fn write_text(rec: &Record<'_>, out: &mut Vec<u8>) {
    if rec.kind != Some(1) {
        return; // the CLI prints nothing for non-MESSAGE payloads
    }
    let t = rec.message_type.unwrap_or(0);
    let Some(m) = mnemonic(t) else {
        out.extend_from_slice(b"[unhandled Message.Type]\n");
        return;
    };
    let query = t % 2 == 1;
    let time = if query {
        rec.query_time
    } else {
        rec.response_time
    };
    match time {
        Some(Timestamp { sec, nsec }) => gofmt::write_quiet_time(sec, nsec, out),
        None => out.extend_from_slice(b"??:??:??.??????"),
    }
    out.push(b' ');
    out.extend_from_slice(m);
    out.push(b' ');
    // Client and auth messages show the client (query) address; the others the server.
    let addr = if matches!(t, 1 | 2 | 5 | 6) {
        rec.query_address
    } else {
        rec.response_address
    };
    match addr {
        Some(a) => gofmt::write_ip(a, out),
        None => out.extend_from_slice(b"MISSING_ADDRESS"),
    }
    out.push(b' ');
    if let Some(p) = rec.socket_protocol {
        write_enum(Some(p), protocol_name, out);
    }
    out.push(b' ');
    let msg = if query {
        rec.query_message
    } else {
        rec.response_message
    }
    .unwrap_or(&[]);
    write_u64(msg.len() as u64, out);
    out.extend_from_slice(b"b ");
    // The question is printed only when miekg unpacks the whole message.
    let mark = out.len();
    let counts = dig::write_message(msg, out);
    out.truncate(mark);
    let question = counts.ok().and_then(|c| dig::first_question(msg, &c));
    match question {
        Some((name, qtype, qclass)) => {
            out.push(b'"');
            wire::write_name(msg, name, out);
            out.extend_from_slice(b"\" ");
            tables::write_class(qclass, out);
            out.push(b' ');
            tables::write_rtype(qtype, out);
        }
        None => out.extend_from_slice(b"X "),
    }
    out.push(b'\n');
}

/// Writes the dig text of `msg` at the end of `out`; `Err` (miekg's error text) leaves
/// `out` as it was.
fn write_dig(msg: &[u8], out: &mut Vec<u8>) -> Result<(), wire::Fail> {
    dig::write_message(msg, out).map(|_| ())
}

/// `-y`: one YAML document, `---` after it.
pub fn write_yaml(rec: &Record<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"type: ");
    write_enum(rec.kind, dnstap_type_name, out);
    out.push(b'\n');
    if let Some(id) = rec.identity {
        out.extend_from_slice(b"identity: ");
        gofmt::write_go_quote(id, out);
        out.push(b'\n');
    }
    if let Some(v) = rec.version {
        out.extend_from_slice(b"version: ");
        gofmt::write_go_quote(v, out);
        out.push(b'\n');
    }
    if rec.kind != Some(1) {
        return;
    }
    out.extend_from_slice(b"message:\n  type: ");
    write_enum(rec.message_type, message_type_name, out);
    out.push(b'\n');
    for (key, ts) in [
        (&b"  query_time: !!timestamp "[..], rec.query_time),
        (b"  response_time: !!timestamp ", rec.response_time),
    ] {
        if let Some(Timestamp { sec, nsec }) = ts {
            out.extend_from_slice(key);
            gofmt::write_yaml_time(sec, nsec, out);
            out.push(b'\n');
        }
    }
    if rec.socket_family.is_some() {
        out.extend_from_slice(b"  socket_family: ");
        write_enum(rec.socket_family, family_name, out);
        out.push(b'\n');
    }
    if rec.socket_protocol.is_some() {
        out.extend_from_slice(b"  socket_protocol: ");
        write_enum(rec.socket_protocol, protocol_name, out);
        out.push(b'\n');
    }
    for (key, a) in [
        (&b"  query_address: "[..], rec.query_address),
        (b"  response_address: ", rec.response_address),
    ] {
        if let Some(a) = a {
            out.extend_from_slice(key);
            gofmt::write_ip(a, out);
            out.push(b'\n');
        }
    }
    for (key, p) in [
        (&b"  query_port: "[..], rec.query_port),
        (b"  response_port: ", rec.response_port),
    ] {
        if let Some(p) = p {
            out.extend_from_slice(key);
            write_u64(p.into(), out);
            out.push(b'\n');
        }
    }
    if let Some(zone) = rec.query_zone {
        let mark = out.len();
        match dig::write_zone(zone, out) {
            Ok(()) => {
                // strconv.Quote of the name: written after it, then moved into place.
                let end = out.len();
                out.extend_from_slice(b"  query_zone: ");
                quote_from(out, mark, end);
                out.push(b'\n');
                out.drain(mark..end);
            }
            Err(e) => {
                out.truncate(mark);
                out.extend_from_slice(b"  # query_zone: parse failed: ");
                e.write(out);
                out.push(b'\n');
            }
        }
    }
    for (key, m) in [
        ("query_message", rec.query_message),
        ("response_message", rec.response_message),
    ] {
        let Some(m) = m else { continue };
        let mark = out.len();
        match write_dig(m, out) {
            Ok(()) => {
                let end = out.len();
                out.extend_from_slice(b"  ");
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b": |\n    ");
                indent_from(out, mark, end);
                out.push(b'\n');
                out.drain(mark..end);
            }
            Err(e) => {
                out.extend_from_slice(b"  # ");
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b": parse failed: ");
                e.write(out);
                out.push(b'\n');
            }
        }
    }
    out.extend_from_slice(b"---\n");
}

/// Appends `strconv.Quote` of `out[from..to]`.
fn quote_from(out: &mut Vec<u8>, from: usize, to: usize) {
    // The name text is ASCII (miekg escapes every other byte), so quoting it only
    // doubles backslashes and escapes quotes; done byte by byte within `out`.
    out.push(b'"');
    for i in from..to {
        let b = out[i];
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends `out[from..to]` as the CLI indents it: `strings.TrimSpace`, then every
/// newline followed by four spaces.
fn indent_from(out: &mut Vec<u8>, from: usize, mut to: usize) {
    loop {
        match out.get(from..to) {
            Some([.., b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c]) => to -= 1,
            Some([.., 0xc2, 0x85 | 0xa0]) => to -= 2,
            _ => break,
        }
    }
    let mut start = from;
    while start < to {
        match out[start] {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => start += 1,
            _ => break,
        }
    }
    for i in start..to {
        let b = out[i];
        out.push(b);
        if b == b'\n' {
            out.extend_from_slice(b"    ");
        }
    }
}

/// `-j`: one JSON object per line. Empty strings and zero ports are left out (Go's
/// `omitempty`); an address of a length other than 0, 4 or 16 makes Go's marshaller
/// fail, and the CLI then prints nothing for the record: so do we.
pub fn write_json(rec: &Record<'_>, out: &mut Vec<u8>) {
    let mark = out.len();
    out.extend_from_slice(b"{\"type\":\"");
    write_json_enum(rec.kind, dnstap_type_name, out);
    out.push(b'"');
    for (key, v) in [
        (&b",\"identity\":\""[..], rec.identity),
        (b",\"version\":\"", rec.version),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.extend_from_slice(key);
            gofmt::write_json_body(v, out);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"message\":{\"type\":\"");
    write_json_enum(rec.message_type, message_type_name, out);
    out.push(b'"');
    for (key, ts) in [
        (&b",\"query_time\":\""[..], rec.query_time),
        (b",\"response_time\":\"", rec.response_time),
    ] {
        if let Some(Timestamp { sec, nsec }) = ts {
            out.extend_from_slice(key);
            gofmt::write_json_time(sec, nsec, out);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"socket_family\":\"");
    write_json_enum(rec.socket_family, family_name, out);
    out.extend_from_slice(b"\",\"socket_protocol\":\"");
    write_json_enum(rec.socket_protocol, protocol_name, out);
    out.push(b'"');
    for (key, a) in [
        (&b",\"query_address\":\""[..], rec.query_address),
        (b",\"response_address\":\"", rec.response_address),
    ] {
        if let Some(a) = a {
            if !matches!(a.len(), 0 | 4 | 16) {
                out.truncate(mark);
                return;
            }
            out.extend_from_slice(key);
            if !a.is_empty() {
                gofmt::write_ip(a, out);
            }
            out.push(b'"');
        }
    }
    for (key, p) in [
        (&b",\"query_port\":"[..], rec.query_port),
        (b",\"response_port\":", rec.response_port),
    ] {
        if let Some(p) = p.filter(|&p| p != 0) {
            out.extend_from_slice(key);
            write_u64(p.into(), out);
        }
    }
    if let Some(zone) = rec.query_zone {
        let start = out.len();
        match dig::write_zone(zone, out) {
            Ok(()) => {
                let end = out.len();
                out.extend_from_slice(b",\"query_zone\":\"");
                json_from(out, start, end);
                out.push(b'"');
                out.drain(start..end);
            }
            Err(e) => {
                out.truncate(start);
                out.extend_from_slice(b",\"query_zone\":\"parse failed: ");
                e.write(out);
                out.push(b'"');
            }
        }
    }
    for (key, m) in [
        (&b",\"query_message\":\""[..], rec.query_message),
        (b",\"response_message\":\"", rec.response_message),
    ] {
        let Some(m) = m else { continue };
        let start = out.len();
        match write_dig(m, out) {
            Ok(()) => {
                let end = out.len();
                out.extend_from_slice(key);
                json_from(out, start, end);
                out.push(b'"');
                out.drain(start..end);
            }
            Err(e) => {
                out.extend_from_slice(key);
                out.extend_from_slice(b"parse failed: ");
                e.write(out);
                out.push(b'"');
            }
        }
    }
    out.extend_from_slice(b"}}\n");
}

/// [`write_enum`] inside a JSON string, where Go escapes the `<>` of `<nil>`.
fn write_json_enum(v: Option<u32>, name: fn(u32) -> Option<&'static str>, out: &mut Vec<u8>) {
    match v {
        None => out.extend_from_slice(b"\\u003cnil\\u003e"),
        Some(_) => write_enum(v, name, out),
    }
}

/// Appends the JSON string body of `out[from..to]`.
fn json_from(out: &mut Vec<u8>, from: usize, to: usize) {
    // PERF: the dig text is ASCII but for EDE texts and NSID; escape it in chunks through
    // a stack buffer, so the UTF-8-aware escaper never borrows `out` twice.
    let mut chunk = [0u8; 256];
    let mut i = from;
    while i < to {
        let mut n = (to - i).min(chunk.len());
        // Do not cut a UTF-8 sequence: back off to a character boundary.
        if i + n < to {
            while n > 1 && (out[i + n] & 0xc0) == 0x80 {
                n -= 1;
            }
        }
        chunk[..n].copy_from_slice(&out[i..i + n]);
        gofmt::write_json_body(&chunk[..n], out);
        i += n;
    }
}
