//! A real collector for the forward tests: one syslog-ng process with a TCP (or TLS) source
//! on a loopback port, a JSON parser, and two file destinations: lines that parse as JSON go
//! to `ok.log`, anything else to `bad.log`. It stands in for Logstash
//! (`tcp { codec => json_lines }`). Used by tests/forward.rs (one collector) and
//! tests/forward_lb.rs (four).
//!
//! `log-iw-size(1600)` (100 messages per connection) bounds what syslog-ng holds in memory
//! between its socket and the file: what a killed collector loses is its socket's unread
//! bytes plus that, and the receiver's replay window must cover it (docs/receiver.md,
//! "At-least-once").

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::receiver::{lines, wait_until};
use super::skip;

/// Whether syslog-ng is in `PATH`; else the skip helper decides (a NOTICE by hand, a
/// failure under `CI=true`).
pub fn have_syslog_ng(test: &str) -> bool {
    skip::need_program_in(test, "syslog-ng", &[], "Debian package syslog-ng-core").is_some()
}

/// The syslog-ng program (after [`have_syslog_ng`]).
fn syslog_ng() -> PathBuf {
    skip::find_program("syslog-ng", &[]).expect("syslog-ng in PATH")
}

/// One syslog-ng process and its directory (configuration, files, pid, control socket).
pub struct Collector {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Collector {
    /// Plain TCP source on 127.0.0.1:`port`; files under `dir` (created). Returns once the
    /// port accepts connections.
    pub fn start(dir: &Path, port: u16) -> Collector {
        Collector::start_with(dir, port, None)
    }

    /// TLS source with this server certificate and key (PEM).
    pub fn start_tls(dir: &Path, port: u16, cert: &Path, key: &Path) -> Collector {
        Collector::start_with(dir, port, Some((cert, key)))
    }

    fn start_with(dir: &Path, port: u16, tls: Option<(&Path, &Path)>) -> Collector {
        std::fs::create_dir_all(dir).unwrap();
        let transport = match tls {
            Some((cert, key)) => format!(
                "transport(\"tls\") tls(key-file(\"{}\") cert-file(\"{}\") \
                 peer-verify(optional-untrusted))",
                key.display(),
                cert.display()
            ),
            None => "transport(\"tcp\")".to_string(),
        };
        let conf = format!(
            "@version: 3.38\n\
             options {{ log-msg-size(1048576); stats-freq(0); }};\n\
             source s_in {{ network(ip(\"127.0.0.1\") port({port}) {transport} flags(no-parse) \
               log-msg-size(1048576) max-connections(16) log-iw-size(1600)); }};\n\
             parser p_json {{ json-parser(prefix(\".json.\")); }};\n\
             destination d_ok {{ file(\"{d}/ok.log\" template(\"${{MESSAGE}}\\n\")); }};\n\
             destination d_bad {{ file(\"{d}/bad.log\" template(\"${{MESSAGE}}\\n\")); }};\n\
             log {{ source(s_in); parser(p_json); destination(d_ok); flags(final); }};\n\
             log {{ source(s_in); destination(d_bad); }};\n",
            d = dir.display()
        );
        std::fs::write(dir.join("syslog-ng.conf"), conf).unwrap();
        let mut c = Collector {
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        c.spawn();
        c
    }

    /// Starts (or restarts) the process with the same configuration and files; returns once
    /// the port accepts (bounded).
    pub fn spawn(&mut self) {
        let d = &self.dir;
        let child = Command::new(syslog_ng())
            .arg("-F")
            .arg("--no-caps")
            .arg("-f")
            .arg(d.join("syslog-ng.conf"))
            .arg("-R")
            .arg(d.join("syslog-ng.persist"))
            .arg("-p")
            .arg(d.join("syslog-ng.pid"))
            .arg("-c")
            .arg(d.join("syslog-ng.ctl"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("syslog-ng.stderr")).unwrap())
            .spawn()
            .expect("spawn syslog-ng");
        self.child = Some(child);
        let port = self.port;
        wait_until(
            Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            || {
                format!(
                    "syslog-ng did not listen on {port}: {}",
                    std::fs::read_to_string(d.join("syslog-ng.stderr")).unwrap_or_default()
                )
            },
        );
    }

    /// SIGKILL: whatever syslog-ng held unwritten is lost (the replay window covers it).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait (bounded; SIGKILL after 20 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let t0 = Instant::now();
            while c.try_wait().unwrap().is_none() {
                if t0.elapsed() > Duration::from_secs(20) {
                    let _ = c.kill();
                }
                // A poll step; the loop has a deadline.
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.wait();
        }
    }

