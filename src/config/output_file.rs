//! `outputs: - file:`: the written section ([`FileOutputSpec`]) checked and resolved into
//! the sink's [`FileConf`]. Creates no file (the output opens it when it starts); a
//! relative path is taken from the config file's directory, as the other paths are.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use super::error::ConfigError;
use super::file::FileOutputSpec;
use crate::format::FormatKind;
use crate::sink::file::{Compress, FileConf, FileFormat};

/// Smallest `max-size`: a file must hold at least a few records.
pub const MIN_MAX_SIZE: u64 = 1024;

/// Resolves one file output; `prefix` is its key path (`outputs[2].file`). Errors carry
/// the key (under `prefix`) and the reason; the caller adds the file.
pub fn resolve(
    f: &FileOutputSpec,
    prefix: &str,
    file: Option<&Path>,
) -> Result<FileConf, ConfigError> {
    let err = |name: &str, reason: String| ConfigError {
        file: file.map(Path::to_path_buf),
        key: format!("{prefix}.{name}"),
        line: None,
        reason,
    };
    let path = f
        .path
        .clone()
        .ok_or_else(|| err("path", "missing".into()))?;
    if path.file_name().is_none() {
        return Err(err("path", format!("{} names no file", path.display())));
    }
    let path = match file.and_then(Path::parent) {
        Some(base) if path.is_relative() => base.join(path),
        _ => path,
    };
    let format = match f.format.as_deref() {
        None | Some("json") => FileFormat::Lines(FormatKind::Json),
        Some("raw") => FileFormat::Raw,
        Some("text") => FileFormat::Lines(FormatKind::Text),
        Some("yaml") => FileFormat::Lines(FormatKind::Yaml),
        Some("json-full") => FileFormat::Lines(FormatKind::JsonFull),
        Some("yaml-full") => FileFormat::Lines(FormatKind::YamlFull),
        Some(o) => {
            return Err(err(
                "format",
                format!("{o:?} is not one of raw, text, json, yaml, json-full, yaml-full"),
            ))
        }
    };
    if let Some(m) = f.max_size {
        if m < MIN_MAX_SIZE {
            return Err(err(
                "max-size",
                format!("{m} is less than {MIN_MAX_SIZE} bytes"),
            ));
        }
    }
    let rotate_interval = match f.rotate_interval {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s <= 366.0 * 86_400.0 => {
            Some(Duration::from_secs_f64(s))
        }
        Some(s) => {
            return Err(err(
                "rotate-interval",
                format!("{s} is not a number of seconds in (0, 31622400]"),
            ))
        }
    };
    let compress = match f.compress.as_deref() {
        None | Some("none") => None,
        Some("gzip") => Some(Compress::Gzip),
        Some("zstd") => Some(Compress::Zstd),
        Some(o) => {
            return Err(err(
                "compress",
                format!("{o:?} is not one of gzip, zstd, none"),
            ))
        }
    };
    let rotates = f.max_size.is_some() || rotate_interval.is_some();
    for (set, name) in [
        (f.max_files.is_some(), "max-files"),
        (compress.is_some(), "compress"),
        (f.postrotate_command.is_some(), "postrotate-command"),
    ] {
        if set && !rotates {
            return Err(err(
                name,
                "set, but the file never rotates (set max-size or rotate-interval)".into(),
            ));
        }
    }
    Ok(FileConf {
        path,
        format,
        max_size: f.max_size,
        rotate_interval,
        max_files: f.max_files.unwrap_or(0),
        compress,
        postrotate_command: f.postrotate_command.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::{FileConfig, OutputEntry};

    fn res(yaml: &str) -> Result<FileConf, ConfigError> {
        let fc = FileConfig::parse(yaml)?;
        let Some(OutputEntry::File(f)) = fc.outputs.as_deref().and_then(|o| o.first()) else {
            panic!("no file output in {yaml}");
        };
        resolve(f, "outputs[0].file", Some(Path::new("/etc/dr/t.yaml")))
    }

    #[test]
    fn a_raw_rotating_file_resolves() {
        let c = res("outputs:\n  - file: {path: /var/log/d.fstrm, format: raw, max-size: 104857600, max-files: 10, compress: zstd, rotate-interval: 3600, postrotate-command: 'true'}\n").unwrap();
        assert_eq!(c.format, FileFormat::Raw);
        assert_eq!(c.max_size, Some(104_857_600));
        assert_eq!(c.max_files, 10);
        assert_eq!(c.compress, Some(Compress::Zstd));
        assert_eq!(c.rotate_interval, Some(Duration::from_secs(3600)));
        assert_eq!(c.name(), "file /var/log/d.fstrm");
        let c = res("outputs:\n  - file: {path: d.json}\n").unwrap();
        assert_eq!(c.format, FileFormat::Lines(FormatKind::Json));
        assert_eq!(c.path, Path::new("/etc/dr/d.json"));
    }

    #[test]
    fn errors_name_the_key() {
        for (y, key) in [
            ("{format: raw}", "path"),
            ("{path: a, format: csv}", "format"),
            ("{path: a, max-size: 10}", "max-size"),
            ("{path: a, rotate-interval: -1}", "rotate-interval"),
            ("{path: a, max-size: 4096, compress: lz4}", "compress"),
            ("{path: a, compress: gzip}", "compress"),
            ("{path: a, max-files: 3}", "max-files"),
        ] {
            let e = res(&format!("outputs:\n  - file: {y}\n")).unwrap_err();
            assert_eq!(e.key, format!("outputs[0].file.{key}"), "{y}: {e}");
        }
    }
}
