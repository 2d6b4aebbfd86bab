//! The metrics endpoint: a tiny HTTP/1.1 server on its own thread, serving `GET /metrics`
//! (optionally behind basic auth, optionally over TLS with rustls). One request per
//! connection, at most [`MAX_CLIENTS`] connections at once (each on a short-lived thread): a
//! scraper polls every few seconds, nothing more is needed, and the receiver's threads are
//! never touched by it.
//!
//! Bounded: a request head of at most [`MAX_REQUEST`] bytes, [`IO_TIMEOUT`] per read and
//! write and [`REQUEST_DEADLINE`] for the whole request head, so a client that stalls or
//! trickles holds one of the slots for seconds, not forever. Anything but
//! `GET`/`HEAD` is 405, any path but `/metrics` 404, a missing or wrong `Authorization` 401
//! with `WWW-Authenticate`. Knows HTTP; knows nothing of what the counters mean (the page
//! comes from a closure).
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{MetricsConfig, Password, CONTENT_TYPE};

/// Longest request head (request line and headers) read.
pub const MAX_REQUEST: usize = 8 << 10;
/// Longest wait for one read or write (and for the TLS handshake, which is reads and writes).
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time to receive a whole request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
pub const MAX_CLIENTS: usize = 4;

/// A bound endpoint, ready to serve.
pub struct MetricsServer {
    listener: TcpListener,
    /// `user:password`, as the `Authorization: Basic` value must decode to.
    credentials: Option<Vec<u8>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("listener", &self.listener)
            .field("basic_auth", &self.credentials.is_some())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl MetricsServer {
    /// Reads the password file and the TLS certificate and key, and binds the address:
    /// every start-up error comes here, naming the config key.
    pub fn bind(cfg: &MetricsConfig) -> Result<MetricsServer, String> {
        let credentials = match &cfg.basic_auth {
            None => None,
            Some((user, pw)) => {
                let pw = match pw {
                    Password::Inline(p) => p.clone(),
                    Password::File(f) => read_password(f).map_err(|e| {
                        format!("metrics.basic-auth.password-file: {}: {e}", f.display())
                    })?,
                };
                Some(format!("{user}:{pw}").into_bytes())
            }
        };
        let tls = match &cfg.tls {
            None => None,
            Some((cert, key)) => Some(Arc::new(server_config(cert, key)?)),
        };
        let listener = TcpListener::bind(cfg.listen)
            .map_err(|e| format!("metrics endpoint {}: {e}", cfg.listen))?;
        Ok(MetricsServer {
            listener,
            credentials,
            tls,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Serves forever on a new thread named `metrics`; `page` renders the body of each
    /// `/metrics` response.
    pub fn spawn<F>(self, page: F) -> io::Result<std::thread::JoinHandle<()>>
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || Arc::new(self).serve(Arc::new(page)))
    }

    fn serve<F>(self: Arc<Self>, page: Arc<F>)
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        let active = Arc::new(AtomicUsize::new(0));
        for stream in self.listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: do not spin.
                    crate::log_warn!("metrics endpoint: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            // Wait for a free slot (each is held for at most the deadlines above).
            while active.load(Ordering::Acquire) >= MAX_CLIENTS {
                std::thread::sleep(Duration::from_millis(10));
            }
            active.fetch_add(1, Ordering::AcqRel);
            let (me, page, slot) = (Arc::clone(&self), Arc::clone(&page), Arc::clone(&active));
            let spawned = std::thread::Builder::new()
                .name("metrics-client".into())
                .spawn(move || {
                    if let Err(e) = me.handle(stream, &*page) {
                        crate::log_debug!("metrics endpoint: {e}");
                    }
                    slot.fetch_sub(1, Ordering::AcqRel);
                });
            if let Err(e) = spawned {
                active.fetch_sub(1, Ordering::AcqRel);
                crate::log_warn!("metrics endpoint: cannot start a thread: {e}");
            }
        }
    }

    fn handle(&self, stream: TcpStream, page: &dyn Fn() -> String) -> io::Result<()> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        match &self.tls {
            None => self.exchange(stream, page),
            Some(cfg) => {
                let conn =
                    rustls::ServerConnection::new(Arc::clone(cfg)).map_err(io::Error::other)?;
                let mut tls = rustls::StreamOwned::new(conn, stream);
                self.exchange(&mut tls, page)?;
                tls.conn.send_close_notify();
                tls.flush()
            }
        }
    }

