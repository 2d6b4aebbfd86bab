//! `--verify URL`: checks a run against the receiver's own Prometheus counters. A scrape
//! before the run gives the baseline; after it, the endpoint is polled until the counters
//! stop moving (bounded), then the deltas must show every message sent as received, and every
//! received message as written, filtered (by the prefilters, or removed by the global
//! transforms), dropped or undecodable:
//!
//! ```text
//!  Δ frames_received == sent
//!  Δ frames_received == Δ (messages_written + messages_filtered + records_filtered
//!                          + messages_dropped + decode_errors)
//! ```
//!
//! Plain HTTP only (`http://[user:password@]host:port/path`), one request per connection,
//! with timeouts. Knows the metric names of docs/metrics.md; nothing of Frame Streams.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The counters the check reads (sums over every label set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    pub written: u64,
    pub filtered: u64,
    /// Decoded records the global transforms removed (`records_filtered_total`, every reason).
    pub transformed_out: u64,
    pub dropped: u64,
    pub decode_errors: u64,
    pub queue_depth: u64,
}

impl Counters {
    /// Received messages the receiver has accounted for.
    pub fn accounted(&self) -> u64 {
        self.written + self.filtered + self.transformed_out + self.dropped + self.decode_errors
    }

    fn minus(&self, base: &Counters) -> Counters {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        Counters {
            received: d(self.received, base.received),
            written: d(self.written, base.written),
            filtered: d(self.filtered, base.filtered),
            transformed_out: d(self.transformed_out, base.transformed_out),
            dropped: d(self.dropped, base.dropped),
            decode_errors: d(self.decode_errors, base.decode_errors),
            queue_depth: self.queue_depth,
        }
    }
}

/// Where the metrics are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` to connect to.
    authority: String,
    path: String,
    /// `user:password`, base64-encoded for `Authorization: Basic`.
    basic: Option<String>,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--verify {url}: only http:// URLs are supported"))?;
        let (auth_host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/metrics"),
        };
        let (basic, authority) = match auth_host.rsplit_once('@') {
            Some((cred, host)) => (Some(base64(cred.as_bytes())), host),
            None => (None, auth_host),
        };
        if authority.is_empty() || !authority.contains(':') {
            return Err(format!("--verify {url}: give host:port"));
        }
        Ok(Endpoint {
            authority: authority.to_string(),
            path: path.to_string(),
            basic,
        })
    }

    /// One scrape: the body of a 200 response.
    pub fn get(&self) -> Result<String, String> {
        let timeout = Duration::from_secs(5);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&self.authority)
            .map_err(|e| format!("{}: {e}", self.authority))?
            .next()
            .ok_or_else(|| format!("{}: no address", self.authority))?;
        let mut s = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("{}: {e}", self.authority))?;
        let _ = s.set_read_timeout(Some(timeout));
        let _ = s.set_write_timeout(Some(timeout));
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.path, self.authority
        );
        if let Some(b) = &self.basic {
            req.push_str(&format!("Authorization: Basic {b}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())
            .map_err(|e| format!("{}: {e}", self.authority))?;
        let mut resp = Vec::new();
        s.take(64 << 20)
            .read_to_end(&mut resp)
            .map_err(|e| format!("{}: {e}", self.authority))?;
        let resp = String::from_utf8_lossy(&resp);
        let (head, body) = resp
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("{}: no HTTP response", self.authority))?;
        let status = head.lines().next().unwrap_or_default();
        if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
            return Err(format!("{}{}: {status}", self.authority, self.path));
        }
        Ok(body.to_string())
    }

    pub fn counters(&self) -> Result<Counters, String> {
        let body = self.get()?;
        let c = parse(&body);
        if c.is_none() {
            return Err(format!(
                "{}{}: not the receiver's metrics (no dnstap_receiver_frames_received_total)",
                self.authority, self.path
            ));
        }
        Ok(c.unwrap_or_default())
    }
}

/// Sums each counter of interest over its label sets; `None` when the page does not have
/// `frames_received_total`.
pub fn parse(text: &str) -> Option<Counters> {
    let mut c = Counters::default();
    let mut seen = false;
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let Some(name) = line[..name_end].strip_prefix("dnstap_receiver_") else {
            continue;
        };
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let v = value as u64;
        match name {
            "frames_received_total" => {
                seen = true;
                c.received += v;
            }
            "messages_written_total" => c.written += v,
            "messages_filtered_total" => c.filtered += v,
            "records_filtered_total" => c.transformed_out += v,
            "messages_dropped_total" => c.dropped += v,
            "decode_errors_total" => c.decode_errors += v,
            "queue_depth" => c.queue_depth += v,
            _ => {}
        }
    }
    seen.then_some(c)
}

