//! Frame Streams decoder on arbitrary streams read in fuzzer-chosen pieces.
//!
//! Properties: no panic; the decoder's documented invariants hold on every call (checked in
//! `fuzz_support::drive`); split invariance: the stream read in the input's read sizes, and
//! one byte at a time, gives exactly the one-shot transcript (events, payload bytes, replies,
//! end); and an EOF at a fuzzer-chosen point gives a prefix of that transcript that ends
//! either cleanly (`on_eof` Ok) or with an end-of-stream error, unless the outcome was
//! already decided inside the prefix, in which case it is the same outcome.
#![no_main]

use dnstap_receiver::framestream::ErrorKind;
use fuzz_support::{drive, SplitInput, Transcript};
use libfuzzer_sys::fuzz_target;

/// Byte-at-a-time reading costs a decode call per byte; beyond this it adds time, not
/// coverage.
const BYTEWISE_MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let input = SplitInput::parse(data);
    let stream = input.stream;
    let one_shot = drive(input.config, stream, &mut std::iter::empty());

    let split = drive(input.config, stream, &mut input.reads.iter().copied());
    assert_eq!(
        split, one_shot,
        "reads {:?} changed the outcome",
        input.reads
    );

    if stream.len() <= BYTEWISE_MAX {
        let bytewise = drive(input.config, stream, &mut std::iter::repeat(1));
        assert_eq!(
            bytewise, one_shot,
            "byte-at-a-time reads changed the outcome"
        );
    }

    // EOF inside the stream, where the first read size says.
    let cut = input.reads.first().copied().unwrap_or(0) % (stream.len() + 1);
    let prefix = &stream[..cut];
    let truncated = drive(
        input.config,
        prefix,
        &mut input.reads.iter().copied().skip(1),
    );
    check_prefix(&truncated, &one_shot);
});

fn check_prefix(truncated: &Transcript, full: &Transcript) {
    assert!(
        full.events.starts_with(&truncated.events),
        "EOF early produced events the whole stream does not"
    );
    assert!(
        full.reply.starts_with(&truncated.reply),
        "EOF early changed the replies"
    );
    match &truncated.end {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind,
                ErrorKind::EofMidFrame { .. } | ErrorKind::EofBeforeStart { .. }
            ) => {}
        Err(_) => assert_eq!(
            truncated, full,
            "an error decided early differs from the whole stream's"
        ),
    }
}
