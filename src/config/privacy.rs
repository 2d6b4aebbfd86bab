//! The `normalize` and `user-privacy` keys of a `transforms:` section: their written form
//! ([`NormalizeFileSpec`], [`PrivacyFileSpec`]), the checked form ([`EnrichConf`]: ranges,
//! names and paths checked, paths made absolute) and the compile step that reads the Public
//! Suffix List and the key file into the [`Normalize`] and [`UserPrivacy`] steps.
//!
//! [`compile`] is a pure function of the checked form and the files it names, so a whole-
//! config reload (SIGHUP) that compiles again picks up a new key or list. Knows the written
//! form and the transform floor's compiled types; nothing of records or the writer.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::error::ConfigError;
use super::file::TransformsSpec;
use crate::sink::kafka::ValueKind;
use crate::sink::outputs::OutputConf;
use crate::transform::cryptopan::{CryptoPan, KEY_LEN};
use crate::transform::normalize::{Normalize, SuffixList, BUILTIN_LIST, SYSTEM_LIST};
use crate::transform::privacy::{Pseudonym, UserPrivacy};
use crate::transform::Step;

/// `transforms.normalize` as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NormalizeFileSpec {
    pub qname_lowercase: Option<bool>,
    pub add_tld: Option<bool>,
    pub add_etld1: Option<bool>,
    /// The Public Suffix List (default: Debian's when present, else the copy built in).
    pub psl_file: Option<PathBuf>,
    /// Use the ICANN section of the list only.
    pub icann_only: Option<bool>,
}

/// `transforms.user-privacy` as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PrivacyFileSpec {
    pub anonymize_ip: Option<bool>,
    pub anonymize_v4bits: Option<u64>,
    pub anonymize_v6bits: Option<u64>,
    /// `crypto-pan` or `hmac-sha256`.
    pub pseudonymize_ip: Option<String>,
    pub key_file: Option<PathBuf>,
    pub minimize_qname: Option<bool>,
}

/// Which keyed pseudonym `pseudonymize-ip` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PseudonymKind {
    CryptoPan,
    HmacSha256,
}

/// `normalize`, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NormalizeConf {
    pub lowercase: bool,
    pub add_tld: bool,
    pub add_etld1: bool,
}

/// `user-privacy`, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrivacyConf {
    /// Bits of IPv4 and IPv6 addresses kept (`anonymize-ip`).
    pub truncate: Option<(u8, u8)>,
    pub pseudonym: Option<(PseudonymKind, PathBuf)>,
    pub minimize_qname: bool,
}

/// Both sections of one `transforms:` block, checked, with the list they share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnrichConf {
    /// Key path of the `transforms:` block (`transforms`, `outputs[0].stdout.transforms`).
    pub prefix: String,
    pub normalize: Option<NormalizeConf>,
    pub privacy: Option<PrivacyConf>,
    /// `normalize.psl-file`, absolute; `None`: the default list.
    pub psl_file: Option<PathBuf>,
    pub icann_only: bool,
}

