//! [`SyslogWriter`]: one record as one syslog message, framed with RFC 6587 octet counting
//! (`LEN SP MSG`) into the output's chunk. The stream transports send the chunk as it is;
//! the datagram ones take the framing off and send each message alone. Sans-io apart from
//! reading the clock (the message's TIMESTAMP is when it is written). Knows nothing of
//! sockets.
//!
//! ```text
//!  RFC 5424:  <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
//!             <30>1 2026-12-07T07:04:28.123456+00:00 ns1 dnstap-receiver 4242 CLIENT_QUERY - {"...
//!  RFC 3164:  <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG
//!             <30>Dec  7 07:04:28 ns1 dnstap-receiver[4242]: {"...
//!             (to the local socket, without HOSTNAME, as glibc's syslog(3) writes it)
//!  PRI = facility * 8 + severity; MSGID = the dnstap message type; MSG = the format's
//!  line without its trailing newline, cut to `max-message-size` (whole UTF-8 characters).
//! ```
#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use crate::dnstap::message_type_name;
use crate::format::escape::{civil_from_days, write_timestamp};
use crate::format::Formatter;
use crate::record::{Record, Timestamp};
use crate::sink::RecordWriter;

/// Which header the messages carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rfc {
    Rfc5424,
    Rfc3164,
}

/// The message settings, validated (`config` checks the fields' character sets and sizes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageConf {
    pub rfc: Rfc,
    /// 0..=23.
    pub facility: u8,
    /// 0..=7.
    pub severity: u8,
    /// Printable ASCII, 1..=255 bytes.
    pub hostname: String,
    /// Printable ASCII, 1..=48 bytes.
    pub app_name: String,
    /// Most bytes of one message, header included (longer ones are cut).
    pub max_message: usize,
    /// RFC 3164 without HOSTNAME (the local socket).
    pub local: bool,
}

/// Writes records as framed syslog messages.
#[derive(Debug)]
pub struct SyslogWriter {
    formatter: Formatter,
    rfc: Rfc,
    /// `<PRI>` (with `1 ` for RFC 5424).
    pri: Vec<u8>,
    /// What follows the timestamp up to MSGID: ` HOSTNAME APP-NAME PROCID ` (5424) or
    /// ` HOSTNAME TAG[PID]: ` (3164).
    middle: Vec<u8>,
    max_message: usize,
    /// The message being built (reused: no allocation per record once grown).
    msg: Vec<u8>,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl SyslogWriter {
    pub fn new(formatter: Formatter, conf: &MessageConf) -> SyslogWriter {
        let pri_value = u32::from(conf.facility) * 8 + u32::from(conf.severity);
        let mut pri = format!("<{pri_value}>").into_bytes();
        let pid = std::process::id();
        let middle = match conf.rfc {
            Rfc::Rfc5424 => {
                pri.extend_from_slice(b"1 ");
                format!(" {} {} {pid} ", conf.hostname, conf.app_name)
            }
            Rfc::Rfc3164 if conf.local => format!(" {}[{pid}]: ", conf.app_name),
            Rfc::Rfc3164 => format!(" {} {}[{pid}]: ", conf.hostname, conf.app_name),
        };
        SyslogWriter {
            formatter,
            rfc: conf.rfc,
            pri,
            middle: middle.into_bytes(),
            max_message: conf.max_message.max(64),
            msg: Vec::with_capacity(4096),
        }
    }

    /// One message for `rec` at time `now`, appended to `out` framed as `LEN SP MSG`.
    pub fn write_at(&mut self, rec: &Record<'_>, now: Timestamp, out: &mut Vec<u8>) {
        let m = &mut self.msg;
        m.clear();
        m.extend_from_slice(&self.pri);
        match self.rfc {
            Rfc::Rfc5424 => {
                write_timestamp(now, b'T', m);
                m.extend_from_slice(&self.middle);
                let msgid = rec.message_type.and_then(message_type_name);
                m.extend_from_slice(msgid.unwrap_or("-").as_bytes());
                m.extend_from_slice(b" - ");
            }
            Rfc::Rfc3164 => {
                write_3164_time(now.sec, m);
                m.extend_from_slice(&self.middle);
            }
        }
        self.formatter.write(rec, m);
        while matches!(m.last(), Some(b'\n' | b'\r')) {
            m.pop();
        }
        if m.len() > self.max_message {
            // Cut on a character boundary: never half a UTF-8 sequence.
            let mut end = self.max_message;
            while end > 0 && (m[end] & 0xc0) == 0x80 {
                end -= 1;
            }
            m.truncate(end);
        }
        out.extend_from_slice(itoa::Buffer::new().format(m.len()).as_bytes());
        out.push(b' ');
        out.extend_from_slice(m);
    }
}

impl RecordWriter for SyslogWriter {
    #[inline]
    fn write_record(&mut self, rec: &Record<'_>, out: &mut Vec<u8>) {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now = Timestamp {
            sec: d.as_secs(),
            nsec: d.subsec_nanos(),
        };
        self.write_at(rec, now, out);
    }

