//! `cargo xtask fuzz [SECONDS]`: builds the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer,
//! on the nightly toolchain) and runs each for SECONDS (30 by default), from its seed
//! corpus in `fuzz/corpus/<target>/`.
//!
//! - cargo-fuzz is installed when missing; the nightly toolchain must already be there (this
//!   machine kind's image has it; nothing can be downloaded here). `cargo xtask test` skips
//!   the step without it, saying so, except under `CI=true`, where that is a failure.
//! - A crash fails the task: libFuzzer keeps the input in `fuzz/artifacts/<target>/`, and
//!   the message gives the command that replays it.
//! - What a run discovers goes to `fuzz/target/corpus/<target>/` (ignored by git), so the
//!   committed seeds stay small; each run's output is in `fuzz/target/logs/<target>.log`.
//! - One summary line: each target's executions and coverage.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::sh::{self, Result, fail, probe, timed};

/// The targets, in the order they run (`fuzz/fuzz_targets/<name>.rs`).
const TARGETS: [&str; 7] = [
    "http_head",
    "http_chunked",
    "ws_frames",
    "ws_inflate",
    "ws_command",
    "relay_http",
    "tls_hello",
];
/// How long each target runs in `cargo xtask test`.
const SECONDS: u64 = 30;
/// The cargo-fuzz installed when there is none (any installed version is used as is).
const CARGO_FUZZ_VERSION: &str = "0.13.2";
const NO_NIGHTLY: &str = "the nightly toolchain is not installed (`rustup run nightly rustc \
                          --version` fails): cargo-fuzz needs it for libFuzzer's sanitizer \
                          flags. Install it with `rustup toolchain install nightly` where the \
                          network allows";

/// `cargo xtask fuzz [SECONDS]`.
pub(crate) fn run(args: &[String]) -> Result {
    let seconds = match args {
        [] => SECONDS,
        [s] => s
            .parse()
            .or_else(|_| fail(format!("SECONDS must be a whole number, not {s:?}")))?,
        _ => return fail("usage: cargo xtask fuzz [SECONDS]"),
    };
    let Some(nightly) = nightly() else {
        return fail(NO_NIGHTLY);
    };
    println!("{nightly}");
    let line = fuzz(seconds)?;
    println!("\nfuzz: {line}");
    Ok(())
}

/// The fuzz step of `cargo xtask test`: its line goes into `summary`.
pub(crate) fn in_test(summary: &mut Vec<String>) -> Result {
    let Some(nightly) = nightly() else {
        if sh::under_ci() {
            summary.push("fuzz          FAILED: no nightly toolchain".to_owned());
            return fail(format!("CI=true and {NO_NIGHTLY}"));
        }
        println!("SKIPPING the fuzz targets: {NO_NIGHTLY}");
        summary.push("fuzz          SKIPPED: no nightly toolchain".to_owned());
        return Ok(());
    };
    println!("{nightly}");
    // The first build compiles the server's dependencies again (11.5 min of CPU).
    let first_run = "6 to 8 min to build (estimated), then 30 s per target";
    match timed("fuzz", first_run, || fuzz(SECONDS)) {
        Ok((line, took)) => {
            summary.push(format!("fuzz          ok in {}: {line}", sh::human(took)));
            Ok(())
        }
        Err(err) => {
            summary.push("fuzz          FAILED (see the output above)".to_owned());
            Err(err)
        }
    }
}

/// `rustc +nightly --version`, if the nightly toolchain is installed.
fn nightly() -> Option<String> {
    probe(sh::cmd("rustup").args(["run", "nightly", "rustc", "--version"]))
}

/// `cargo +nightly <args>`, from the repo root.
fn nightly_cargo() -> Command {
    let mut cmd = sh::cmd("cargo");
    cmd.arg("+nightly");
    cmd
}

/// Installs cargo-fuzz if need be, builds every target, runs each for `seconds`; the
/// summary of the runs.
fn fuzz(seconds: u64) -> Result<String> {
    if probe(nightly_cargo().args(["fuzz", "--version"])).is_none() {
        println!("cargo-fuzz: installing {CARGO_FUZZ_VERSION} (about a minute)");
        sh::run(
            sh::cargo().args([
                "install",
                "cargo-fuzz",
                "--version",
                CARGO_FUZZ_VERSION,
                "--locked",
            ]),
            "cargo-fuzz comes from crates.io; see the error above.",
        )?;
    }
    sh::run(
        nightly_cargo().args(["fuzz", "build"]),
        "The fuzz crate (fuzz/) failed to build on nightly; see the error above.",
    )?;
    // The binaries are run as built: `cargo fuzz run` would check the build again for each
    // target, and the server's build script makes that a rebuild whenever dist/ is missing.
    let host = probe(sh::cmd("rustc").args(["+nightly", "-vV"]))
        .and_then(|v| Some(v.lines().find_map(|l| l.strip_prefix("host: "))?.to_owned()))
        .ok_or_else(|| sh::error("`rustc +nightly -vV` names no host triple"))?;
    let root = sh::repo_root().join("fuzz");
    let bins = root.join("target").join(host).join("release");
    // Every target runs, whether or not one before it crashed.
    let (mut parts, mut crashed) = (Vec::new(), Vec::new());
    for target in TARGETS {
        match run_target(&root, &bins, target, seconds) {
            Ok(part) => parts.push(part),
            Err(err) => crashed.push(err.to_string()),
        }
    }
    if !crashed.is_empty() {
        return fail(crashed.join("\n"));
    }
    Ok(format!("{seconds} s each: {}", parts.join("; ")))
}

