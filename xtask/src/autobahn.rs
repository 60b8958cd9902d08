//! `cargo xtask autobahn` (and a step of `cargo xtask test`): Autobahn|Testsuite's 517
//! cases (1.* to 13.*, permessage-deflate included) against the lab's WebSocket service,
//! run by PyPI's `kosoku` (a Python 3 runner of Autobahn's own case files).
//!
//! 1. kosoku [`KOSOKU`] in a venv under `.tools/autobahn-venv` (made when missing; on a
//!    bare Debian, `python3 -m venv` needs the `python3-venv` package, which `.ci/run`
//!    installs);
//! 2. the server (`cargo build -p wirelab`, the debug build `cargo test` made) on
//!    ephemeral ports, the WebSocket service on one it prints;
//! 3. `kosoku -p 2 -o target/autobahn ADDR`: the report (`index.html`, `index.json`, one
//!    JSON and HTML file per case) stays in `target/autobahn/` (CI's artifact);
//! 4. the verdicts are read back from `index.json` and held to the bar: every case ran,
//!    none FAILED (or ERROR), no close WRONG CODE, UNCLEAN or FAILED, and nothing
//!    UNIMPLEMENTED in 12.* and 13.* (permessage-deflate). NON-STRICT and INFORMATIONAL
//!    pass; `docs/conformance.md` explains each one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::sh::{self, Result, fail, probe};

/// The runner, pinned.
const KOSOKU: &str = "kosoku==0.1.0";
/// Autobahn's cases, 1.1.1 to 13.7.18.
const CASES: usize = 517;

/// Runs the suite and prints its summary line.
pub(crate) fn run() -> Result {
    let mut summary = Vec::new();
    let outcome = step(&mut summary);
    println!("\n==> summary");
    for line in &summary {
        println!("  {line}");
    }
    outcome
}

/// Runs the suite as a step of `cargo xtask test`: adds its one-line summary (the count
/// of each verdict) to `summary`.
pub(crate) fn step(summary: &mut Vec<String>) -> Result {
    let started = Instant::now();
    let result = suite();
    let took = sh::human(started.elapsed());
    match &result {
        Ok(verdicts) => summary.push(format!("autobahn      ok in {took}: {verdicts}")),
        Err(err) => summary.push(format!("autobahn      FAILED in {took}: {err}")),
    }
    result.map(|_| ())
}

