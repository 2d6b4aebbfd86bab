//! The `kafka:` output section checked and compiled: [`KafkaSpec`] (as written, in
//! `file/kafka.rs`) into the Kafka output's [`KafkaSettings`]. Every error names its key
//! (`kafka.sasl.mechanism`). Reads the files it names (password file, and checks the TLS
//! files exist); creates nothing and opens no socket, no producer.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::OverflowChoice;
use super::file::kafka::{Brokers, KafkaSpec, Scalar};
use crate::sink::buffer::OverflowPolicy;
use crate::sink::kafka::settings::{KafkaSettings, SpillSettings};

/// Records librdkafka may hold in memory by default (`queue-messages`).
pub const DEFAULT_QUEUE_MESSAGES: u32 = 100_000;
/// Payload bytes librdkafka may hold in memory by default, in KiB (`queue-kbytes`).
pub const DEFAULT_QUEUE_KBYTES: u32 = 64 << 10;
pub const DEFAULT_LINGER_MS: u32 = 5;
pub const DEFAULT_BATCH_BYTES: u32 = 1 << 20;
/// How long `drop` lets librdkafka retry one record before it is given up and counted.
pub const DEFAULT_MESSAGE_TIMEOUT_MS: u32 = 30_000;
/// How long shutdown waits for the broker to acknowledge what is still held.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u32 = 10_000;
pub const DEFAULT_SPILL_MAX_BYTES: u64 = 1 << 30;

/// A validation error: the key under `kafka.` and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub key: String,
    pub reason: String,
}

fn bad(key: &str, reason: impl Into<String>) -> SpecError {
    SpecError {
        key: format!("kafka.{key}"),
        reason: reason.into(),
    }
}

/// Properties the section sets itself, or whose change would break the delivery
/// accounting; `librdkafka:` may not set them.
const RESERVED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "delivery.report.only.error",
    "dr_cb",
    "dr_msg_cb",
    "enable.gapless.guarantee",
];

