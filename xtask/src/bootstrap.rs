//! `cargo xtask bootstrap [--dev]`: installs the dashboard's build tools, one line per tool,
//! skipping each one that is already there at the right version.
//!
//! What `dist`, `lab`, `test` and `bench` need is light: the wasm32 target and wasm-opt
//! (npm's binaryen, into `.tools/`); wasm-bindgen is a library inside the workspace's
//! `webdist` tool, built by `dist`. `--dev` adds what `trunk serve` needs: trunk itself and
//! the wasm-bindgen CLI (about 12 minutes of compiling on 2 cores, hence not by default).
//!
//! The versions and the ways of installing are the ones `shared/TOOLCHAIN.md` found to work:
//! trunk 0.22 needs a newer rustc than ours; wasm-bindgen-cli must equal the `wasm-bindgen`
//! crate in Cargo.lock and fails to install with `--locked`; Debian's binaryen (108) is too
//! old for what rustc 1.95 emits, so wasm-opt comes from npm's `binaryen` into `.tools/`.

use crate::lockfile::locked_version;
use crate::sh::{self, Result, fail, probe, timed};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
pub(crate) const TRUNK_VERSION: &str = "0.21.14";
const BINARYEN_VERSION: &str = "132";

/// Installs whatever is missing or at the wrong version: the build tools, and with `dev`
/// also trunk and the wasm-bindgen CLI.
pub(crate) fn run(dev: bool) -> Result {
    wasm_target()?;
    wasm_opt()?;
    if dev {
        wasm_bindgen_cli()?;
        trunk()
    } else {
        println!(
            "trunk, wasm-bindgen-cli: not needed here (only `trunk serve` uses them; \
             `cargo xtask bootstrap --dev` installs them)"
        );
        Ok(())
    }
}

/// Whether trunk and the wasm-bindgen CLI are installed at the right versions (`--dev`'s
/// tools), without installing anything; Err says which one is missing.
pub(crate) fn dev_tools_present() -> Result<()> {
    let wanted = locked_version("wasm-bindgen")?;
    let have = |tool: &str, found: Option<String>, wanted: &str| match found {
        Some(found) if found == wanted => Ok(()),
        Some(found) => fail(format!("{tool} is {found}, not {wanted}")),
        None => fail(format!("{tool} {wanted} is not installed")),
    };
    have("trunk", trunk_version(), TRUNK_VERSION)?;
    have("wasm-bindgen-cli", wasm_bindgen_version(), &wanted)
}

fn wasm_target() -> Result {
    let installed = probe(sh::cmd("rustup").args(["target", "list", "--installed"]));
    let Some(installed) = installed else {
        return fail(format!(
            "rustup not found: install Rust with rustup (https://rustup.rs), or add the \
             {WASM_TARGET} target to your toolchain some other way."
        ));
    };
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        println!("{WASM_TARGET} target: ok");
        return Ok(());
    }
    timed(
        &format!("{WASM_TARGET} target: installing"),
        "about 30 s",
        || {
            sh::run(
                sh::cmd("rustup").args(["target", "add", WASM_TARGET]),
                "Check your network, then run `cargo xtask bootstrap` again.",
            )
        },
    )
    .map(|_| ())
}

/// `trunk --version` prints `trunk 0.21.14`.
fn trunk_version() -> Option<String> {
    let found = probe(sh::cmd("trunk").arg("--version"))?;
    found.strip_prefix("trunk ").map(str::to_owned)
}

/// `wasm-bindgen --version` prints `wasm-bindgen 0.2.130`.
fn wasm_bindgen_version() -> Option<String> {
    let found = probe(sh::cmd("wasm-bindgen").arg("--version"))?;
    found.strip_prefix("wasm-bindgen ").map(str::to_owned)
}

fn trunk() -> Result {
    if !needs_install("trunk", TRUNK_VERSION, trunk_version().as_deref()) {
        return Ok(());
    }
    timed("trunk: cargo install", "about 9 min", || {
        sh::run(
            sh::cargo().args(["install", "trunk", "--version", TRUNK_VERSION, "--locked"]),
            "See the error above; trunk takes about 9 minutes to build on 2 cores.",
        )
    })
    .map(|_| ())
}

fn wasm_bindgen_cli() -> Result {
    let wanted = locked_version("wasm-bindgen")?;
    if !needs_install(
        "wasm-bindgen-cli",
        &wanted,
        wasm_bindgen_version().as_deref(),
    ) {
        return Ok(());
    }
    // No `--locked`: the CLI's lock file names a crate version the registry no longer has.
    timed("wasm-bindgen-cli: cargo install", "about 2.5 min", || {
        sh::run(
            sh::cargo().args(["install", "wasm-bindgen-cli", "--version", &wanted]),
            "The CLI must be exactly the wasm-bindgen version in Cargo.lock; see the error above.",
        )
    })
    .map(|_| ())
}

fn wasm_opt() -> Result {
    let wasm_opt = sh::node_bin_dir().join("wasm-opt");
    let found = probe(sh::cmd(&wasm_opt).arg("--version"));
    // `wasm-opt --version` prints `wasm-opt version 132 (version_132)`.
    let found = found.as_deref().and_then(|out| {
        let rest = out.strip_prefix("wasm-opt version ")?;
        rest.split_whitespace().next()
    });
    if !needs_install("wasm-opt (npm binaryen)", BINARYEN_VERSION, found) {
        return Ok(());
    }
    if probe(sh::cmd("npm").arg("--version")).is_none() {
        return fail(
            "npm not found: wasm-opt comes from npm's binaryen package. Install Node.js with \
             npm (e.g. `apt-get install nodejs npm`), then run `cargo xtask bootstrap` again. \
             Debian's binaryen package is too old: don't use it.",
        );
    }
    let tools = sh::repo_root().join(".tools");
    timed("wasm-opt: npm install binaryen", "about 5 s", || {
        sh::run(
            sh::cmd("npm")
                .arg("install")
                .arg("--prefix")
                .arg(&tools)
                .args(["--no-audit", "--no-fund", "--loglevel=error"])
                .arg(format!("binaryen@{BINARYEN_VERSION}")),
            "Check that npm can reach its registry, then run `cargo xtask bootstrap` again.",
        )
    })?;
    match probe(sh::cmd(&wasm_opt).arg("--version")) {
        Some(version) => {
            println!("{version}");
            Ok(())
        }
        None => fail(format!(
            "npm installed binaryen, but `{} --version` does not run.",
            wasm_opt.display()
        )),
    }
}

/// Prints the tool's status line and says whether it must be (re)installed.
fn needs_install(tool: &str, wanted: &str, found: Option<&str>) -> bool {
    match found {
        Some(found) if found == wanted => {
            println!("{tool} {wanted}: ok");
            false
        }
        Some(found) => {
            println!("{tool} {wanted}: installing (found {found})");
            true
        }
        None => {
            println!("{tool} {wanted}: installing");
            true
        }
    }
}
