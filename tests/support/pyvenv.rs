//! Python test-time oracles: a venv under the target directory with pinned PyPI packages
//! (`yacryptopan` for Crypto-PAn, `tldextract` for the Public Suffix List), made once and
//! reused by later runs. No python3 with venv, or no package index, is a missing peer
//! ([`super::skip`]).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One venv at a time per test process (the tests of a binary run on threads).
static LOCK: Mutex<()> = Mutex::new(());

/// The python of a venv named `name` holding `packages` (pip requirement strings), made
/// if needed; `None` (after [`super::skip::missing`]) when it cannot be made.
pub fn python(check: &str, name: &str, packages: &[&str]) -> Option<PathBuf> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("venv-{name}"));
    let py = dir.join("bin/python");
    let marker = dir.join(".installed");
    let want = packages.join("\n");
    if py.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return Some(py);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            super::skip::missing(
                check,
                &format!(
                    "python3 -m venv failed (install python3-venv): {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
            );
            return None;
        }
        Err(e) => {
            super::skip::missing(check, &format!("python3 not found: {e}"));
            return None;
        }
    }
    let pip = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages)
        .output();
    match pip {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            super::skip::missing(
                check,
                &format!(
                    "pip install {} failed: {}",
                    packages.join(" "),
                    String::from_utf8_lossy(&o.stderr)
                ),
            );
            return None;
        }
        Err(e) => {
            super::skip::missing(check, &format!("pip: {e}"));
            return None;
        }
    }
    std::fs::write(&marker, want).ok()?;
    Some(py)
}

/// Runs `script` with the venv's python, `stdin` fed in; its stdout, or a panic with its
/// stderr.
pub fn run(py: &Path, script: &str, args: &[&str], stdin: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("python output");
    let _ = feeder.join();
    assert!(
        out.status.success(),
        "python oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 from python")
}
