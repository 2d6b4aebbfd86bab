//! Input security settings: TLS, the `allow-from` list, unix socket permissions and the
//! handshake timeout, from the validated form ([`SecuritySpec`], built by `config` from the
//! file's keys) to what the readers use ([`InputSecurity`], compiled once at start-up: TLS
//! files read, user and group names looked up). Knows nothing of the config file.
//!
//! Also applies a unix socket's mode, owner and group right after it is bound (std's
//! `chown`, `set_permissions`); user and group names are looked up through
//! [`crate::sys::user`].
#![forbid(unsafe_code)]

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::acl::AllowList;
use super::tls::{load_server_config, TlsSpec};

/// Default `handshake-timeout`: TLS and Frame Streams handshakes together.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one "refused N more" summary line per this interval.
pub const REFUSAL_SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// A user or group: a numeric id, or a name looked up at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Id(u32),
    Name(String),
}

/// Validated security settings (pure: no file read, no name looked up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecuritySpec {
    pub tls: Option<TlsSpec>,
    pub allow_from: AllowList,
    /// Permission bits for unix sockets (`0o000..=0o7777`).
    pub unix_mode: Option<u32>,
    pub unix_owner: Option<Principal>,
    pub unix_group: Option<Principal>,
    pub handshake_timeout: Duration,
    /// SO_REUSEPORT on TCP and TLS listeners (a socket option of the inputs, kept with
    /// their other settings).
    pub reuse_port: bool,
}

impl Default for SecuritySpec {
    fn default() -> Self {
        SecuritySpec {
            tls: None,
            allow_from: AllowList::default(),
            unix_mode: None,
            unix_owner: None,
            unix_group: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            reuse_port: false,
        }
    }
}

/// Unix socket ownership and mode, with names already looked up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnixPerms {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// What the readers use: compiled once, shared read-only, replaced as a whole by a reload.
/// (The log of refused connections, whose state must outlive a reload, is beside it in
/// [`super::ReaderCtx::refusals`].)
#[derive(Debug)]
pub struct InputSecurity {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub allow_from: AllowList,
    pub unix: UnixPerms,
    pub handshake_timeout: Duration,
    /// SO_REUSEPORT on TCP and TLS listeners.
    pub reuse_port: bool,
}

impl Default for InputSecurity {
    fn default() -> Self {
        InputSecurity {
            tls: None,
            allow_from: AllowList::default(),
            unix: UnixPerms::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            reuse_port: false,
        }
    }
}

impl InputSecurity {
    /// Reads the TLS files and looks up user and group names. Errors are `(key, reason)`.
    pub fn compile(spec: &SecuritySpec) -> Result<InputSecurity, (String, String)> {
        let tls = spec.tls.as_ref().map(load_server_config).transpose()?;
        let uid = match &spec.unix_owner {
            None => None,
            Some(Principal::Id(n)) => Some(*n),
            Some(Principal::Name(n)) => {
                Some(lookup_user(n).map_err(|r| ("unix-socket-owner".to_string(), r))?)
            }
        };
        let gid = match &spec.unix_group {
            None => None,
            Some(Principal::Id(n)) => Some(*n),
            Some(Principal::Name(n)) => {
                Some(lookup_group(n).map_err(|r| ("unix-socket-group".to_string(), r))?)
            }
        };
        Ok(InputSecurity {
            tls,
            allow_from: spec.allow_from.clone(),
            unix: UnixPerms {
                mode: spec.unix_mode,
                uid,
                gid,
            },
            handshake_timeout: spec.handshake_timeout,
            reuse_port: spec.reuse_port,
        })
    }
}

/// Sets a freshly bound socket file's owner, group and mode.
pub fn apply_unix_perms(path: &Path, perms: &UnixPerms) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if perms.uid.is_some() || perms.gid.is_some() {
        // An absent id is left unchanged ((uid_t)-1 / (gid_t)-1 to the kernel).
        std::os::unix::fs::chown(path, perms.uid, perms.gid).map_err(|e| {
            let uid = perms.uid.unwrap_or(u32::MAX);
            let gid = perms.gid.unwrap_or(u32::MAX);
            io::Error::new(
                e.kind(),
                format!("chown {} to {uid}:{gid}: {e}", path.display()),
            )
        })?;
    }
    if let Some(mode) = perms.mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("chmod {:o} {}: {e}", mode, path.display()),
            )
        })?;
    }
    Ok(())
}

/// The uid of a user name (`getpwnam_r`).
pub fn lookup_user(name: &str) -> Result<u32, String> {
    if name.contains('\0') {
        return Err(format!("{name:?}: NUL in name"));
    }
    match crate::sys::user::uid_by_name(name) {
        Ok(Some(uid)) => Ok(uid),
        Ok(None) => Err(format!("no such user: {name:?}")),
        Err(e) => Err(format!("cannot look up user {name:?}: {e}")),
    }
}

/// The gid of a group name (`getgrnam_r`).
pub fn lookup_group(name: &str) -> Result<u32, String> {
    if name.contains('\0') {
        return Err(format!("{name:?}: NUL in name"));
    }
    match crate::sys::user::gid_by_name(name) {
        Ok(Some(gid)) => Ok(gid),
        Ok(None) => Err(format!("no such group: {name:?}")),
        Err(e) => Err(format!("cannot look up group {name:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_looked_up_and_unknown_names_refused() {
        assert_eq!(lookup_user("root").unwrap(), 0);
        assert_eq!(lookup_group("root").unwrap(), 0);
        let e = lookup_user("no-such-user-dnstap-xyz").unwrap_err();
        assert!(e.contains("no such user"), "{e}");
        let spec = SecuritySpec {
            unix_group: Some(Principal::Name("no-such-group-dnstap-xyz".into())),
            ..SecuritySpec::default()
        };
        assert_eq!(
            InputSecurity::compile(&spec).unwrap_err().0,
            "unix-socket-group"
        );
        let spec = SecuritySpec {
            unix_owner: Some(Principal::Name("root".into())),
            unix_group: Some(Principal::Id(0)),
            ..SecuritySpec::default()
        };
        let c = InputSecurity::compile(&spec).unwrap();
        assert_eq!((c.unix.uid, c.unix.gid), (Some(0), Some(0)));
    }

    #[test]
    fn perms_are_applied_to_the_file() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("dr-perm-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.sock");
        let _ = std::fs::remove_file(&p);
        let _l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        let me = std::fs::metadata(&dir).unwrap();
        let perms = UnixPerms {
            mode: Some(0o640),
            uid: Some(me.uid()),
            gid: Some(me.gid()),
        };
        apply_unix_perms(&p, &perms).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o640);
        assert_eq!((m.uid(), m.gid()), (me.uid(), me.gid()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
