//! The Kafka output's compiled settings ([`KafkaSettings`]): the topic, how each record
//! becomes a Kafka key and value, the overflow policy, and the librdkafka properties the
//! producer is created with. Built and validated by `config` from the `kafka:` section;
//! this file knows nothing of the file or its keys, and opens no socket.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::sink::buffer::OverflowPolicy;

/// What the Kafka record key is: the partition is chosen from it, so records with the same
/// key stay in order in one partition (partition locality for per-key consumers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyKind {
    /// No key: librdkafka fills one partition at a time (sticky), the best batching.
    #[default]
    None,
    /// `Dnstap.identity`: every record of one DNS server in one partition.
    Identity,
    /// `Message.query_address` as text: every record of one client in one partition.
    ClientIp,
    /// The question name, lower-cased presentation form (`www.example.com.`).
    Qname,
}

/// What the Kafka record value is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueKind {
    /// The seed's JSON object (the `--format json` line, without its newline).
    #[default]
    Json,
    /// Every decoded field (the `--format json-full` line, without its newline).
    JsonFull,
    /// The dnstap protobuf payload as received (decode with dnstap.proto).
    Raw,
}

/// The spill file queue of the `spill` policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpillSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// Everything the Kafka output needs, validated. `properties` is the librdkafka
/// configuration in the order it is applied; secrets in it are hidden by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// For logs and metric labels: `kafka dnstap@10.0.0.5:9092`.
    pub name: String,
    pub topic: String,
    pub key: KeyKind,
    pub value: ValueKind,
    pub overflow: OverflowPolicy,
    pub spill: Option<SpillSettings>,
    pub shutdown_timeout: Duration,
    pub properties: Vec<(String, String)>,
}

/// Property names whose values are never logged.
const SECRET_PROPERTIES: &[&str] = &["sasl.password", "ssl.key.password"];

impl KafkaSettings {
    /// The properties as a log line would show them (secrets replaced by `***`).
    pub fn public_properties(&self) -> Vec<(String, String)> {
        self.properties
            .iter()
            .map(|(k, v)| {
                let v = if SECRET_PROPERTIES.contains(&k.as_str()) {
                    "***".to_string()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// The value of one librdkafka property, if set.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("name", &self.name)
            .field("topic", &self.topic)
            .field("key", &self.key)
            .field("value", &self.value)
            .field("overflow", &self.overflow)
            .field("spill", &self.spill)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("properties", &self.public_properties())
            .finish()
    }
}
