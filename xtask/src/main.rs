//! wirelab's build and test tasks: `cargo xtask <task>` (the alias lives in `.cargo/config.toml`).
//!
//! Plain `std`, no dependencies, so it compiles in seconds on a fresh machine.
//!
//! # Layout
//!
//! - `main.rs`: parses the task name and dispatches; prints the usage.
//! - `sh.rs`: runs tools (each command is printed before it runs), finds them, and carries the
//!   one error type: a message saying what failed and what to do about it.
//! - `lockfile.rs`: reads a package's version out of `Cargo.lock` (wasm-bindgen's, here).
//! - `bootstrap.rs`: installs what a fresh machine lacks (wasm32 target, wasm-opt; with `--dev`
//!   also trunk and wasm-bindgen-cli), skipping what is already there at the right version.
//! - `dist.rs`: bootstrap, then the workspace's `webdist` tool (trunk's release build without
//!   trunk) into a staging directory, mirrored into `dist/` so unchanged files keep their
//!   mtimes; prints the wasm's sizes.
//! - `lab.rs`: dist, then builds the release server (which embeds `dist/`) and runs it.
//! - `bench.rs`: dist, release builds, `npm ci` for the Node anchors, then the benchmark suite
//!   (`wirelab-bench suite`), which writes BENCHMARKS.md.
//! - `test.rs`: dist, the trunk check, then every test in the workspace, the headless-Chromium
//!   ones included whenever Chromium is there (and always under `CI=true`), then llhttp's
//!   corpus, Autobahn's cases and the fuzz targets.
//! - `llhttp.rs`: llhttp's request corpus (Node's parser; the kit's runner in
//!   `../shared/conformance`) against a fresh lab; fails on any FAIL.
//! - `autobahn.rs`: Autobahn|Testsuite's cases against the WebSocket service (kosoku, in a
//!   venv under `.tools/`); the report in `target/autobahn/`, the verdicts held to a bar.
//! - `trunk.rs`: `serve` (trunk serve, trunk installed on first use) and the trunk check:
//!   trunk's release build of index.html must be byte for byte webdist's `dist/`.
//! - `fuzz.rs`: cargo-fuzz (installed if missing) on nightly: builds `fuzz/`'s targets and
//!   runs each for 30 s from its seed corpus; a crash fails it.

mod autobahn;
mod bench;
mod bootstrap;
mod dist;
mod fuzz;
mod lab;
mod llhttp;
mod lockfile;
mod sh;
mod test;
mod trunk;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  bootstrap [--dev]  install the build tools this machine lacks (wasm32 target, wasm-opt
                into .tools/); --dev also trunk and wasm-bindgen-cli, for `trunk serve`
  dist          bootstrap, then build the dashboard into dist/ (webdist: trunk's release
                build without trunk)
  lab [ARGS]    dist, then build and run the release server: target/release/wirelab ARGS
                (try `cargo xtask lab --help` for the server's flags)
  bench [ARGS]  dist, release builds, then the benchmark suite against the Node anchors;
                writes BENCHMARKS.md (ARGS: --runs N, --quick, --only http,fanout,idle,tcp,dashboard)
  test          dist, the trunk check, then every test (cargo test --workspace), the browser
                tests too when chromium and chromedriver are installed (required when CI=true),
                then llhttp's request corpus, autobahn and the fuzz targets (30 s each;
                skipped without nightly, unless CI=true)
  llhttp        llhttp's request corpus (../shared/conformance) against a fresh lab
  autobahn      Autobahn|Testsuite's 517 cases against the WebSocket service (kosoku from
                PyPI, in .tools/autobahn-venv); the report goes to target/autobahn/
  serve [ARGS]  trunk serve --offline ARGS: the dashboard with live reload on :8081, beside
                `cargo run -p wirelab` (installs trunk and wasm-bindgen-cli on first use)
  trunk-check   dist, then check that `trunk build --release` makes the same dist/
                (needs `cargo xtask bootstrap --dev`)
  fuzz [SECS]   build the fuzz targets (cargo-fuzz on nightly) and run each for SECS (30)
";

/// `cargo xtask trunk-check`: dist, then the trunk check, which must not be skipped.
fn trunk_check() -> sh::Result {
    dist::run()?;
    match sh::timed(
        "trunk check: trunk build --release",
        "about 1 min",
        trunk::check,
    )? {
        (trunk::Checked::Same { files }, _) => {
            println!("trunk's build is byte for byte dist/ ({files} files)");
            Ok(())
        }
        (trunk::Checked::Skipped(why), _) => sh::fail(format!("cannot check: {why}")),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("bootstrap") if rest.is_empty() => bootstrap::run(false),
        Some("bootstrap") if rest == ["--dev"] => bootstrap::run(true),
        Some("dist") if rest.is_empty() => dist::run().map(|_| ()),
        Some("lab") => lab::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("test") if rest.is_empty() => test::run(),
        Some("llhttp") if rest.is_empty() => llhttp::run().map(|_| ()),
        Some("autobahn") if rest.is_empty() => autobahn::run(),
        Some("serve") => trunk::serve(&rest),
        Some("trunk-check") if rest.is_empty() => trunk_check(),
        Some("fuzz") => fuzz::run(&rest),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprint!("xtask: unknown task or unexpected arguments: {other} {rest:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
        None => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nxtask: error: {err}");
            ExitCode::FAILURE
        }
    }
}
