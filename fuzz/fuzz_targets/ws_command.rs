//! A text message on `/ws`, read as the socket's pump reads it: text starting with `{` is
//! a command (`serde_json` into `wirelab_shared::Command`); one that does not parse gets
//! an error naming its `id` when one can be found. Then the parts a command carries that
//! the server decodes itself before acting: a payload's `data` in its `enc`, and a pool
//! run's URL (`wirelab::pool::target::Target::parse`).
//!
//! Checked beyond "no panic":
//! - a command that parses, written out again, parses to itself;
//! - hex and base64 payloads decode only from what their encoding allows, and encode
//!   back to what they decoded from;
//! - a pool URL is accepted, without `--allow-outbound`, only for a loopback address,
//!   and its host and path (written into a request head) hold no blank or control byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelab::pool::target::{Dest, Target};
use wirelab_shared::payload::{self, Encoding};
use wirelab_shared::{Command, CommandKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // a text frame is UTF-8: the frame reader sees to that
    };
    if !text.trim_start().starts_with('{') {
        return; // plain text, shown and not parsed
    }
    let cmd: Command = match serde_json::from_str(text) {
        Ok(cmd) => cmd,
        Err(e) => {
            let _id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id")?.as_u64());
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let json = serde_json::to_string(&cmd).expect("a command serializes");
    let back: Command = serde_json::from_str(&json).expect("what was written reads back");
    assert_eq!(back, cmd, "{json}");

    match &cmd.kind {
        CommandKind::TcpSend { data, enc, .. } | CommandKind::UdpSend { data, enc, .. } => {
            check_payload(data, *enc);
        }
        CommandKind::PoolStart { spec } => check_url(&spec.url),
        _ => {}
    }
});

fn check_payload(data: &str, enc: Encoding) {
    let Ok(bytes) = payload::decode(data, enc) else {
        return;
    };
    match enc {
        Encoding::Text => assert_eq!(bytes, data.as_bytes()),
        Encoding::Hex => {
            let trimmed = data.trim();
            let digits: Vec<u8> = trimmed
                .strip_prefix("0x")
                .unwrap_or(trimmed)
                .bytes()
                .filter(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b':' | b'-'))
                .collect();
            assert!(
                digits.iter().all(u8::is_ascii_hexdigit),
                "hex {data:?} decoded to {bytes:?}"
            );
            assert_eq!(bytes.len() * 2, digits.len());
            assert_eq!(payload::hex_decode(&payload::hex_encode(&bytes)), Ok(bytes));
        }
        Encoding::Base64 => {
            let symbols = data
                .bytes()
                .filter(|c| c.is_ascii_alphanumeric() || b"+/-_".contains(c))
                .count();
            assert_eq!(bytes.len(), symbols * 6 / 8, "base64 {data:?}");
            assert_eq!(
                payload::base64_decode(&payload::base64_encode(&bytes)),
                Ok(bytes)
            );
        }
    }
}

fn check_url(url: &str) {
    let Ok(target) = Target::parse(url, false) else {
        return;
    };
    match target.dest {
        Dest::Addr(addr) => assert!(addr.ip().is_loopback(), "{url:?} reaches {addr}"),
        Dest::Lookup(..) => panic!("{url:?}: a name to look up, without --allow-outbound"),
    }
    for part in [&target.host, &target.path] {
        assert!(
            part.bytes().all(|b| b > b' ' && b != 0x7f),
            "{url:?} gives {part:?} for a request head"
        );
    }
    let again = Target::parse(&target.url, false).expect("its own URL parses");
    assert_eq!(again, target, "{url:?}");
}
