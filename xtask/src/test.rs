//! `cargo xtask test`: build `dist/`, look for the browser, then run every test in the
//! workspace and print a summary.
//!
//! The headless-Chromium tests (see `server/tests/support/browser.rs`) run whenever Chromium
//! and chromedriver are installed. Without them the tests are skipped, saying so plainly,
//! except under `CI=true`, where a missing browser is a failure.

use std::path::PathBuf;

use crate::dist::kib;
use crate::sh::{self, Result, fail, probe, timed};

const BROWSER_HINT: &str = "apt-get install chromium chromium-driver";

/// Runs dist, the browser check and `cargo test --workspace`; fails if any of them fails.
pub(crate) fn run() -> Result {
    let mut summary = Vec::new();
    match timed("dist", crate::dist::run) {
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
    cargo_test.args(["test", "--workspace"]);
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

    let tests = timed("cargo test --workspace", || {
        sh::run(&mut cargo_test, "A test failed: its output is above.")
    });
    match &tests {
        Ok(((), took)) => summary.push(format!("cargo test    ok in {}", sh::human(*took))),
        Err(_) => summary.push("cargo test    FAILED (see its output above)".to_owned()),
    }
    print_summary(&summary);
    tests.map(|_| ())
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