/// Checks the `normalize` and `user-privacy` keys of one `transforms:` block (`prefix` is
/// its key path); `None` when it has neither.
pub fn resolve(
    spec: Option<&TransformsSpec>,
    prefix: &str,
    file: Option<&Path>,
) -> Result<Option<EnrichConf>, ConfigError> {
    let Some(spec) = spec else { return Ok(None) };
    if spec.normalize.is_none() && spec.user_privacy.is_none() {
        return Ok(None);
    }
    let base = file.and_then(Path::parent);
    let path = |key: &str, p: &Path| -> Result<PathBuf, ConfigError> {
        if p.as_os_str().is_empty() {
            return Err(ConfigError::new(file, key, "an empty path"));
        }
        Ok(match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.to_path_buf(),
        })
    };
    let mut conf = EnrichConf {
        prefix: prefix.to_string(),
        ..EnrichConf::default()
    };
    if let Some(n) = &spec.normalize {
        let key = format!("{prefix}.normalize");
        conf.normalize = Some(NormalizeConf {
            lowercase: n.qname_lowercase.unwrap_or(false),
            add_tld: n.add_tld.unwrap_or(false),
            add_etld1: n.add_etld1.unwrap_or(false),
        });
        if let Some(p) = &n.psl_file {
            conf.psl_file = Some(path(&format!("{key}.psl-file"), p)?);
        }
        conf.icann_only = n.icann_only.unwrap_or(false);
    }
    if let Some(p) = &spec.user_privacy {
        let key = format!("{prefix}.user-privacy");
        let bits = |name: &str, v: Option<u64>, default: u8, max: u8| -> Result<u8, ConfigError> {
            match v {
                None => Ok(default),
                Some(b) if b <= u64::from(max) => Ok(b as u8),
                Some(b) => Err(ConfigError::new(
                    file,
                    format!("{key}.{name}"),
                    format!("{b} is not a prefix length (0..={max})"),
                )),
            }
        };
        let v4 = bits("anonymize-v4bits", p.anonymize_v4bits, 24, 32)?;
        let v6 = bits("anonymize-v6bits", p.anonymize_v6bits, 56, 128)?;
        let anonymize = p.anonymize_ip.unwrap_or(false);
        if p.anonymize_ip.is_none()
            && (p.anonymize_v4bits.is_some() || p.anonymize_v6bits.is_some())
        {
            let name = if p.anonymize_v4bits.is_some() {
                "anonymize-v4bits"
            } else {
                "anonymize-v6bits"
            };
            return Err(ConfigError::new(
                file,
                format!("{key}.{name}"),
                "without anonymize-ip: true nothing is truncated",
            ));
        }
        let kind = match p.pseudonymize_ip.as_deref().map(str::trim) {
            None => None,
            Some(s) if s.eq_ignore_ascii_case("crypto-pan") => Some(PseudonymKind::CryptoPan),
            Some(s) if s.eq_ignore_ascii_case("hmac-sha256") => Some(PseudonymKind::HmacSha256),
            Some(s) => {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.pseudonymize-ip"),
                    format!("unknown pseudonym {s:?} (crypto-pan or hmac-sha256)"),
                ))
            }
        };
        let pseudonym = match (kind, &p.key_file) {
            (Some(k), Some(f)) => Some((k, path(&format!("{key}.key-file"), f)?)),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.key-file"),
                    "pseudonymize-ip needs a key-file (32 bytes, or 64 hex digits)",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.key-file"),
                    "a key without pseudonymize-ip (crypto-pan or hmac-sha256) is unused",
                ))
            }
            (None, None) => None,
        };
        conf.privacy = Some(PrivacyConf {
            truncate: anonymize.then_some((v4, v6)),
            pseudonym,
            minimize_qname: p.minimize_qname.unwrap_or(false),
        });
    }
    Ok(Some(conf))
}

/// Refuses a Kafka output with `value: raw` behind `user-privacy` (global or its own): a
/// raw value is the dnstap payload as received, which no transform changes, so it would
/// send every original address.
pub fn refuse_raw_values(
    outputs: &[OutputConf],
    global: Option<&EnrichConf>,
    per_output: &[Option<&EnrichConf>],
    file: Option<&Path>,
) -> Result<(), ConfigError> {
    let private =
        |c: Option<&EnrichConf>| c.filter(|e| e.privacy.is_some()).map(|e| e.prefix.clone());
    for (i, o) in outputs.iter().enumerate() {
        let OutputConf::Kafka(k) = o else { continue };
        if k.value != ValueKind::Raw {
            continue;
        }
        let Some(prefix) =
            private(per_output.get(i).copied().flatten()).or_else(|| private(global))
        else {
            continue;
        };
        return Err(ConfigError::new(
            file,
            format!("{prefix}.user-privacy"),
            format!(
                "output {} (kafka) sends value: raw, the dnstap payload as received, which \
                 user-privacy cannot change: use value: json or json-full",
                i + 1
            ),
        ));
    }
    Ok(())
}

