//! The Debian package's inputs (`[package.metadata.deb]` in Cargo.toml, packaging/): the
//! committed man pages and completions are what the binaries generate from their current
//! flags, the default config passes `--check-config` and listens where the socket unit
//! does, and every asset the package names exists. Building and installing the package
//! itself is .ci/run's package stage (it needs root and cargo-deb).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::receiver::{TempDir, BIN};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace's loadgen binary, built beside the receiver (`cargo test --workspace`).
fn loadgen_bin() -> Option<PathBuf> {
    let p = Path::new(BIN).with_file_name("loadgen");
    p.is_file().then_some(p)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The long flags a man page documents (`\-\-name` in roff).
fn long_flags(man: &str) -> std::collections::BTreeSet<String> {
    man.split("\\-\\-")
        .skip(1)
        .map(|rest| {
            // A flag name: letters, digits and `\-` (roff's hyphen); `\fR` and the rest end it.
            let mut name = String::new();
            let mut chars = rest.chars().peekable();
            while let Some(c) = chars.next() {
                if c.is_ascii_alphanumeric() {
                    name.push(c);
                } else if c == '\\' && chars.peek() == Some(&'-') {
                    chars.next();
                    name.push('-');
                } else {
                    break;
                }
            }
            name
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// The committed man pages and completions document the flags the binaries have now:
/// the same files, and every man page the same long flags. (Value lists, such as a new
/// output format, may lag: CI's package stage regenerates everything before `cargo deb`,
/// and `packaging/build-assets.sh` refreshes the committed copies.)
#[test]
fn generated_man_pages_and_completions_match_the_current_flags() {
    let Some(loadgen) = loadgen_bin() else {
        support::skip::missing(
            "package assets",
            "the loadgen binary is not built beside the receiver (cargo test --workspace)",
        );
        return;
    };
    let dir = TempDir::new("assets");
    for bin in [PathBuf::from(BIN), loadgen] {
        let st = Command::new(&bin)
            .arg("--generate-assets")
            .arg(&dir.0)
            .output()
            .unwrap();
        assert!(st.status.success(), "{}: {:?}", bin.display(), st);
    }
    let committed = repo().join("packaging/generated");
    let (want, have) = (files_under(&dir.0), files_under(&committed));
    assert_eq!(
        want, have,
        "packaging/generated has other files than the binaries write: run packaging/build-assets.sh"
    );
    for man in ["man/dnstap_receiver.1", "man/loadgen.1"] {
        let fresh = long_flags(&std::fs::read_to_string(dir.0.join(man)).unwrap());
        let old = long_flags(&std::fs::read_to_string(committed.join(man)).unwrap());
        assert!(
            fresh.contains("help") && fresh.len() > 3,
            "{man}: {fresh:?}"
        );
        assert_eq!(
            fresh, old,
            "packaging/generated/{man} documents other flags than the binary has: run \
             packaging/build-assets.sh"
        );
    }
}

/// `ListenStream=` values of the socket unit.
fn socket_unit_listens() -> Vec<String> {
    let unit = std::fs::read_to_string(repo().join("docs/systemd/dnstap-receiver.socket")).unwrap();
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix("ListenStream="))
        .map(str::to_string)
        .collect()
}

#[test]
fn default_config_checks_and_listens_where_the_socket_unit_does() {
    let out = Command::new(BIN)
        .arg("--check-config")
        .arg(repo().join("packaging/dnstap.conf"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listens = socket_unit_listens();
    assert!(!listens.is_empty());
    for l in listens {
        let input = if l.starts_with('/') {
            format!("input: unix {l}")
        } else {
            format!("input: tcp {l}")
        };
        assert!(
            said.lines().any(|line| line == input),
            "the socket unit passes {l} but the default config has no such input \
             (the receiver would refuse to start):\n{said}"
        );
    }
}

#[test]
fn every_packaged_asset_exists() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let start = manifest
        .find("[package.metadata.deb]")
        .expect("Cargo.toml has [package.metadata.deb]");
    let section = &manifest[start..];
    let section = &section[..section.find("\n[workspace]").unwrap_or(section.len())];
    let mut n = 0;
    for line in section.lines() {
        let Some(rest) = line.trim().strip_prefix("[\"") else {
            continue;
        };
        let src = rest.split('"').next().unwrap();
        n += 1;
        if src.starts_with("target/release/") {
            continue; // built by cargo-deb
        }
        if let Some(dir) = src.strip_suffix("/*") {
            assert!(repo().join(dir).is_dir(), "asset {src}: no such directory");
        } else if let Some((dir, ext)) = src.split_once("/*") {
            let any = std::fs::read_dir(repo().join(dir))
                .unwrap()
                .any(|e| e.unwrap().path().to_string_lossy().ends_with(ext));
            assert!(any, "asset {src}: matches nothing");
        } else {
            assert!(repo().join(src).is_file(), "asset {src}: no such file");
        }
    }
    assert!(n >= 10, "found only {n} assets in [package.metadata.deb]");
    for unit in ["dnstap-receiver.service", "dnstap-receiver.socket"] {
        assert!(repo().join("docs/systemd").join(unit).is_file());
    }
}
