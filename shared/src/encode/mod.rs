//! Wire types written as JSON by hand, byte for byte what `serde_json` writes for them
//! (the tests compare them): [`event`] for every event the server pushes or records (and
//! the dashboard's JSON view and JSONL export), [`command`] for the dashboard's commands.
//!
//! Why by hand, twice over:
//! - In the server, serde's per-field machinery (keys escaped one by one, a state machine
//!   per struct) was near half the cost of an event. Under callgrind (20,000 Hello World
//!   exchanges' events, `bench-fast` profile) one takes 4,630 instructions here and 8,510
//!   through `serde_json`; the server's earlier writer, for HTTP exchanges only, took 4,080
//!   (its keys and punctuation were one literal per member, which the wasm can't afford).
//!   An ignored test in [`event`] times both (`cargo test -p wirelab-shared --profile
//!   bench-fast --lib encode -- --ignored --nocapture`).
//! - In the dashboard's wasm, serde's `Serialize` for `EventKind` and `Command` (with
//!   `serde_json`'s serializer under them) was some 20 KB of code.
//!
//! Each type is destructured without `..`, so a new field does not compile until it is
//! written here (and read in [`crate::decode`]).

/// A member's key, as [`Obj::key`] takes it. Natively `,"name":` whole, one copy of a
/// length known when compiling (the comma skipped for an object's first member): an HTTP
/// exchange's event takes 15 % fewer instructions than with the punctuation written around
/// the name. In the dashboard's wasm just the name: less code for every member.
#[cfg(not(target_arch = "wasm32"))]
macro_rules! k {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}
#[cfg(target_arch = "wasm32")]
macro_rules! k {
    ($name:literal) => {
        $name
    };
}

pub mod command;
pub mod event;

pub use command::command_json;
pub use event::{event_json, write_event};

use crate::payload::{HEX, Payload};
use crate::pool::PoolSpec;

/// A unit enum's snake_case name, as serde writes it (the impls are beside their reading,
/// in [`crate::decode`]'s `names!`).
pub trait Word: Copy {
    fn word(self) -> &'static str;
}

