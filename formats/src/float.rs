//! `f64` as text, exactly as `format!("{x}")` writes it (the shortest digits that read back
//! as `x`, the closest of them, in positional notation, never an exponent), from the `ryu`
//! crate's digits: faster than the standard library's formatter, which was a sixth of a
//! columnar CSV job's CPU.
//!
//! The two pick different digits only when two shortest candidates are equally close (an exact
//! tie: the standard library rounds half up, `ryu` half to even). A tie needs a value whose
//! exact decimal expansion is short, so such values, and every value whose shortest form has
//! 16 or 17 digits that could be one, are written by the standard library.

use std::io::Write as _;

/// Appends `x` to `out` as `format!("{x}")` would.
pub(crate) fn push_f64(x: f64, out: &mut Vec<u8>) {
    if !x.is_finite() {
        // NaN, inf, -inf: rare, and spelled by the standard library. Writing into a `Vec`
        // cannot fail.
        let _ = write!(out, "{x}");
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(x).as_bytes();
    if !text.contains(&b'e') {
        // Positional already: the standard library's text but for a whole number's `.0`.
        let body = text.strip_suffix(b".0").unwrap_or(text);
        // At most this many significant digits (leading and trailing zeros counted too).
        let digits = body.len()
            - usize::from(body.first() == Some(&b'-'))
            - usize::from(body.contains(&b'.'));
        if digits <= 15 || ties_impossible(x) {
            out.extend_from_slice(body);
        } else {
            let _ = write!(out, "{x}");
        }
        return;
    }
    let (negative, text) = match text.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.iter().position(|b| *b == b'e') {
        Some(at) => (
            &text[..at],
            std::str::from_utf8(&text[at + 1..])
                .ok()
                .and_then(|e| e.parse::<i32>().ok())
                .unwrap_or(0),
        ),
        None => (text, 0),
    };
    // The digits of the mantissa without its point, and where the point goes among them.
    let (int, frac) = match mantissa.iter().position(|b| *b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &[][..]),
    };
    let mut buf = [0u8; 40];
    let len = int.len() + frac.len();
    let Some(all) = buf.get_mut(..len) else {
        let _ = write!(out, "{x}");
        return;
    };
    all[..int.len()].copy_from_slice(int);
    all[int.len()..].copy_from_slice(frac);
    let mut point = int.len() as i32 + exponent;
    let leading = all.iter().take_while(|d| **d == b'0').count();
    point -= leading as i32;
    let mut digits = &all[leading..];
    while let Some(rest) = digits.strip_suffix(b"0") {
        digits = rest;
    }
    if negative {
        out.push(b'-');
    }
    if digits.is_empty() {
        out.push(b'0');
        return;
    }
    if digits.len() > 15 && !ties_impossible(x) {
        // Undo the sign, and let the standard library choose.
        if negative {
            out.pop();
        }
        let _ = write!(out, "{x}");
        return;
    }
    let len = digits.len() as i32;
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-point) as usize));
        out.extend_from_slice(digits);
    } else if point >= len {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', (point - len) as usize));
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        out.extend_from_slice(whole);
        out.push(b'.');
        out.extend_from_slice(fraction);
    }
}

/// Whether no decimal of 17 or fewer significant digits can be exactly halfway between two
/// candidates for `x`: its exact decimal expansion has more than 18 significant digits. With
/// `x = m · 2^e`, `m` odd and `e < 0`, the expansion is `m · 5^-e` (over a power of ten), whose
/// digits number at least `log10(m · 5^-e)`; integers (`e ≥ 0`) are left to the standard
/// library.
fn ties_impossible(x: f64) -> bool {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mut m, mut e) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    if m == 0 {
        return true;
    }
    let zeros = m.trailing_zeros();
    m >>= zeros;
    e += zeros as i32;
    if e >= 0 {
        return false;
    }
    // log2(m · 5^k) > log2(10^18) ≈ 59.8, with a margin.
    let log2 = f64::from(64 - m.leading_zeros()) - 1.0 + f64::from(-e) * 2.321_928;
    log2 > 61.0
}

#[cfg(test)]
mod tests {
    use super::push_f64;

    fn same(x: f64) {
        let mut ours = Vec::new();
        push_f64(x, &mut ours);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            format!("{x}"),
            "bits {:#x}",
            x.to_bits()
        );
    }

    #[test]
    fn special_and_boundary_values_are_written_as_display_writes_them() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.5,
            1.5,
            10.0,
            100.0,
            123_456.0,
            1e15,
            1e16,
            1e17,
            1e21,
            1e22,
            1e300,
            1e-5,
            1e-7,
            1.234e-5,
            5e-324,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            499.999_999_999_999_94,
            9_007_199_254_740_993.0,
            1_690_060_720_831_323.2,
            4_503_599_627_370_497.5,
            2f64.powi(60),
            2f64.powi(70) + 2f64.powi(18),
            0.3,
            2.0 / 3.0,
        ] {
            same(x);
        }
    }

    #[test]
    fn random_and_tie_prone_values_are_written_as_display_writes_them() {
        // Random bit patterns (every exponent), and values in the ranges pipelines generate.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..400_000 {
            same(f64::from_bits(next()));
            let unit = (next() >> 11) as f64 / (1u64 << 53) as f64;
            same(1.0 + unit * 499.0);
            // Values with short exact expansions, where ties live: integers and halves near
            // 2^50..2^60, quarters, and binary fractions of few bits.
            let n = next();
            same((n >> 4) as f64 / 4.0);
            same((n >> 12) as f64 + 0.5);
            same((n >> 40) as f64 / 1024.0);
        }
    }
}
