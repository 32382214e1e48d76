//! Printing bytes in the formats of `read` and `watch`, and messages.

use std::io::{self, Write};

use base64::Engine as _;

use crate::cli::Format;

/// A message for the user on standard error; never fails.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// The bytes as text: UTF-8 with invalid bytes replaced, trailing NUL bytes
/// trimmed (segments are padded with them).
pub fn text_of(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Writes `bytes`, read from `offset` of a segment, in `format`.
pub fn write_bytes(
    out: &mut impl Write,
    bytes: &[u8],
    offset: usize,
    format: Format,
) -> io::Result<()> {
    match format {
        Format::Text => {
            let text = text_of(bytes);
            out.write_all(text.as_bytes())?;
            if !text.is_empty() && !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
        }
        Format::Hex => write_hex(out, bytes, offset)?,
        Format::Raw => out.write_all(bytes)?,
        Format::Base64 => {
            out.write_all(
                base64::engine::general_purpose::STANDARD
                    .encode(bytes)
                    .as_bytes(),
            )?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()
}

/// A dump like `xxd`: offset, 16 bytes in pairs, then the printable ones.
fn write_hex(out: &mut impl Write, bytes: &[u8], offset: usize) -> io::Result<()> {
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let mut line = format!("{:08x}:", offset + row * 16);
        for pair in 0..8 {
            line.push(' ');
            for i in pair * 2..pair * 2 + 2 {
                match chunk.get(i) {
                    Some(b) => line.push_str(&format!("{b:02x}")),
                    None => line.push_str("  "),
                }
            }
        }
        line.push_str("  ");
        line.extend(chunk.iter().map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        }));
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A time as RFC 3339 in UTC, to the millisecond.
pub fn time(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A time as RFC 3339 in UTC, to the second (write times are recorded so).
pub fn time_s(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(bytes: &[u8], offset: usize, format: Format) -> String {
        let mut out = Vec::new();
        write_bytes(&mut out, bytes, offset, format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_trims_nul_padding_and_replaces_invalid_bytes() {
        assert_eq!(render(b"hello\0\0\0", 0, Format::Text), "hello\n");
        assert_eq!(render(b"a\xffb", 0, Format::Text), "a\u{fffd}b\n");
        assert_eq!(render(b"line\n\0", 0, Format::Text), "line\n");
        assert_eq!(render(b"\0\0", 0, Format::Text), "");
        assert_eq!(render(b"a\0b\0", 0, Format::Text), "a\0b\n");
    }

    #[test]
    fn hex_looks_like_xxd() {
        assert_eq!(
            render(b"hello world\n\0\0\0\0x", 16, Format::Hex),
            "00000010: 6865 6c6c 6f20 776f 726c 640a 0000 0000  hello world.....\n\
             00000020: 78                                       x\n"
        );
    }

    #[test]
    fn base64_and_raw() {
        assert_eq!(render(b"\xff\x00hi", 0, Format::Base64), "/wBoaQ==\n");
        let mut out = Vec::new();
        write_bytes(&mut out, b"\xff\x00hi", 0, Format::Raw).unwrap();
        assert_eq!(out, b"\xff\x00hi");
    }
}
