//! `cargo xtask lab [ARGS...]`: build the dashboard and the release server (which embeds
//! `dist/`), then become `target/release/wirelab ARGS...`.

use std::os::unix::process::CommandExt;

use crate::sh::{self, Result, fail, timed};

/// Builds everything, then replaces this process with the server.
pub(crate) fn run(args: &[String]) -> Result {
    crate::dist::run()?;
    let server = sh::target_dir().join("release/wirelab");
    // server/build.rs reruns on any change under dist/, so the release build embeds the
    // dashboard just built (and dist's mirroring keeps an unchanged one from relinking it).
    timed(
        "build the server: cargo build --release -p wirelab",
        "about 3.5 min",
        || {
            sh::run(
                sh::cargo().args(["build", "--release", "-p", "wirelab"]),
                "The server does not build; see the compiler's error above.",
            )
        },
    )?;
    let mut cmd = sh::cmd(&server);
    cmd.args(args);
    println!("\n$ {}", sh::render(&cmd));
    // exec, not spawn: the server gets Ctrl-C and SIGTERM itself and shuts down gracefully,
    // and its exit status is ours. (`cargo run` execs us the same way.)
    let err = cmd.exec();
    fail(format!("could not start {}: {err}", server.display()))
}
