//! Every built-in output format on records decoded from arbitrary payloads.
//!
//! Properties: no panic; each record is appended (what was in the buffer stays), ends with
//! a newline and, for the one-line formats (text, JSON), holds no other newline; the JSON
//! formats parse as one JSON object (serde_json, used in this crate only); the YAML formats
//! parse as a YAML mapping; a record built from the lazy views formats to the same bytes.
#![no_main]

use dnstap_receiver::dnstap::DnstapView;
use dnstap_receiver::format::{FormatKind, Formatter};
use dnstap_receiver::record::Record;
use libfuzzer_sys::fuzz_target;

const KINDS: [FormatKind; 11] = [
    FormatKind::Text,
    FormatKind::Json,
    FormatKind::Yaml,
    FormatKind::JsonFull,
    FormatKind::YamlFull,
    FormatKind::DnsCollectorJson,
    FormatKind::DnsCollectorFlatJson,
    FormatKind::Dr4Json,
    FormatKind::GolangText,
    FormatKind::GolangYaml,
    FormatKind::GolangJson,
];

/// Bytes already in the output buffer, which a writer must leave alone.
const PREFIX: &[u8] = b"previous record\n";

fuzz_target!(|payload: &[u8]| {
    let Ok(record) = Record::decode(payload) else {
        return;
    };
    let from_views = DnstapView::parse(payload)
        .ok()
        .and_then(|v| Record::from_views(&v, None).ok());
    for kind in KINDS {
        let formatter = Formatter::new(kind);
        let mut out = PREFIX.to_vec();
        formatter.write(&record, &mut out);
        assert!(
            out.starts_with(PREFIX),
            "{kind:?} changed bytes before its record"
        );
        let written = &out[PREFIX.len()..];
        // The golang CLI prints nothing for a frame without a message; so do its formats.
        let golang = matches!(
            kind,
            FormatKind::GolangText | FormatKind::GolangYaml | FormatKind::GolangJson
        );
        if golang && written.is_empty() {
            continue;
        }
        assert_eq!(
            written.last(),
            Some(&b'\n'),
            "{kind:?} did not end with a newline"
        );
        match kind {
            FormatKind::Text => assert_one_line(kind, written),
            FormatKind::Json
            | FormatKind::JsonFull
            | FormatKind::DnsCollectorJson
            | FormatKind::DnsCollectorFlatJson
            | FormatKind::Dr4Json
            | FormatKind::GolangJson => {
                assert_one_line(kind, written);
                match serde_json::from_slice::<serde_json::Value>(written) {
                    Ok(serde_json::Value::Object(_)) => {}
                    Ok(other) => panic!("{kind:?} wrote JSON that is not an object: {other}"),
                    Err(e) => panic!(
                        "{kind:?} wrote invalid JSON ({e}): {}",
                        String::from_utf8_lossy(written)
                    ),
                }
            }
            FormatKind::Yaml | FormatKind::YamlFull => check_yaml(kind, written),
            // The golang CLI's text and YAML copy its layout (names as it prints them,
            // `---` between documents): no panic, appended, newline-terminated is what
            // holds for every payload; tests/formats_golang.rs compares them byte for byte.
            FormatKind::GolangText | FormatKind::GolangYaml => {}
            // Not in KINDS: a text-format needs its compiled directives (their unit tests
            // in src/format/directives.rs and tests/formats_migration.rs cover them).
            FormatKind::Directives(_) => {}
        }
        if let Some(other) = &from_views {
            let mut again = Vec::new();
            formatter.write(other, &mut again);
            assert_eq!(
                again, written,
                "{kind:?}: a record from the views formats differently"
            );
        }
    }
});

fn assert_one_line(kind: FormatKind, written: &[u8]) {
    let newlines = written.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        newlines,
        1,
        "{kind:?} wrote more than one line: {}",
        String::from_utf8_lossy(written)
    );
}

fn check_yaml(kind: FormatKind, written: &[u8]) {
    let Ok(text) = std::str::from_utf8(written) else {
        panic!("{kind:?} wrote YAML that is not UTF-8: {written:?}");
    };
    // Every YAML record is one document; a leading `---` marker is allowed.
    match serde_saphyr::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(other) => panic!("{kind:?} wrote YAML that is not a mapping: {other}\n{text}"),
        Err(e) => panic!("{kind:?} wrote YAML that does not parse ({e}):\n{text}"),
    }
}