    /// Reads one request head, writes one response.
    fn exchange<S: Read + Write>(&self, mut s: S, page: &dyn Fn() -> String) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_REQUEST];
        let mut got = 0;
        let t0 = Instant::now();
        let head_len = loop {
            if let Some(end) = find_head_end(&buf[..got]) {
                break end;
            }
            if got == buf.len() {
                return respond(&mut s, 431, "Request Header Fields Too Large", &[], b"");
            }
            if t0.elapsed() > REQUEST_DEADLINE {
                return respond(&mut s, 408, "Request Timeout", &[], b"");
            }
            let n = s.read(&mut buf[got..])?;
            if n == 0 {
                return Ok(()); // closed before a whole request: nothing to answer
            }
            got += n;
        };
        let resp = self.answer(&buf[..head_len], page);
        respond(&mut s, resp.status, resp.reason, &resp.headers, &resp.body)
    }

    /// The response to one request head (pure: tested without sockets).
    fn answer(&self, head: &[u8], page: &dyn Fn() -> String) -> Response {
        let Some(req) = Request::parse(head) else {
            return Response::plain(400, "Bad Request", "bad request\n");
        };
        if let Some(want) = &self.credentials {
            let ok = req
                .authorization
                .and_then(parse_basic)
                .is_some_and(|got| constant_time_eq(&got, want));
            if !ok {
                let mut r = Response::plain(401, "Unauthorized", "authorization required\n");
                r.headers
                    .push(("WWW-Authenticate", "Basic realm=\"dnstap-receiver\"".into()));
                return r;
            }
        }
        if req.method != "GET" && req.method != "HEAD" {
            let mut r = Response::plain(405, "Method Not Allowed", "only GET\n");
            r.headers.push(("Allow", "GET, HEAD".into()));
            return r;
        }
        let path = req.target.split('?').next().unwrap_or_default();
        if path != "/metrics" {
            return Response::plain(404, "Not Found", "try /metrics\n");
        }
        let body = page();
        let mut r = Response {
            status: 200,
            reason: "OK",
            headers: vec![("Content-Type", CONTENT_TYPE.into())],
            body: body.into_bytes(),
        };
        if req.method == "HEAD" {
            // Content-Length still says what GET would send.
            r.headers.push(("Content-Length", r.body.len().to_string()));
            r.body.clear();
        }
        r
    }
}