fn suite() -> Result<Verdicts> {
    println!("\n==> autobahn (kosoku against the WebSocket service)");
    let kosoku = kosoku()?;
    sh::run(
        sh::cargo().args(["build", "-p", "wirelab"]),
        "The server does not build; see the compiler's error above.",
    )?;
    let report = sh::target_dir().join("autobahn");
    if report.exists() {
        std::fs::remove_dir_all(&report)
            .or_else(|e| fail(format!("cannot empty {}: {e}", report.display())))?;
    }
    let (server, addr) = Server::start(&sh::target_dir().join("debug/wirelab"))?;
    let mut cmd = sh::cmd(&kosoku);
    cmd.arg("-p").arg("2").arg("-o").arg(&report).arg(&addr);
    // kosoku exits 1 when a case does not pass; the verdicts below say which and why.
    let line = sh::render(&cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .or_else(|e| fail(format!("could not start `{line}`: {e}")))?;
    drop(server);
    let index = report.join("index.json");
    let text = std::fs::read_to_string(&index).or_else(|e| {
        fail(format!(
            "`{line}` ({status}) wrote no {}: {e}",
            index.display()
        ))
    })?;
    let verdicts = Verdicts::parse(&text)?;
    verdicts.print_notable();
    println!("report: {}", report.join("index.html").display());
    verdicts.check()?;
    Ok(verdicts)
}

/// kosoku's path, installed first when the venv lacks it.
fn kosoku() -> Result<PathBuf> {
    let venv = sh::repo_root().join(".tools/autobahn-venv");
    let bin = venv.join("bin");
    let version = |bin: &Path| {
        probe(sh::cmd(bin.join("python")).args([
            "-c",
            "import importlib.metadata as m; print(m.version('kosoku'))",
        ]))
    };
    let wanted = KOSOKU.trim_start_matches("kosoku==");
    if version(&bin).as_deref() == Some(wanted) {
        return Ok(bin.join("kosoku"));
    }
    if !bin.join("pip").is_file() {
        sh::run(
            sh::cmd("python3").arg("-m").arg("venv").arg(&venv),
            "Python 3's venv is missing: apt-get install python3-venv",
        )?;
    }
    sh::run(
        sh::cmd(bin.join("pip")).args(["install", "--quiet", KOSOKU]),
        "pip could not install kosoku from PyPI",
    )?;
    match version(&bin) {
        Some(v) if v == wanted => Ok(bin.join("kosoku")),
        other => fail(format!(
            "kosoku {wanted} was installed but reports {other:?}"
        )),
    }
}

/// The lab, running until dropped.
struct Server(Child);

impl Server {
    /// Starts `binary` on ephemeral ports and returns it with its WebSocket service's
    /// address (read from the lines it prints at start).
    fn start(binary: &Path) -> Result<(Server, String)> {
        let mut cmd = sh::cmd(binary);
        // Frame events capture 4 KiB (not 64): the run is about the protocol, and a debug
        // build spent half its time encoding captures of the 12.* cases' messages.
        cmd.args([
            "--ephemeral",
            "--retain-events",
            "200000",
            "--snaplen",
            "4096",
        ]);
        for flag in ["--dashboard", "--http", "--tcp", "--udp", "--ws-service"] {
            cmd.args([flag, "127.0.0.1:0"]);
        }
        // Not toxiproxy's port: a real toxiproxy (or another lab) may hold it.
        cmd.args([
            "--toxiproxy-api",
            "off",
            "--https",
            "off",
            "--tls-tcp",
            "off",
        ]);
        cmd.env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        println!("$ {}", sh::render(&cmd));
        let mut child = cmd
            .spawn()
            .or_else(|e| fail(format!("could not start {}: {e}", binary.display())))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let server = Server(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let addr = line
                    .trim()
                    .strip_prefix("websocket  websocat ws://")
                    .map(|a| a.trim_end_matches('/').to_owned());
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Ok((server, addr)),
            Err(_) => fail("the lab did not print its WebSocket service's address within 60 s"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Each case's verdicts: (behavior, behaviorClose), by case id.
struct Verdicts(BTreeMap<String, (String, String)>);

impl Verdicts {
    /// Reads kosoku's `index.json` (Autobahn's: `{agent: {case: {"behavior": ..,
    /// "behaviorClose": .., ..}}}`, one key a line as Python's `json.dump` indents it).
    fn parse(text: &str) -> Result<Verdicts> {
        let mut cases = BTreeMap::new();
        let mut case: Option<String> = None;
        let value = |line: &str| {
            line.split_once(':')
                .map(|(_, v)| v.trim().trim_end_matches(',').trim_matches('"').to_owned())
        };
        for line in text.lines().map(str::trim) {
            if let Some(key) = line.strip_suffix(": {").map(|k| k.trim_matches('"'))
                && key
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            {
                case = Some(key.to_owned());
                cases.insert(key.to_owned(), (String::new(), String::new()));
            } else if let Some(id) = &case {
                let entry = cases.get_mut(id).expect("inserted above");
                if line.starts_with("\"behavior\":") {
                    entry.0 = value(line).unwrap_or_default();
                } else if line.starts_with("\"behaviorClose\":") {
                    entry.1 = value(line).unwrap_or_default();
                }
            }
        }
        if let Some((id, _)) = cases
            .iter()
            .find(|(_, (b, c))| b.is_empty() || c.is_empty())
        {
            return fail(format!(
                "index.json: case {id} has no verdict (format changed?)"
            ));
        }
        Ok(Verdicts(cases))
    }

    /// Fails on anything under the bar (see the module docs).
    fn check(&self) -> Result {
        let mut bad = Vec::new();
        if self.0.len() != CASES {
            bad.push(format!("{} cases ran, not {CASES}", self.0.len()));
        }
        for (id, (behavior, close)) in &self.0 {
            let deflate = id.starts_with("12.") || id.starts_with("13.");
            let behavior_bad = matches!(behavior.as_str(), "FAILED" | "ERROR")
                || (deflate && behavior == "UNIMPLEMENTED");
            let close_bad = matches!(
                close.as_str(),
                "WRONG CODE" | "UNCLEAN" | "FAILED" | "FAILED BY CLIENT"
            );
            if behavior_bad || close_bad {
                bad.push(format!("{id}: {behavior} / close {close}"));
            }
        }
        if bad.is_empty() {
            return Ok(());
        }
        fail(format!(
            "under the bar: {} (see target/autobahn/index.html)",
            bad.join(", ")
        ))
    }

    /// Prints every case that is not OK both ways.
    fn print_notable(&self) {
        for (id, (behavior, close)) in &self.0 {
            if behavior != "OK" || close != "OK" {
                println!("  {id}: {behavior} / close {close}");
            }
        }
    }
}

impl std::fmt::Display for Verdicts {
    /// `517 cases: 511 OK, 3 NON-STRICT, 3 INFORMATIONAL; closes: 514 OK, 3 INFORMATIONAL`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = |pick: fn(&(String, String)) -> &String| {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for v in self.0.values() {
                *counts.entry(pick(v).as_str()).or_default() += 1;
            }
            let mut parts: Vec<_> = counts.into_iter().collect();
            parts.sort_by_key(|(name, n)| (*name != "OK", std::cmp::Reverse(*n)));
            let parts: Vec<String> = parts
                .iter()
                .map(|(name, n)| format!("{n} {name}"))
                .collect();
            parts.join(", ")
        };
        write!(
            f,
            "{} cases: {}; closes: {}",
            self.0.len(),
            count(|v| &v.0),
            count(|v| &v.1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{
   "wirelab/0.1.0": {
      "1.1.1": {
         "behavior": "OK",
         "behaviorClose": "OK",
         "duration": 2,
         "remoteCloseCode": 1000,
         "reportfile": "wirelab_010_case_1_1_1.json"
      },
      "6.4.3": {
         "behavior": "NON-STRICT",
         "behaviorClose": "OK",
         "duration": 2003,
         "remoteCloseCode": 1007,
         "reportfile": "wirelab_010_case_6_4_3.json"
      },
      "13.1.1": {
         "behavior": "UNIMPLEMENTED",
         "behaviorClose": "OK",
         "duration": 1,
         "remoteCloseCode": null,
         "reportfile": "wirelab_010_case_13_1_1.json"
      },
      "7.1.6": {
         "behavior": "INFORMATIONAL",
         "behaviorClose": "UNCLEAN",
         "duration": 1,
         "remoteCloseCode": 1000,
         "reportfile": "wirelab_010_case_7_1_6.json"
      }
   }
}"#;

    #[test]
    fn verdicts_are_read_counted_and_held_to_the_bar() {
        let v = Verdicts::parse(INDEX).unwrap();
        assert_eq!(v.0.len(), 4);
        assert_eq!(
            v.to_string(),
            "4 cases: 1 OK, 1 INFORMATIONAL, 1 NON-STRICT, 1 UNIMPLEMENTED; \
             closes: 3 OK, 1 UNCLEAN"
        );
        let err = v.check().unwrap_err().to_string();
        assert!(err.contains("4 cases ran, not 517"), "{err}");
        assert!(err.contains("13.1.1: UNIMPLEMENTED"), "{err}");
        assert!(
            err.contains("7.1.6: INFORMATIONAL / close UNCLEAN"),
            "{err}"
        );
        assert!(!err.contains("6.4.3"), "NON-STRICT passes: {err}");
        let broken = INDEX.replace("\"behaviorClose\": \"OK\",\n         \"duration\": 2,", "");
        assert!(Verdicts::parse(&broken).is_err());
    }
}