    /// After the receiver has exited: waits until syslog-ng has closed every connection it
    /// accepted (it read each up to the end), then stops it (it writes out what it holds).
    /// The files are then complete.
    pub fn drain(&mut self) {
        let port = self.port;
        wait_until(
            Duration::from_secs(60),
            || open_connections_on(port) == 0,
            || format!("syslog-ng still holds a connection on port {port}"),
        );
        self.stop();
    }

    /// The lines that parsed as JSON.
    pub fn lines(&self) -> Vec<String> {
        lines(&std::fs::read(self.dir.join("ok.log")).unwrap_or_default())
    }

    /// What did not parse as JSON.
    pub fn bad(&self) -> String {
        std::fs::read_to_string(self.dir.join("bad.log")).unwrap_or_default()
    }

    /// How many lines parsed as JSON so far.
    pub fn count(&self) -> usize {
        std::fs::read(self.dir.join("ok.log"))
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    }

    /// Waits until `ok.log` has at least `n` lines (bounded).
    pub fn wait_count(&self, n: usize, limit: Duration) {
        wait_until(
            limit,
            || self.count() >= n,
            || format!("collector has {} of {n} lines", self.count()),
        );
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// TCP connections (IPv4) whose local port is `port` and that the local side has not closed
/// yet (ESTABLISHED or CLOSE_WAIT), from `/proc/net/tcp`.
pub fn open_connections_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&local) && matches!(f[3], "01" | "08")
        })
        .count()
}

/// A syslog-ng whose sources parse syslog messages, for the syslog output's tests: its
/// `syslog()` source over TCP (RFC 6587 octet counting) and UDP on one loopback port, and two
/// unix datagram sockets standing in for `/dev/log` (`rfc5424.sock`, parsed as RFC 5424 with
/// `flags(syslog-protocol)`; `rfc3164.sock`, the classic local format). Each source writes
/// one JSON object per message (`$(format-json)` of the parsed fields: host, program, pid,
/// msgid, facility, level, msg) to its own file: `tcp.log`, `udp.log`, `unix5424.log`,
/// `unix3164.log`; or ([`SyslogSource::start_tls`]) its `syslog()` source over TLS alone,
/// writing `tls.log`. `keep-hostname(yes)`: HOST is the message's HOSTNAME, not the sender's
/// address.
pub struct SyslogSource {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

/// The files of [`SyslogSource`], one per source.
pub const SOURCE_FILES: [&str; 5] = [
    "tcp.log",
    "udp.log",
    "unix5424.log",
    "unix3164.log",
    "tls.log",
];

/// What [`SyslogSource`] writes of each message: the fields syslog-ng parsed, as JSON.
const SOURCE_FIELDS: &str = "$(format-json host=${HOST} program=${PROGRAM} pid=${PID} \
                             msgid=${MSGID} facility=${FACILITY} level=${LEVEL} msg=${MSG})\\n";

impl SyslogSource {
    /// Starts syslog-ng with every source; returns once the TCP port accepts and both unix
    /// sockets exist (bounded).
    pub fn start(dir: &Path, port: u16) -> SyslogSource {
        let d = dir.display();
        let fields = SOURCE_FIELDS;
        let conf = format!(
            "source s_tcp {{ syslog(ip(\"127.0.0.1\") port({port}) transport(\"tcp\") \
               log-msg-size(1048576) max-connections(16)); }};\n\
             source s_udp {{ syslog(ip(\"127.0.0.1\") port({port}) transport(\"udp\") \
               so-rcvbuf(8388608)); }};\n\
             source s_u5424 {{ unix-dgram(\"{d}/rfc5424.sock\" flags(syslog-protocol) \
               so-rcvbuf(8388608)); }};\n\
             source s_u3164 {{ unix-dgram(\"{d}/rfc3164.sock\" so-rcvbuf(8388608)); }};\n\
             destination d_tcp {{ file(\"{d}/tcp.log\" template(\"{fields}\")); }};\n\
             destination d_udp {{ file(\"{d}/udp.log\" template(\"{fields}\")); }};\n\
             destination d_u5424 {{ file(\"{d}/unix5424.log\" template(\"{fields}\")); }};\n\
             destination d_u3164 {{ file(\"{d}/unix3164.log\" template(\"{fields}\")); }};\n\
             log {{ source(s_tcp); destination(d_tcp); }};\n\
             log {{ source(s_udp); destination(d_udp); }};\n\
             log {{ source(s_u5424); destination(d_u5424); }};\n\
             log {{ source(s_u3164); destination(d_u3164); }};\n"
        );
        SyslogSource::launch(dir, port, &conf, &["rfc5424.sock", "rfc3164.sock"])
    }