/// Reads the list and the key and compiles the steps, in chain order (normalize, then
/// user-privacy); a section that changes nothing adds no step.
pub fn compile(c: &EnrichConf, file: Option<&Path>) -> Result<Vec<Step>, ConfigError> {
    let wants_list = c
        .normalize
        .as_ref()
        .is_some_and(|n| n.add_tld || n.add_etld1)
        || c.privacy.as_ref().is_some_and(|p| p.minimize_qname);
    let list = if wants_list {
        Some(Arc::new(load_list(c, file)?))
    } else {
        None
    };
    let mut steps = Vec::new();
    if let Some(n) = &c.normalize {
        let step = Normalize {
            lowercase: n.lowercase,
            add_tld: n.add_tld,
            add_etld1: n.add_etld1,
            list: list.clone().filter(|_| n.add_tld || n.add_etld1),
        };
        if !step.is_noop() {
            steps.push(Step::Normalize(step));
        }
    }
    if let Some(p) = &c.privacy {
        let key = format!("{}.user-privacy.key-file", c.prefix);
        let pseudonym = match &p.pseudonym {
            None => None,
            Some((kind, path)) => {
                let k = read_key(path).map_err(|r| ConfigError::new(file, &key, r))?;
                Some(match kind {
                    PseudonymKind::CryptoPan => Pseudonym::CryptoPan(Box::new(CryptoPan::new(&k))),
                    PseudonymKind::HmacSha256 => Pseudonym::hmac_sha256(&k),
                })
            }
        };
        let step = UserPrivacy {
            truncate: p.truncate,
            pseudonym,
            minimize: list.filter(|_| p.minimize_qname),
            cache: Default::default(),
        };
        if !step.is_noop() {
            steps.push(Step::UserPrivacy(step));
        }
    }
    Ok(steps)
}

/// The Public Suffix List: `psl-file`, else Debian's when present, else the copy built in.
fn load_list(c: &EnrichConf, file: Option<&Path>) -> Result<SuffixList, ConfigError> {
    let key = format!("{}.normalize.psl-file", c.prefix);
    let system = Path::new(SYSTEM_LIST);
    let (text, from) = match &c.psl_file {
        Some(p) => (read_list(p, file, &key)?, p.display().to_string()),
        None if system.exists() => (read_list(system, file, &key)?, SYSTEM_LIST.to_string()),
        None => (BUILTIN_LIST.to_string(), "the list built in".to_string()),
    };
    SuffixList::parse(&text, c.icann_only)
        .map_err(|e| ConfigError::new(file, key, format!("{from}: not a public suffix list: {e}")))
}

fn read_list(p: &Path, file: Option<&Path>, key: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(p)
        .map_err(|e| ConfigError::new(file, key, format!("{}: {e}", p.display())))
}

