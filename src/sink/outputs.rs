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
use crate::sink::{Output, StdoutSink, WriteOutput};
use crate::stats::StatsRegistry;

/// One output, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputConf {
    Stdout(FormatKind),
    Forward(Box<ForwardConf>),
    Kafka(Box<crate::sink::kafka::KafkaSettings>),
    File(Box<FileConf>),
    Relay(Box<crate::sink::relay::RelayConf>),
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
        match o {
            OutputConf::Stdout(fmt) => built.outputs.push(Box::new(WriteOutput::new(
                "stdout",
                Formatter::new(*fmt),
                StdoutSink::open()?,
                registry.register_output("stdout"),
            ))),
            OutputConf::Forward(c) => {
                let name = c.name();
                let out = ForwardOutput::start(c, registry.register_output(&name))?;
                for b in out.buffers() {
                    built.buffers.push((b, c.shutdown_timeout));
                }
                built.outputs.push(Box::new(out));
            }
            OutputConf::Relay(c) => {
                let out = crate::sink::relay::RelayOutput::start(c, &mut |n| {
                    registry.register_output(n)
                })?;
                for b in out.buffers() {
                    built.buffers.push((b, c.shutdown_timeout));
                }
                built.outputs.push(Box::new(out));
            }
            OutputConf::File(c) => {
                let out = FileOutput::start(c, registry.register_output(&c.name()))?;
                built.outputs.push(Box::new(out));
            }
            #[cfg(feature = "kafka")]
            OutputConf::Kafka(k) => {
                let stats = registry.register_output(&k.name);
                let out = crate::sink::kafka::KafkaOutput::new(k, stats)?;
                built.outputs.push(Box::new(out));
            }
            #[cfg(not(feature = "kafka"))]
            OutputConf::Kafka(k) => {
                return Err(std::io::Error::other(format!(
                    "{}: this build has no Kafka output (cargo feature kafka)",
                    k.name
                )))
            }
        }
    }
    Ok(built)
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