/// Runs one target for `seconds`: its summary (`http_head 1.2M execs, cov 812`), or the
/// failure with the crashing input's path.
fn run_target(root: &Path, bins: &Path, target: &str, seconds: u64) -> Result<String> {
    let found = root.join("target/corpus").join(target);
    let logs = root.join("target/logs");
    let artifacts = root.join("artifacts").join(target);
    for dir in [&found, &logs, &artifacts] {
        fs::create_dir_all(dir)
            .or_else(|err| fail(format!("cannot create {}: {err}", dir.display())))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let log = fs::File::create(&log_path)
        .or_else(|err| fail(format!("cannot write {}: {err}", log_path.display())))?;
    let mut cmd = sh::cmd(bins.join(target));
    cmd.arg(&found)
        .arg(root.join("corpus").join(target))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args([
            &format!("-max_total_time={seconds}"),
            "-timeout=10",
            "-print_final_stats=1",
        ])
        .stdout(Stdio::null())
        .stderr(log);
    let line = sh::render(&cmd);
    println!("$ {line}  (output in {})", log_path.display());
    let status = cmd
        .status()
        .or_else(|err| fail(format!("could not start `{line}`: {err}")))?;
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = output.lines().rev().take(40).collect();
        for l in tail.iter().rev() {
            println!("  {l}");
        }
        let replay = match newest(&artifacts) {
            Some(input) => format!(
                "The input is kept in {}; replay it with `cargo +nightly fuzz run {target} {}`.",
                input.display(),
                input.display()
            ),
            None => "libFuzzer kept no input (see the log).".to_owned(),
        };
        return fail(format!(
            "fuzz target {target} failed ({status}); the end of its log is above. {replay}"
        ));
    }
    let summary = Stats::read(&output).describe(target);
    println!("{summary}");
    Ok(summary)
}

/// The most recent file in `dir`.
fn newest(dir: &Path) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .max()
        .map(|(_, path)| path)
}

/// What a libFuzzer run printed about itself.
#[derive(Debug, Default, PartialEq)]
struct Stats {
    /// `stat::number_of_executed_units`.
    execs: Option<u64>,
    /// The last `cov:` figure (edges covered).
    cov: Option<u64>,
    /// The last `corp:` figure (inputs in the corpus).
    corpus: Option<u64>,
}

impl Stats {
    fn read(output: &str) -> Stats {
        let mut stats = Stats::default();
        for line in output.lines() {
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                stats.execs = n.trim().parse().ok();
            }
            let mut words = line.split_whitespace();
            while let Some(word) = words.next() {
                let slot = match word {
                    "cov:" => &mut stats.cov,
                    "corp:" => &mut stats.corpus,
                    _ => continue,
                };
                // `corp: 45/3210b`: the count before the slash.
                let value = words.next().and_then(|v| v.split('/').next());
                if let Some(n) = value.and_then(|v| v.parse().ok()) {
                    *slot = Some(n);
                }
            }
        }
        stats
    }

    fn describe(&self, target: &str) -> String {
        let n = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
        format!(
            "{target} {} execs, cov {}, corpus {}",
            n(self.execs),
            n(self.cov),
            n(self.corpus)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_come_from_libfuzzers_output() {
        let output = "\
INFO: seed corpus: files: 13 min: 18b max: 310b total: 1402b rss: 31Mb
#14\tINITED cov: 402 ft: 611 corp: 12/1290b exec/s: 0 rss: 33Mb
#1048576\tpulse  cov: 811 ft: 2301 corp: 140/9876b lim: 4096 exec/s: 34952 rss: 60Mb
#1190212\tDONE   cov: 812 ft: 2310 corp: 141/9901b lim: 4096 exec/s: 39673 rss: 61Mb
Done 1190212 runs in 31 second(s)
stat::number_of_executed_units: 1190212
stat::average_exec_per_sec:     39673
";
        let stats = Stats::read(output);
        assert_eq!(
            stats,
            Stats {
                execs: Some(1_190_212),
                cov: Some(812),
                corpus: Some(141)
            }
        );
        assert_eq!(
            stats.describe("http_head"),
            "http_head 1190212 execs, cov 812, corpus 141"
        );
        assert_eq!(Stats::read("").describe("x"), "x ? execs, cov ?, corpus ?");
    }
}
