//! Captured bytes: valid UTF-8 travels as text, anything else as base64, and a capture
//! limit (the snaplen) cuts big chunks while saying how much was cut.

use base64::Engine as _;
use base64::engine::general_purpose;
use serde::{Deserialize, Serialize};

/// How [`Payload::data`] (or a command's data) is encoded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 text, as is.
    #[default]
    Text,
    /// Standard base64 (RFC 4648, with padding).
    Base64,
    /// Hex digits; whitespace and `:` between bytes are allowed on input.
    Hex,
}

/// Bytes captured from the network, possibly cut at the snaplen.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Payload {
    /// `text` when the captured bytes are valid UTF-8, `base64` otherwise.
    pub enc: Encoding,
    /// The captured bytes in that encoding.
    pub data: String,
    /// Bytes that were not captured because of the snaplen (0: nothing cut).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cut: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Payload {
    /// Captures at most `snaplen` bytes of `bytes`. A UTF-8 character split by the cut is
    /// left out whole, so the text stays valid; `cut` counts every byte left out.
    pub fn capture(bytes: &[u8], snaplen: usize) -> Payload {
        let kept = &bytes[..bytes.len().min(snaplen)];
        match std::str::from_utf8(kept) {
            Ok(text) => Payload::text(text, bytes.len()),
            // Only the tail is an incomplete character: keep the text before it.
            Err(e) if e.error_len().is_none() && kept.len() < bytes.len() => {
                let text = std::str::from_utf8(&kept[..e.valid_up_to()]).unwrap_or_default();
                Payload::text(text, bytes.len())
            }
            Err(_) => Payload {
                enc: Encoding::Base64,
                data: base64_encode(kept),
                cut: (bytes.len() - kept.len()) as u64,
            },
        }
    }

    fn text(text: &str, total: usize) -> Payload {
        Payload {
            enc: Encoding::Text,
            data: text.to_owned(),
            cut: (total - text.len()) as u64,
        }
    }

    /// The captured bytes, decoded (without what was cut).
    pub fn bytes(&self) -> Vec<u8> {
        decode(&self.data, self.enc).unwrap_or_default()
    }

    /// Whether the capture is text (as opposed to binary shown as base64).
    pub fn is_text(&self) -> bool {
        self.enc == Encoding::Text
    }
}

/// Decodes `data` written in `enc` into bytes, with an error a person can act on.
pub fn decode(data: &str, enc: Encoding) -> Result<Vec<u8>, String> {
    match enc {
        Encoding::Text => Ok(data.as_bytes().to_vec()),
        Encoding::Base64 => base64_decode(data),
        Encoding::Hex => hex_decode(data),
    }
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    general_purpose::STANDARD.encode(bytes)
}

/// Decodes base64, standard or URL-safe; padding is optional, whitespace is ignored, and so
/// are bits left over after the last byte (what people paste is often cut or unpadded).
///
/// By hand rather than with the base64 crate's decoder: the same results and errors (a
/// test compares them), and in the dashboard's wasm a tenth of the code and no tables.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let (mut bits, mut held, mut symbols) = (0u32, 0u32, 0usize);
    for (i, c) in text.bytes().enumerate() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return Err(not_base64(c, i)),
        };
        symbols += 1;
        bits = (bits << 6) | u32::from(value);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    // One symbol alone after the last group of four makes no byte (the crate's words).
    if symbols % 4 == 1 {
        return Err(format!("not base64: Invalid input length: {symbols}"));
    }
    Ok(out)
}

/// The error for byte `c` at offset `i`: printable ASCII quoted, any other byte in hex.
/// (Not `{:?}`: Debug's escaping brings Unicode tables into the dashboard's wasm.)
fn not_base64(c: u8, i: usize) -> String {
    match c.is_ascii_graphic() {
        true => format!("not base64: `{}` at offset {i}", c as char),
        false => format!("not base64: byte {c:#04x} at offset {i}"),
    }
}

/// Lower-case hex digits, by value (for [`hex_encode`] and JSON's `\u00xx`).
pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

/// Decodes hex digits; spaces, newlines, `:` and `-` between bytes are ignored, and a
/// leading `0x` is allowed.
pub fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b':' | b'-'))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "hex needs an even number of digits, got {}",
            digits.len()
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).map_err(|_| "not hex".to_owned())?;
            // from_str_radix alone would take a sign: `+f` as 15.
            if !pair.iter().all(u8::is_ascii_hexdigit) {
                return Err(format!("not a hex byte: `{s}`"));
            }
            u8::from_str_radix(s, 16).map_err(|_| format!("not a hex byte: `{s}`"))
        })
        .collect()
}