    fn set_sample_rate(&mut self, rate: u32) {
        self.formatter.sample_rate = rate.max(1);
    }
}

/// `Mmm dd hh:mm:ss` (UTC; the day padded with a space), RFC 3164 §4.1.2.
fn write_3164_time(sec: u64, out: &mut Vec<u8>) {
    let days = (sec / 86_400) as i64;
    let s = sec % 86_400;
    let (_, month, day) = civil_from_days(days);
    out.extend_from_slice(MONTHS[(month - 1) as usize]);
    out.push(b' ');
    out.push(if day >= 10 {
        b'0' + (day / 10) as u8
    } else {
        b' '
    });
    out.push(b'0' + (day % 10) as u8);
    for (i, v) in [s / 3600, s / 60 % 60, s % 60].into_iter().enumerate() {
        out.push(if i == 0 { b' ' } else { b':' });
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    }
}

/// Splits a chunk of framed messages: the next message and its end offset in `data` from
/// `at` (`None` at the end, or on framing this module did not write).
pub fn next_message(data: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = data.get(at..)?;
    let sp = rest.iter().take(10).position(|&b| b == b' ')?;
    let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
    let start = sp + 1;
    let msg = rest.get(start..start + len)?;
    Some((msg, at + start + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatKind;

    fn conf(rfc: Rfc) -> MessageConf {
        MessageConf {
            rfc,
            facility: 3,
            severity: 6,
            hostname: "ns1.example".into(),
            app_name: "dnstap".into(),
            max_message: 8192,
            local: false,
        }
    }

    fn rec() -> Record<'static> {
        Record {
            identity: Some(b"ns1"),
            message_type: Some(5),
            ..Record::default()
        }
    }

    const NOW: Timestamp = Timestamp {
        sec: 1_796_000_000,
        nsec: 123_456_789,
    };

    fn one(w: &mut SyslogWriter) -> String {
        let mut out = Vec::new();
        w.write_at(&rec(), NOW, &mut out);
        let (msg, end) = next_message(&out, 0).expect("framed");
        assert_eq!(end, out.len());
        assert!(next_message(&out, end).is_none());
        String::from_utf8(msg.to_vec()).unwrap()
    }

    #[test]
    fn rfc5424_header_then_the_json_line() {
        let mut w = SyslogWriter::new(Formatter::new(FormatKind::Json), &conf(Rfc::Rfc5424));
        let m = one(&mut w);
        let head = format!(
            "<30>1 2026-11-30T00:53:20.123456+00:00 ns1.example dnstap {} CLIENT_QUERY - {{",
            std::process::id()
        );
        assert!(m.starts_with(&head), "{m}");
        assert!(m.ends_with('}'), "no trailing newline: {m:?}");
    }

    #[test]
    fn rfc3164_header_with_and_without_hostname() {
        let mut w = SyslogWriter::new(Formatter::new(FormatKind::Text), &conf(Rfc::Rfc3164));
        let m = one(&mut w);
        let pid = std::process::id();
        assert!(
            m.starts_with(&format!("<30>Nov 30 00:53:20 ns1.example dnstap[{pid}]: ")),
            "{m}"
        );
        let mut c = conf(Rfc::Rfc3164);
        c.local = true;
        let mut w = SyslogWriter::new(Formatter::new(FormatKind::Text), &c);
        assert!(one(&mut w).starts_with(&format!("<30>Nov 30 00:53:20 dnstap[{pid}]: ")));
        let mut b = Vec::new();
        write_3164_time(1_796_000_000 + 2 * 86_400, &mut b);
        assert_eq!(b, b"Dec  2 00:53:20");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let mut c = conf(Rfc::Rfc5424);
        c.max_message = 100;
        let mut w = SyslogWriter::new(Formatter::new(FormatKind::JsonFull), &c);
        let m = one(&mut w);
        assert!(m.len() <= 100 && m.len() > 90, "{}", m.len());
    }

    #[test]
    fn several_messages_split_back() {
        let mut w = SyslogWriter::new(Formatter::new(FormatKind::Yaml), &conf(Rfc::Rfc5424));
        let mut out = Vec::new();
        for _ in 0..3 {
            w.write_at(&rec(), NOW, &mut out);
        }
        let mut at = 0;
        let mut n = 0;
        while let Some((m, end)) = next_message(&out, at) {
            assert!(m.starts_with(b"<30>1 "));
            at = end;
            n += 1;
        }
        assert_eq!((n, at), (3, out.len()));
        assert!(next_message(b"12x", 0).is_none());
        assert!(next_message(b"99 short", 0).is_none());
    }
}
