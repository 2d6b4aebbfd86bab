//! Prefilters on the lazy view: dnstap identity and qname regular expressions, compiled
//! once into DFAs and run before any full decode. Semantics are Python's `re.match` as in
//! the tool this replaces: anchored at the start, not at the end.
//!
//! CONTRACT STUB: the filter/format helper replaces the bodies.
#![forbid(unsafe_code)]

/// The filters as the user wrote them (config `filter.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// `filter.qname-regex`
    pub qname_regex: Option<String>,
    /// `filter.dnstap-identities`
    pub identities: Option<String>,
}

/// Why a spec could not be compiled: names the key and the pattern.
#[derive(Debug)]
pub struct FilterError {
    pub key: &'static str,
    pub pattern: String,
    pub reason: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: invalid regular expression {:?}: {}", self.key, self.pattern, self.reason)
    }
}
impl std::error::Error for FilterError {}

/// What the prefilter decided about one payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    RejectIdentity,
    RejectQname,
}

/// The compiled filters, read through `&self` by every reader thread.
#[derive(Debug)]
pub struct Filter {
    _private: (),
}

impl Filter {
    pub fn compile(_spec: &FilterSpec) -> Result<Filter, FilterError> {
        todo!("filter helper")
    }

    /// True when no filter is configured (the pipeline can skip `check`).
    pub fn is_empty(&self) -> bool {
        todo!("filter helper")
    }

    /// Runs the filters on one dnstap payload without decoding it fully. A payload the lazy
    /// view cannot read is accepted (the full decode reports it).
    pub fn check(&self, _payload: &[u8]) -> Verdict {
        todo!("filter helper")
    }
}