    /// Starts syslog-ng with one `syslog()` source over TLS (RFC 5425) on `port`, this
    /// server certificate and key (PEM), writing `tls.log`; returns once the port accepts.
    pub fn start_tls(dir: &Path, port: u16, cert: &Path, key: &Path) -> SyslogSource {
        let d = dir.display();
        let fields = SOURCE_FIELDS;
        let conf = format!(
            "source s_tls {{ syslog(ip(\"127.0.0.1\") port({port}) transport(\"tls\") \
               tls(key-file(\"{}\") cert-file(\"{}\") peer-verify(optional-untrusted)) \
               log-msg-size(1048576) max-connections(16)); }};\n\
             destination d_tls {{ file(\"{d}/tls.log\" template(\"{fields}\")); }};\n\
             log {{ source(s_tls); destination(d_tls); }};\n",
            key.display(),
            cert.display()
        );
        SyslogSource::launch(dir, port, &conf, &[])
    }

    fn launch(dir: &Path, port: u16, sources: &str, sockets: &[&str]) -> SyslogSource {
        std::fs::create_dir_all(dir).unwrap();
        let conf = format!(
            "@version: 3.38\n\
             options {{ log-msg-size(1048576); stats-freq(0); keep-hostname(yes); \
               use-dns(no); chain-hostnames(no); }};\n{sources}"
        );
        std::fs::write(dir.join("syslog-ng.conf"), conf).unwrap();
        let child = Command::new(syslog_ng())
            .arg("-F")
            .arg("--no-caps")
            .arg("-f")
            .arg(dir.join("syslog-ng.conf"))
            .arg("-R")
            .arg(dir.join("syslog-ng.persist"))
            .arg("-p")
            .arg(dir.join("syslog-ng.pid"))
            .arg("-c")
            .arg(dir.join("syslog-ng.ctl"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("syslog-ng.stderr")).unwrap())
            .spawn()
            .expect("spawn syslog-ng");
        let s = SyslogSource {
            dir: dir.to_path_buf(),
            port,
            child: Some(child),
        };
        wait_until(
            Duration::from_secs(20),
            || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && sockets.iter().all(|f| dir.join(f).exists())
            },
            || {
                format!(
                    "syslog-ng did not start its sources: {}",
                    std::fs::read_to_string(dir.join("syslog-ng.stderr")).unwrap_or_default()
                )
            },
        );
        s
    }

    /// The socket of the unix source parsing `rfc` (5424 or 3164).
    pub fn unix_socket(&self, rfc: u32) -> PathBuf {
        self.dir.join(format!("rfc{rfc}.sock"))
    }

    /// Messages written so far to `file` (one of [`SOURCE_FILES`]).
    pub fn count(&self, file: &str) -> usize {
        std::fs::read(self.dir.join(file))
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    }

    /// Waits until `file` has at least `n` messages (bounded).
    pub fn wait_count(&self, file: &str, n: usize, limit: Duration) {
        wait_until(
            limit,
            || self.count(file) >= n,
            || format!("syslog-ng {file} has {} of {n} messages", self.count(file)),
        );
    }

    /// The parsed messages of `file`, one JSON object each.
    pub fn messages(&self, file: &str) -> Vec<String> {
        lines(&std::fs::read(self.dir.join(file)).unwrap_or_default())
    }

    /// After the receiver has exited: waits until syslog-ng has closed every TCP connection
    /// (read each to its end), then stops it, so the files are complete.
    pub fn drain(&mut self) {
        let port = self.port;
        wait_until(
            Duration::from_secs(60),
            || open_connections_on(port) == 0,
            || format!("syslog-ng still holds a connection on port {port}"),
        );
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let t0 = Instant::now();
            while c.try_wait().unwrap().is_none() {
                if t0.elapsed() > Duration::from_secs(20) {
                    let _ = c.kill();
                }
                // A poll step; the loop has a deadline.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for SyslogSource {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
