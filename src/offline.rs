//! Offline mode (`dnstap_receiver -r FILE`): a Frame Streams capture file through the same
//! filter, decode and format as live input. CONTRACT STUB: the format helper owns it.

use std::io::Write;
use std::path::Path;

use crate::filter::Filter;
use crate::format::Formatter;

/// What one file held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfflineStats {
    pub frames: u64,
    pub written: u64,
    pub filtered: u64,
    pub undecodable: u64,
}

/// Reads `path`, writes every accepted record to `out`. Errors name the file and the offset.
pub fn run(
    _path: &Path,
    _filter: &Filter,
    _formatter: &Formatter,
    _out: &mut dyn Write,
) -> Result<OfflineStats, Box<dyn std::error::Error + Send + Sync>> {
    todo!("format helper")
}
