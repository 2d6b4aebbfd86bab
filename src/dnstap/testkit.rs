//! Test-only protobuf encoder and sample `Message` for the view and prefilter tests: the
//! slow obvious way, written apart from `wire.rs` so the two check each other.
#![forbid(unsafe_code)]

pub(super) fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}
pub(super) fn key(field: u64, wt: u64, out: &mut Vec<u8>) {
    varint(field << 3 | wt, out);
}
pub(super) fn f_varint(field: u64, v: u64, out: &mut Vec<u8>) {
    key(field, 0, out);
    varint(v, out);
}
pub(super) fn f_bytes(field: u64, v: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(v.len() as u64, out);
    out.extend_from_slice(v);
}
pub(super) fn f_fixed32(field: u64, v: u32, out: &mut Vec<u8>) {
    key(field, 5, out);
    out.extend_from_slice(&v.to_le_bytes());
}
pub(super) fn f_fixed64(field: u64, v: u64, out: &mut Vec<u8>) {
    key(field, 1, out);
    out.extend_from_slice(&v.to_le_bytes());
}

/// Every Message field once, each encoded on its own, in field-number order.
pub(super) fn full_message_fields() -> Vec<Vec<u8>> {
    let mut policy = Vec::new();
    f_bytes(1, b"RPZ", &mut policy);
    f_bytes(2, b"\x03bad\x07example\x00", &mut policy);
    f_varint(3, 1, &mut policy);
    f_varint(4, 2, &mut policy);
    f_bytes(5, &[10, 0, 0, 1], &mut policy);

    let mut fields = Vec::new();
    fields.push({
        let mut f = Vec::new();
        f_varint(1, 6, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_varint(2, 2, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_varint(3, 4, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_bytes(4, &[0u8; 16], &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_bytes(5, &[1u8; 16], &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_varint(6, 53000, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_varint(7, 443, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_varint(8, 1_700_000_000, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_fixed32(9, 123_456_789, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_bytes(10, b"query", &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_bytes(11, b"\x07example\x00", &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_varint(12, 1_700_000_001, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_fixed32(13, 987_654_321, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_bytes(14, b"response", &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_bytes(15, &policy, &mut f);
        f
    });
    fields.push({
        let mut f = Vec::new();
        f_varint(16, 2, &mut f);
        f
    });
    fields
}

pub(super) fn full_message() -> Vec<u8> {
    full_message_fields().concat()
}

/// xorshift64*: deterministic, dependency-free noise for the robustness tests.
pub(super) struct XorShift(pub(super) u64);
impl XorShift {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub(super) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
    }

    /// The fields back to back, damaged as the scans' agreement tests want it: one byte
    /// overwritten every third `round`, the buffer cut short every seventh.
    pub(super) fn damaged(&mut self, fields: Vec<&Vec<u8>>, round: usize) -> Vec<u8> {
        let mut buf: Vec<u8> = fields.into_iter().flatten().copied().collect();
        if round % 3 == 0 && !buf.is_empty() {
            let i = (self.next() % buf.len() as u64) as usize;
            buf[i] = self.next() as u8;
        }
        if round % 7 == 0 {
            buf.truncate((self.next() % (buf.len() as u64 + 1)) as usize);
        }
        buf
    }
}
