//! The random numbers and texts of the generator: SplitMix64, seeded per row and field.

/// SplitMix64's finalizer.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A tiny deterministic generator (SplitMix64): `Rng(seed)`.
pub(super) struct Rng(pub(super) u64);

/// The characters of random strings.
const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Characters a draw of the generator makes: the first [`TEXT_PER_DRAW`] digits of its number
/// (as a fraction of 2^64) in base 36. Each of the 36^10 texts of a draw is about 2^64 / 36^10 ≈
/// 5,000 numbers, so all are as likely to within one part in 5,000 (12 digits would still fit
/// in 64 bits, but some 12-character texts would be a third likelier than others).
const TEXT_PER_DRAW: usize = 10;

/// Fills `out` with random characters of [`ALPHABET`], [`TEXT_PER_DRAW`] per draw of `rng`
/// (one draw per character before connector version 1.1, a sixth of a columnar job's CPU).
pub(super) fn random_text(rng: &mut Rng, out: &mut [u8]) {
    for block in out.chunks_mut(TEXT_PER_DRAW) {
        let mut fraction = rng.next();
        for byte in block {
            let wide = u128::from(fraction) * ALPHABET.len() as u128;
            // The digit is below 36: the high half of a 64-bit number times 36.
            *byte = ALPHABET[(wide >> 64) as usize];
            fraction = wide as u64;
        }
    }
}

impl Rng {
    /// The next number.
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{random_text, Rng, ALPHABET, TEXT_PER_DRAW};

    #[test]
    fn every_character_position_is_uniform_over_the_alphabet() {
        // Texts longer than a draw: positions of the second draw too.
        let length = TEXT_PER_DRAW + 3;
        let texts = 180_000;
        let mut counts = vec![[0u32; 36]; length];
        let mut text = vec![0; length];
        for n in 0..texts {
            random_text(&mut Rng(super::mix(n)), &mut text);
            for (position, byte) in text.iter().enumerate() {
                let Some(at) = ALPHABET.iter().position(|c| c == byte) else {
                    panic!("{byte} is not in the alphabet");
                };
                counts[position][at] += 1;
            }
        }
        // 5,000 expected per cell, a standard deviation of about 70: 6 % is 4 deviations.
        let expected = f64::from(texts as u32) / 36.0;
        for (position, cells) in counts.iter().enumerate() {
            for (at, count) in cells.iter().enumerate() {
                let off = (f64::from(*count) - expected).abs() / expected;
                assert!(
                    off < 0.06,
                    "position {position}, `{}`: {count} times, {expected} expected",
                    char::from(ALPHABET[at])
                );
            }
        }
    }

    #[test]
    fn a_draw_makes_a_text_of_its_length_and_the_next_draw_continues() {
        let mut short = [0; 3];
        random_text(&mut Rng(7), &mut short);
        let mut long = vec![0; TEXT_PER_DRAW * 2];
        random_text(&mut Rng(7), &mut long);
        assert_eq!(short, long[..3], "a prefix of one draw's digits");
        assert_ne!(long[..TEXT_PER_DRAW], long[TEXT_PER_DRAW..], "a new draw");
    }
}
