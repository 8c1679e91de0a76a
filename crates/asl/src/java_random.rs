//! `java.util.Random`, bit for bit: AWS computes JSONata's `$random(seed)` with it, so a
//! seeded draw gives the number a Java program seeded alike would.

/// The 48-bit linear congruential generator of `java.util.Random`.
#[derive(Debug, Clone)]
pub struct JavaRandom {
    seed: u64,
}

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const ADDEND: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;

impl JavaRandom {
    /// `new Random(seed)`: the seed is scrambled with the multiplier.
    pub fn new(seed: i64) -> JavaRandom {
        JavaRandom {
            seed: (seed as u64 ^ MULTIPLIER) & MASK,
        }
    }

    /// `next(bits)`: the top `bits` bits of the advanced 48-bit state.
    fn next(&mut self, bits: u32) -> u64 {
        self.seed = self.seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND) & MASK;
        self.seed >> (48 - bits)
    }

    /// `nextDouble()`: 53 bits from a 26-bit and a 27-bit draw, in `[0, 1)`.
    pub fn next_double(&mut self) -> f64 {
        let high = self.next(26) << 27;
        (high + self.next(27)) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `new java.util.Random(seed)` gives for two `nextDouble()` calls (printed by
    /// OpenJDK's `java`).
    #[test]
    fn matches_java() {
        let cases: [(i64, [f64; 2]); 6] = [
            (0, [0.730967787376657, 0.24053641567148587]),
            (1, [0.7308781907032909, 0.41008081149220166]),
            (42, [0.7275636800328681, 0.6832234717598454]),
            (-1, [0.26894263088050496, 0.012269981921235296]),
            (1_099_511_627_783, [0.1564802832706853, 0.45620085412316336]),
            (-123_456_789, [0.33578273321269103, 0.9653990075082306]),
        ];
        for (seed, want) in cases {
            let mut r = JavaRandom::new(seed);
            assert_eq!([r.next_double(), r.next_double()], want, "seed {seed}");
        }
    }
}