/// Lower-case hex, no separators.
pub fn hex_encode(bytes: &[u8]) -> String {
    // Not `format!` per byte: the recorder writes a binary payload's hex for every event it
    // keeps, a flood's worth of them a second.
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for n in 0..40 {
            let enc = base64_encode(&data[..n]);
            assert_eq!(enc.len() % 4, 0);
            assert_eq!(base64_decode(&enc).unwrap(), &data[..n]);
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert!(
            base64_decode("a*b")
                .unwrap_err()
                .contains("`*` at offset 1")
        );
        assert_eq!(
            base64_decode("ab\u{e9}").unwrap_err(),
            "not base64: byte 0xc3 at offset 2"
        );
        // Unpadded, wrapped, URL-safe, and with stray bits after the last byte.
        assert_eq!(base64_decode("aGVs\nbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("-_8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("QR").unwrap(), b"A");
        assert!(
            base64_decode("QUJDR")
                .unwrap_err()
                .starts_with("not base64: ")
        );
    }

    #[test]
    fn base64_decodes_as_the_crates_lenient_engine_does() {
        use base64::alphabet;
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        // What this decoder replaced: clean the text, then the crate's lenient engine.
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new()
                .with_decode_padding_mode(DecodePaddingMode::Indifferent)
                .with_decode_allow_trailing_bits(true),
        );
        let before = |text: &str| -> Result<Vec<u8>, String> {
            let mut clean = Vec::new();
            for (i, c) in text.bytes().enumerate() {
                match c {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => clean.push(c),
                    b'-' => clean.push(b'+'),
                    b'_' => clean.push(b'/'),
                    b'=' | b' ' | b'\n' | b'\r' | b'\t' => {}
                    _ => return Err(not_base64(c, i)),
                }
            }
            LENIENT
                .decode(&clean)
                .map_err(|e| format!("not base64: {e}"))
        };
        let symbols = b"AZaz09+/-_= \n*QRw";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut outcomes = [0; 3];
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 23) as usize;
            let text: String = (0..len)
                .map(|k| symbols[((seed >> (k * 2 % 60)) as usize + k) % symbols.len()] as char)
                .collect();
            let got = base64_decode(&text);
            assert_eq!(got, before(&text), "{text:?}");
            outcomes[match got {
                Ok(_) => 0,
                Err(e) if e.contains("length") => 1,
                Err(_) => 2,
            }] += 1;
        }
        // Each way out was taken often.
        assert!(outcomes.iter().all(|n| *n > 1000), "{outcomes:?}");
    }

    #[test]
    fn hex_accepts_separators_and_rejects_odd_input() {
        assert_eq!(
            hex_decode("0x de:ad be-ef").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
        // A sign is no hex digit (`u8::from_str_radix` takes `+f` as 15).
        assert!(hex_decode("+f").is_err(), "{:?}", hex_decode("+f"));
        assert_eq!(hex_encode(&[0, 255]), "00ff");
        let all: Vec<u8> = (0..=255).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex_encode(&all), want);
    }

    #[test]
    fn capture_keeps_text_as_text_and_binary_as_base64() {
        let p = Payload::capture(b"hello", 64);
        assert_eq!(
            (p.enc, p.data.as_str(), p.cut),
            (Encoding::Text, "hello", 0)
        );
        let p = Payload::capture(&[0xff, 0x00, 0x41], 64);
        assert_eq!(p.enc, Encoding::Base64);
        assert_eq!(p.bytes(), vec![0xff, 0x00, 0x41]);
    }

    #[test]
    fn capture_cuts_at_snaplen_without_splitting_a_character() {
        let p = Payload::capture("héllo".as_bytes(), 2); // 'é' is 2 bytes: 1..3
        assert_eq!((p.enc, p.data.as_str(), p.cut), (Encoding::Text, "h", 5));
        let p = Payload::capture(&[1, 2, 3, 0xff], 2);
        assert_eq!(p.cut, 2);
        assert_eq!(p.bytes(), vec![1, 2]);
    }

    #[test]
    fn payload_round_trips_through_json() {
        for p in [
            Payload::capture(b"<script>", 10),
            Payload::capture(&[0xc3], 10),
        ] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Payload>(&json).unwrap(), p);
        }
    }
}
