//! `cargo xtask llhttp` (and a step of `cargo xtask test`): llhttp's request corpus, the
//! cases of the parser inside Node.js (`../shared/conformance/llhttp/`), replayed against a
//! fresh lab by the team kit's runner, `../shared/conformance/llhttp_corpus.py`.
//!
//! The runner judges each case against llhttp's strict verdict: FAIL when the lab answers
//! 2xx to what strict llhttp rejects (the lenient side, where request smuggling lives),
//! WARN when the lab refuses what llhttp accepts (each explained in docs/conformance.md),
//! INFO for a method outside llhttp's fixed list that the lab serves. It exits 1 on any
//! FAIL and ends with a line `llhttp-corpus port=… pass=… fail=… warn=… info=… skip=…`.
//! It runs with `--inject-host`: the lab holds to RFC 9112's Host rule, so the runner adds
//! `Host: x` to the cases' HTTP/1.1 requests that lack one (it can only do so for the
//! first request of a case).
//!
//! Without `../shared/conformance` (the kit beside the clone; `WIRELAB_CONFORMANCE` names
//! another folder) or python3, the step is skipped with a message, except under `CI=true`,
//! where it fails.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::sh::{self, Result, fail};

/// Where the kit's conformance folder sits, relative to the repo root (in CI, the kit is
/// beside the clone); `$WIRELAB_CONFORMANCE` names another.
const CONFORMANCE: &str = "../shared/conformance";

/// The runner's path as given to python3.
fn runner() -> PathBuf {
    let dir =
        std::env::var_os("WIRELAB_CONFORMANCE").map_or_else(|| CONFORMANCE.into(), PathBuf::from);
    dir.join("llhttp_corpus.py")
}

/// Runs the corpus as a step of `cargo xtask test`: adds its line to `summary` and says
/// whether it passed.
pub(crate) fn step(summary: &mut Vec<String>) -> Result {
    let started = Instant::now();
    let result = sh::timed("llhttp's request corpus", "about 10 s", run);
    let line = match &result {
        Ok((Some(counts), _)) => format!(
            "llhttp        ok in {}: {counts} (--inject-host; WARNs: docs/conformance.md)",
            sh::human(started.elapsed())
        ),
        Ok((None, _)) => format!("llhttp        SKIPPED: {}", missing().unwrap_or_default()),
        Err(err) => format!("llhttp        FAILED: {err}"),
    };
    summary.push(line);
    result.map(|_| ())
}

/// What is missing to run the corpus here, if anything.
fn missing() -> Option<String> {
    let runner = sh::repo_root().join(runner());
    if !runner.is_file() {
        return Some(format!(
            "{} not found (the team kit's, beside the clone; or set WIRELAB_CONFORMANCE)",
            runner.display()
        ));
    }
    if sh::which("python3").is_none() {
        return Some("python3 not found (apt-get install python3)".to_owned());
    }
    None
}

/// Builds the server, starts it on free ports, runs the corpus against its HTTP service.
/// The runner's counts (`pass=… fail=0 …`); None when skipped.
pub(crate) fn run() -> Result<Option<String>> {
    if let Some(what) = missing() {
        if sh::under_ci() {
            return fail(format!(
                "CI=true and {what}: under CI llhttp's request corpus must run."
            ));
        }
        println!("SKIPPING llhttp's request corpus: {what}");
        return Ok(None);
    }
    sh::run(
        sh::cargo().args(["build", "--quiet", "-p", "wirelab"]),
        "The server does not build; see the compiler's error above.",
    )?;
    let lab = Lab::start(&sh::target_dir().join("debug/wirelab"))?;
    let mut runner = sh::cmd("python3");
    runner.arg(self::runner()).args([
        "--port",
        &lab.http.port().to_string(),
        "--inject-host",
        "--show",
        "warn",
    ]);
    let line = sh::render(&runner);
    println!("$ {line}");
    let out = runner
        .stderr(Stdio::inherit())
        .output()
        .or_else(|err| fail(format!("could not start `{line}`: {err}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    let counts = counts(&stdout);
    match (out.status.success(), counts) {
        (true, Some(counts)) if counts.split(' ').any(|w| w == "fail=0") => Ok(Some(counts)),
        (_, Some(counts)) => fail(format!(
            "{counts}: the lab answered 2xx to requests that strict llhttp rejects (the FAIL \
             lines above; the lab's log: {})",
            lab.log.display()
        )),
        (_, None) => fail(format!(
            "`{line}` ended ({}) without its summary line; see its output above",
            out.status
        )),
    }
}

/// `pass=92 fail=0 warn=15 info=2 skip=6` from the runner's summary line.
fn counts(stdout: &str) -> Option<String> {
    let line = stdout.lines().find(|l| l.starts_with("llhttp-corpus "))?;
    let counts: Vec<&str> = line
        .split_whitespace()
        .skip(1)
        .filter(|w| !w.starts_with("port="))
        .collect();
    counts
        .iter()
        .any(|w| w.starts_with("fail="))
        .then(|| counts.join(" "))
}

/// A lab on free ports, in memory; stopped when dropped.
struct Lab {
    child: Child,
    http: SocketAddr,
    /// Where its output goes.
    log: PathBuf,
}

impl Lab {
    /// Starts `server` with every service on port 0 and reads its HTTP address from the
    /// lines it prints (within 30 s); the rest of its output goes to a log file.
    fn start(server: &Path) -> Result<Lab> {
        let any = "127.0.0.1:0";
        let mut cmd = sh::cmd(server);
        cmd.args([
            "--ephemeral",
            "--http",
            any,
            "--tcp",
            any,
            "--udp",
            any,
            "--ws-service",
            any,
            "--https",
            "off",
            "--tls-tcp",
            "off",
            "--toxiproxy-api",
            "off",
        ])
        .args(["--dashboard", any])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        println!("$ {}", sh::render(&cmd));
        let mut child = cmd
            .spawn()
            .or_else(|err| fail(format!("could not start {}: {err}", server.display())))?;
        let log = sh::target_dir().join("llhttp-lab.log");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (found, rx) = std::sync::mpsc::channel();
        let log_path = log.clone();
        // Reads every line the lab prints: the HTTP address goes back, all goes to the log
        // (so the lab never blocks on a full pipe).
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&log_path).ok();
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if let Some(file) = file.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
                if let Some(addr) = http_addr(&line) {
                    let _ = found.send(addr);
                }
            }
        });
        let mut lab = Lab {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => lab.http = addr,
            Err(_) => {
                return fail(format!(
                    "the lab did not say its HTTP address within 30 s; its output: {}",
                    lab.log.display()
                ));
            }
        }
        Ok(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the lab's line `  http       curl -v http://127.0.0.1:1337/`.
fn http_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.trim_start().strip_prefix("http ")?;
    let url = rest.trim().strip_prefix("curl -v http://")?;
    url.trim_end_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labs_http_line_and_the_runners_counts_are_read() {
        assert_eq!(
            http_addr("  http       curl -v http://127.0.0.1:40123/"),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        assert_eq!(http_addr("  tcp        nc 127.0.0.1 40124"), None);
        let out = "WARN x | y\nllhttp-corpus port=5 pass=92 fail=0 warn=15 info=2 skip=6\n107 passed, 0 failed\n";
        assert_eq!(
            counts(out).as_deref(),
            Some("pass=92 fail=0 warn=15 info=2 skip=6")
        );
        assert_eq!(counts("Traceback (most recent call last):\n"), None);
    }
}
