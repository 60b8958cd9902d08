//! `cargo xtask lab [ARGS...]`: build the dashboard and the release server (which embeds
//! `dist/`), then become `target/release/wirelab ARGS...`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::SystemTime;

use crate::sh::{self, Result, fail, timed};

/// Builds everything, then replaces this process with the server.
pub(crate) fn run(args: &[String]) -> Result {
    crate::dist::run()?;
    let server = sh::target_dir().join("release/wirelab");
    timed("build the server: cargo build --release -p wirelab", || {
        build_server()?;
        // rust-embed tracks each embedded file, not the folder: a server built before dist/
        // existed never notices it appear. Such a binary is older than dist/'s files.
        if modified(&server) < newest_in(&sh::repo_root().join("dist")) {
            println!(
                "target/release/wirelab predates dist/, so it lacks the dashboard: rebuilding"
            );
            sh::run(
                sh::cargo().args(["clean", "--release", "-p", "wirelab"]),
                "Could not remove the stale server binary; delete target/release/wirelab.",
            )?;
            build_server()?;
        }
        Ok(())
    })?;
    let mut cmd = sh::cmd(&server);
    cmd.args(args);
    println!("\n$ {}", sh::render(&cmd));
    // exec, not spawn: the server gets Ctrl-C and SIGTERM itself and shuts down gracefully,
    // and its exit status is ours. (`cargo run` execs us the same way.)
    let err = cmd.exec();
    fail(format!("could not start {}: {err}", server.display()))
}

fn build_server() -> Result {
    sh::run(
        sh::cargo().args(["build", "--release", "-p", "wirelab"]),
        "The server does not build; see the compiler's error above.",
    )
}

/// When `path` was last modified (the epoch if it can't be read).
fn modified(path: &Path) -> SystemTime {
    path.metadata()
        .and_then(|meta| meta.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The latest modification time of the files directly in `dir`.
fn newest_in(dir: &Path) -> SystemTime {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries
        .map(|entry| modified(&entry.path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}
