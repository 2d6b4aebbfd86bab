//! The file output against the reference readers: rotated raw files read back with the
//! `dnstap` CLI and `fstrm_dump` give exactly the frames sent (and parse as Frame Streams by hand); JSON
//! files give exactly the lines of `-r`; files rotate at the configured size (never past
//! it) and age; gzip and zstd files decompress with the system tools; a full disk (a tiny
//! tmpfs mounted here) is counted and logged, and the file stays readable.
//!
//! Without `dnstap`, `gzip`, `zstd` or (for the full disk) root and `mount`, the tests skip
//! with a NOTICE, or fail under `CI=true` (`support::skip`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::lab::{capture, capture_payloads};
use support::receiver::{
    free_port, lines, offline_lines, send_bidi, signal, wait_until, Ending, Finished, Receiver,
    Target, TempDir,
};
use support::skip;

fn write_config(dir: &TempDir, body: &str) -> PathBuf {
    let p = dir.path("receiver.yaml");
    std::fs::write(&p, body).unwrap();
    p
}

fn start(conf: &Path) -> (Receiver, u16) {
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

/// `key=` of the file output's `output-counters:` line.
fn out_stat(f: &Finished, key: &str) -> u64 {
    let line = f
        .stderr
        .lines()
        .rev()
        .find(|l| l.contains("output-counters: \"file "))
        .unwrap_or_else(|| panic!("no output-counters line: {}", f.stderr));
    let pat = format!(" {key}=");
    let at = line.find(&pat).unwrap_or_else(|| panic!("{key} in {line}")) + pat.len();
    line[at..].split(' ').next().unwrap().parse().unwrap()
}

/// The rotated files beside `current` (oldest first), then `current`.
fn files_in_order(dir: &TempDir, stem: &str, current: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("{stem}-"))
        })
        .collect();
    v.sort();
    v.push(dir.path(current));
    v
}

/// The data frames of a Frame Streams file, checked: START with the dnstap content type
/// first, STOP last, nothing after.
fn raw_frames(b: &[u8]) -> Vec<Vec<u8>> {
    let be = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
    assert!(b.len() >= 12 && be(b) == 0, "no control frame first");
    let clen = be(&b[4..]);
    assert_eq!(be(&b[8..]), 2, "START first");
    assert!(
        b[12..8 + clen]
            .windows(22)
            .any(|w| w == b"protobuf:dnstap.Dnstap"),
        "content type"
    );
    let mut i = 8 + clen;
    let mut v = Vec::new();
    loop {
        let n = be(&b[i..]);
        if n == 0 {
            assert_eq!(be(&b[i + 8..]), 3, "STOP last");
            assert_eq!(i + 8 + be(&b[i + 4..]), b.len(), "nothing after STOP");
            return v;
        }
        v.push(b[i + 4..i + 4 + n].to_vec());
        i += 4 + n;
    }
}

fn dnstap_read(file: &Path) -> Vec<String> {
    let out = Command::new("dnstap").arg("-r").arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "dnstap -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
}

/// The data frames `fstrm_dump` (the C reference) finds in a file, checked to start with
/// START and end with STOP.
fn fstrm_dump_frames(file: &Path) -> usize {
    let out = Command::new("fstrm_dump").arg(file).output().unwrap();
    assert!(out.status.success(), "fstrm_dump {}", file.display());
    // It prints on stderr.
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.starts_with("FSTRM_CONTROL_START."),
        "{}",
        file.display()
    );
    assert_eq!(text.lines().last(), Some("FSTRM_CONTROL_STOP."));
    text.lines()
        .filter(|l| l.starts_with("Data frame ("))
        .count()
}

fn decompress(tool: &str, file: &Path) -> Vec<u8> {
    let out = Command::new(tool).arg("-dc").arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} -dc {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn rotated_raw_files_read_back_exactly_with_dnstap() {
    let check = "rotated_raw_files_read_back_exactly_with_dnstap";
    if skip::need_program(check, "dnstap").is_none()
        || skip::need_program(check, "fstrm_dump").is_none()
    {
        return;
    }
    let dir = TempDir::new("file-raw");
    let max = 200_000u64;
    let conf = write_config(
        &dir,
        &format!(
            "outputs:\n  - file: {{path: {}, format: raw, max-size: {max}}}\n",
            dir.path("d.fstrm").display()
        ),
    );
    let cap = capture("unbound-tcp.fstrm");
    let payloads = capture_payloads(&cap);
    let (rx, port) = start(&conf);
    send_bidi(&Target::Tcp(port), &payloads, Ending::Stop);
    let fin = rx.stop();
    assert_eq!(out_stat(&fin, "delivered"), payloads.len() as u64);
    assert_eq!(out_stat(&fin, "dropped"), 0);
    let files = files_in_order(&dir, "d", "d.fstrm");
    assert!(files.len() >= 5, "{files:?}");
    let mut frames = Vec::new();
    let mut text = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let b = std::fs::read(f).unwrap();
        assert!(
            b.len() as u64 <= max,
            "{} is {} bytes",
            f.display(),
            b.len()
        );
        if i + 1 < files.len() {
            // Rotated at the size: the next frame would not have fitted.
            assert!(
                b.len() as u64 > max - 70_000,
                "{}: {}",
                f.display(),
                b.len()
            );
        }
        let mine = raw_frames(&b);
        assert_eq!(fstrm_dump_frames(f), mine.len(), "{}", f.display());
        frames.extend(mine);
        text.extend(dnstap_read(f));
    }
    assert!(frames == payloads, "frames differ from those sent");
    assert_eq!(text, dnstap_read(&cap));
}

