//! Addresses as users write them: `HOST:PORT`, `[V6]:PORT`, a host and a port, a unix socket
//! path. Shared by the resolution of inputs, outputs and the metrics endpoint. A host name
//! is looked up (the system resolver) so that a typo stops start-up; nothing is bound.
#![forbid(unsafe_code)]

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

/// `host` (an IP literal or a name, looked up) and `port`.
pub fn resolve_addr(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host:?} has no address"))
}

/// `HOST:PORT` or `[V6]:PORT`.
pub fn parse_host_port(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: bad port {port:?}"))?;
    if host.is_empty() {
        return Err(format!("{s:?}: empty host"));
    }
    resolve_addr(host.trim_start_matches('[').trim_end_matches(']'), port)
}

/// `HOST:PORT` / `[V6]:PORT` into its parts (the host is kept as written, resolved at each
/// connection).
pub fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: bad port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{s:?}: empty host"));
    }
    Ok((host.to_string(), port))
}

/// A unix socket path fits `sun_path`.
pub fn check_unix_path(p: &Path) -> Result<(), String> {
    // sun_path is 108 bytes including the terminating NUL.
    let len = p.as_os_str().len();
    if len == 0 {
        return Err("empty unix socket path".into());
    }
    if len > 107 {
        return Err(format!("unix socket path is {len} bytes; the limit is 107"));
    }
    Ok(())
}
