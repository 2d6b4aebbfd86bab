//! Checks the "no heap allocation per message" promise of `src/dnstap` and `src/record.rs`:
//! with a counting global allocator, the lazy view, both `Record` builders (quick-protobuf
//! included: its bytes fields borrow) and the address writer allocate nothing on every
//! message of the lab captures. The lab is `<repo>/lab`.

mod support;

use dnstap_receiver::dnstap::DnstapView;
use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};
use dnstap_receiver::record::{write_ip, Record};
use support::lab::lab_dir;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// Every data frame of every capture, copied out before counting starts.
fn all_frames() -> Vec<Vec<u8>> {
    let dir = lab_dir().join("captures");
    let mut frames = Vec::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|ext| ext != "fstrm") {
            continue;
        }
        let file = std::fs::read(&path).unwrap();
        let mut decoder = Decoder::new(DecoderConfig::default());
        let mut reply = Vec::new();
        let mut pos = 0;
        loop {
            let rest = &file[pos..];
            let step = decoder.decode(rest, &mut reply).expect("valid capture");
            pos += step.consumed;
            match step.event {
                Event::Data { payload } => frames.push(rest[payload].to_vec()),
                Event::Control => {}
                Event::Finished | Event::NeedMore => break,
            }
        }
    }
    assert!(
        frames.len() > 10_000,
        "lab captures: only {} frames",
        frames.len()
    );
    frames
}

#[test]
fn view_records_and_addresses_do_not_allocate() {
    let frames = all_frames();
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut work = 0usize;
    let ((), allocs) = support::alloc::allocations_in(|| {
        for payload in &frames {
            out.clear();
            let view = DnstapView::parse(payload).expect("lab payloads are valid");
            let message = view.message().map(|m| m.expect("lab messages are valid"));
            let viewed = Record::from_views(&view, message.as_ref()).expect("valid");
            let decoded = Record::decode(payload).expect("valid");
            for addr in [viewed.query_address, decoded.response_address]
                .into_iter()
                .flatten()
            {
                write_ip(addr, &mut out);
            }
            work += out.len() + usize::from(matches!(viewed.dns, Some(Ok(_))));
        }
    });
    assert!(work > frames.len(), "the loop did its work");
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations over {} messages",
        frames.len()
    );
}
