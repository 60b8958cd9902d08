//! A small JSON reader for what the server sends: the dashboard's wasm decodes its frames
//! with it instead of serde's derive (see [`crate::decode`] for the types).
//!
//! Why by hand: serde's derive and serde_json's generic reader, made once for each type in
//! a [`crate::ServerMsg`], were 92 KB of the dashboard's 533 KB of code, and serde_json's
//! numbers brought core's float parser with its tables (about 10 KB that gzip can't
//! shrink). Here one function reads any JSON text into a [`Value`] tree (strings borrowed
//! where they have no escapes, numbers kept as their text), and each type takes its fields
//! from it by name ([`crate::decode`]): a call per field, not code per field and type.
//!
//! It reads strict JSON (RFC 8259) as serde_json does for these types: unsigned integers
//! only (a fraction, an exponent, a sign or a value out of the field's range is an error),
//! strings with every escape, unknown keys skipped whatever their value, nesting limited to
//! 128 levels. Other clients read the same frames with serde: the tests in
//! [`crate::decode`] check that both read every frame alike.

use std::borrow::Cow;
use std::fmt;

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Reading a value of this type from a JSON [`Value`].
pub trait FromJson: Sized {
    fn from_json(value: Value<'_>) -> Result<Self, Error>;
}

/// Reads a whole document: one `T` and nothing after it but whitespace.
pub fn from_str<T: FromJson>(text: &str) -> Result<T, Error> {
    let mut r = Reader::new(text);
    let value = r.value()?;
    match r.peek() {
        None => T::from_json(value),
        Some(_) => Err(r.error("trailing characters")),
    }
}

/// A JSON value, as read.
#[derive(Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// A number's text, as it stands (valid JSON).
    Num(&'a str),
    Str(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    /// The members in their order (repeated keys kept).
    Object(Vec<(Cow<'a, str>, Value<'a>)>),
}

/// Nesting deeper than this is refused (serde_json's limit too).
const MAX_DEPTH: u32 = 128;

/// A position in a JSON text.
pub struct Reader<'a> {
    text: &'a str,
    at: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Reader {
            text,
            at: 0,
            depth: 0,
        }
    }

    /// An error at the current position.
    #[cold]
    fn error(&self, what: &str) -> Error {
        Error(format!("{what} at byte {}", self.at))
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The text from `start` to the current position. Both are at ASCII bytes (a quote, a
    /// backslash, a number's first byte, or after one), so `get` never fails; `get`
    /// rather than `[start..self.at]`, whose char-boundary panic was code at each call.
    fn slice(&self, start: usize) -> &'a str {
        self.text.get(start..self.at).unwrap_or_default()
    }

    /// The next byte that is not whitespace, left unread.
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes().get(self.at) {
            self.at += 1;
        }
        self.bytes().get(self.at).copied()
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), Error> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// Reads `word` if it comes next.
    fn word(&mut self, word: &str) -> bool {
        let found = self.peek().is_some() && self.bytes()[self.at..].starts_with(word.as_bytes());
        if found {
            self.at += word.len();
        }
        found
    }

    /// Reads `null` if it comes next.
    fn null(&mut self) -> bool {
        self.word("null")
    }

    fn bool(&mut self) -> Result<bool, Error> {
        if self.word("true") {
            Ok(true)
        } else if self.word("false") {
            Ok(false)
        } else {
            Err(self.error("expected true or false"))
        }
    }

    /// A string: borrowed from the text when it has no escapes.
    fn str(&mut self) -> Result<Cow<'a, str>, Error> {
        self.expect(b'"', "expected a string")?;
        let mut owned: Option<String> = None;
        let mut run = self.at;
        loop {
            match self.bytes().get(self.at) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    let tail = self.slice(run);
                    self.at += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(tail),
                        Some(mut s) => {
                            s.push_str(tail);
                            Cow::Owned(s)
                        }
                    });
                }
                Some(b'\\') => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(self.slice(run));
                    self.at += 1;
                    self.escape(s)?;
                    run = self.at;
                }
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => self.at += 1,
            }
        }
    }

    /// One escape, after its backslash.
    fn escape(&mut self, out: &mut String) -> Result<(), Error> {
        let c = match self.bytes().get(self.at) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.at += 1;
                let high = self.hex4()?;
                let code = match high {
                    0xD800..=0xDBFF if self.bytes()[self.at..].starts_with(b"\\u") => {
                        self.at += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.error("invalid surrogate pair"));
                        }
                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    }
                    _ => high,
                };
                out.push(char::from_u32(code).ok_or_else(|| self.error("lone surrogate"))?);
                return Ok(());
            }
            _ => return Err(self.error("invalid escape")),
        };
        self.at += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self.text.get(self.at..self.at + 4).unwrap_or("");
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("invalid \\u escape"));
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))
    }

    /// Opens an object or an array (the reader is at its bracket).
    fn enter(&mut self) -> Result<(), Error> {
        self.at += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        Ok(())
    }

    /// Reads past a number of any kind: `-? int frac? exp?` (its value is read later, by
    /// the type that wants it; not with `str::parse::<f64>`, whose tables would add 10 KB
    /// to the wasm).
    fn number(&mut self) -> Result<(), Error> {
        let bytes = self.bytes();
        let digits = |at: &mut usize| {
            let start = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > start
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        let int = at;
        let mut ok = digits(&mut at);
        if ok && bytes[int] == b'0' && at - int > 1 {
            self.at = int;
            return Err(self.error("invalid number (a leading zero)"));
        }
        if ok && bytes.get(at) == Some(&b'.') {
            at += 1;
            ok = digits(&mut at);
        }
        if ok && matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            ok = digits(&mut at);
        }
        self.at = at;
        if ok {
            Ok(())
        } else {
            Err(self.error("invalid number"))
        }
    }

    /// Reads one value, and everything in it.
    pub fn value(&mut self) -> Result<Value<'a>, Error> {
        match self.peek() {
            Some(b'{') => {
                self.enter()?;
                let mut members = Vec::new();
                if self.peek() != Some(b'}') {
                    loop {
                        let key = self.str()?;
                        self.expect(b':', "expected `:`")?;
                        members.push((key, self.value()?));
                        if !self.next(b'}', "expected `,` or `}`")? {
                            break;
                        }
                    }
                }
                self.at += 1;
                self.depth -= 1;
                Ok(Value::Object(members))
            }
            Some(b'[') => {
                self.enter()?;
                let mut items = Vec::new();
                if self.peek() != Some(b']') {
                    loop {
                        items.push(self.value()?);
                        if !self.next(b']', "expected `,` or `]`")? {
                            break;
                        }
                    }
                }
                self.at += 1;
                self.depth -= 1;
                Ok(Value::Array(items))
            }
            Some(b'"') => self.str().map(Value::Str),
            Some(b't' | b'f') => self.bool().map(Value::Bool),
            Some(b'n') if self.null() => Ok(Value::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                self.number()?;
                Ok(Value::Num(self.slice(start)))
            }
            _ => Err(self.error("expected a value")),
        }
    }

    /// After an element: true at a comma (read), false at `close` (left to read).
    fn next(&mut self, close: u8, what: &str) -> Result<bool, Error> {
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            Some(c) if c == close => Ok(false),
            _ => Err(self.error(what)),
        }
    }
}
