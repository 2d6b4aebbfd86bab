//! The outputs that run: [`OutputConf`], the compiled list `config` hands down (stdout with
//! its format, forward and Kafka outputs with their settings), built here into the
//! `Output`s the writer calls, at the I/O edge (stdout opened, forward threads and Kafka
//! producers started). Knows nothing of the config file, its keys or the command line, and
//! nothing of inputs.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use crate::format::{FormatKind, Formatter};
use crate::sink::buffer::ChunkBuffer;
use crate::sink::file::{FileConf, FileOutput};
use crate::sink::forward::{ForwardConf, ForwardOutput};
use crate::sink::relay::{RelayConf, RelayOutput};
use crate::sink::{Output, StdoutSink, WriteOutput};
use crate::stats::{OutputStats, StatsRegistry};

/// One output, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputConf {
    Stdout(FormatKind),
    Forward(Box<ForwardConf>),
    Kafka(Box<crate::sink::kafka::KafkaSettings>),
    File(Box<FileConf>),
    Relay(Box<RelayConf>),
}

/// The outputs built, and the buffers whose give-up deadline shutdown must set.
pub struct BuiltOutputs {
    pub outputs: Vec<Box<dyn Output>>,
    pub buffers: Vec<(Arc<ChunkBuffer>, Duration)>,
}

/// Builds every output, registering its counters.
pub fn build_outputs(
    list: &[OutputConf],
    registry: &StatsRegistry,
) -> std::io::Result<BuiltOutputs> {
    let mut built = BuiltOutputs {
        outputs: Vec::new(),
        buffers: Vec::new(),
    };
    for o in list {
        build_output(o, registry.register_output(&output_name(o)), &mut built)?;
    }
    Ok(built)
}

/// The name of an output in log lines and metric labels (`stdout`, `forward HOST:PORT`).
pub fn output_name(o: &OutputConf) -> String {
    match o {
        OutputConf::Stdout(_) => "stdout".into(),
        OutputConf::Forward(c) => c.name(),
        OutputConf::Kafka(k) => k.name.clone(),
        OutputConf::File(c) => c.name(),
        OutputConf::Relay(c) => c.name(),
    }
}

/// Builds one output counting into `stats`, and adds it to `built` (a reload starts the
/// outputs it adds this way).
pub fn build_output(
    o: &OutputConf,
    stats: Arc<OutputStats>,
    built: &mut BuiltOutputs,
) -> std::io::Result<()> {
    match o {
        OutputConf::Stdout(fmt) => built.outputs.push(Box::new(WriteOutput::new(
            "stdout",
            Formatter::new(*fmt),
            StdoutSink::open()?,
            stats,
        ))),
        OutputConf::Forward(c) => {
            let out = ForwardOutput::start(c, stats)?;
            for b in out.buffers() {
                built.buffers.push((b, c.shutdown_timeout));
            }
            built.outputs.push(Box::new(out));
        }
        OutputConf::File(c) => built.outputs.push(Box::new(FileOutput::start(c, stats)?)),
        OutputConf::Relay(c) => {
            let out = RelayOutput::start(c, stats)?;
            for b in out.buffers() {
                built.buffers.push((b, c.shutdown_timeout));
            }
            built.outputs.push(Box::new(out));
        }
        #[cfg(feature = "kafka")]
        OutputConf::Kafka(k) => {
            let out = crate::sink::kafka::KafkaOutput::new(k, stats)?;
            built.outputs.push(Box::new(out));
        }
        #[cfg(not(feature = "kafka"))]
        OutputConf::Kafka(k) => {
            let _ = stats;
            return Err(std::io::Error::other(format!(
                "{}: this build has no Kafka output (cargo feature kafka)",
                k.name
            )));
        }
    }
    Ok(())
}

/// One line per output for the `-v` log, e.g. `forward 10.0.0.2:8192 (json, block, buffer
/// 64 MiB, memory bound 84 MiB)`.
pub fn describe(o: &OutputConf) -> String {
    match o {
        OutputConf::Stdout(f) => format!("stdout ({f:?})"),
        OutputConf::Forward(c) => {
            format!(
            "{} ({:?}, overflow {}, buffer {} KiB, replay window {} KiB, memory bound {} MiB{})",
            c.name(),
            c.format,
            c.buffer.policy.name(),
            c.buffer.max_bytes >> 10,
            c.replay_window >> 10,
            c.memory_bound() >> 20,
            match &c.buffer.spill {
                Some(s) => format!(", spill {} up to {} MiB", s.dir.display(), s.max_bytes >> 20),
                None => String::new(),
            }
        )
        }
        OutputConf::File(c) => crate::sink::file::describe(c),
        OutputConf::Relay(c) => crate::sink::relay::describe(c),
        #[cfg(feature = "kafka")]
        OutputConf::Kafka(k) => crate::sink::kafka::describe(k),
        #[cfg(not(feature = "kafka"))]
        OutputConf::Kafka(k) => k.name.clone(),
    }
}
