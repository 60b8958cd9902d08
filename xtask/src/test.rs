//! `cargo xtask test`: build `dist/`, check it against trunk's build where trunk is
//! installed, look for the browser, then run every test in the workspace, llhttp's request
//! corpus (`llhttp.rs`), Autobahn's cases (`autobahn.rs`) and the fuzz targets (30 s
//! each, `fuzz.rs`), and print a summary.
//!
//! The trunk check (see `trunk.rs`) is skipped, saying so, where trunk is not installed, CI
//! included: installing it takes about 12 minutes on 2 cores (`cargo xtask bootstrap --dev`).
//!
//! The headless-Chromium tests (see `server/tests/support/browser.rs`) run whenever Chromium
//! and chromedriver are installed. Without them the tests are skipped, saying so plainly,
//! except under `CI=true`, where a missing browser is a failure.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::dist::kib;
use crate::sh::{self, Result, fail, probe, timed};

const BROWSER_HINT: &str = "apt-get install chromium chromium-driver";

/// Runs dist, the browser check and `cargo test --workspace`; fails if any of them fails.
pub(crate) fn run() -> Result {
    let mut summary = Vec::new();
    match timed("dist", "about 2 min", crate::dist::run) {
        Ok((sizes, took)) => {
            let wasm: Vec<String> = sizes
                .iter()
                .map(|size| format!("{} raw, {} gzip", kib(size.raw), kib(size.gzip)))
                .collect();
            let took = sh::human(took);
            summary.push(format!(
                "dist          ok in {took} (wasm: {})",
                wasm.join("; ")
            ));
        }
        Err(err) => {
            print_summary(&["dist          FAILED".to_owned()]);
            return Err(err);
        }
    }

    match timed(
        "trunk check: trunk build --release",
        "about 1 min",
        crate::trunk::check,
    ) {
        Ok((crate::trunk::Checked::Same { files }, took)) => summary.push(format!(
            "trunk check   ok in {}: trunk's build is byte for byte dist/ ({files} files)",
            sh::human(took)
        )),
        Ok((crate::trunk::Checked::Skipped(why), _)) => {
            println!("SKIPPING the trunk check: {why}");
            summary.push(format!("trunk check   SKIPPED: {why}"));
        }
        Err(err) => {
            summary.push("trunk check   FAILED".to_owned());
            print_summary(&summary);
            return Err(err);
        }
    }

    println!("\n==> browser");
    let browser = match find_browser() {
        Ok(found) => found,
        Err(err) => {
            summary.push("browser       FAILED".to_owned());
            print_summary(&summary);
            return Err(err);
        }
    };

    let mut cargo_test = sh::cargo();
    // --no-fail-fast: one failing test binary must not hide the results of the others.
    cargo_test.args(["test", "--workspace", "--no-fail-fast"]);
    match &browser {
        Some(versions) => {
            println!("{versions}: browser tests will run");
            summary.push(format!("browser       {versions}"));
        }
        None => {
            println!("SKIPPING browser tests: chromium/chromedriver not found ({BROWSER_HINT})");
            summary.push(format!(
                "browser       SKIPPED: chromium/chromedriver not found ({BROWSER_HINT})"
            ));
            cargo_test.env("WIRELAB_SKIP_BROWSER", "1");
        }
    }

    let mut totals = Totals::default();
    let tests = timed(
        "cargo test --workspace --no-fail-fast",
        "about 6 min",
        || run_tests(&mut cargo_test, &mut totals),
    );
    let outcome = match &tests {
        Ok(((), took)) => format!("ok in {}", sh::human(*took)),
        Err(_) => "FAILED (see the output above)".to_owned(),
    };
    summary.push(format!("cargo test    {outcome}: {totals}"));
    let llhttp = crate::llhttp::step(&mut summary);
    let autobahn = crate::autobahn::step(&mut summary);
    // The fuzz targets, 30 s each (fuzz.rs); run even when a test failed.
    let fuzzed = crate::fuzz::in_test(&mut summary);
    print_summary(&summary);
    tests.map(|_| ()).and(llhttp).and(autobahn).and(fuzzed)
}

/// Runs `cargo test`, echoing its stdout line by line and adding up its `test result:` lines.
fn run_tests(cargo_test: &mut Command, totals: &mut Totals) -> Result {
    let line = sh::render(cargo_test);
    println!("$ {line}");
    let no_start = |err| sh::error(format!("could not start `{line}`: {err}"));
    let mut child = cargo_test
        .stdout(Stdio::piped())
        .spawn()
        .map_err(no_start)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    for output in BufReader::new(stdout).lines().map_while(|line| line.ok()) {
        println!("{output}");
        totals.add(&output);
    }
    let status = child.wait().map_err(no_start)?;
    if status.success() {
        Ok(())
    } else {
        fail(format!(
            "`{line}` failed ({status}): a test, or the build of one, failed; see above."
        ))
    }
}

/// Test counts, summed over every test binary's `test result:` line.
#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// How many test binaries (and doc-test runs) reported.
    runs: u64,
}

impl Totals {
    /// Adds `line` if it is a libtest summary such as
    /// `test result: ok. 4 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; …`.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        self.runs += 1;
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(count), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Totals {
            passed,
            failed,
            ignored,
            runs,
        } = self;
        write!(
            f,
            "{passed} passed, {failed} failed, {ignored} ignored ({runs} test runs)"
        )
    }
}

fn print_summary(lines: &[String]) {
    println!("\n==> summary");
    for line in lines {
        println!("  {line}");
    }
}

/// The browser's versions (`Chromium 156.0…, ChromeDriver 156.0…`) when both halves are
/// installed and match; None when either is missing and we are not under CI.
fn find_browser() -> Result<Option<String>> {
    let chromium = chromium();
    let chromedriver = sh::which("chromedriver").or_else(|| executable("/usr/bin/chromedriver"));
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        if sh::under_ci() {
            return fail(format!(
                "CI=true and chromium/chromedriver are not installed: under CI the browser \
                 tests must run. Install them: {BROWSER_HINT}"
            ));
        }
        return Ok(None);
    };
    let version = |path: &PathBuf| {
        probe(sh::cmd(path).arg("--version"))
            .unwrap_or_else(|| format!("{} (no version)", path.display()))
    };
    let (chromium, chromedriver) = (version(&chromium), version(&chromedriver));
    // `Chromium 156.0.8078.79 built on …` and `ChromeDriver 156.0.8078.79 (…)`.
    let major = |text: &str| {
        text.split_whitespace()
            .nth(1)
            .and_then(|v| v.split('.').next())
            .map(str::to_owned)
    };
    if major(&chromium) != major(&chromedriver) {
        return fail(format!(
            "chromium and chromedriver versions differ ({chromium} vs {chromedriver}): WebDriver \
             needs them to match. Install both together: {BROWSER_HINT}"
        ));
    }
    let short = |text: &str| {
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    Ok(Some(format!(
        "{}, {}",
        short(&chromium),
        short(&chromedriver)
    )))
}

/// Debian's `/usr/bin/chromium`, else a `chromium` on PATH (the browser harness looks the same way).
fn chromium() -> Option<PathBuf> {
    executable("/usr/bin/chromium").or_else(|| sh::which("chromium"))
}

fn executable(path: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_libtest_summaries() {
        let mut totals = Totals::default();
        totals.add("test result: ok. 4 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        totals
            .add("test result: FAILED. 2 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out");
        totals.add("test wait_for_text ... ok");
        assert_eq!(
            totals.to_string(),
            "6 passed, 3 failed, 1 ignored (2 test runs)"
        );
    }
}
