//! The file output's rotated files: their names (`stem-YYYYmmddTHHMMSS.mmmZ.ext` beside the
//! current file, strictly increasing within a run, so that names sort in rotation order),
//! and the background thread that takes each rotated file, compresses it (gzip or zstd,
//! into a `.tmp` renamed when complete, the original then removed), runs the
//! `postrotate-command` with the final name as `$1`, and removes the oldest rotated files
//! beyond `max-files`. The writer thread only renames and sends the name on a channel.
//! Knows nothing of records or formats.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Compress, FileConf};
use crate::stats::OutputStats;
use crate::{log_debug, log_warn};

/// Makes the rotated files' names for one current file.
#[derive(Debug)]
pub(super) struct Rotated {
    dir: PathBuf,
    /// `stem-`: the common start of every rotated name.
    prefix: String,
    /// `.ext` of the current file, or empty.
    ext: String,
    /// Milliseconds of the last name made: the next one is later.
    last_ms: u64,
}

impl Rotated {
    pub(super) fn new(path: &Path) -> Rotated {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        Rotated {
            dir,
            prefix: format!("{stem}-"),
            ext,
            last_ms: 0,
        }
    }

    /// A name for the file rotated now, not in use.
    pub(super) fn next_name(&mut self) -> PathBuf {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut ms = now.max(self.last_ms + 1);
        loop {
            let p = self
                .dir
                .join(format!("{}{}{}", self.prefix, utc_stamp(ms), self.ext));
            let taken = [".gz", ".zst", ""].iter().any(|s| {
                let mut q = p.clone().into_os_string();
                q.push(s);
                Path::new(&q).exists()
            });
            if !taken {
                self.last_ms = ms;
                return p;
            }
            ms += 1;
        }
    }

    /// The rotated files now in the directory (compressed or not, not the `.tmp` of one
    /// being compressed), oldest first.
    fn list(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with(&self.prefix)
                    && !n.ends_with(".tmp")
                    && n.len() > self.prefix.len() + 19
                    && is_stamp(&n[self.prefix.len()..self.prefix.len() + 19])
                    && n[self.prefix.len() + 19..].contains(self.ext.as_str())
            })
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    }
}

/// `YYYYmmddTHHMMSS.mmmZ` for a Unix time in milliseconds.
fn utc_stamp(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// The first 19 characters of a stamp: `YYYYmmddTHHMMSS.mmm`.
fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            8 => *c == b'T',
            15 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The background thread and the channel to it.
#[derive(Debug)]
pub(super) struct Worker {
    tx: mpsc::Sender<PathBuf>,
    thread: JoinHandle<()>,
}

impl Worker {
    pub(super) fn start(
        name: &str,
        conf: &FileConf,
        stats: Arc<OutputStats>,
    ) -> io::Result<Worker> {
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let job = Job {
            name: name.to_string(),
            compress: conf.compress,
            command: conf.postrotate_command.clone(),
            max_files: conf.max_files,
            rotated: Rotated::new(&conf.path),
            stats,
        };
        let thread = std::thread::Builder::new()
            .name("file-rotate".into())
            .spawn(move || {
                for path in rx {
                    job.run(path);
                }
            })?;
        Ok(Worker { tx, thread })
    }

    /// Hands a rotated file over (never blocks).
    pub(super) fn send(&self, path: PathBuf) {
        let _ = self.tx.send(path);
    }

    /// Waits until every file handed over is done.
    pub(super) fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

/// What the background thread does with each rotated file.
struct Job {
    name: String,
    compress: Option<Compress>,
    command: Option<String>,
    max_files: usize,
    rotated: Rotated,
    stats: Arc<OutputStats>,
}

impl Job {
    fn run(&self, path: PathBuf) {
        let done = match self.compress {
            None => path,
            Some(c) => match compress(&path, c) {
                Ok(p) => p,
                Err(e) => {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    log_warn!(
                        "output {}: cannot compress {} (kept as is): {e}",
                        self.name,
                        path.display()
                    );
                    path
                }
            },
        };
        if let Some(cmd) = &self.command {
            match Command::new("/bin/sh")
                .arg("-c")
                .arg(cmd)
                .arg("sh")
                .arg(&done)
                .status()
            {
                Ok(st) if st.success() => {}
                Ok(st) => log_warn!("output {}: postrotate-command: {st}", self.name),
                Err(e) => log_warn!("output {}: postrotate-command: {e}", self.name),
            }
        }
        if self.max_files > 0 {
            let all = self.rotated.list();
            let extra = all.len().saturating_sub(self.max_files);
            for p in all.iter().take(extra) {
                match std::fs::remove_file(p) {
                    Ok(()) => log_debug!("output {}: removed {}", self.name, p.display()),
                    Err(e) => log_warn!("output {}: cannot remove {}: {e}", self.name, p.display()),
                }
            }
        }
    }
}

/// Compresses `path` into `path.gz` / `path.zst` (through a `.tmp`), removes `path`,
/// returns the new name. On an error the `.tmp` is removed and `path` kept.
fn compress(path: &Path, c: Compress) -> io::Result<PathBuf> {
    let with = |s: &str| {
        let mut o: OsString = path.as_os_str().to_owned();
        o.push(s);
        PathBuf::from(o)
    };
    let out = with(c.suffix());
    let tmp = with(&format!("{}.tmp", c.suffix()));
    let r = (|| -> io::Result<()> {
        let mut src = BufReader::with_capacity(1 << 16, File::open(path)?);
        let dst = BufWriter::with_capacity(1 << 16, File::create(&tmp)?);
        let dst = match c {
            Compress::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(dst, flate2::Compression::default());
                io::copy(&mut src, &mut enc)?;
                enc.finish()?
            }
            Compress::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(dst, 3)?;
                io::copy(&mut src, &mut enc)?;
                enc.finish()?
            }
        };
        let f = dst.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &out)?;
        std::fs::remove_file(path)
    })();
    match r {
        Ok(()) => Ok(out),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_and_sort_in_time_order() {
        assert_eq!(utc_stamp(0), "19700101T000000.000Z");
        // 2026-12-07 06:08:12.345 UTC
        assert_eq!(utc_stamp(1_796_623_692_345), "20261207T060812.345Z");
        assert_eq!(utc_stamp(951_782_400_000), "20000229T000000.000Z");
        assert!(is_stamp(&utc_stamp(1_796_623_692_345)[..19]));
    }

    #[test]
    fn names_increase_and_list_finds_only_rotated_files() {
        let dir = std::env::temp_dir().join(format!("rot-names-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Rotated::new(&dir.join("dnstap.fstrm"));
        let a = r.next_name();
        let b = r.next_name();
        assert!(a < b, "{a:?} {b:?}");
        for p in [&a, &b] {
            std::fs::write(p, b"x").unwrap();
        }
        std::fs::write(dir.join("dnstap.fstrm"), b"x").unwrap();
        std::fs::write(dir.join("other-1.fstrm"), b"x").unwrap();
        std::fs::write(format!("{}.zst.tmp", b.display()), b"x").unwrap();
        assert_eq!(r.list(), vec![a, b]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
