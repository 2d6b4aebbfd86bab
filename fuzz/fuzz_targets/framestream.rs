//! Frame Streams decoder on arbitrary streams read in fuzzer-chosen pieces.
//!
//! Properties: no panic; the decoder's documented invariants hold on every call (checked in
//! `fuzz_support::drive`); split invariance: the stream read in the input's read sizes, and
//! one byte at a time, gives exactly the one-shot transcript (events, payload bytes, replies,
//! end); and an EOF at a fuzzer-chosen point gives a prefix of that transcript that ends
//! either cleanly (`on_eof` Ok) or with an end-of-stream error, unless the outcome was
//! already decided inside the prefix, in which case it is the same outcome.
//!
//! The sender side rides along: whatever the decoder replied (ACCEPT, FINISH) must take a
//! `SenderHandshake` through its whole handshake, and the sender reading the arbitrary
//! stream as if the receiver had sent it must not panic and must keep its `consumed`
//! invariant.
#![no_main]

use dnstap_receiver::framestream::{ErrorKind, SenderEvent, SenderHandshake, SenderStep};
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

    check_replies_satisfy_sender(&one_shot);
    sender_reads(stream);
});

/// The decoder's replies to a bidirectional stream, read by our own sender: ACCEPT first,
/// FINISH after STOP, nothing else.
fn check_replies_satisfy_sender(t: &Transcript) {
    if t.reply.is_empty() {
        return;
    }
    let mut sender = SenderHandshake::new();
    let mut scratch = Vec::new();
    sender
        .write_ready(&mut scratch)
        .expect("a fresh sender writes READY");
    let step = sender
        .on_read(&t.reply)
        .expect("the decoder's ACCEPT is accepted");
    assert_eq!(step.event, SenderEvent::Accepted);
    let rest = &t.reply[step.consumed..];
    if rest.is_empty() {
        return;
    }
    sender
        .write_start(&mut scratch)
        .expect("START after ACCEPT");
    sender.write_stop(&mut scratch).expect("STOP after START");
    let step = sender
        .on_read(rest)
        .expect("the decoder's FINISH is accepted");
    assert_eq!(step.event, SenderEvent::Finished);
    assert_eq!(
        step.consumed,
        rest.len(),
        "bytes after FINISH in the replies"
    );
}

/// A sender reading arbitrary bytes as the receiver's side of the stream.
fn sender_reads(stream: &[u8]) {
    let mut sender = SenderHandshake::new();
    let mut scratch = Vec::new();
    let _ = sender.write_ready(&mut scratch);
    let mut rest = stream;
    loop {
        match sender.on_read(rest) {
            Ok(SenderStep {
                consumed,
                event: SenderEvent::NeedMore,
            }) => {
                assert_eq!(consumed, 0);
                return;
            }
            Ok(SenderStep { consumed, event }) => {
                assert!(
                    consumed > 0 && consumed <= rest.len(),
                    "sender consumed {consumed}"
                );
                rest = &rest[consumed..];
                if event == SenderEvent::Accepted {
                    let _ = sender.write_start(&mut scratch);
                    let _ = sender.write_stop(&mut scratch);
                }
            }
            Err(e) => {
                let _ = e.to_string();
                assert!(
                    sender.on_read(rest).is_err(),
                    "sender went on after an error"
                );
                return;
            }
        }
    }
}

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
