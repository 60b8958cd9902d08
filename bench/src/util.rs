//! Small helpers shared by the tools: flags, clocks, /proc.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// `--key value` pairs (and bare `--switch`es, stored as "true").
pub(crate) struct Flags(HashMap<String, String>);

impl Flags {
    pub(crate) fn parse(args: impl Iterator<Item = String>) -> Result<Flags, String> {
        let mut map = HashMap::new();
        let mut args = args.peekable();
        while let Some(a) = args.next() {
            let key = a
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --flag, got {a}"))?;
            let value = match args.peek() {
                Some(v) if !v.starts_with("--") => args.next().unwrap_or_default(),
                _ => "true".to_owned(),
            };
            map.insert(key.to_owned(), value);
        }
        Ok(Flags(map))
    }

    pub(crate) fn str(&self, key: &str) -> Result<&str, String> {
        self.0
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("--{key} is required"))
    }

    pub(crate) fn opt(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub(crate) fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{key}: not a number: {v}")),
        }
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A flag given that is not among `known`, if any.
    pub(crate) fn unknown(&self, known: &[&str]) -> Option<&str> {
        self.0
            .keys()
            .map(String::as_str)
            .find(|k| !known.contains(k))
    }
}

/// Microseconds since the Unix epoch (sender and receivers share the machine's clock).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Resident set size of `pid` in KiB (`VmRSS`), or its peak (`VmHWM`).
pub(crate) fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time (user + system) used by `pid` so far, in seconds.
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// One `RESULT k=v ...` line.
pub(crate) fn result_line(pairs: &[(&str, String)]) -> String {
    let mut s = String::from("RESULT");
    for (k, v) in pairs {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// Parses a `RESULT k=v ...` line.
pub(crate) fn parse_result(line: &str) -> Option<HashMap<String, String>> {
    let rest = line.strip_prefix("RESULT")?;
    Some(
        rest.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_unknown_ones_are_named() {
        let args = ["--runs", "2", "--quick", "--only", "http,idle"].map(String::from);
        let f = Flags::parse(args.into_iter()).unwrap();
        assert_eq!(f.num("runs", 3).unwrap(), 2);
        assert!(f.has("quick"));
        assert_eq!(f.opt("only"), Some("http,idle"));
        assert_eq!(f.unknown(&["runs", "quick", "only"]), None);
        assert_eq!(f.unknown(&["runs", "quick"]), Some("only"));
        assert!(Flags::parse(["runs".to_owned()].into_iter()).is_err());
    }
}
