//! The interop lab: `<repo>/lab` (captures, servers' scripts). Tests only read it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The lab, always `<repo>/lab`.
pub fn lab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab")
}

/// The capture files of the top level (`captures/*.fstrm`), sorted; panics without any.
pub fn top_captures() -> Vec<PathBuf> {
    let dir = lab_dir().join("captures");
    let v = fstrm_files(&dir);
    assert!(!v.is_empty(), "no captures found under {}", dir.display());
    v
}

/// Every `.fstrm` capture of the lab (top level and `wire/`), sorted; panics without any.
pub fn captures() -> Vec<PathBuf> {
    let mut v = fstrm_files(&lab_dir().join("captures"));
    v.extend(fstrm_files(&lab_dir().join("captures/wire")));
    v.sort();
    assert!(
        !v.is_empty(),
        "no captures found under {}",
        lab_dir().display()
    );
    v
}

/// `captures/NAME`, which must exist.
pub fn capture(name: &str) -> PathBuf {
    let p = lab_dir().join("captures").join(name);
    assert!(p.exists(), "{} missing", p.display());
    p
}

/// The `.fstrm` files directly in `dir` (none when it does not exist), sorted.
pub fn fstrm_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "fstrm"))
        .collect();
    v.sort();
    v
}

/// The data frame payloads of a Frame Streams capture file, parsed independently of the
/// crate's decoder.
///
/// ```text
///  control: | 0u32 | len u32 BE | len bytes |     data: | len u32 BE (!= 0) | len bytes |
/// ```
pub fn capture_payloads(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    let mut v = Vec::new();
    let mut i = 0;
    let be = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
    while i + 4 <= b.len() {
        let n = be(&b[i..]);
        if n == 0 {
            let c = be(&b[i + 4..]);
            i += 8 + c;
        } else {
            v.push(b[i + 4..i + 4 + n].to_vec());
            i += 4 + n;
        }
    }
    v
}
