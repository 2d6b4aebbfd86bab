//! `--verify-output FILE`: after the run, confirm from the receiver's output that everything
//! sent was received. The receiver writes one line per message (its text and JSON formats),
//! so the file's line count, once it stops growing, is what it received. Lines are counted
//! incrementally (only the bytes added since the last look are read), so a multi-gigabyte
//! output costs one pass. Knows nothing of sockets or of the receiver's process.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

/// The count is final once it has not changed for this long.
const SETTLE: Duration = Duration::from_millis(1000);
const POLL: Duration = Duration::from_millis(100);

/// Counts the lines of `path` until the count stops changing (or `timeout` passes, or it
/// reaches `expected`, after which only growth within `SETTLE` is still counted).
pub fn count_settled_lines(path: &Path, expected: u64, timeout: Duration) -> io::Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut file = File::open(path)?;
    let mut offset = 0u64;
    let mut lines = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut last_change = Instant::now();
    loop {
        file.seek(SeekFrom::Start(offset))?;
        let mut grew = false;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            grew = true;
            offset += n as u64;
            lines += buf.iter().take(n).filter(|&&b| b == b'\n').count() as u64;
        }
        let now = Instant::now();
        if grew {
            last_change = now;
        }
        let settled = now.duration_since(last_change) >= SETTLE;
        // Once everything has arrived, wait one settle period more (to see extra lines).
        if settled && (lines >= expected || now >= deadline) {
            return Ok(lines);
        }
        if now >= deadline && lines < expected {
            return Ok(lines);
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn counts_lines_written_while_it_waits() {
        let dir = std::env::temp_dir().join(format!("loadgen-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.jsonl");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"{}\n{}\n").unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            f.write_all(b"{}\n{}\n{}\n").unwrap();
        });
        let n = count_settled_lines(&path, 5, Duration::from_secs(20)).unwrap();
        writer.join().unwrap();
        assert_eq!(n, 5);
        // A shortfall: expected more than will ever come; the timeout ends the wait.
        let n = count_settled_lines(&path, 9, Duration::from_millis(300)).unwrap();
        assert_eq!(n, 5);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
