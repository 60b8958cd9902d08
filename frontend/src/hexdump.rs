//! Hex and ASCII dumps, the way `hexdump -C` and Wireshark show bytes.

use std::fmt::Write;

/// Bytes per line.
pub const WIDTH: usize = 16;

/// `00000000  68 65 6c 6c 6f 0a 00 ff  41 42 43 44 45 46 47 48  |hello...ABCDEFGH|`:
/// offset, 16 bytes in two groups of eight, then the printable ASCII (`.` for the rest).
pub fn dump(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(WIDTH) * 79);
    for (line, chunk) in bytes.chunks(WIDTH).enumerate() {
        let _ = write!(out, "{:08x}  ", line * WIDTH);
        for i in 0..WIDTH {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    let _ = write!(out, "{:08x}", bytes.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_like_hexdump_c() {
        let d = dump(b"hello\n\x00\xffABCDEFGHI");
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(
            lines[0],
            "00000000  68 65 6c 6c 6f 0a 00 ff  41 42 43 44 45 46 47 48  |hello...ABCDEFGH|"
        );
        assert_eq!(
            lines[1],
            "00000010  49                                                |I|"
        );
        assert_eq!(lines[2], "00000011");
        assert_eq!(dump(b""), "00000000");
    }

    #[test]
    fn markup_stays_text() {
        assert!(dump(b"<script>").contains("|<script>|"));
    }
}
