//! Oracle test for `src/dns`: every DNS message in the lab captures is parsed by our view
//! and by the `domain` crate (dev-dependency), and the header, first question, full rcode
//! and the presentation of every record (OPT excluded) must agree.
//!
//! Only runs of whitespace are normalised (see `normalise`): on the lab traffic (A, NS,
//! CNAME, SOA, PTR, MX, TXT, AAAA, SRV, SSHFP, CAA) both print exactly the same text, case
//! included. Types the captures lack are compared on hand-made records in
//! `synthetic_records_match_domain_crate`.

mod dns_helper;

use dnstap_receiver::dns::{rdata, types, MessageView, Section};
use domain::base::iana::Rtype;
use domain::base::name::ParsedName;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};
use domain::base::Message;
use domain::rdata::AllRecordData;

fn ours_records(v: &MessageView<'_>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for r in v.records() {
        let (section, rr) = r.map_err(|e| format!("{e}"))?;
        if section == Section::Additional && rr.rtype == types::OPT {
            continue;
        }
        let mut line = Vec::new();
        rr.name.write_presentation(&mut line);
        line.extend_from_slice(format!(" {} ", rr.ttl).as_bytes());
        types::write_class(rr.class, &mut line);
        line.push(b' ');
        types::write_rtype(rr.rtype, &mut line);
        line.push(b' ');
        rdata::write_presentation(v.msg, rr.rtype, rr.rdata.clone(), &mut line)
            .map_err(|e| format!("{e}"))?;
        out.push(String::from_utf8_lossy(&line).into_owned());
    }
    Ok(out)
}

fn oracle_records(m: &Message<[u8]>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut section = m.answer().map_err(|e| format!("{e:?}"))?;
    loop {
        for rec in section {
            let rec = rec.map_err(|e| format!("{e:?}"))?;
            if rec.rtype() == Rtype::OPT {
                continue;
            }
            let rec = rec
                .to_any_record::<AllRecordData<_, ParsedName<_>>>()
                .map_err(|e| format!("{e:?}"))?;
            out.push(rec.display_zonefile(DisplayKind::Simple).to_string());
        }
        match section.next_section().map_err(|e| format!("{e:?}"))? {
            Some(next) => section = next,
            None => break,
        }
    }
    Ok(out)
}

/// Collapses runs of whitespace (domain separates some fields with tabs).
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn captures_match_domain_crate() {
    let msgs = dns_helper::all_messages();
    assert!(
        msgs.len() > 1000,
        "expected the lab captures, found {} messages",
        msgs.len()
    );
    let mut mismatches = Vec::new();
    let mut records = 0usize;
    for (file, m) in &msgs {
        let ours = MessageView::parse(m);
        let theirs = Message::from_slice(m);
        let (v, o) = match (ours, theirs) {
            (Ok(v), Ok(o)) => (v, o),
            (Err(_), Err(_)) => continue,
            (a, b) => {
                mismatches.push(format!(
                    "{file}: parse ours {:?} theirs {:?}",
                    a.err(),
                    b.err()
                ));
                continue;
            }
        };
        let h = o.header();
        let c = o.header_counts();
        let ours_h = (
            v.header.id,
            v.header.qdcount,
            v.header.ancount,
            v.header.nscount,
        );
        let their_h = (h.id(), c.qdcount(), c.ancount(), c.nscount());
        if ours_h != their_h || v.header.arcount != c.arcount() {
            mismatches.push(format!("{file}: header {ours_h:?} vs {their_h:?}"));
        }
        if v.header.opcode() != h.opcode().to_int() || v.header.rcode() != h.rcode().to_int() {
            mismatches.push(format!("{file}: opcode/rcode differ"));
        }
        let flags = [
            h.qr(),
            h.aa(),
            h.tc(),
            h.rd(),
            h.ra(),
            h.z(),
            h.ad(),
            h.cd(),
        ];
        let bits = [0x8000u16, 0x400, 0x200, 0x100, 0x80, 0x40, 0x20, 0x10];
        for (f, b) in flags.iter().zip(bits) {
            if *f != (v.header.flags & b != 0) {
                mismatches.push(format!("{file}: flag {b:#x} differs"));
            }
        }
        match (v.question, o.first_question()) {
            (Some(q), Some(oq)) => {
                let mut n = Vec::new();
                q.name.write_presentation(&mut n);
                let n = String::from_utf8_lossy(&n).into_owned();
                let on = format!("{}", oq.qname());
                let on = if on.ends_with('.') {
                    on
                } else {
                    format!("{on}.")
                };
                if normalise(&n) != normalise(&on) || q.qtype != oq.qtype().to_int() {
                    mismatches.push(format!(
                        "{file}: question {n} {} vs {on} {}",
                        q.qtype,
                        oq.qtype()
                    ));
                }
            }
            (None, None) => {}
            (a, b) => mismatches.push(format!(
                "{file}: question {:?} vs {:?}",
                a.is_some(),
                b.is_some()
            )),
        }
        if v.rcode() != o.opt_rcode().to_int() {
            mismatches.push(format!("{file}: rcode {} vs {}", v.rcode(), o.opt_rcode()));
        }
        match (ours_records(&v), oracle_records(o)) {
            (Ok(a), Ok(b)) => {
                records += a.len();
                if a.len() != b.len() {
                    mismatches.push(format!("{file}: {} records vs {}", a.len(), b.len()));
                }
                for (x, y) in a.iter().zip(&b) {
                    if normalise(x) != normalise(y) {
                        mismatches.push(format!("{file}: record\n  ours:   {x}\n  domain: {y}"));
                    }
                }
            }
            (Err(_), Err(_)) => {}
            (a, b) => mismatches.push(format!("{file}: records ours {a:?}\n theirs {b:?}")),
        }
    }
    eprintln!("{} messages, {records} records compared", msgs.len());
    for m in mismatches.iter().take(40) {
        eprintln!("{m}");
    }
    assert!(mismatches.is_empty(), "{} mismatches", mismatches.len());
}
