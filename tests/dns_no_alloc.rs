//! Checks the "no heap allocation" promise of `src/dns`: with a counting global allocator,
//! parsing, walking and presenting every message of the lab captures (header, questions,
//! records, rdata, EDNS options) into pre-reserved buffers allocates nothing.

mod support;

use dnstap_receiver::dns::{rdata, MessageView};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `System` with `layout`; same contract passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn parsing_and_presentation_do_not_allocate() {
    let msgs = support::dns::all_messages();
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut work = 0usize;
    // Tests in this binary run alone (one test), so the counter sees only this thread.
    COUNTING.store(true, Ordering::SeqCst);
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
    COUNTING.store(false, Ordering::SeqCst);
    assert!(work > 0);
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst),
        0,
        "allocations while parsing/presenting"
    );
}
