//! The dnstap relay output against the C reference receiver, `fstrm_capture`: every lab
//! capture relayed over unix and TCP arrives byte for byte, frame for frame (the frames in
//! the capture files fstrm_capture writes are those we accepted, in order); `split` over
//! three receivers covers every frame exactly once; a receiver killed and restarted
//! mid-run loses nothing with `block` (the duplicates are the counted `resent`). fstrm_capture
//! has no TLS: over mutual TLS the relay feeds a second receiver (TLS input, raw file
//! output), whose file must hold the same frames.
//!
//! Without `fstrm_capture` the tests skip with a NOTICE, or fail under `CI=true`.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::lab::{capture, capture_payloads, top_captures};
use support::receiver::{
    free_port, send_bidi, signal, wait_until, Ending, Finished, Receiver, Target, TempDir,
};
use support::skip;

/// A running `fstrm_capture`, stopped (SIGTERM, then waited for) on drop.
struct Capture {
    child: Child,
    out: PathBuf,
}

impl Capture {
    fn start(listen: &[&str], out: PathBuf) -> Capture {
        let child = Command::new("fstrm_capture")
            .args(["-t", "protobuf:dnstap.Dnstap"])
            .args(listen)
            .arg("-w")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fstrm_capture");
        Capture { child, out }
    }

    fn unix(sock: &Path, out: PathBuf) -> Capture {
        Capture::start(&["-u", sock.to_str().unwrap()], out)
    }

    fn tcp(port: u16, out: PathBuf) -> Capture {
        Capture::start(&["-a", "127.0.0.1", "-p", &port.to_string()], out)
    }

    /// Stops it and returns the data frames it wrote (a torn last frame left out).
    fn frames(mut self) -> Vec<Vec<u8>> {
        self.stop();
        frames_of(&std::fs::read(&self.out).unwrap_or_default())
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "TERM");
            wait_until(
                Duration::from_secs(20),
                || matches!(self.child.try_wait(), Ok(Some(_))),
                || "fstrm_capture did not stop".into(),
            );
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The data frames of a Frame Streams file, stopping at a torn end.
fn frames_of(b: &[u8]) -> Vec<Vec<u8>> {
    let be = |i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_be_bytes(s.try_into().unwrap()) as usize)
    };
    let mut v = Vec::new();
    let mut i = 0;
    while let Some(n) = be(i) {
        if n == 0 {
            let Some(c) = be(i + 4) else { break };
            i += 8 + c;
        } else {
            let Some(p) = b.get(i + 4..i + 4 + n) else {
                break;
            };
            v.push(p.to_vec());
            i += 4 + n;
        }
    }
    v
}

fn start_receiver(dir: &TempDir, outputs: &str) -> (Receiver, u16) {
    let conf = dir.path("receiver.yaml");
    std::fs::write(&conf, format!("outputs:\n{outputs}")).unwrap();
    let port = free_port();
    let ps = port.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &ps,
        "--io",
        "epoll",
        "--threads",
        "1",
        "-c",
        conf.to_str().unwrap(),
    ]);
    (rx, port)
}

/// `key=` of the `output-counters:` line of the output named `name`.
fn out_stat(f: &Finished, name: &str, key: &str) -> u64 {
    let tag = format!("output-counters: \"{name}\"");
    let line = f
        .stderr
        .lines()
        .rev()
        .find(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("no {tag}: {}", f.stderr));
    let pat = format!(" {key}=");
    let at = line.find(&pat).unwrap() + pat.len();
    line[at..].split(' ').next().unwrap().parse().unwrap()
}

fn have_fstrm_capture(check: &str) -> bool {
    skip::need_program(check, "fstrm_capture").is_some()
}