struct Response {
    status: u16,
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    fn plain(status: u16, reason: &'static str, body: &str) -> Response {
        Response {
            status,
            reason,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

fn respond<W: Write>(
    w: &mut W,
    status: u16,
    reason: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    let mut has_len = false;
    for (k, v) in headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    if !has_len {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    w.write_all(&bytes)?;
    w.flush()
}

/// Offset just past the blank line ending the head (`\r\n\r\n`, or a bare `\n\n`).
fn find_head_end(b: &[u8]) -> Option<usize> {
    if let Some(i) = b.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some(i + 4);
    }
    b.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// The parts of a request head we use.
#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    method: &'a str,
    target: &'a str,
    authorization: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// `METHOD SP TARGET SP HTTP/1.x CRLF (NAME: VALUE CRLF)* CRLF`; `None` when malformed.
    fn parse(head: &'a [u8]) -> Option<Request<'a>> {
        let head = std::str::from_utf8(head).ok()?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let mut first = lines.next()?.split(' ');
        let method = first.next().filter(|m| !m.is_empty())?;
        let target = first.next().filter(|t| t.starts_with('/'))?;
        let version = first.next()?;
        if !version.starts_with("HTTP/1.") || first.next().is_some() {
            return None;
        }
        let mut authorization = None;
        for l in lines {
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':')?;
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim());
            }
        }
        Some(Request {
            method,
            target,
            authorization,
        })
    }
}

/// The decoded `user:password` of an `Authorization: Basic ...` value.
fn parse_basic(value: &str) -> Option<Vec<u8>> {
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    base64_decode(token.trim())
}

/// Standard base64 (RFC 4648 §4) with `=` padding; `None` on any other character or a
/// malformed length.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, chunk) in b.chunks_exact(4).enumerate() {
        let last = i + 1 == b.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// Compares without an early exit on the first differing byte (no timing hint of how much
/// of a guessed password was right).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first line of a password file, without its line end.
fn read_password(path: &std::path::Path) -> io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let pw = text.lines().next().unwrap_or_default().to_string();
    if pw.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty password"));
    }
    Ok(pw)
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3) from PEM files.
fn server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("metrics.tls-cert: {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "metrics.tls-cert: {}: no certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("metrics.tls-key: {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("metrics TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("metrics.tls-cert/tls-key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(auth: Option<&str>) -> MetricsServer {
        MetricsServer {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            credentials: auth.map(|a| a.as_bytes().to_vec()),
            tls: None,
        }
    }

    fn ask(s: &MetricsServer, head: &str) -> Response {
        s.answer(head.as_bytes(), &|| "x 1\n".to_string())
    }

    #[test]
    fn base64_against_known_vectors() {
        // RFC 4648 §10.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                base64_decode(enc).as_deref(),
                Some(plain.as_bytes()),
                "{enc}"
            );
        }
        for bad in ["Zg=", "Z===", "Zg==Zm8=", "Zm9v!A==", "Zm 9"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn routes_and_methods() {
        let s = server(None);
        let r = ask(&s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"x 1\n"[..]));
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| *k == "Content-Type" && v == CONTENT_TYPE));
        assert_eq!(ask(&s, "GET /metrics?x=1 HTTP/1.0\n\n").status, 200);
        assert_eq!(ask(&s, "GET / HTTP/1.1\r\n\r\n").status, 404);
        assert_eq!(ask(&s, "POST /metrics HTTP/1.1\r\n\r\n").status, 405);
        assert_eq!(ask(&s, "GET metrics HTTP/1.1\r\n\r\n").status, 400);
        assert_eq!(ask(&s, "GET /metrics SPDY/3\r\n\r\n").status, 400);
        assert_eq!(ask(&s, "\u{1}\r\n\r\n").status, 400);
        let head = ask(&s, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.body.is_empty());
        assert!(head.headers.contains(&("Content-Length", "4".into())));
    }

    #[test]
    fn basic_auth_is_checked_before_anything_else() {
        let s = server(Some("prom:s3cret"));
        let r = ask(&s, "GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(r.status, 401);
        assert!(r.headers.iter().any(|(k, _)| *k == "WWW-Authenticate"));
        assert_eq!(ask(&s, "GET /nothing HTTP/1.1\r\n\r\n").status, 401);
        // "prom:s3cret" and "prom:wrong".
        let ok = "GET /metrics HTTP/1.1\r\nauthorization: Basic cHJvbTpzM2NyZXQ=\r\n\r\n";
        assert_eq!(ask(&s, ok).status, 200);
        let bad = "GET /metrics HTTP/1.1\r\nAuthorization: Basic cHJvbTp3cm9uZw==\r\n\r\n";
        assert_eq!(ask(&s, bad).status, 401);
        let garbage = "GET /metrics HTTP/1.1\r\nAuthorization: Basic ***\r\n\r\n";
        assert_eq!(ask(&s, garbage).status, 401);
        let bearer = "GET /metrics HTTP/1.1\r\nAuthorization: Bearer cHJvbTpzM2NyZXQ=\r\n\r\n";
        assert_eq!(ask(&s, bearer).status, 401);
    }

    #[test]
    fn oversized_or_truncated_requests_get_bounded_answers() {
        let s = server(None);
        let addr = s.local_addr().unwrap();
        let _t = s.spawn(|| "x 1\n".to_string()).unwrap();
        let talk = |req: &[u8]| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = c.write_all(req);
            let _ = c.shutdown(std::net::Shutdown::Write);
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            out
        };
        // A client that connects and sends nothing holds one slot, not the endpoint.
        let _idle = TcpStream::connect(addr).unwrap();
        let t0 = std::time::Instant::now();
        assert!(talk(b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
        assert!(t0.elapsed() < IO_TIMEOUT, "served beside an idle client");
        let big = vec![b'a'; MAX_REQUEST + 10];
        assert!(talk(&big).starts_with("HTTP/1.1 431 "));
        assert_eq!(
            talk(b"GET /metrics HTTP/1.1\r\n"),
            "",
            "no whole head: no answer"
        );
        let ok = talk(b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nx 1\n"), "{ok}");
    }
}
