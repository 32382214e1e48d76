//! Checksummed 64-byte records: a reader that gets one back whole can tell,
//! and one that gets a mix of two writes can tell too.
//!
//! ```text
//! 0..8    value      u64, little-endian
//! 8..12   writer     u32: who wrote it
//! 12..56  filler     derived from value and writer
//! 56..64  checksum   of bytes 0..56
//! ```
//!
//! All zeroes is the empty record, and valid.

pub const LEN: usize = 64;

/// The record for `value`, written by `writer`.
pub fn make(value: u64, writer: u32) -> [u8; LEN] {
    let mut r = [0u8; LEN];
    r[0..8].copy_from_slice(&value.to_le_bytes());
    r[8..12].copy_from_slice(&writer.to_le_bytes());
    let mut x = value ^ (u64::from(writer) << 32);
    for chunk in r[12..56].chunks_mut(8) {
        x = mix(x);
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let sum = checksum(&r[..56]);
    r[56..64].copy_from_slice(&sum.to_le_bytes());
    r
}

/// The value of a whole record; `None` if it is torn or corrupt.
pub fn check(r: &[u8]) -> Option<u64> {
    if r.len() != LEN {
        return None;
    }
    if r.iter().all(|&b| b == 0) {
        return Some(0);
    }
    let value = u64::from_le_bytes(r[0..8].try_into().unwrap());
    let writer = u32::from_le_bytes(r[8..12].try_into().unwrap());
    (r == make(value, writer)).then_some(value)
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.chunks(8).fold(0x9E37_79B9_7F4A_7C15, |h, c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        mix(h ^ u64::from_le_bytes(w))
    })
}

/// splitmix64's finaliser: every input bit moves every output bit.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A small, fast pseudo-random generator for choosing operations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }

    /// Uniform in `0..n` (n > 0), near enough.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_records_check_and_mixed_ones_do_not() {
        let a = make(7, 1);
        let b = make(8, 2);
        assert_eq!(check(&a), Some(7));
        assert_eq!(check(&b), Some(8));
        assert_eq!(check(&[0; LEN]), Some(0));
        for cut in 1..LEN {
            let mut torn = a;
            torn[cut..].copy_from_slice(&b[cut..]);
            assert_eq!(check(&torn), None, "cut at {cut}");
        }
    }
}
