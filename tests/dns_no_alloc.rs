//! Checks the "no heap allocation" promise of `src/dns`: with a counting global allocator,
//! parsing, walking and presenting every message of the lab captures (header, questions,
//! records, rdata, EDNS options) into pre-reserved buffers allocates nothing.

mod support;

use dnstap_receiver::dns::{rdata, MessageView};

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

#[test]
fn parsing_and_presentation_do_not_allocate() {
    let msgs = support::dns::all_messages();
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut work = 0usize;
    let ((), allocs) = support::alloc::allocations_in(|| {
        for (_, m) in &msgs {
            out.clear();
            let Ok(v) = MessageView::parse(m) else {
                continue;
            };
            for q in v.questions().flatten() {
                q.name.write_presentation(&mut out);
                q.name.for_each_label(|l| work += l.len());
            }
            for (_, rr) in v.records().flatten() {
                rr.name.write_presentation(&mut out);
                let _ = rdata::write_presentation(m, rr.rtype, rr.rdata, &mut out);
            }
            work += v.rcode() as usize;
            if let Some(Ok(e)) = v.edns() {
                for o in e.options().flatten() {
                    o.write_presentation(&mut out);
                }
            }
            work += out.len();
        }
    });
    assert!(work > 0);
    assert_eq!(allocs, 0, "allocations while parsing/presenting");
}