#[test]
fn json_files_give_the_lines_of_r_and_gzip_decompresses_them() {
    let check = "json_files_give_the_lines_of_r_and_gzip_decompresses_them";
    if skip::need_program(check, "gzip").is_none() {
        return;
    }
    let dir = TempDir::new("file-json");
    let conf = write_config(
        &dir,
        &format!(
            "outputs:\n  - file: {{path: {}, format: json, max-size: 300000, compress: gzip, postrotate-command: 'echo \"$1\" >> {}'}}\n",
            dir.path("d.json").display(),
            dir.path("post.log").display(),
        ),
    );
    let cap = capture("knot-unix.fstrm");
    let (rx, port) = start(&conf);
    send_bidi(&Target::Tcp(port), &capture_payloads(&cap), Ending::Stop);
    let fin = rx.stop();
    assert_eq!(out_stat(&fin, "dropped"), 0);
    let files = files_in_order(&dir, "d", "d.json");
    assert!(files.len() >= 3, "{files:?}");
    let mut got = Vec::new();
    for f in &files[..files.len() - 1] {
        assert!(f.to_str().unwrap().ends_with(".json.gz"), "{}", f.display());
        got.extend(lines(&decompress("gzip", f)));
    }
    got.extend(lines(&std::fs::read(files.last().unwrap()).unwrap()));
    assert_eq!(got, offline_lines(&cap, &["--format", "json"]));
    // The command saw every rotated file, under its final name.
    let post = std::fs::read_to_string(dir.path("post.log")).unwrap();
    let named: Vec<PathBuf> = post.lines().map(PathBuf::from).collect();
    assert_eq!(named, files[..files.len() - 1].to_vec());
}

#[test]
fn zstd_raw_files_and_max_files() {
    let check = "zstd_raw_files_and_max_files";
    if skip::need_program(check, "zstd").is_none() {
        return;
    }
    let dir = TempDir::new("file-zstd");
    let conf = write_config(
        &dir,
        &format!(
            "outputs:\n  - file: {{path: {}, format: raw, max-size: 100000, compress: zstd, max-files: 3}}\n",
            dir.path("d.fstrm").display()
        ),
    );
    let cap = capture("nsd-unix.fstrm");
    let payloads = capture_payloads(&cap);
    let (rx, port) = start(&conf);
    send_bidi(&Target::Tcp(port), &payloads, Ending::Stop);
    let fin = rx.stop();
    assert_eq!(out_stat(&fin, "dropped"), 0);
    let files = files_in_order(&dir, "d", "d.fstrm");
    assert_eq!(files.len(), 4, "3 rotated kept and the current: {files:?}");
    // The kept files are the newest: with the current one, the tail of the capture.
    let mut frames = Vec::new();
    for f in &files[..3] {
        assert!(
            f.to_str().unwrap().ends_with(".fstrm.zst"),
            "{}",
            f.display()
        );
        frames.extend(raw_frames(&decompress("zstd", f)));
    }
    frames.extend(raw_frames(&std::fs::read(&files[3]).unwrap()));
    assert!(frames.len() > 100 && frames.len() < payloads.len());
    assert!(
        frames[..] == payloads[payloads.len() - frames.len()..],
        "the kept files are the newest frames"
    );
}

