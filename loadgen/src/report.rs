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
    /// Where the payloads came from: "replay" (capture files) or "synth".
    pub source: &'static str,
    /// The `--rate` asked for (msg/s over all connections), if any.
    pub rate_target: Option<f64>,
    /// Messages the receiver reported receiving, when it is known (`--discard`: frames its
    /// discard receiver counted; `--verify-output`: lines of the receiver's output).
    pub received: Option<u64>,
}

impl Report {
    pub fn messages_per_second(&self) -> f64 {
        rate(self.messages as f64, self.seconds)
    }

    pub fn megabytes_per_second(&self) -> f64 {
        rate(self.bytes as f64 / 1e6, self.seconds)
    }

    /// Messages sent that the receiver did not report (0 when it is not known).
    pub fn shortfall(&self) -> u64 {
        self.received
            .map_or(0, |got| self.messages.saturating_sub(got))
    }

    pub fn to_text(&self) -> String {
        let mut extra = String::new();
        if let Some(r) = self.rate_target {
            let _ = write!(extra, ", paced at {r:.0} msg/s");
        }
        if let Some(got) = self.received {
            let _ = write!(extra, "; received {got}");
            match self.shortfall() {
                0 => extra.push_str(", none missing"),
                n => {
                    let _ = write!(extra, ", {n} MISSING");
                }
            }
        }
        format!(
            "loadgen: {} {} messages, {} bytes in {:.3} s over {} {} connection(s) ({}): \
             {:.0} msg/s, {:.1} MB/s{}{extra}",
            self.source,
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

    /// One JSON object; every value is a number, a bool, null or one of a few fixed words,
    /// so no string escaping is needed.
    pub fn to_json(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"transport\":\"{}\",\"bidirectional\":{},\"connections\":{},\
             \"failed_connections\":{},\"messages\":{},\"bytes\":{},\"seconds\":{:.6},\
             \"messages_per_second\":{:.1},\"megabytes_per_second\":{:.3},\"source\":\"{}\",\
             \"rate_target\":{},\"received\":{},\"missing\":{}}}",
            self.transport,
            self.bidirectional,
            self.connections,
            self.failed_connections,
            self.messages,
            self.bytes,
            self.seconds,
            self.messages_per_second(),
            self.megabytes_per_second(),
            self.source,
            opt(self.rate_target.map(|r| format!("{r:.1}"))),
            opt(self.received.map(|r| r.to_string())),
            opt(self.received.map(|_| self.shortfall().to_string())),
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
            source: "replay",
            rate_target: None,
            received: None,
        };
        assert_eq!(
            r.to_json(),
            "{\"transport\":\"unix\",\"bidirectional\":true,\"connections\":2,\
             \"failed_connections\":0,\"messages\":1000,\"bytes\":2000000,\"seconds\":0.500000,\
             \"messages_per_second\":2000.0,\"megabytes_per_second\":4.000,\"source\":\"replay\",\
             \"rate_target\":null,\"received\":null,\"missing\":null}"
        );
        assert!(r.to_text().contains("2000 msg/s"));
        assert_eq!(r.shortfall(), 0);
    }

    #[test]
    fn a_shortfall_is_reported_in_both_forms() {
        let r = Report {
            transport: "unix",
            bidirectional: true,
            connections: 1,
            failed_connections: 0,
            messages: 1000,
            bytes: 20_000,
            seconds: 1.0,
            source: "synth",
            rate_target: Some(1000.0),
            received: Some(990),
        };
        assert_eq!(r.shortfall(), 10);
        assert!(
            r.to_text().contains("received 990, 10 MISSING"),
            "{}",
            r.to_text()
        );
        assert!(r.to_text().contains("paced at 1000 msg/s"));
        assert!(r
            .to_json()
            .ends_with("\"rate_target\":1000.0,\"received\":990,\"missing\":10}"));
        let all = Report {
            received: Some(1000),
            ..r
        };
        assert!(all.to_text().contains("none missing"));
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
            source: "replay",
            rate_target: None,
            received: None,
        };
        assert_eq!(r.messages_per_second(), 0.0);
    }
}
