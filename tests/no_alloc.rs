//! The hot path does not touch the heap: after a warm-up pass, the lazy view, the
//! prefilters, both ways of building a record and every output format run over every
//! frame of a capture, into a pre-reserved buffer, with zero allocations. A counting
//! global allocator checks it.

mod support;

use dnstap_receiver::dnstap::DnstapView;
use dnstap_receiver::filter::{Filter, FilterSpec, Verdict};
use dnstap_receiver::format::{FormatKind, Formatter};
use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};
use dnstap_receiver::record::Record;
use support::lab::lab_dir;

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

/// Payload ranges of every data frame of a capture.
fn frames(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        let step = dec.decode(&bytes[pos..], &mut reply).unwrap();
        match step.event {
            Event::Data { payload } => out.push(pos + payload.start..pos + payload.end),
            Event::NeedMore | Event::Finished => break,
            Event::Control => {}
        }
        pos += step.consumed;
    }
    out
}

/// One pass over every frame: view, filters, record, every format.
fn pass(bytes: &[u8], frames: &[std::ops::Range<usize>], filters: &[Filter], out: &mut Vec<u8>) {
    let formatters = [
        Formatter::new(FormatKind::Text),
        Formatter::new(FormatKind::Json),
        Formatter::new(FormatKind::Yaml),
        Formatter::new(FormatKind::JsonFull),
        Formatter::new(FormatKind::YamlFull),
    ];
    let mut accepted = 0usize;
    for r in frames {
        let payload = &bytes[r.clone()];
        let view = DnstapView::parse(payload).unwrap();
        assert!(view.message().is_some());
        for f in filters {
            if f.check(payload) == Verdict::Accept {
                accepted += 1;
            }
        }
        let message = view.message().map(|m| m.unwrap());
        let from_views = Record::from_views(&view, message.as_ref()).unwrap();
        std::hint::black_box(&from_views);
        let rec = Record::decode(payload).unwrap();
        for f in &formatters {
            out.clear();
            f.write(&rec, out);
        }
    }
    std::hint::black_box(accepted);
}

#[test]
fn hot_path_does_not_allocate() {
    for name in [
        "bind-unix.fstrm",
        "unbound-unix.fstrm",
        "dnsdist-unix.fstrm",
        "nsd-unix.fstrm",
    ] {
        let bytes = std::fs::read(lab_dir().join("captures").join(name)).unwrap();
        let frames = frames(&bytes);
        assert!(frames.len() > 1000, "{name}");
        let filters = [
            Filter::compile(&FilterSpec {
                identities: Some("lab-".into()),
                qname_regex: None,
            })
            .unwrap(),
            Filter::compile(&FilterSpec {
                identities: Some("nobody".into()),
                qname_regex: Some(".*".into()),
            })
            .unwrap(),
            Filter::compile(&FilterSpec {
                identities: None,
                qname_regex: Some(r"(?i)[a-z0-9-]+\.lab\.test\.$".into()),
            })
            .unwrap(),
        ];
        let mut out = Vec::with_capacity(1 << 20);
        pass(&bytes, &frames, &filters, &mut out); // warm-up (lazy statics, if any)

        // The counter itself works: one allocation is seen.
        let (_, one) = support::alloc::allocations_in(|| std::hint::black_box(Box::new(1u64)));
        assert_eq!(one, 1);

        let ((), n) = support::alloc::allocations_in(|| pass(&bytes, &frames, &filters, &mut out));
        assert_eq!(n, 0, "{name}: {n} allocations over {} frames", frames.len());
    }
}

/// The writer's traffic counter: once every identity of the captures has its slot (the
/// warm-up pass), counting a record touches only fixed arrays.
#[test]
fn traffic_counter_does_not_allocate() {
    use dnstap_receiver::metrics::traffic::TrafficCounter;

    let captures: Vec<(Vec<u8>, Vec<std::ops::Range<usize>>)> = [
        "bind-unix.fstrm",
        "unbound-unix.fstrm",
        "dnsdist-unix.fstrm",
        "nsd-unix.fstrm",
    ]
    .iter()
    .map(|name| {
        let bytes = std::fs::read(lab_dir().join("captures").join(name)).unwrap();
        let f = frames(&bytes);
        (bytes, f)
    })
    .collect();
    let (mut traffic, shared) = TrafficCounter::new();
    let count = |traffic: &mut TrafficCounter| {
        for (bytes, frames) in &captures {
            for r in frames {
                let payload = &bytes[r.clone()];
                let rec = Record::parse(payload).unwrap();
                traffic.observe(&rec, payload);
            }
            traffic.publish();
        }
    };
    count(&mut traffic); // warm-up: the identities take their slots
    let ((), n) = support::alloc::allocations_in(|| count(&mut traffic));
    assert_eq!(n, 0, "{n} allocations while counting traffic");
    let total: usize = captures.iter().map(|(_, f)| f.len()).sum();
    let s = shared.snapshot();
    let per_type: u64 = s
        .slice(
            dnstap_receiver::metrics::traffic::OFF_TYPE,
            dnstap_receiver::metrics::traffic::MESSAGE_TYPES.len(),
        )
        .iter()
        .sum();
    assert_eq!(per_type, 2 * total as u64, "both passes counted");
}
