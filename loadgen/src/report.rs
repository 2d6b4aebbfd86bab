//! The final report of a run: totals and rates, as one text line or one JSON object.
#![forbid(unsafe_code)]

use std::fmt::Write;

/// Totals over every connection of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub transport: &'static str,
    pub bidirectional: bool,
    pub connections: usize,
    /// Connections that failed; what they sent before failing is not in the totals.
    pub failed_connections: usize,
    pub messages: u64,
    /// Data frame bytes written, length prefixes included.
    pub bytes: u64,
    /// Wall time from the first connect to the last FINISH (or STOP when unidirectional).
    pub seconds: f64,
}

impl Report {
    pub fn messages_per_second(&self) -> f64 {
        rate(self.messages as f64, self.seconds)
    }

    pub fn megabytes_per_second(&self) -> f64 {
        rate(self.bytes as f64 / 1e6, self.seconds)
    }

    pub fn to_text(&self) -> String {
        format!(
            "loadgen: {} messages, {} bytes in {:.3} s over {} {} connection(s) ({}): \
             {:.0} msg/s, {:.1} MB/s{}",
            self.messages,
            self.bytes,
            self.seconds,
            self.connections,
            self.transport,
            if self.bidirectional {
                "bidirectional"
            } else {
                "unidirectional"
            },
            self.messages_per_second(),
            self.megabytes_per_second(),
            match self.failed_connections {
                0 => String::new(),
                n => format!(", {n} connection(s) FAILED"),
            }
        )
    }

    /// One JSON object; every value is a number, a bool or one of a few fixed words, so no
    /// string escaping is needed.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"transport\":\"{}\",\"bidirectional\":{},\"connections\":{},\
             \"failed_connections\":{},\"messages\":{},\"bytes\":{},\"seconds\":{:.6},\
             \"messages_per_second\":{:.1},\"megabytes_per_second\":{:.3}}}",
            self.transport,
            self.bidirectional,
            self.connections,
            self.failed_connections,
            self.messages,
            self.bytes,
            self.seconds,
            self.messages_per_second(),
            self.megabytes_per_second()
        );
        s
    }
}

fn rate(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        amount / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_totals_and_rates() {
        let r = Report {
            transport: "unix",
            bidirectional: true,
            connections: 2,
            failed_connections: 0,
            messages: 1000,
            bytes: 2_000_000,
            seconds: 0.5,
        };
        assert_eq!(
            r.to_json(),
            "{\"transport\":\"unix\",\"bidirectional\":true,\"connections\":2,\
             \"failed_connections\":0,\"messages\":1000,\"bytes\":2000000,\"seconds\":0.500000,\
             \"messages_per_second\":2000.0,\"megabytes_per_second\":4.000}"
        );
        assert!(r.to_text().contains("2000 msg/s"));
    }

    #[test]
    fn zero_seconds_gives_zero_rate() {
        let r = Report {
            transport: "tcp",
            bidirectional: false,
            connections: 1,
            failed_connections: 0,
            messages: 1,
            bytes: 1,
            seconds: 0.0,
        };
        assert_eq!(r.messages_per_second(), 0.0);
    }
}
