//! `cargo xtask bench [SUITE-ARGS]`: dist (the server embeds it), release builds of the server
//! and the bench tools, `npm ci` for the Node anchors (copied out of the read-only
//! `../shared/anchors`), then `wirelab-bench suite`, which writes BENCHMARKS.md.
//! SUITE-ARGS go to the suite: `--runs N`, `--quick`,
//! `--only http,fanout,idle,tcp,relay,relay-http,faults,https,dashboard`. The HTTP relay figure's
//! peer, mitmproxy's `mitmdump`, goes into a venv at `target/mitm` the first time.

use std::path::PathBuf;

use crate::sh::{self, Result, fail, timed};

/// Builds, prepares the anchors, and runs the suite from the repo root.
pub(crate) fn run(args: &[String]) -> Result {
    let root = sh::repo_root();
    crate::dist::run()?;
    timed(
        "build: cargo build --release -p wirelab -p wirelab-bench",
        "about 4 min",
        || {
            sh::run(
                sh::cargo().args(["build", "--release", "-p", "wirelab", "-p", "wirelab-bench"]),
                "The server or the bench tools do not build; see the compiler's error above.",
            )
        },
    )?;
    let anchors = anchors(&root)?;
    timed("npm ci (the Node anchors)", "about 10 s", || {
        sh::run(
            sh::cmd("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&anchors),
            "npm could not install the anchors' `ws` package.",
        )
    })?;
    for tool in ["taskset", "wrk", "node"] {
        if sh::which(tool).is_none() {
            return fail(format!(
                "{tool} is missing: apt-get install -y wrk util-linux nodejs"
            ));
        }
    }
    mitmproxy(&root);
    let bench = sh::target_dir().join("release/wirelab-bench");
    timed("the suite (writes BENCHMARKS.md)", "about 10 min", || {
        sh::run(
            sh::cmd(&bench)
                .arg("suite")
                .arg("--root")
                .arg(&root)
                .args(args),
            "The suite stopped; its message above says where.",
        )
    })?;
    Ok(())
}

/// PyPI's mitmproxy in `target/mitm`, for the HTTP relay figure; without it (no python3,
/// no network) that figure leaves its mitmdump row out and says so.
fn mitmproxy(root: &std::path::Path) {
    let venv = root.join("target/mitm");
    if venv.join("bin/mitmdump").exists() || sh::which("python3").is_none() {
        return;
    }
    let made = timed("mitmproxy into target/mitm (once)", "about 1 min", || {
        sh::run(
            sh::cmd("python3").arg("-m").arg("venv").arg(&venv),
            "python3 could not make a venv (apt-get install -y python3-venv).",
        )?;
        sh::run(
            sh::cmd(venv.join("bin/pip")).args(["install", "-q", "mitmproxy"]),
            "pip could not install mitmproxy.",
        )
    });
    if made.is_err() {
        eprintln!("the HTTP relay figure will leave mitmdump out");
    }
}

/// Copies the anchors into `target/anchors`: the shared ones (their own directory is
/// read-only) and the repo's own, from `bench/anchors`.
fn anchors(root: &std::path::Path) -> Result<PathBuf> {
    let shared = root.join("../shared/anchors");
    let ours = root.join("bench/anchors");
    let to = sh::target_dir().join("anchors");
    std::fs::create_dir_all(&to).or_else(|e| fail(format!("creating {}: {e}", to.display())))?;
    for (from, name) in [
        (&shared, "package.json"),
        (&shared, "package-lock.json"),
        (&shared, "seed-hello.js"),
        (&shared, "node-relay.js"),
        (&ours, "seed-https.js"),
    ] {
        let (src, dst) = (from.join(name), to.join(name));
        let _ = std::fs::remove_file(&dst);
        std::fs::copy(&src, &dst).or_else(|e| fail(format!("copying {}: {e}", src.display())))?;
        let mut perms = std::fs::metadata(&dst)
            .or_else(|e| fail(format!("{}: {e}", dst.display())))?
            .permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        let _ = std::fs::set_permissions(&dst, perms);
    }
    Ok(to)
}
