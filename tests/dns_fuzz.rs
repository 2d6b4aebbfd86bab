//! Fuzz-style robustness test for `src/dns`: random and mutated messages (seeded xorshift,
//! so failures reproduce) go through every entry point (view, questions, records, rdata
//! presentation, EDNS and its options). Nothing may panic, and the documented invariants
//! must hold: names stay within RFC 1035 limits, a failed rdata write leaves the output
//! untouched, and the record walk yields at most one error and then stops.

mod support;

use dnstap_receiver::dns::{rdata, MessageView, Name};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check_name(n: &Name<'_>) {
    let mut total = 1;
    n.for_each_label(|l| {
        assert!(!l.is_empty() && l.len() <= 63);
        total += l.len() + 1;
    });
    assert_eq!(total, n.wire_len());
    assert!(total <= 255);
    let mut out = Vec::new();
    n.write_presentation(&mut out);
    assert_eq!(out.last(), Some(&b'.'));
}

/// Runs everything on one message; returns how many records were presented.
fn exercise(m: &[u8], out: &mut Vec<u8>) -> usize {
    let Ok(v) = MessageView::parse(m) else {
        return 0;
    };
    if let Some(q) = v.question {
        check_name(&q.name);
    }
    for q in v.questions().flatten() {
        check_name(&q.name);
    }
    let mut errors = 0;
    let mut n = 0;
    for r in v.records() {
        assert_eq!(errors, 0, "records continued after an error");
        match r {
            Ok((_, rr)) => {
                check_name(&rr.name);
                out.clear();
                out.extend_from_slice(b"x");
                if rdata::write_presentation(m, rr.rtype, rr.rdata.clone(), out).is_err() {
                    assert_eq!(out, b"x", "output not rolled back");
                }
                // Also present the same bytes as other types: every type's parser sees
                // every kind of garbage.
                for t in [
                    1, 2, 6, 15, 16, 28, 33, 43, 46, 47, 48, 50, 51, 52, 64, 65, 257,
                ] {
                    out.clear();
                    let _ = rdata::write_presentation(m, t, rr.rdata.clone(), out);
                }
                n += 1;
            }
            Err(_) => errors += 1,
        }
    }
    let _ = v.rcode();
    if let Some(Ok(e)) = v.edns() {
        for o in e.options().flatten() {
            out.clear();
            o.write_presentation(out);
            let _ = o.value();
        }
    }
    n
}

#[test]
fn random_messages_never_panic() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..100_000 {
        buf.clear();
        let len = rng.below(300);
        // A plausible header (small counts) most of the time, so parsing gets past it.
        for i in 0..len {
            let r = rng.next();
            let b = match (i, r % 8) {
                (4 | 6 | 8 | 10, _) => 0,
                (5 | 7 | 9 | 11, _) => (r >> 8) as u8 % 6,
                (_, 0) => 0xc0,                // pointer
                (_, 1) => (r >> 8) as u8 % 64, // label length
                (_, 2) => 0,
                _ => (r >> 8) as u8,
            };
            buf.push(b);
        }
        exercise(&buf, &mut out);
    }
}

#[test]
fn mutated_captures_never_panic() {
    let msgs = support::dns::all_messages();
    assert!(!msgs.is_empty());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    let mut presented = 0;
    for _ in 0..60_000 {
        let (_, base) = &msgs[rng.below(msgs.len())];
        let mut m = base.clone();
        for _ in 0..1 + rng.below(4) {
            if m.is_empty() {
                break;
            }
            let at = rng.below(m.len());
            match rng.below(6) {
                0 => m[at] = rng.next() as u8,
                1 => m[at] ^= 1 << rng.below(8),
                2 => m.truncate(at),
                3 => m[at] = 0xc0 | (rng.next() as u8 & 0x3f),
                4 => m.insert(at, rng.next() as u8),
                _ => {
                    m.remove(at);
                }
            }
        }
        presented += exercise(&m, &mut out);
    }
    assert!(
        presented > 10_000,
        "mutations should leave most records readable"
    );
}