/// An object being written: each member after the first is preceded by a comma. The
/// keys are the types' own field names, which need no escaping.
pub(crate) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// An internally tagged enum's object: `type` first.
    pub(crate) fn tagged(out: &'a mut Vec<u8>, tag: &str) -> Self {
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(tag.as_bytes());
        out.push(b'"');
        Obj { out, first: false }
    }

    /// Writes `key` (made by `k!`) and returns the buffer for the value. In the wasm not
    /// inlined, as the other writers: a call per member keeps the dashboard's copy small.
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    pub(crate) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        let first = std::mem::take(&mut self.first);
        if cfg!(target_arch = "wasm32") {
            if !first {
                self.out.push(b',');
            }
            self.out.push(b'"');
            self.out.extend_from_slice(key.as_bytes());
            self.out.extend_from_slice(b"\":");
        } else {
            self.out
                .extend_from_slice(&key.as_bytes()[usize::from(first)..]);
        }
        self.out
    }

    #[cfg_attr(target_arch = "wasm32", inline(never))]
    pub(crate) fn num(&mut self, key: &str, n: u64) -> &mut Self {
        num(self.key(key), n);
        self
    }

    #[cfg_attr(target_arch = "wasm32", inline(never))]
    pub(crate) fn str(&mut self, key: &str, s: &str) -> &mut Self {
        string(self.key(key), s);
        self
    }

    pub(crate) fn bool(&mut self, key: &str, b: bool) -> &mut Self {
        self.key(key)
            .extend_from_slice(if b { b"true" } else { b"false" });
        self
    }

    pub(crate) fn word(&mut self, key: &str, w: impl Word) -> &mut Self {
        let out = self.key(key);
        out.push(b'"');
        out.extend_from_slice(w.word().as_bytes());
        out.push(b'"');
        self
    }

    /// A number left out when it is `None` (`skip_serializing_if = "Option::is_none"`).
    pub(crate) fn opt_num(&mut self, key: &str, n: Option<impl Into<u64>>) -> &mut Self {
        if let Some(n) = n {
            self.num(key, n.into());
        }
        self
    }

    /// An option without `skip_serializing_if`: `null` when absent.
    pub(crate) fn null_num(&mut self, key: &str, n: Option<u64>) -> &mut Self {
        match n {
            Some(n) => num(self.key(key), n),
            None => self.key(key).extend_from_slice(b"null"),
        }
        self
    }

    /// An option without `skip_serializing_if`: `null` when absent.
    pub(crate) fn null_str(&mut self, key: &str, s: &Option<String>) -> &mut Self {
        match s {
            Some(s) => string(self.key(key), s),
            None => self.key(key).extend_from_slice(b"null"),
        }
        self
    }

    /// A number left out when it is 0 (`skip_serializing_if = "is_zero"`).
    pub(crate) fn nonzero(&mut self, key: &str, n: u64) -> &mut Self {
        if n != 0 {
            self.num(key, n);
        }
        self
    }

    pub(crate) fn opt_str(&mut self, key: &str, s: &Option<String>) -> &mut Self {
        if let Some(s) = s {
            self.str(key, s);
        }
        self
    }

    pub(crate) fn payload(&mut self, key: &str, p: &Payload) -> &mut Self {
        let Payload { enc, data, cut } = p;
        Obj::new(self.key(key))
            .word(k!("enc"), *enc)
            .str(k!("data"), data)
            .nonzero(k!("cut"), *cut)
            .end();
        self
    }

    /// `[["name","value"],...]`
    pub(crate) fn pairs(&mut self, key: &str, pairs: &[(String, String)]) -> &mut Self {
        self.list(key, pairs, |out, (name, value)| {
            out.push(b'[');
            string(out, name);
            out.push(b',');
            string(out, value);
            out.push(b']');
        })
    }

    /// `["a","b",...]`
    pub(crate) fn strs(&mut self, key: &str, items: &[String]) -> &mut Self {
        self.list(key, items, |out, s| string(out, s))
    }

    /// `[item,...]`, each item written by `item`.
    pub(crate) fn list<T>(
        &mut self,
        key: &str,
        items: &[T],
        mut item: impl FnMut(&mut Vec<u8>, &T),
    ) -> &mut Self {
        let out = self.key(key);
        out.push(b'[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item(out, x);
        }
        out.push(b']');
        self
    }

    pub(crate) fn end(&mut self) {
        self.out.push(b'}');
    }
}

/// A connection-pool run's spec (in `pool_started` events and `pool_start` commands).
pub(crate) fn pool_spec(out: &mut Vec<u8>, spec: &PoolSpec) {
    let PoolSpec {
        url,
        requests,
        concurrency,
        max_conns,
        keep_alive,
        no_pool,
    } = spec;
    Obj::new(out)
        .str(k!("url"), url)
        .num(k!("requests"), u64::from(*requests))
        .num(k!("concurrency"), u64::from(*concurrency))
        .num(k!("max_conns"), u64::from(*max_conns))
        .bool(k!("keep_alive"), *keep_alive)
        .bool(k!("no_pool"), *no_pool)
        .end();
}

/// A JSON string, escaped as `serde_json` escapes it: `"` and `\`, the short forms of
/// backspace, form feed, newline, carriage return and tab, `\u00xx` (lower-case hex) for
/// other control characters, and everything else (DEL and non-ASCII included) as is.
pub fn string(out: &mut Vec<u8>, s: &str) {
    // What each byte becomes after a backslash; 0: itself.
    const ESCAPE: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut b = 0;
        while b < 0x20 {
            t[b] = b'u';
            b += 1;
        }
        t[0x08] = b'b';
        t[0x0c] = b'f';
        t[b'\n' as usize] = b'n';
        t[b'\r' as usize] = b'r';
        t[b'\t' as usize] = b't';
        t[b'"' as usize] = b'"';
        t[b'\\' as usize] = b'\\';
        t
    };
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = ESCAPE[usize::from(b)];
        if short == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        match short {
            b'u' => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
            _ => out.extend_from_slice(&[b'\\', short]),
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A number in decimal, two digits at a time.
pub fn num(out: &mut Vec<u8>, mut n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839404142434445464748495051525354555657585960\
        6162636465666768697071727374757677787980818283848586878889909192939495969798\
        99";
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    while n >= 100 {
        let pair = usize::from((n % 100) as u8) * 2;
        n /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + n as u8;
    }
    out.extend_from_slice(&buf[at..]);
}
