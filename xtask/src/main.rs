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
//! - `bootstrap.rs`: installs what a fresh machine lacks (wasm32 target, trunk, wasm-bindgen-cli,
//!   wasm-opt), skipping what is already there at the right version.
//! - `dist.rs`: bootstrap, then `trunk build --release --offline` into a staging directory,
//!   mirrored into `dist/` so unchanged files keep their mtimes; prints the wasm's sizes.
//! - `lab.rs`: dist, then builds the release server (which embeds `dist/`) and runs it.
//! - `bench.rs`: dist, release builds, `npm ci` for the Node anchors, then the benchmark suite
//!   (`wirelab-bench suite`), which writes BENCHMARKS.md.
//! - `test.rs`: dist, then every test in the workspace, the headless-Chromium ones included
//!   whenever Chromium is there (and always under `CI=true`), then llhttp's corpus and
//!   Autobahn's cases.
//! - `llhttp.rs`: llhttp's request corpus (Node's parser; the kit's runner in
//!   `../shared/conformance`) against a fresh lab; fails on any FAIL.
//! - `autobahn.rs`: Autobahn|Testsuite's cases against the WebSocket service (kosoku, in a
//!   venv under `.tools/`); the report in `target/autobahn/`, the verdicts held to a bar.

mod autobahn;
mod bench;
mod bootstrap;
mod dist;
mod lab;
mod llhttp;
mod lockfile;
mod sh;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  bootstrap     install the build tools this machine lacks (wasm32 target, trunk,
                wasm-bindgen-cli, wasm-opt into .tools/); skips what is already there
  dist          bootstrap, then build the dashboard into dist/ (trunk build --release)
  lab [ARGS]    dist, then build and run the release server: target/release/wirelab ARGS
                (try `cargo xtask lab --help` for the server's flags)
  bench [ARGS]  dist, release builds, then the benchmark suite against the Node anchors;
                writes BENCHMARKS.md (ARGS: --runs N, --quick, --only http,fanout,idle,tcp,dashboard)
  test          dist, then run every test (cargo test --workspace), the browser tests too
                when chromium and chromedriver are installed (required when CI=true), then
                llhttp's request corpus and autobahn
  llhttp        llhttp's request corpus (../shared/conformance) against a fresh lab
  autobahn      Autobahn|Testsuite's 517 cases against the WebSocket service (kosoku from
                PyPI, in .tools/autobahn-venv); the report goes to target/autobahn/
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("bootstrap") if rest.is_empty() => bootstrap::run(),
        Some("dist") if rest.is_empty() => dist::run().map(|_| ()),
        Some("lab") => lab::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("test") if rest.is_empty() => test::run(),
        Some("llhttp") if rest.is_empty() => llhttp::run().map(|_| ()),
        Some("autobahn") if rest.is_empty() => autobahn::run(),
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