/// The outcome of a check, as lines for the report.
#[derive(Debug)]
pub struct Verdict {
    pub ok: bool,
    pub lines: Vec<String>,
}

/// Polls until two scrapes in a row agree and the queue is empty (at most `wait`), then
/// checks the deltas from `base` against `sent`.
pub fn check(ep: &Endpoint, base: &Counters, sent: u64, wait: Duration) -> Verdict {
    let t0 = Instant::now();
    let mut prev: Option<Counters> = None;
    let mut last_err = None;
    let now = loop {
        match ep.counters() {
            Ok(c) => {
                let settled = c.queue_depth == 0
                    && c.accounted() == c.received
                    && c.received.saturating_sub(base.received) >= sent;
                if prev == Some(c) && settled {
                    break Some(c);
                }
                prev = Some(c);
            }
            Err(e) => last_err = Some(e),
        }
        if t0.elapsed() >= wait {
            break prev;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let Some(now) = now else {
        return Verdict {
            ok: false,
            lines: vec![format!(
                "verify: no scrape succeeded: {}",
                last_err.unwrap_or_default()
            )],
        };
    };
    let d = now.minus(base);
    let mut lines = vec![format!(
        "verify: sent={sent} received={} written={} filtered={} transform-filtered={} \
         dropped={} decode-errors={} queue-depth={}",
        d.received,
        d.written,
        d.filtered,
        d.transformed_out,
        d.dropped,
        d.decode_errors,
        d.queue_depth
    )];
    let mut ok = true;
    if d.received != sent {
        ok = false;
        lines.push(format!(
            "verify: MISMATCH received {} of {sent} sent (shortfall {})",
            d.received,
            sent as i128 - d.received as i128
        ));
    }
    if d.accounted() != d.received {
        ok = false;
        lines.push(format!(
            "verify: MISMATCH written+filtered+transform-filtered+dropped+decode-errors = {} \
             but received = {} \
             (unaccounted {})",
            d.accounted(),
            d.received,
            d.received as i128 - d.accounted() as i128
        ));
    }
    if ok {
        lines.push("verify: OK".into());
    }
    Verdict { ok, lines }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | (x as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
            ("prom:s3cret", "cHJvbTpzM2NyZXQ="),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn url_forms() {
        let e = Endpoint::parse("http://127.0.0.1:9100").unwrap();
        assert_eq!(
            (e.authority.as_str(), e.path.as_str()),
            ("127.0.0.1:9100", "/metrics")
        );
        let e = Endpoint::parse("http://u:p@[::1]:9/m").unwrap();
        assert_eq!(e.authority, "[::1]:9");
        assert_eq!(e.path, "/m");
        assert_eq!(e.basic.as_deref(), Some("dTpw"));
        assert!(Endpoint::parse("https://x:1/").is_err());
        assert!(Endpoint::parse("http://x/").is_err());
    }

    #[test]
    fn sums_over_labels() {
        let text = "\
# HELP dnstap_receiver_frames_received_total x
# TYPE dnstap_receiver_frames_received_total counter
dnstap_receiver_frames_received_total 11
dnstap_receiver_messages_written_total 6
dnstap_receiver_messages_filtered_total 1
dnstap_receiver_records_filtered_total{reason=\"rcode\"} 1
dnstap_receiver_records_filtered_total{reason=\"qtype\"} 0
dnstap_receiver_messages_dropped_total{reason=\"queue_full\"} 2
dnstap_receiver_messages_dropped_total{reason=\"writer_gone\"} 0
dnstap_receiver_decode_errors_total{kind=\"dnstap\"} 1
dnstap_receiver_input_frames_total{input=\"tcp 1\"} 10
dnstap_receiver_queue_depth 0
";
        let c = parse(text).unwrap();
        assert_eq!((c.received, c.dropped, c.accounted()), (11, 2, 11));
        assert_eq!(c.transformed_out, 1);
        assert_eq!(parse("other_metric 1\n"), None);
    }
}