#[test]
fn every_capture_reaches_fstrm_capture_byte_identical_over_unix_and_tcp() {
    let check = "every_capture_reaches_fstrm_capture_byte_identical_over_unix_and_tcp";
    if !have_fstrm_capture(check) {
        return;
    }
    let dir = TempDir::new("relay-ident");
    let sock = dir.path("cap.sock");
    let cport = free_port();
    let cu = Capture::unix(&sock, dir.path("u.fstrm"));
    let ct = Capture::tcp(cport, dir.path("t.fstrm"));
    let (rx, port) = start_receiver(
        &dir,
        &format!(
            "  - dnstap: {{remote: ['unix:{}', '127.0.0.1:{cport}'], backoff-init: 0.1, backoff-max: 0.5}}\n",
            sock.display()
        ),
    );
    let mut all = Vec::new();
    for cap in top_captures() {
        let p = capture_payloads(&cap);
        send_bidi(&Target::Tcp(port), &p, Ending::Stop);
        all.extend(p);
    }
    let fin = rx.stop();
    // One output; with duplicate each record counts once per remote.
    let n = format!("dnstap unix:{},127.0.0.1:{cport}", sock.display());
    assert_eq!(out_stat(&fin, &n, "delivered"), 2 * all.len() as u64);
    assert_eq!(out_stat(&fin, &n, "dropped"), 0);
    for (what, c) in [("unix", cu), ("tcp", ct)] {
        let got = c.frames();
        assert_eq!(got.len(), all.len(), "{what}: frame count");
        assert!(got == all, "{what}: frames differ from those accepted");
    }
}

#[test]
fn split_over_three_receivers_covers_every_frame_once() {
    let check = "split_over_three_receivers_covers_every_frame_once";
    if !have_fstrm_capture(check) {
        return;
    }
    let dir = TempDir::new("relay-split");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let caps: Vec<Capture> = ports
        .iter()
        .enumerate()
        .map(|(i, &p)| Capture::tcp(p, dir.path(&format!("s{i}.fstrm"))))
        .collect();
    let remotes: Vec<String> = ports.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
    let (rx, port) = start_receiver(
        &dir,
        &format!(
            "  - dnstap: {{remote: [{}], mode: split, split-key: qname, backoff-init: 0.1, backoff-max: 0.5}}\n",
            remotes.join(", ")
        ),
    );
    // Wait until the three links are up, so no frame moves to another remote.
    wait_until(
        Duration::from_secs(20),
        || rx.stderr().matches(": connected").count() >= 3,
        || format!("three links: {}", rx.stderr()),
    );
    let payloads = capture_payloads(&capture("unbound-tcp.fstrm"));
    send_bidi(&Target::Tcp(port), &payloads, Ending::Stop);
    let _ = rx.stop();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut per = Vec::new();
    for c in caps {
        let f = c.frames();
        per.push(f.len());
        for p in f {
            *seen.entry(p).or_default() += 1;
        }
    }
    let mut want: HashMap<Vec<u8>, usize> = HashMap::new();
    for p in &payloads {
        *want.entry(p.clone()).or_default() += 1;
    }
    assert!(seen == want, "every frame exactly once over the three");
    assert!(
        per.iter().all(|&n| n > 0),
        "each receiver got a share: {per:?}"
    );
}

