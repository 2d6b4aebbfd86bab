//! The PowerDNS protobuf converter (`powerdns::convert`) on arbitrary PBDNSMessages.
//!
//! Input layout: `| room (u16 LE) | PBDNSMessage (the rest) |`; `room` is the size of a
//! second, small output buffer.
//!
//! Properties: no panic; a message converts into a buffer of `4 × len + 4096` bytes (never
//! "no room": the conversion grows a message by less than that); what it writes is a dnstap
//! payload that the lazy view and the full decode both accept, with a parseable message;
//! converting into the small buffer gives either "no room" (only when it is at most 3
//! bytes larger than the payload: the nested lengths' reserve) or exactly the same bytes;
//! an error is the same error both times.
#![no_main]

use dnstap_receiver::dnstap::DnstapView;
use dnstap_receiver::powerdns::{convert, Converted};
use dnstap_receiver::record::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (room, msg) = match input {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, input),
    };
    let mut big = vec![0u8; 4 * msg.len() + 4096];
    let mut small = vec![0u8; room.min(big.len())];
    let first = convert(msg, &mut big);
    let second = convert(msg, &mut small);
    match first {
        Err(e) => {
            assert_eq!(second, Err(e), "the same message, a different error");
            assert!(
                e.offset <= msg.len(),
                "an error offset past the message: {e:?}"
            );
            let _ = e.to_string();
        }
        Ok(Converted::NoRoom) => panic!(
            "no room in {} bytes for a {}-byte message",
            big.len(),
            msg.len()
        ),
        Ok(Converted::Skipped) => assert_eq!(second, Ok(Converted::Skipped)),
        Ok(Converted::Written(n)) => {
            assert!(n <= big.len());
            let payload = &big[..n];
            match second {
                Ok(Converted::Written(m)) => {
                    assert_eq!(&small[..m], payload, "a small buffer wrote other bytes")
                }
                // A nested length is written into 3 reserved bytes, then moved back: a buffer
                // may need 2 spare bytes per open nesting (at most 2 levels) beyond `n`.
                Ok(Converted::NoRoom) => assert!(room < n + 4, "no room in {room} bytes for {n}"),
                other => panic!("the small buffer gave {other:?}, the big one Written({n})"),
            }
            let view = DnstapView::parse(payload).expect("a converted payload is valid dnstap");
            let m = view
                .message()
                .expect("a converted payload has a message")
                .expect("its message parses");
            assert!(
                !matches!(m.policy(), Some(Err(_))),
                "a converted policy parses"
            );
            Record::decode(payload).expect("a converted payload decodes");
        }
    }
});
