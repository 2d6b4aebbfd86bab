//! One spill segment file: its name, its layout, writing one frame, reading one back, and
//! the open-time scan that checks every frame and cuts a torn or corrupt tail. Knows
//! nothing of the queue over the segments (order, bound, cursor: `queue.rs`).
//!
//! ```text
//!  dir/00000000001099511627776.spill    oldest: read from here
//!  dir/00000000001099511627777.spill
//!  dir/00000000001099511627778.spill    newest: appended to here
//!
//!  segment = | "DRSPILL1" (8 bytes) | frame | frame | ...
//!  frame   = | len u32 LE | records u32 LE | crc32 u32 LE | payload (len bytes) |
//!              crc32 (IEEE) covers the records field and the payload
//! ```
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// Largest chunk payload a frame may carry (a longer length field means corruption).
pub const MAX_FRAME_PAYLOAD: u32 = 64 << 20;

pub(super) const MAGIC: &[u8; 8] = b"DRSPILL1";
pub(super) const FRAME_HEADER: usize = 12;
pub(super) const SUFFIX: &str = "spill";

pub(super) fn write_frame(w: &mut File, data: &[u8], records: u32) -> io::Result<()> {
    let mut head = [0u8; FRAME_HEADER];
    head[0..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
    head[4..8].copy_from_slice(&records.to_le_bytes());
    let crc = crc32_update(crc32_update(!0, &records.to_le_bytes()), data) ^ !0;
    head[8..12].copy_from_slice(&crc.to_le_bytes());
    // Two writes: a crash between them leaves a short frame, which the reader detects.
    w.write_all(&head)?;
    w.write_all(data)
}

pub(super) fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".spill")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub(super) fn create_segment(path: &Path) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    f.write_all(MAGIC)?;
    Ok(f)
}

pub(super) struct Scan {
    /// Bytes kept (header included).
    pub(super) bytes: u64,
    /// Records in the frames at or after the read offset.
    pub(super) records_after: u64,
    /// Where reading starts: the saved cursor if it fell on a frame boundary, else the
    /// first frame.
    pub(super) read_offset: u64,
    /// Bytes cut off the end.
    pub(super) cut: u64,
}

/// Checks every frame of a segment; truncates a torn or corrupt tail. A file without the
/// magic is left alone and counts as empty.
pub(super) fn scan_segment(path: &Path, cursor: u64) -> io::Result<Scan> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    let mut magic = [0u8; 8];
    let start = MAGIC.len() as u64;
    if f.read_exact(&mut magic).is_err() || &magic != MAGIC {
        return Ok(Scan {
            bytes: 0,
            records_after: 0,
            read_offset: start,
            cut: 0,
        });
    }
    let mut r = io::BufReader::with_capacity(256 << 10, &mut f);
    let mut buf = Vec::new();
    let mut good = start;
    let (mut all, mut before) = (0u64, 0u64);
    let mut cursor_ok = cursor == start;
    while let Ok(Some(n)) = read_frame(&mut r, &mut buf) {
        if good < cursor {
            before += n as u64;
        }
        good += (FRAME_HEADER + buf.len()) as u64;
        all += n as u64;
        cursor_ok |= good == cursor;
    }
    drop(r);
    let cut = len - good.min(len);
    if cut > 0 {
        f.set_len(good)?;
        crate::log_warn!(
            "spill {}: cut {cut} bytes of torn or corrupt data at offset {good}",
            path.display()
        );
    }
    let (read_offset, records_after) = if cursor_ok && cursor <= good {
        (cursor, all - before)
    } else {
        (start, all)
    };
    Ok(Scan {
        bytes: good,
        records_after,
        read_offset,
        cut,
    })
}

/// Reads one frame into `buf`. `Ok(None)` at a clean end, a short frame, a bad length or a
/// checksum mismatch (the caller treats them all as "the segment ends here").
pub(super) fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Option<u32>> {
    let mut head = [0u8; FRAME_HEADER];
    let mut got = 0;
    while got < FRAME_HEADER {
        match r.read(&mut head[got..]) {
            Ok(0) => return Ok(None),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let [l0, l1, l2, l3, r0, r1, r2, r3, c0, c1, c2, c3] = head;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let records = u32::from_le_bytes([r0, r1, r2, r3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len > MAX_FRAME_PAYLOAD {
        return Ok(None);
    }
    buf.clear();
    buf.resize(len as usize, 0);
    if let Err(e) = r.read_exact(buf) {
        buf.clear();
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => Ok(None),
            _ => Err(e),
        };
    }
    let want = crc32_update(crc32_update(!0, &records.to_le_bytes()), buf) ^ !0;
    if want != crc {
        buf.clear();
        return Ok(None);
    }
    Ok(Some(records))
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Continues a CRC-32 over `data`; start with `!0` and finish with `^ !0`.
fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::crc32_update;

    #[test]
    fn crc32_matches_the_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32_update(!0, b"123456789") ^ !0, 0xCBF4_3926);
    }
}
