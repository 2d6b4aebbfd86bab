//! Shared by the benches: the frames of a lab capture, decoded once.

use std::ops::Range;
use std::path::{Path, PathBuf};

use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};

pub fn lab_dir() -> PathBuf {
    match std::env::var_os("LAB_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/lab"),
    }
}

/// The bytes of a capture and the payload range of each data frame.
pub fn capture(name: &str) -> (Vec<u8>, Vec<Range<usize>>) {
    let bytes = std::fs::read(lab_dir().join("captures").join(name)).expect("lab capture");
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    let (mut pos, mut frames) = (0, Vec::new());
    loop {
        let step = dec
            .decode(&bytes[pos..], &mut reply)
            .expect("valid capture");
        match step.event {
            Event::Data { payload } => frames.push(pos + payload.start..pos + payload.end),
            Event::NeedMore | Event::Finished => break,
            Event::Control => {}
        }
        pos += step.consumed;
    }
    (bytes, frames)
}