#[test]
fn a_receiver_restarted_mid_run_loses_nothing_with_block() {
    let check = "a_receiver_restarted_mid_run_loses_nothing_with_block";
    if !have_fstrm_capture(check) {
        return;
    }
    let dir = TempDir::new("relay-restart");
    let sock = dir.path("cap.sock");
    let first = Capture::unix(&sock, dir.path("1.fstrm"));
    let (rx, port) = start_receiver(
        &dir,
        &format!(
            "  - dnstap: {{remote: ['unix:{}'], overflow: block, backoff-init: 0.1, backoff-max: 0.5}}\n",
            sock.display()
        ),
    );
    let payloads = capture_payloads(&capture("unbound-unix.fstrm"));
    let half = payloads.len() / 2;
    send_bidi(&Target::Tcp(port), &payloads[..half], Ending::Stop);
    wait_until(
        Duration::from_secs(20),
        || std::fs::metadata(dir.path("1.fstrm")).is_ok_and(|m| m.len() > 0),
        || "the first receiver got nothing".into(),
    );
    // Killed without a word: what it had not written out is lost on its side.
    let mut first = first;
    let _ = first.child.kill();
    let _ = first.child.wait();
    let _ = std::fs::remove_file(&sock);
    let got1 = frames_of(&std::fs::read(dir.path("1.fstrm")).unwrap());
    let second = Capture::unix(&sock, dir.path("2.fstrm"));
    send_bidi(&Target::Tcp(port), &payloads[half..], Ending::Stop);
    let fin = rx.stop();
    let name = format!("dnstap unix:{}", sock.display());
    let got2 = second.frames();
    assert_eq!(out_stat(&fin, &name, "dropped"), 0);
    assert_eq!(out_stat(&fin, &name, "delivered"), payloads.len() as u64);
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for p in got1.iter().chain(&got2) {
        *seen.entry(p.as_slice()).or_default() += 1;
    }
    let mut want: HashMap<&[u8], usize> = HashMap::new();
    for p in &payloads {
        *want.entry(p.as_slice()).or_default() += 1;
    }
    for (p, n) in &want {
        assert!(seen.get(p).copied().unwrap_or(0) >= *n, "a frame was lost");
    }
    let extra = (got1.len() + got2.len()) as u64 - payloads.len() as u64;
    assert!(
        extra <= out_stat(&fin, &name, "resent"),
        "duplicates {extra} beyond the counted resent"
    );
    // The second receiver's file is in order: the resent frames, then the rest.
    assert!(got2.ends_with(&payloads[half..]));
}

#[test]
fn every_capture_reaches_a_tls_receiver_byte_identical_with_mutual_tls() {
    use support::tls::{Ca, SERVER_NAME};
    let dir = TempDir::new("relay-tls");
    let ca = Ca::new("relay-ca");
    std::fs::write(dir.path("ca.pem"), &ca.cert_pem).unwrap();
    let (scert, skey) = ca
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
        .write(&dir.0, "server");
    let (ccert, ckey) = ca
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, true)
        .write(&dir.0, "client");
    // Downstream: TLS input requiring a client certificate, frames to a raw file.
    let down_port = free_port();
    let down_conf = dir.path("down.yaml");
    std::fs::write(
        &down_conf,
        format!(
            "input-mode:\n  local-address: 127.0.0.1\n  local-port: {down_port}\n  tls-support: true\n  \
             tls-server-cert: {}\n  tls-server-key: {}\n  tls-client-ca: {}\n\
             outputs:\n  - file: {{path: {}, format: raw}}\n",
            scert.display(),
            skey.display(),
            dir.path("ca.pem").display(),
            dir.path("down.fstrm").display()
        ),
    )
    .unwrap();
    let down = Receiver::start(&["-c", down_conf.to_str().unwrap(), "--io", "epoll"]);
    let (rx, port) = start_receiver(
        &dir,
        &format!(
            "  - dnstap: {{remote: ['127.0.0.1:{down_port}'], tls: true, tls-ca: {}, tls-cert: {}, \
             tls-key: {}, tls-server-name: {SERVER_NAME}, backoff-init: 0.1, backoff-max: 0.5}}\n",
            dir.path("ca.pem").display(),
            ccert.display(),
            ckey.display()
        ),
    );
    let mut all = Vec::new();
    for cap in top_captures() {
        let p = capture_payloads(&cap);
        send_bidi(&Target::Tcp(port), &p, Ending::Stop);
        all.extend(p);
    }
    let fin = rx.stop();
    let name = format!("dnstap 127.0.0.1:{down_port}");
    assert_eq!(
        out_stat(&fin, &name, "delivered"),
        all.len() as u64,
        "{}",
        fin.stderr
    );
    // FINISH came back, so the downstream read every frame; its writer may still hold
    // them until the stop.
    let down_fin = down.stop();
    assert_eq!(last_stat_tls_failed(&down_fin), 0, "{}", down_fin.stderr);
    let got = frames_of(&std::fs::read(dir.path("down.fstrm")).unwrap());
    assert_eq!(got.len(), all.len());
    assert!(got == all, "frames differ from those accepted");
}

fn last_stat_tls_failed(f: &Finished) -> u64 {
    f.stat("tls-failed")
}
