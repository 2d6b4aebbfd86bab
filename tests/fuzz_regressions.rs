//! Inputs the fuzz targets (`fuzz/`, docs/fuzzing.md) found to break something, one test per
//! bug, named after what broke. Each input is the minimized crash, as a byte literal, so the
//! test runs without the fuzz toolchain.

use dnstap_receiver::dnstap::DnstapView;
use dnstap_receiver::record::Record;

/// True when the lazy views read the whole payload: the top level and, if present, the
/// embedded `Message` and its `Policy`.
fn views_read(payload: &[u8]) -> bool {
    match DnstapView::parse(payload) {
        Ok(view) => match view.message() {
            Some(Ok(m)) => !matches!(m.policy(), Some(Err(_))),
            Some(Err(_)) => false,
            None => true,
        },
        Err(_) => false,
    }
}

/// Both readers must give the same verdict; `Record::decode` must not panic (a panic fails
/// the test).
fn readers_agree(payload: &[u8]) -> (bool, bool) {
    let views = views_read(payload);
    let decoded = Record::decode(payload).is_ok();
    let built = Record::from_views(&DnstapView::parse(payload).unwrap_or_default(), None).is_ok();
    assert_eq!(
        views, decoded,
        "views and quick-protobuf disagree on {payload:?}"
    );
    (views, built)
}

/// `Dnstap.message` (field 14) twice: first a one-byte `Message` holding the key 0x00 (field
/// number 0, invalid), then an empty one. The view used to keep the last occurrence while
/// quick-protobuf parsed both and rejected the first. A repeated `message` is now refused by
/// both (found by the `dnstap_view` target).
#[test]
fn repeated_message_field_decode_rejects_what_views_accept() {
    let payload: &[u8] = b"\x72\x01\x00\x72\x00";
    let (views, _) = readers_agree(payload);
    assert!(!views, "a repeated Dnstap.message is refused");
}

/// `Dnstap.message` twice, the first a one-byte `Message` holding a length-delimited key
/// (0x02) with no length: quick-protobuf read the length from past the end of that nested
/// message and underflowed `end - start` in `BytesReader::read_unknown` (a panic with
/// overflow checks on). The view's framing check now refuses the payload before
/// quick-protobuf sees it. Found by the `format` and `dnstap_view` targets.
#[test]
fn repeated_message_field_with_truncated_length_overflows_decode() {
    let payload: &[u8] = b"\x72\x01\x02\x72\x00";
    let (views, _) = readers_agree(payload);
    assert!(!views, "a repeated Dnstap.message is refused");
}

/// The same one level down: two `Message.policy` fields, the first broken.
#[test]
fn repeated_policy_field_decode_rejects_what_views_accept() {
    // Dnstap { message: Message { policy: [0x00], policy: [] } }
    let payload: &[u8] = b"\x72\x05\x7a\x01\x00\x7a\x00";
    let (views, _) = readers_agree(payload);
    assert!(!views, "a repeated Message.policy is refused");
}

/// A single, well-formed `message` and `policy` still read the same in both readers.
#[test]
fn single_message_and_policy_still_decode() {
    // Dnstap { message: Message { policy: [] } }
    let payload: &[u8] = b"\x72\x02\x7a\x00";
    let (views, built) = readers_agree(payload);
    assert!(views && built);
}

/// `config` target, first long run: this config (minimized only by the fuzzer's own
/// reduction) took over 15 s under ASan to load, all of it in determinizing the qname regex
/// (`.` repeated ~100 times after a `.*`: the DFA blows up) until the DFA size limit refused
/// it. The loader must end with an error naming the key, never hang or panic. (12 s in a
/// debug build, ~1 s in release; not a timed assertion, only the outcome.)
#[test]
fn pathological_qname_regex_is_refused_at_the_dfa_size_limit() {
    use dnstap_receiver::config::{resolve, FileConfig, LowArgs, Settings};
    let text = concat!(
        "filter:\n  qname-regex: \".*.%x\\\\amqjple\\\\*st2t.:\n  capaci\\\\b-xa",
        "..............................................................................",
        "epoll.........................mple\\\\.t2s(nsle\\\\*sund)\"\n"
    );
    let file = FileConfig::parse(text).expect("valid YAML");
    let resolved = resolve(&LowArgs::default(), Some(&file), None).expect("valid values");
    let e = Settings::compile(resolved, None).expect_err("the DFA is too large");
    assert_eq!(e.key, "filter.qname-regex");
    assert!(e.reason.contains("size limit"), "{}", e.reason);
}

/// `config` target, second long run: `-l 127.0.0.1 -p 7000` on the command line with
/// `input-mode.unix-socket` in the file gave a unix listener only. That is the seed's rule
/// (a configured unix socket replaces the TCP input; `-l`/`-p` only set TCP's address), and
/// the target's "flags win" property was too strong; this pins the seed's behaviour.
#[test]
fn file_unix_socket_replaces_tcp_even_with_tcp_flags() {
    use dnstap_receiver::config::{resolve, FileConfig, LowArgs};
    use dnstap_receiver::input::InputSpec;
    let file = FileConfig::parse("input-mode:\n  local-port: 6000\n  unix-socket: /run/x.sock\n")
        .expect("valid YAML");
    let args = LowArgs {
        listen_address: Some("127.0.0.1".into()),
        port: Some(7000),
        ..LowArgs::default()
    };
    let r = resolve(&args, Some(&file), None).expect("valid");
    assert_eq!(r.inputs, [InputSpec::Unix("/run/x.sock".into())]);
}

/// `config` target, CI smoke pass after the TLS input was merged: the seed's
/// `input-mode.tls-support: true` makes its single input TLS, so `-l 127.0.0.1 -p 7000`
/// then gives a TLS listener on 7000, not a TCP one. The target's "-p wins" property looked
/// for TCP only; this pins that the port still wins, on the TLS input.
#[test]
fn seed_tls_input_takes_the_flag_port() {
    use dnstap_receiver::config::{resolve, FileConfig, LowArgs};
    use dnstap_receiver::input::InputSpec;
    let file = FileConfig::parse(
        "input-mode:\n  local-address: 0.0.0.0\n  local-port: 6001\n  tls-support: true\n  \
         tls-server-cert: /etc/dnstap/receiver.pem\n  tls-server-key: /etc/dnstap/receiver.key\n",
    )
    .expect("valid YAML");
    let args = LowArgs {
        listen_address: Some("127.0.0.1".into()),
        port: Some(7000),
        ..LowArgs::default()
    };
    let r = resolve(&args, Some(&file), None).expect("valid");
    assert_eq!(
        r.inputs,
        [InputSpec::Tls("127.0.0.1:7000".parse().unwrap())]
    );
}
