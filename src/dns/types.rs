//! Names of DNS numbers (types, classes, rcodes, opcodes) as `&'static str`, and writers
//! for the RFC 3597 fallback forms (`TYPE65280`, `CLASS7`).
#![forbid(unsafe_code)]

/// Mnemonic of an RR type, if known ("A", "AAAA", ...).
pub fn rtype_name(_t: u16) -> Option<&'static str> {
    todo!("dns helper")
}

/// Writes the mnemonic or `TYPE<n>`.
pub fn write_rtype(_t: u16, _out: &mut Vec<u8>) {
    todo!("dns helper")
}

/// Mnemonic of an rcode including EDNS extended values ("NOERROR", "BADVERS", ...).
pub fn rcode_name(_rcode: u16) -> Option<&'static str> {
    todo!("dns helper")
}

pub fn opcode_name(_op: u8) -> Option<&'static str> {
    todo!("dns helper")
}

pub fn class_name(_c: u16) -> Option<&'static str> {
    todo!("dns helper")
}
