//! What the benches share: a deterministic generator of their data.

/// A small deterministic generator (xorshift64*), so every run measures the same data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// sysbench's `c`/`pad` text: `groups` groups of 11 digits joined by `-`.
    pub fn digit_groups(&mut self, groups: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(groups * 12);
        for g in 0..groups {
            if g > 0 {
                out.push(b'-');
            }
            for _ in 0..11 {
                out.push(b'0' + self.below(10) as u8);
            }
        }
        out
    }
}
