//! DNS message views on arbitrary bytes: header, questions, every record with its rdata
//! presentation, EDNS options, names.
//!
//! Properties: no panic; `Name::parse` at every offset agrees with a slow, separately written
//! name reader (same labels, same end, and Ok exactly when it is), and its presentation
//! matches the documented escaping rules; a writer that returns an error leaves the
//! output as it was; the record walk yields at most one error and `records_end` agrees with
//! it; `edns()` finds the OPT record the full walk finds.
#![no_main]

use dnstap_receiver::dns::edns::Edns;
use dnstap_receiver::dns::name::escape_label_into;
use dnstap_receiver::dns::{types, MessageView, Name, Section};
use fuzz_support::{slow_name, slow_presentation};
use libfuzzer_sys::fuzz_target;

/// Offsets tried with `Name::parse` directly; names start early in real messages.
const NAME_OFFSETS: usize = 256;

fuzz_target!(|msg: &[u8]| {
    for offset in 0..msg.len().min(NAME_OFFSETS) {
        check_name_at(msg, offset);
    }
    let Ok(view) = MessageView::parse(msg) else {
        return;
    };
    let mut out = Vec::new();
    let h = view.header;
    assert_eq!(h.id.to_be_bytes(), [msg[0], msg[1]]);
    h.write_flags(&mut out);
    types::write_rcode(u16::from(h.rcode()), &mut out);
    types::write_opcode(h.opcode(), &mut out);

    // Questions: the first one is the view's.
    let mut first = true;
    for q in view.questions() {
        let Ok(q) = q else { break };
        if first {
            let vq = view
                .question
                .expect("qdcount > 0 and a readable first question");
            assert_eq!(vq.name.start(), q.name.start());
            assert_eq!((vq.qtype, vq.qclass), (q.qtype, q.qclass));
            first = false;
        }
        check_name(msg, &q.name);
        types::write_rtype(q.qtype, &mut out);
        types::write_class(q.qclass, &mut out);
    }

    // Records: at most one error, then nothing.
    let mut records = view.records();
    let mut walk_error = None;
    let mut first_opt = None;
    for item in &mut records {
        match item {
            Err(e) => {
                walk_error = Some(e);
                break;
            }
            Ok((section, rr)) => {
                assert!(rr.rdata.start <= rr.rdata.end && rr.rdata.end <= msg.len());
                check_name(msg, &rr.name);
                let mark = out.len();
                if rr.write_rdata(msg, &mut out).is_err() {
                    assert_eq!(out.len(), mark, "failed rdata writer left output");
                }
                let mark = out.len();
                match rr.write_presentation(msg, &mut out) {
                    Err(_) => assert_eq!(out.len(), mark, "failed record writer left output"),
                    Ok(()) => {
                        let mut owner = Vec::new();
                        rr.name.write_presentation(&mut owner);
                        assert!(out[mark..].starts_with(&owner));
                    }
                }
                if section == Section::Additional {
                    if rr.rtype == types::OPT && first_opt.is_none() {
                        first_opt = Some(Edns::from_rr(msg, &rr));
                    }
                }
            }
        }
    }
    assert!(
        records.next().is_none(),
        "record walk went on after an error"
    );
    match (view.records_end(), walk_error) {
        (Ok(end), None) => assert!(end <= msg.len()),
        (Err(a), Some(b)) => assert_eq!(a, b),
        (a, b) => panic!("records_end {a:?} but the walk ended with {b:?}"),
    }

    // EDNS: what the full walk found, when the walk got that far.
    let edns = view.edns();
    match (&first_opt, walk_error) {
        (Some(found), _) => assert_eq!(edns.as_ref(), Some(found), "edns() missed the OPT"),
        (None, None) => assert!(edns.is_none(), "edns() found an OPT the walk did not"),
        (None, Some(_)) => {}
    }
    if let Some(Ok(e)) = edns {
        e.write_presentation(&mut out);
        for opt in e.options() {
            let Ok(opt) = opt else { break };
            assert!(opt.offset + 4 + opt.data.len() <= msg.len());
            let _ = opt.name();
            opt.write_name(&mut out);
            let _ = opt.value();
            let mark = out.len();
            if opt.write_value(&mut out).is_err() {
                assert_eq!(out.len(), mark, "failed option writer left output");
            }
            opt.write_presentation(&mut out);
        }
    }
    let _ = view.rcode();
});

/// `Name::parse` at `offset` against the slow reader.
fn check_name_at(msg: &[u8], offset: usize) {
    let fast = Name::parse(msg, offset);
    let slow = slow_name(msg, offset);
    match (fast, slow) {
        (Ok((name, end)), Some((labels, slow_end))) => {
            assert_eq!(end, slow_end, "name at {offset}: end");
            check_labels(&name, &labels);
        }
        (Err(_), None) => {}
        (fast, slow) => panic!("name at {offset}: parse {fast:?}, reference {slow:?}"),
    }
}

/// A name the crate handed out against the slow reader.
fn check_name(msg: &[u8], name: &Name<'_>) {
    let Some((labels, _)) = slow_name(msg, name.start()) else {
        panic!(
            "the crate accepted a name at {} the reference refuses",
            name.start()
        );
    };
    check_labels(name, &labels);
}

fn check_labels(name: &Name<'_>, labels: &[Vec<u8>]) {
    let got: Vec<&[u8]> = name.labels().collect();
    assert_eq!(
        got,
        labels.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        "labels"
    );
    assert_eq!(name.label_count(), labels.len());
    let wire: usize = 1 + labels.iter().map(|l| l.len() + 1).sum::<usize>();
    assert_eq!(name.wire_len(), wire);
    assert_eq!(name.is_root(), labels.is_empty());
    assert!(name.eq_ignore_case(name));
    let mut text = Vec::new();
    name.write_presentation(&mut text);
    assert_eq!(text, slow_presentation(labels).into_bytes(), "presentation");
    let mut each = Vec::new();
    name.for_each_label(|l| {
        escape_label_into(l, &mut each);
        each.push(b'.');
    });
    if labels.is_empty() {
        each.push(b'.');
    }
    assert_eq!(each, text);
}