/// Validates `spec` and compiles it. `Ok(None)`: the section says `enable: false`.
/// `base` is the directory relative paths are taken from (the config file's).
pub fn resolve(spec: &KafkaSpec, base: Option<&Path>) -> Result<Option<KafkaSettings>, SpecError> {
    if spec.enable == Some(false) {
        return Ok(None);
    }
    let brokers: Vec<String> = match &spec.brokers {
        None => return Err(bad("brokers", "no brokers given (HOST:PORT, ...)")),
        Some(Brokers::One(s)) => s.split(',').map(|b| b.trim().to_string()).collect(),
        Some(Brokers::List(v)) => v.iter().map(|b| b.trim().to_string()).collect(),
    };
    if brokers.is_empty() || brokers.iter().any(String::is_empty) {
        return Err(bad("brokers", "an empty broker address"));
    }
    for b in &brokers {
        check_broker(b).map_err(|r| bad("brokers", r))?;
    }
    let topic = spec.topic.clone().unwrap_or_else(|| "dnstap".to_string());
    check_topic(&topic).map_err(|r| bad("topic", r))?;

    let acks = match &spec.acks {
        None => "all".to_string(),
        Some(Scalar::Text(s)) if s == "all" || s == "-1" => "all".to_string(),
        Some(Scalar::Int(-1)) => "all".to_string(),
        Some(Scalar::Int(n @ (0 | 1))) => n.to_string(),
        Some(Scalar::Text(s)) if s == "0" || s == "1" => s.clone(),
        Some(other) => return Err(bad("acks", format!("{other} is not all, 1 or 0"))),
    };
    let idempotence = spec.idempotence.unwrap_or(acks == "all");
    if idempotence && acks != "all" {
        return Err(bad(
            "idempotence",
            format!("needs acks: all (acks is {acks})"),
        ));
    }

    let overflow = spec
        .overflow
        .map_or(OverflowPolicy::Block, OverflowChoice::policy);
    if overflow == OverflowPolicy::DropOldest {
        return Err(bad(
            "overflow",
            "drop-oldest is not possible: librdkafka cannot give back the records it holds \
             (use drop-newest, block or spill)",
        ));
    }
    let spill = match (overflow, &spec.spill_dir) {
        (OverflowPolicy::Spill, None) => {
            return Err(bad("spill-dir", "overflow: spill needs a spill-dir"));
        }
        (OverflowPolicy::Spill, Some(d)) => {
            let max_bytes = spec.spill_max_bytes.unwrap_or(DEFAULT_SPILL_MAX_BYTES);
            if max_bytes < 1 << 20 {
                return Err(bad("spill-max-bytes", "less than 1 MiB"));
            }
            Some(SpillSettings {
                dir: relative_to(base, d),
                max_bytes,
            })
        }
        (_, Some(_)) => {
            return Err(bad("spill-dir", "only used with overflow: spill"));
        }
        (_, None) => None,
    };
    if spec.message_timeout_ms.is_some() && overflow != OverflowPolicy::DropNewest {
        return Err(bad(
            "message-timeout-ms",
            "only used with overflow: drop-newest (block and spill retry until acknowledged)",
        ));
    }

    let linger = spec.linger_ms.unwrap_or(DEFAULT_LINGER_MS);
    if linger > 900_000 {
        return Err(bad("linger-ms", format!("{linger} is more than 900000")));
    }
    let batch = spec.batch_bytes.unwrap_or(DEFAULT_BATCH_BYTES);
    if !(1024..=(1 << 30)).contains(&batch) {
        return Err(bad("batch-bytes", format!("{batch} is not in 1024..=2^30")));
    }
    let queue_messages = spec.queue_messages.unwrap_or(DEFAULT_QUEUE_MESSAGES);
    if !(1..=10_000_000).contains(&queue_messages) {
        return Err(bad(
            "queue-messages",
            format!("{queue_messages} is not in 1..=10000000"),
        ));
    }
    let queue_kbytes = spec.queue_kbytes.unwrap_or(DEFAULT_QUEUE_KBYTES);
    if !(1..=(1 << 21)).contains(&queue_kbytes) {
        return Err(bad(
            "queue-kbytes",
            format!("{queue_kbytes} is not in 1..=2097152"),
        ));
    }
    if u64::from(queue_kbytes) * 1024 < u64::from(batch) {
        return Err(bad(
            "queue-kbytes",
            "smaller than batch-bytes: no batch could ever fill",
        ));
    }
    let shutdown = spec
        .shutdown_timeout_ms
        .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_MS);

    let mut p: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| p.push((k.to_string(), v));
    set("bootstrap.servers", brokers.join(","));
    set(
        "client.id",
        spec.client_id
            .clone()
            .unwrap_or_else(|| "dnstap-receiver".into()),
    );
    set("acks", acks);
    set("enable.idempotence", idempotence.to_string());
    set(
        "compression.type",
        spec.compression
            .unwrap_or_default()
            .librdkafka_name()
            .into(),
    );
    set("linger.ms", linger.to_string());
    set("batch.size", batch.to_string());
    set("queue.buffering.max.messages", queue_messages.to_string());
    set("queue.buffering.max.kbytes", queue_kbytes.to_string());
    // The Java client's partitioner: the same key lands in the same partition whichever
    // client of the fleet produced it.
    set("partitioner", "murmur2_random".into());
    // block and spill never give a record up while it waits for a broker (0 = no limit):
    // only the bounded queue limits what is held, and the overflow policy acts on it.
    let timeout = match overflow {
        OverflowPolicy::DropNewest | OverflowPolicy::DropOldest => spec
            .message_timeout_ms
            .unwrap_or(DEFAULT_MESSAGE_TIMEOUT_MS),
        OverflowPolicy::Block | OverflowPolicy::Spill => 0,
    };
    set("message.timeout.ms", timeout.to_string());

    let tls = spec.tls.as_ref();
    let tls_on = tls.is_some_and(|t| t.enable != Some(false));
    if let Some(t) = tls.filter(|_| tls_on) {
        for (key, path) in [
            ("ca-file", &t.ca_file),
            ("cert-file", &t.cert_file),
            ("key-file", &t.key_file),
        ] {
            if let Some(path) = path {
                let path = relative_to(base, path);
                if !path.is_file() {
                    return Err(bad(
                        &format!("tls.{key}"),
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        if t.cert_file.is_some() != t.key_file.is_some() {
            return Err(bad("tls", "cert-file and key-file go together"));
        }
        if let Some(ca) = &t.ca_file {
            set("ssl.ca.location", path_string(&relative_to(base, ca)));
        }
        if let (Some(c), Some(k)) = (&t.cert_file, &t.key_file) {
            set(
                "ssl.certificate.location",
                path_string(&relative_to(base, c)),
            );
            set("ssl.key.location", path_string(&relative_to(base, k)));
        }
        let verify = t.verify_hostname.unwrap_or(true);
        set(
            "ssl.endpoint.identification.algorithm",
            if verify { "https" } else { "none" }.into(),
        );
    }
    let sasl_on = spec.sasl.is_some();
    if let Some(s) = &spec.sasl {
        let mech = s
            .mechanism
            .ok_or_else(|| bad("sasl.mechanism", "plain, scram-sha-256 or scram-sha-512"))?;
        let user = s
            .username
            .clone()
            .ok_or_else(|| bad("sasl.username", "missing"))?;
        let password = match (&s.password, &s.password_file) {
            (Some(pw), None) => pw.clone(),
            (None, Some(f)) => {
                read_password(&relative_to(base, f)).map_err(|r| bad("sasl.password-file", r))?
            }
            (Some(_), Some(_)) => {
                return Err(bad("sasl", "password and password-file both given"));
            }
            (None, None) => return Err(bad("sasl.password", "missing (or password-file)")),
        };
        set("sasl.mechanism", mech.librdkafka_name().into());
        set("sasl.username", user);
        set("sasl.password", password);
    }
    let protocol = match (tls_on, sasl_on) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    set("security.protocol", protocol.into());

    if let Some(extra) = &spec.librdkafka {
        for (k, v) in extra {
            if RESERVED_PROPERTIES.contains(&k.as_str()) {
                return Err(bad(
                    &format!("librdkafka.{k}"),
                    "set by the kafka section itself, or needed for delivery counting",
                ));
            }
            set(k, v.to_string());
        }
    }

    Ok(Some(KafkaSettings {
        name: format!("kafka {topic}@{}", brokers[0]),
        topic,
        key: spec.key.unwrap_or_default().kind(),
        value: spec.value.unwrap_or_default().kind(),
        overflow,
        spill,
        shutdown_timeout: Duration::from_millis(u64::from(shutdown)),
        properties: p,
    }))
}

fn relative_to(base: Option<&Path>, p: &Path) -> PathBuf {
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    }
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `HOST:PORT`, `[V6]:PORT`; not resolved here (brokers are looked up by librdkafka, again
/// at each reconnect).
fn check_broker(b: &str) -> Result<(), String> {
    let (host, port) = b
        .rsplit_once(':')
        .ok_or_else(|| format!("{b:?} is not HOST:PORT"))?;
    port.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("{b:?}: bad port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains(',') {
        return Err(format!("{b:?}: bad host"));
    }
    Ok(())
}

/// Kafka's rule: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic(t: &str) -> Result<(), String> {
    if t.is_empty() || t.len() > 249 || t == "." || t == ".." {
        return Err(format!("{t:?} is not a valid topic name"));
    }
    if let Some(c) = t
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("{t:?}: {c:?} is not allowed in a topic name"));
    }
    Ok(())
}

fn read_password(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let pw = text.lines().next().unwrap_or("").to_string();
    if pw.is_empty() {
        return Err(format!("{} holds no password", path.display()));
    }
    Ok(pw)
}

#[cfg(test)]
mod tests {
    use super::super::file::kafka::{Compression, SaslMechanism, SaslSpec, TlsSpec};
    use super::*;
    use crate::sink::kafka::{KeyKind, ValueKind};

    fn parse(yaml: &str) -> KafkaSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn ok(yaml: &str) -> KafkaSettings {
        resolve(&parse(yaml), None).unwrap().unwrap()
    }

    fn err(yaml: &str) -> SpecError {
        resolve(&parse(yaml), None).unwrap_err()
    }

    #[test]
    fn defaults_are_acks_all_idempotent_lz4_and_bounded() {
        let s = ok("brokers: 127.0.0.1:9092\n");
        assert_eq!(s.topic, "dnstap");
        assert_eq!(s.key, KeyKind::None);
        assert_eq!(s.value, ValueKind::Json);
        assert_eq!(s.overflow, OverflowPolicy::Block);
        assert_eq!(s.property("bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(s.property("acks"), Some("all"));
        assert_eq!(s.property("enable.idempotence"), Some("true"));
        assert_eq!(s.property("compression.type"), Some("lz4"));
        assert_eq!(s.property("queue.buffering.max.messages"), Some("100000"));
        assert_eq!(s.property("queue.buffering.max.kbytes"), Some("65536"));
        // block never gives a record up on time alone.
        assert_eq!(s.property("message.timeout.ms"), Some("0"));
        assert_eq!(s.property("security.protocol"), Some("plaintext"));
        assert_eq!(s.name, "kafka dnstap@127.0.0.1:9092");
    }

    #[test]
    fn every_choice_reaches_the_properties() {
        let s = ok("\
brokers: [a.example:9092, '[::1]:9093']
topic: dns.tap_1
key: client-ip
value: raw
acks: 1
compression: zstd
linger-ms: 20
batch-bytes: 65536
queue-messages: 5000
queue-kbytes: 1024
overflow: drop-newest
message-timeout-ms: 2000
client-id: site-7
librdkafka:
  socket.keepalive.enable: true
  retry.backoff.ms: 50
");
        assert_eq!(s.key, KeyKind::ClientIp);
        assert_eq!(s.value, ValueKind::Raw);
        assert_eq!(s.overflow, OverflowPolicy::DropNewest);
        assert_eq!(
            s.property("bootstrap.servers"),
            Some("a.example:9092,[::1]:9093")
        );
        assert_eq!(s.property("acks"), Some("1"));
        assert_eq!(s.property("enable.idempotence"), Some("false"));
        assert_eq!(s.property("compression.type"), Some("zstd"));
        assert_eq!(s.property("linger.ms"), Some("20"));
        assert_eq!(s.property("batch.size"), Some("65536"));
        assert_eq!(s.property("message.timeout.ms"), Some("2000"));
        assert_eq!(s.property("client.id"), Some("site-7"));
        assert_eq!(s.property("socket.keepalive.enable"), Some("true"));
        assert_eq!(s.property("retry.backoff.ms"), Some("50"));
    }

    #[test]
    fn keys_and_values_parse_by_name() {
        for (k, want) in [
            ("none", KeyKind::None),
            ("identity", KeyKind::Identity),
            ("client-ip", KeyKind::ClientIp),
            ("qname", KeyKind::Qname),
        ] {
            assert_eq!(ok(&format!("brokers: h:1\nkey: {k}\n")).key, want);
        }
        assert_eq!(
            ok("brokers: h:1\nvalue: json-full\n").value,
            ValueKind::JsonFull
        );
        assert!(serde_saphyr::from_str::<KafkaSpec>("brokers: h:1\nkey: port\n").is_err());
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(err("topic: t\n").key, "kafka.brokers");
        assert_eq!(err("brokers: nohost\n").key, "kafka.brokers");
        assert_eq!(err("brokers: 'h:0'\n").key, "kafka.brokers");
        assert_eq!(err("brokers: 'a:1,,b:2'\n").key, "kafka.brokers");
        assert_eq!(err("brokers: h:1\ntopic: 'a b'\n").key, "kafka.topic");
        assert_eq!(err("brokers: h:1\ntopic: '..'\n").key, "kafka.topic");
        assert_eq!(err("brokers: h:1\nacks: 2\n").key, "kafka.acks");
        assert_eq!(
            err("brokers: h:1\nacks: 1\nidempotence: true\n").key,
            "kafka.idempotence"
        );
        assert_eq!(
            err("brokers: h:1\noverflow: spill\n").key,
            "kafka.spill-dir"
        );
        assert_eq!(
            err("brokers: h:1\nspill-dir: /tmp\n").key,
            "kafka.spill-dir"
        );
        assert_eq!(
            err("brokers: h:1\nmessage-timeout-ms: 5\n").key,
            "kafka.message-timeout-ms"
        );
        assert_eq!(
            err("brokers: h:1\nbatch-bytes: 10\n").key,
            "kafka.batch-bytes"
        );
        assert_eq!(
            err("brokers: h:1\nqueue-kbytes: 1\n").key,
            "kafka.queue-kbytes"
        );
        assert_eq!(
            err("brokers: h:1\nlibrdkafka:\n  bootstrap.servers: x:1\n").key,
            "kafka.librdkafka.bootstrap.servers"
        );
        assert_eq!(
            err("brokers: h:1\ntls:\n  ca-file: /nonexistent/ca.pem\n").key,
            "kafka.tls.ca-file"
        );
        assert_eq!(
            err("brokers: h:1\nsasl:\n  username: u\n  password: p\n").key,
            "kafka.sasl.mechanism"
        );
        assert_eq!(
            err("brokers: h:1\nsasl:\n  mechanism: plain\n  username: u\n").key,
            "kafka.sasl.password"
        );
        assert!(serde_saphyr::from_str::<KafkaSpec>("brokers: h:1\nbogus: 1\n").is_err());
    }

    #[test]
    fn enable_false_turns_the_output_off() {
        assert_eq!(
            resolve(&parse("enable: false\nbrokers: h:1\n"), None).unwrap(),
            None
        );
    }

    #[test]
    fn tls_and_sasl_choose_the_security_protocol_and_hide_the_password() {
        let dir = std::env::temp_dir().join(format!("kafka-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "x").unwrap();
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        let spec = parse(
            "brokers: h:1\ntls:\n  ca-file: ca.pem\n  verify-hostname: false\nsasl:\n  \
             mechanism: scram-sha-512\n  username: dnstap\n  password-file: pw\n",
        );
        let s = resolve(&spec, Some(&dir)).unwrap().unwrap();
        assert_eq!(s.property("security.protocol"), Some("sasl_ssl"));
        assert_eq!(s.property("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(s.property("sasl.username"), Some("dnstap"));
        assert_eq!(s.property("sasl.password"), Some("s3cret"));
        assert_eq!(
            s.property("ssl.ca.location"),
            Some(dir.join("ca.pem").to_str().unwrap())
        );
        assert_eq!(
            s.property("ssl.endpoint.identification.algorithm"),
            Some("none")
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");

        let s = ok("brokers: h:1\ntls:\n  enable: true\n");
        assert_eq!(s.property("security.protocol"), Some("ssl"));
        let s = ok("brokers: h:1\nsasl:\n  mechanism: plain\n  username: u\n  password: p\n");
        assert_eq!(s.property("security.protocol"), Some("sasl_plaintext"));
        assert_eq!(s.property("sasl.mechanism"), Some("PLAIN"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn bundled_librdkafka_is_recent_and_has_what_the_spec_offers() {
        // The brokers' ApiVersions exchange needs a current librdkafka (the system's 2.0.2
        // fails it), and the spec offers lz4, zstd, TLS, SASL PLAIN and SCRAM.
        let v = crate::sink::kafka::librdkafka_version();
        let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        assert!((major, minor) >= (2, 1), "librdkafka {v}");
        let mut spec = KafkaSpec {
            brokers: Some(Brokers::One("127.0.0.1:1".into())),
            compression: Some(Compression::Zstd),
            sasl: Some(SaslSpec {
                mechanism: Some(SaslMechanism::ScramSha512),
                username: Some("u".into()),
                password: Some("p".into()),
                password_file: None,
            }),
            tls: Some(TlsSpec {
                enable: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = resolve(&spec, None).unwrap().unwrap();
        let out = crate::sink::kafka::KafkaOutput::new(
            &s,
            std::sync::Arc::new(crate::stats::OutputStats::default()),
        );
        assert!(out.is_ok(), "{:?}", out.err());
        spec.compression = Some(Compression::Lz4);
        spec.sasl = None;
        spec.tls = None;
        let s = resolve(&spec, None).unwrap().unwrap();
        assert!(crate::sink::kafka::KafkaOutput::new(
            &s,
            std::sync::Arc::new(crate::stats::OutputStats::default())
        )
        .is_ok());
    }
}
