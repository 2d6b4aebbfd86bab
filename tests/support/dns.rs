//! TEST HELPER ONLY (shared by the dns integration tests): pulls the DNS messages out of
//! the lab's dnstap captures with the least code that works. It is deliberately not the
//! product's Frame Streams or dnstap decoder (those live in `src/framestream.rs` and
//! `src/dnstap`), so the dns tests do not depend on them; it panics on anything odd,
//! which is fine for known-good captures.

use std::path::PathBuf;

/// The capture files (`captures/*.fstrm`), sorted.
pub fn capture_files() -> Vec<PathBuf> {
    super::lab::top_captures()
}

/// Frame Streams file: `| len (u32 BE) | payload |`; len 0 escapes a control frame
/// `| 0 | ctrl len (u32 BE) | ctrl payload |`. Returns the data frames.
pub fn data_frames(file: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    let be32 = |p: usize| u32::from_be_bytes(file[p..p + 4].try_into().unwrap()) as usize;
    while pos + 4 <= file.len() {
        let len = be32(pos);
        pos += 4;
        if len == 0 {
            let clen = be32(pos);
            pos += 4 + clen;
        } else {
            out.push(&file[pos..pos + len]);
            pos += len;
        }
    }
    out
}

fn varint(b: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = b[*pos];
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    v
}

/// The length-delimited fields of a protobuf message with the given field number.
fn fields(b: &[u8], want: u64) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos);
        match key & 7 {
            0 => {
                varint(b, &mut pos);
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = varint(b, &mut pos) as usize;
                if key >> 3 == want {
                    out.push(&b[pos..pos + len]);
                }
                pos += len;
            }
            t => panic!("wire type {t}"),
        }
    }
    out
}

/// Every DNS message in a dnstap frame: `Dnstap.message` (14) → `query_message` (10)
/// and `response_message` (14) (field 12 is `response_time_sec`, see dnstap.proto).
pub fn dns_messages(frame: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for m in fields(frame, 14) {
        out.extend(fields(m, 10));
        out.extend(fields(m, 14));
    }
    out
}

/// All DNS messages of all captures, with the capture's file name.
pub fn all_messages() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for path in capture_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let file = std::fs::read(&path).unwrap();
        for frame in data_frames(&file) {
            for m in dns_messages(frame) {
                out.push((name.clone(), m.to_vec()));
            }
        }
    }
    out
}
