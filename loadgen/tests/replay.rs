//! loadgen against an independent receiver: `fstrm_capture` (libfstrm) records what loadgen
//! sends into a file, which must be byte-identical to the capture that was replayed (both
//! are START, the data frames, STOP), or hold exactly `--count` data frames.
//!
//! Needs `fstrm_capture` (Debian package fstrm-bin) and the lab's captures; without them the
//! tests print why and pass, except with `CI=true`, where they fail.

#[path = "../../tests/support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

fn lab_captures() -> Option<PathBuf> {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab");
    let have_capture_tool = Command::new("fstrm_capture")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    let mut missing = Vec::new();
    if !have_capture_tool {
        missing.push("fstrm_capture not found in PATH".to_string());
    }
    if !lab.join("captures").is_dir() {
        missing.push(format!("lab captures not found at {}", lab.display()));
    }
    if missing.is_empty() {
        return Some(lab.join("captures"));
    }
    skip::missing("loadgen replay tests", &missing.join(", "));
    None
}

/// fstrm_capture on a fresh unix socket; stopped with SIGTERM, it writes the file.
struct Capture {
    child: Child,
    dir: PathBuf,
}

impl Capture {
    fn start(name: &str) -> Capture {
        let dir =
            std::env::temp_dir().join(format!("loadgen-replay-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("fstrm_capture")
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(dir.join("s.sock"))
            .arg("-w")
            .arg(dir.join("out.fstrm"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dir.join("s.sock").exists() {
            assert!(Instant::now() < deadline, "fstrm_capture did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Capture { child, dir }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("s.sock")
    }

    fn finish(mut self) -> Vec<u8> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap();
        std::fs::read(self.dir.join("out.fstrm")).unwrap()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs loadgen with `--json`; returns the `messages` figure of its report.
fn loadgen(args: &[&str]) -> u64 {
    let out = Command::new(LOADGEN)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8_lossy(&out.stdout);
    let at = json.find("\"messages\":").expect("messages in the report") + "\"messages\":".len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// Data frames in a Frame Streams file (control frames skipped).
fn data_frames(file: &[u8]) -> u64 {
    let mut n = 0;
    let mut rest = file;
    while let Some((len, after)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        if len == 0 {
            let (clen, after) = after.split_first_chunk::<4>().unwrap();
            rest = &after[u32::from_be_bytes(*clen) as usize..];
        } else {
            n += 1;
            rest = &after[len..];
        }
    }
    n
}

#[test]
fn replayed_capture_arrives_byte_identical() {
    let Some(captures) = lab_captures() else {
        return;
    };
    let input = captures.join("bind-unix.fstrm");
    let cap = Capture::start("identical");
    let sent = loadgen(&[
        "-u",
        cap.socket().to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    let got = cap.finish();
    let want = std::fs::read(&input).unwrap();
    assert_eq!(sent, data_frames(&want));
    assert!(
        got == want,
        "fstrm_capture's file differs from {}",
        input.display()
    );
}

#[test]
fn count_over_several_connections_is_exact() {
    let Some(captures) = lab_captures() else {
        return;
    };
    let input = captures.join("nsd-unix.fstrm");
    let cap = Capture::start("count");
    let sock = cap.socket();
    let args = [
        "-u",
        sock.to_str().unwrap(),
        "--count",
        "20001",
        "--connections",
        "3",
    ];
    let sent = loadgen(&[&args[..], &[input.to_str().unwrap()]].concat());
    let got = cap.finish();
    assert_eq!(sent, 20001);
    assert_eq!(data_frames(&got), 20001);
}