#[test]
fn rotate_interval_rotates_an_idle_file() {
    let dir = TempDir::new("file-time");
    let conf = write_config(
        &dir,
        &format!(
            "outputs:\n  - file: {{path: {}, format: text, rotate-interval: 0.5}}\n",
            dir.path("d.log").display()
        ),
    );
    let cap = capture("knot-unix.fstrm");
    let payloads = capture_payloads(&cap);
    let (rx, port) = start(&conf);
    send_bidi(&Target::Tcp(port), &payloads[..100], Ending::Stop);
    // The file older than the interval is rotated at the writer's next idle flush.
    wait_until(
        Duration::from_secs(20),
        || files_in_order(&dir, "d", "d.log").len() >= 2,
        || "no rotation by age".into(),
    );
    send_bidi(&Target::Tcp(port), &payloads[100..200], Ending::Stop);
    let fin = rx.stop();
    assert_eq!(out_stat(&fin, "delivered"), 200);
    let files = files_in_order(&dir, "d", "d.log");
    let mut got = Vec::new();
    for f in &files {
        got.extend(lines(&std::fs::read(f).unwrap()));
    }
    let want = offline_lines(&cap, &["--format", "text"]);
    assert_eq!(got, want[..200].to_vec());
}

#[test]
fn a_full_disk_is_counted_and_logged_and_the_file_stays_readable() {
    let check = "a_full_disk_is_counted_and_logged_and_the_file_stays_readable";
    if !skip::need_root(check) {
        return;
    }
    let dir = TempDir::new("file-full");
    let mnt = dir.path("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let m = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .output();
    let ok = m.as_ref().is_ok_and(|o| o.status.success());
    if !skip::require(ok, check, || format!("cannot mount a tmpfs: {m:?}")) {
        return;
    }
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _umount = Umount(mnt.clone());
    let conf = write_config(
        &dir,
        &format!(
            "outputs:\n  - file: {{path: {}, format: raw}}\n",
            mnt.join("d.fstrm").display()
        ),
    );
    let payloads = capture_payloads(&capture("unbound-tcp.fstrm"));
    let (rx, port) = start(&conf);
    send_bidi(&Target::Tcp(port), &payloads, Ending::Stop);
    rx.wait_log("write failed");
    let fin = rx.stop();
    let (delivered, dropped) = (out_stat(&fin, "delivered"), out_stat(&fin, "dropped"));
    assert!(dropped > 0, "{}", fin.stderr);
    assert_eq!(delivered + dropped, payloads.len() as u64);
    assert!(out_stat(&fin, "write-errors") >= 1);
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    // What was written is whole frames, in the order sent, and ends with STOP when there
    // was room for it (12 bytes); without it, whole frames up to the end.
    let b = std::fs::read(mnt.join("d.fstrm")).unwrap();
    let mut framed = b.clone();
    if !b.ends_with(&[0, 0, 0, 4, 0, 0, 0, 3]) {
        framed.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
    }
    let frames = raw_frames(&framed);
    assert_eq!(frames.len() as u64, delivered);
    let mut rest = payloads.iter();
    for f in &frames {
        assert!(rest.any(|p| p == f), "a frame not sent, or out of order");
    }
}

#[test]
fn sigusr1_reopens_the_file_after_logrotate_moved_it() {
    reopens_after_rename("USR1");
}

#[test]
fn sighup_reloads_and_reopens_the_file_after_logrotate_moved_it() {
    reopens_after_rename("HUP");
}

fn reopens_after_rename(sig: &str) {
    let dir = TempDir::new("file-reopen");
    let conf = write_config(
        &dir,
        &format!(
            "outputs:\n  - file: {{path: {}, format: raw}}\n",
            dir.path("d.fstrm").display()
        ),
    );
    let payloads = capture_payloads(&capture("knot-unix.fstrm"));
    let (rx, port) = start(&conf);
    send_bidi(&Target::Tcp(port), &payloads[..100], Ending::Stop);
    // 100 frames are in the file once it holds the START and their bytes.
    let want: usize = payloads[..100].iter().map(|p| 4 + p.len()).sum();
    wait_until(
        Duration::from_secs(20),
        || std::fs::metadata(dir.path("d.fstrm")).is_ok_and(|m| m.len() as usize > want),
        || "the first frames never reached the file".into(),
    );
    std::fs::rename(dir.path("d.fstrm"), dir.path("d.fstrm.1")).unwrap();
    signal(rx.pid(), sig);
    wait_until(
        Duration::from_secs(20),
        || dir.path("d.fstrm").exists(),
        || "no new file after SIGUSR1".into(),
    );
    send_bidi(&Target::Tcp(port), &payloads[100..150], Ending::Stop);
    let fin = rx.stop();
    assert_eq!(out_stat(&fin, "delivered"), 150);
    let old = raw_frames(&std::fs::read(dir.path("d.fstrm.1")).unwrap());
    let new = raw_frames(&std::fs::read(dir.path("d.fstrm")).unwrap());
    assert!(
        old[..] == payloads[..100],
        "the moved file ends with STOP after 100 frames"
    );
    assert!(new[..] == payloads[100..150]);
}
