//! [`InputSpec`]: one listener to open, as `config` compiled it (an address already
//! resolved, a unix path already checked). The input floor binds it; nothing here knows the
//! config file or the command line it came from.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// TCP with TLS.
    Tls(SocketAddr),
    /// TCP carrying PowerDNS protobuf logging (2-byte length-prefixed PBDNSMessages).
    PowerDns(SocketAddr),
    /// The same inside TLS.
    PowerDnsTls(SocketAddr),
}

impl fmt::Display for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSpec::Tcp(a) => write!(f, "tcp {a}"),
            InputSpec::Unix(p) => write!(f, "unix {}", p.display()),
            InputSpec::Tls(a) => write!(f, "tls {a}"),
            InputSpec::PowerDns(a) => write!(f, "powerdns {a}"),
            InputSpec::PowerDnsTls(a) => write!(f, "powerdns-tls {a}"),
        }
    }
}
