//! Sizes and offsets with units: `4096`, `4K`, `4KiB`, `1M`, `1MiB`, `2G`.
//!
//! `K`, `M` and `G`, with or without `iB`, are powers of 1024, as for segment
//! sizes everyone means them. `KB`, `MB` and `GB` are powers of 1000, as in
//! dd(1). A plain number, or one ending in `B`, is bytes. Case is ignored.

/// Parses a byte count; the error says what is wrong and what is accepted.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "{text:?} does not start with a number (try 1024, 4K or 1MiB)"
        ));
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use bytes, or K, KiB, M, MiB, G, GiB; KB, MB, GB are powers of 1000)"
            ));
        }
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is too large"))?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// [`parse_bytes`], as a `usize` for sizes and offsets in memory.
pub fn parse_usize(text: &str) -> Result<usize, String> {
    let n = parse_bytes(text)?;
    usize::try_from(n).map_err(|_| format!("{text:?} is too large for this machine"))
}

/// `1024` as `1 KiB`, `1536` as `1.5 KiB`, `100` as `100 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("12B"), Ok(12));
        assert_eq!(parse_bytes("4K"), Ok(4096));
        assert_eq!(parse_bytes("4k"), Ok(4096));
        assert_eq!(parse_bytes("4KiB"), Ok(4096));
        assert_eq!(parse_bytes("1M"), Ok(1 << 20));
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("4KB"), Ok(4000));
        assert_eq!(parse_bytes("1MB"), Ok(1_000_000));
        assert_eq!(parse_bytes("1GB"), Ok(1_000_000_000));
    }

    #[test]
    fn bad_input_is_explained() {
        assert!(
            parse_bytes("4X")
                .unwrap_err()
                .contains("unknown unit \"X\"")
        );
        assert!(
            parse_bytes("K")
                .unwrap_err()
                .contains("does not start with a number")
        );
        assert!(
            parse_bytes("")
                .unwrap_err()
                .contains("does not start with a number")
        );
        assert!(
            parse_bytes("-1")
                .unwrap_err()
                .contains("does not start with a number")
        );
        assert!(
            parse_bytes("1.5K")
                .unwrap_err()
                .contains("unknown unit \".5K\"")
        );
        assert!(
            parse_bytes("99999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_bytes("17179869184G")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(100), "100 B");
        assert_eq!(human(1024), "1 KiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(64 << 20), "64 MiB");
    }
}