/// A key file: exactly 32 bytes, or 64 hex digits (then surrounding white space, such as
/// the newline of `openssl rand -hex 32 > key`, is allowed). The error names the file.
pub fn read_key(path: &Path) -> Result<[u8; KEY_LEN], String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(k) = <[u8; KEY_LEN]>::try_from(bytes.as_slice()) {
        return Ok(k);
    }
    let text = bytes.trim_ascii();
    if text.len() == 2 * KEY_LEN && text.iter().all(u8::is_ascii_hexdigit) {
        let mut k = [0u8; KEY_LEN];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            if let Some(d) = k.get_mut(i) {
                *d = (hex(pair[0]) << 4) | hex(pair[1]);
            }
        }
        return Ok(k);
    }
    Err(format!(
        "{}: a key of {} bytes: a key is {KEY_LEN} bytes, or {} hex digits",
        path.display(),
        bytes.len(),
        2 * KEY_LEN
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::FileConfig;

    fn res(yaml: &str) -> Result<Option<EnrichConf>, ConfigError> {
        let fc = FileConfig::parse(yaml)?;
        resolve(
            fc.transforms.as_ref(),
            "transforms",
            Some(Path::new("/etc/d/t.yaml")),
        )
    }

    #[test]
    fn keys_are_checked_and_paths_made_absolute() {
        let c = res("transforms:\n  normalize: {qname-lowercase: true, add-etld1: true, psl-file: psl.dat, icann-only: true}\n  user-privacy: {anonymize-ip: true, anonymize-v6bits: 48, pseudonymize-ip: crypto-pan, key-file: k, minimize-qname: true}\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.psl_file, Some(PathBuf::from("/etc/d/psl.dat")));
        assert!(c.icann_only);
        let n = c.normalize.unwrap();
        assert!(n.lowercase && n.add_etld1 && !n.add_tld);
        let p = c.privacy.unwrap();
        assert_eq!(p.truncate, Some((24, 48)));
        assert_eq!(
            p.pseudonym,
            Some((PseudonymKind::CryptoPan, PathBuf::from("/etc/d/k")))
        );
        assert!(p.minimize_qname);
        assert_eq!(res("transforms: {}\n").unwrap(), None);
    }

    #[test]
    fn bad_values_are_named() {
        let e = res("transforms:\n  user-privacy: {anonymize-ip: true, anonymize-v4bits: 33}\n")
            .unwrap_err();
        assert_eq!(e.key, "transforms.user-privacy.anonymize-v4bits", "{e}");
        let e =
            res("transforms:\n  user-privacy: {pseudonymize-ip: sha1, key-file: k}\n").unwrap_err();
        assert_eq!(e.key, "transforms.user-privacy.pseudonymize-ip", "{e}");
        assert!(e.reason.contains("sha1"), "{e}");
        let e = res("transforms:\n  user-privacy: {pseudonymize-ip: hmac-sha256}\n").unwrap_err();
        assert_eq!(e.key, "transforms.user-privacy.key-file", "{e}");
        let e = res("transforms:\n  user-privacy: {anonymize-v6bits: 64}\n").unwrap_err();
        assert_eq!(e.key, "transforms.user-privacy.anonymize-v6bits", "{e}");
        let e = res("transforms:\n  normalize: {add-tld: true, psl: x}\n").unwrap_err();
        assert!(e.key.starts_with("transforms.normalize"), "{e}");
        assert!(e.reason.contains("psl"), "{e}");
    }

    #[test]
    fn key_files_raw_or_hex_and_their_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("privacy-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("raw.key");
        std::fs::write(&raw, [7u8; 32]).unwrap();
        assert_eq!(read_key(&raw).unwrap(), [7u8; 32]);
        let hex = dir.join("hex.key");
        std::fs::write(&hex, format!("{}\n", "0a".repeat(32))).unwrap();
        assert_eq!(read_key(&hex).unwrap(), [10u8; 32]);
        let short = dir.join("short.key");
        std::fs::write(&short, [1u8; 16]).unwrap();
        let e = read_key(&short).unwrap_err();
        assert!(e.contains("short.key") && e.contains("16 bytes"), "{e}");
        let e = read_key(&dir.join("missing.key")).unwrap_err();
        assert!(e.contains("missing.key"), "{e}");

        let conf = EnrichConf {
            prefix: "transforms".into(),
            privacy: Some(PrivacyConf {
                pseudonym: Some((PseudonymKind::CryptoPan, short.clone())),
                ..PrivacyConf::default()
            }),
            ..EnrichConf::default()
        };
        let e = compile(&conf, None).unwrap_err();
        assert_eq!(e.key, "transforms.user-privacy.key-file", "{e}");
        assert!(e.reason.contains("short.key"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn list_file_errors_name_the_file() {
        let conf = EnrichConf {
            prefix: "outputs[0].stdout.transforms".into(),
            normalize: Some(NormalizeConf {
                add_tld: true,
                ..NormalizeConf::default()
            }),
            psl_file: Some(PathBuf::from("/nonexistent/psl.dat")),
            ..EnrichConf::default()
        };
        let e = compile(&conf, None).unwrap_err();
        assert_eq!(
            e.key, "outputs[0].stdout.transforms.normalize.psl-file",
            "{e}"
        );
        assert!(e.reason.contains("/nonexistent/psl.dat"), "{e}");
        // A list the parser refuses (an exception rule of one label).
        let dir = std::env::temp_dir().join(format!("privacy-psl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.dat");
        std::fs::write(&bad, "// ===BEGIN ICANN DOMAINS===\ncom\n!uk\n").unwrap();
        let e = compile(
            &EnrichConf {
                psl_file: Some(bad.clone()),
                ..conf.clone()
            },
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.key, "outputs[0].stdout.transforms.normalize.psl-file",
            "{e}"
        );
        assert!(
            e.reason.contains("bad.dat") && e.reason.contains("!uk"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        // The default list loads (Debian's, or the copy built in).
        let conf = EnrichConf {
            psl_file: None,
            ..conf
        };
        assert_eq!(compile(&conf, None).unwrap().len(), 1);
    }
}
