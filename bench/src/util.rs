//! Small helpers shared by the tools: clocks, /proc, result lines.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

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
    fn result_lines_parse_back() {
        let line = result_line(&[("sent", "10".into()), ("mbps", "1.5".into())]);
        assert_eq!(line, "RESULT sent=10 mbps=1.5");
        let pairs = parse_result(&line).unwrap();
        assert_eq!(
            (pairs["sent"].as_str(), pairs["mbps"].as_str()),
            ("10", "1.5")
        );
        assert!(parse_result("READY connected=3").is_none());
    }
}
