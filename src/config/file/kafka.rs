//! The `kafka:` section of the config file (and of a `- kafka:` entry of `outputs`) as
//! written: [`KafkaSpec`] and its parts, as serde reads them. Checked and compiled into
//! [`crate::sink::kafka::KafkaSettings`] by `config/kafka.rs`.
//!
//! ```yaml
//! kafka:
//!   brokers: [10.0.0.5:9092, 10.0.0.6:9092]   # or one string "a:9092,b:9092"
//!   topic: dnstap
//!   key: qname                  # none | identity | client-ip | qname
//!   value: json                 # json | json-full | raw
//!   acks: all                   # all | 1 | 0
//!   compression: lz4            # none | lz4 | zstd | gzip | snappy
//!   overflow: block             # block | drop-newest | spill
//!   tls: {enable: true, ca-file: /etc/ssl/kafka-ca.pem}
//!   sasl: {mechanism: scram-sha-512, username: dnstap, password-file: /etc/dnstap/kafka.pw}
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::args::OverflowChoice;
use crate::sink::kafka::settings;

/// `kafka:`. Present (and not `enable: false`) means the output runs.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KafkaSpec {
    pub enable: Option<bool>,
    pub brokers: Option<Brokers>,
    pub topic: Option<String>,
    pub key: Option<KeyKind>,
    pub value: Option<ValueKind>,
    pub acks: Option<Scalar>,
    pub compression: Option<Compression>,
    pub linger_ms: Option<u32>,
    pub batch_bytes: Option<u32>,
    pub queue_messages: Option<u32>,
    pub queue_kbytes: Option<u32>,
    pub idempotence: Option<bool>,
    pub overflow: Option<OverflowChoice>,
    pub spill_dir: Option<PathBuf>,
    pub spill_max_bytes: Option<u64>,
    pub message_timeout_ms: Option<u32>,
    pub shutdown_timeout_ms: Option<u32>,
    pub client_id: Option<String>,
    pub tls: Option<TlsSpec>,
    pub sasl: Option<SaslSpec>,
    /// Further librdkafka properties, set last (`socket.keepalive.enable: true`).
    pub librdkafka: Option<BTreeMap<String, Scalar>>,
    /// This output's own transforms.
    pub transforms: Option<super::TransformsSpec>,
}

/// `brokers`: a list, or one comma-separated string as librdkafka writes it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Brokers {
    One(String),
    List(Vec<String>),
}

/// A YAML scalar given where librdkafka wants a string (`acks: 1`, `acks: all`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Text(s) => f.write_str(s),
        }
    }
}

/// `tls:` (towards the brokers).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsSpec {
    pub enable: Option<bool>,
    /// CA bundle (PEM) the brokers' certificates are checked against; default: the system's.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for brokers that require mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Check that the certificate names the broker's host (default true).
    pub verify_hostname: Option<bool>,
}

/// `sasl:`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SaslSpec {
    pub mechanism: Option<SaslMechanism>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A file holding the password (first line), so the config file can be world-readable.
    pub password_file: Option<PathBuf>,
}

/// What the Kafka record key is: the partition is chosen from it, so records with the same
/// key stay in order in one partition (partition locality for per-key consumers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
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

impl KeyKind {
    pub fn kind(self) -> settings::KeyKind {
        match self {
            KeyKind::None => settings::KeyKind::None,
            KeyKind::Identity => settings::KeyKind::Identity,
            KeyKind::ClientIp => settings::KeyKind::ClientIp,
            KeyKind::Qname => settings::KeyKind::Qname,
        }
    }
}

/// What the Kafka record value is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueKind {
    /// The seed's JSON object (the `--format json` line, without its newline).
    #[default]
    Json,
    /// Every decoded field (the `--format json-full` line, without its newline).
    JsonFull,
    /// The dnstap protobuf payload as received (decode with dnstap.proto).
    Raw,
}

impl ValueKind {
    pub fn kind(self) -> settings::ValueKind {
        match self {
            ValueKind::Json => settings::ValueKind::Json,
            ValueKind::JsonFull => settings::ValueKind::JsonFull,
            ValueKind::Raw => settings::ValueKind::Raw,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    None,
    #[default]
    Lz4,
    Zstd,
    Gzip,
    Snappy,
}

impl Compression {
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SaslMechanism {
    Plain,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}
