//! What a reload (SIGHUP) may change in a running receiver, and what only a restart
//! applies. A reload builds new [`Settings`](super::Settings) from the file, exactly as a
//! start would (every value checked, every file read; nothing bound); this module compares
//! their resolved form with the one in force. What it lists keeps its running value and is
//! logged as needing a restart; the rest (prefilters, transform chains and their lists and
//! keys, formats, outputs, TLS certificates and keys, `allow-from`, the handshake timeout,
//! `verbose`) is handed over by the caller. docs/operations.md ("Reload") is the user's
//! version of this list.
#![forbid(unsafe_code)]

use super::Resolved;

/// One setting that changed but only applies at the next start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartOnly {
    /// The key as written in the file (or the flag), e.g. `queue.capacity`.
    pub key: &'static str,
    /// What runs, and what the file now says.
    pub running: String,
    pub wanted: String,
}

impl std::fmt::Display for RestartOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: changed ({} → {}); needs a restart, the running value is kept",
            self.key, self.running, self.wanted
        )
    }
}

/// The settings that differ between `running` and `new` and that a reload cannot apply:
/// the listeners and their socket options, threads, the queue and its buffers, the frame
/// size limit, the metrics endpoint, the I/O back-end.
pub fn restart_only(running: &Resolved, new: &Resolved) -> Vec<RestartOnly> {
    let mut out = Vec::new();
    let mut check = |key: &'static str, a: String, b: String| {
        if a != b {
            out.push(RestartOnly {
                key,
                running: a,
                wanted: b,
            });
        }
    };
    let inputs = |r: &Resolved| {
        let v: Vec<String> = r.inputs.iter().map(|i| i.to_string()).collect();
        format!("[{}]", v.join(", "))
    };
    check("inputs", inputs(running), inputs(new));
    check("io", format!("{:?}", running.io), format!("{:?}", new.io));
    check(
        "threads",
        running.threads.to_string(),
        new.threads.to_string(),
    );
    check(
        "queue.capacity",
        running.queue_capacity.to_string(),
        new.queue_capacity.to_string(),
    );
    check(
        "queue.policy",
        format!("{:?}", running.policy),
        format!("{:?}", new.policy),
    );
    check(
        "buffer-size",
        running.buffer_size.to_string(),
        new.buffer_size.to_string(),
    );
    check(
        "max-frame-size",
        running.max_frame_size.to_string(),
        new.max_frame_size.to_string(),
    );
    check(
        "metrics",
        format!("{:?}", running.metrics),
        format!("{:?}", new.metrics),
    );
    let (rs, ns) = (&running.security, &new.security);
    check(
        "unix-socket-mode",
        format!("{:?}", rs.unix_mode),
        format!("{:?}", ns.unix_mode),
    );
    check(
        "unix-socket-owner",
        format!("{:?}", rs.unix_owner),
        format!("{:?}", ns.unix_owner),
    );
    check(
        "unix-socket-group",
        format!("{:?}", rs.unix_group),
        format!("{:?}", ns.unix_group),
    );
    check(
        "reuse-port",
        rs.reuse_port.to_string(),
        ns.reuse_port.to_string(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::{resolve, FileConfig, LowArgs};
    use super::*;
    use clap::Parser;
    use std::path::Path;

    fn res(yaml: &str) -> Resolved {
        let args = LowArgs::try_parse_from(["dnstap_receiver"]).unwrap();
        let fc = FileConfig::parse(yaml).unwrap();
        resolve(&args, Some(&fc), Some(Path::new("t.yaml"))).unwrap()
    }

    #[test]
    fn filters_outputs_and_allow_from_reload_in_place() {
        let a = res("threads: 2\n");
        let b = res(
            "threads: 2\nfilter:\n  qname-regex: ^www\nallow-from: [127.0.0.1]\n\
             outputs:\n  - stdout: {format: json}\n  - forward: {remote: [127.0.0.1:9]}\n",
        );
        assert_eq!(restart_only(&a, &b), vec![]);
    }

    #[test]
    fn listeners_threads_and_the_queue_need_a_restart() {
        let a = res("threads: 2\n");
        let b = res(
            "threads: 3\ninputs:\n  - tcp: 127.0.0.1:7000\nqueue:\n  capacity: 8\n\
             reuse-port: true\n",
        );
        let keys: Vec<&str> = restart_only(&a, &b).iter().map(|r| r.key).collect();
        assert_eq!(
            keys,
            ["inputs", "threads", "queue.capacity", "reuse-port"],
            "{:?}",
            restart_only(&a, &b)
        );
        let line = restart_only(&a, &b)[1].to_string();
        assert_eq!(
            line,
            "threads: changed (2 → 3); needs a restart, the running value is kept"
        );
    }
}
