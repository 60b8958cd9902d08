//! Running tools: every command is printed before it runs, every failure says what ran and what
//! to do next, and every child sees the repo's tool directories first on its PATH.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fmt};

/// A task failure, worded for the person at the terminal: what failed and what to do about it.
#[derive(Debug)]
pub(crate) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type Result<T = ()> = std::result::Result<T, Error>;

/// An error saying `message`.
pub(crate) fn error(message: impl Into<String>) -> Error {
    Error(message.into())
}

/// Fails with `message`.
pub(crate) fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(error(message))
}

/// The workspace root: xtask lives one directory below it.
pub(crate) fn repo_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir
        .parent()
        .expect("xtask/ sits inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the repo), else `<repo>/target`.
pub(crate) fn target_dir() -> PathBuf {
    let root = repo_root();
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// `<repo>/.tools/node_modules/.bin`: where `bootstrap` puts wasm-opt (npm's binaryen).
pub(crate) fn node_bin_dir() -> PathBuf {
    repo_root().join(".tools/node_modules/.bin")
}

/// Where `cargo install` puts binaries: `$CARGO_HOME/bin`, by default `~/.cargo/bin`.
fn cargo_bin_dir() -> Option<PathBuf> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))?;
    Some(home.join("bin"))
}

/// The PATH every child gets: the repo's wasm-opt, then cargo's bin directory (so a trunk or
/// wasm-bindgen that `bootstrap` just installed is found even where PATH lacks ~/.cargo/bin),
/// then the caller's PATH.
pub(crate) fn tool_path() -> OsString {
    let mut dirs = vec![node_bin_dir()];
    dirs.extend(cargo_bin_dir());
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    env::join_paths(dirs).unwrap_or_else(|_| env::var_os("PATH").unwrap_or_default())
}

/// A command for `program`, run from the repo root with [`tool_path`] as its PATH (which is
/// also where `program` itself is looked up).
pub(crate) fn cmd(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(repo_root()).env("PATH", tool_path());
    cmd
}

/// The cargo that runs us (`$CARGO`), else `cargo`.
pub(crate) fn cargo() -> Command {
    cmd(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cmd` as a shell-like line for the log. For brevity the program is shown relative to the
/// repo when it lives there, else by its file name (`cargo`, not the toolchain's full path).
pub(crate) fn render(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let root = repo_root();
    let shown = match program.strip_prefix(&root) {
        Ok(relative) => relative.as_os_str(),
        Err(_) => program.file_name().unwrap_or(program.as_os_str()),
    };
    let mut line = shown.to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        line.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
            line.push_str(&format!("'{}'", arg.replace('\'', r"'\''")));
        } else {
            line.push_str(&arg);
        }
    }
    line
}

/// Prints `cmd`, runs it with inherited stdio, and fails with `hint` unless it exits with 0.
pub(crate) fn run(cmd: &mut Command, hint: &str) -> Result {
    let line = render(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .or_else(|err| fail(format!("could not start `{line}`: {err}. {hint}")))?;
    if status.success() {
        Ok(())
    } else {
        fail(format!("`{line}` failed ({status}). {hint}"))
    }
}

/// Runs `cmd` quietly and returns its trimmed stdout, or None when it can't start or fails:
/// for version probes, where "not there" and "broken" both mean "install it".
pub(crate) fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The first executable named `name` in [`tool_path`].
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    env::split_paths(&tool_path())
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Whether the environment says we are under CI (`CI=true`, as CI services set it).
pub(crate) fn under_ci() -> bool {
    env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// Runs `step`, announced as `name` with `first_run`, roughly how long it takes on a first
/// run on 2 cores (so nobody wonders whether a long step hangs), then prints how long it took.
pub(crate) fn timed<T>(
    name: &str,
    first_run: &str,
    step: impl FnOnce() -> Result<T>,
) -> Result<(T, Duration)> {
    println!("\n==> {name}  [first run on 2 cores: {first_run}]");
    let start = Instant::now();
    let value = step()?;
    let took = start.elapsed();
    println!("==> {name}: done in {}", human(took));
    Ok((value, took))
}

/// `took` as `1m05s` or `4.2s`.
pub(crate) fn human(took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:02}s", took.as_secs() / 60, took.as_secs() % 60)
    } else {
        format!("{secs:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_quotes_only_what_needs_it() {
        let mut cmd = Command::new("/usr/bin/echo");
        cmd.args(["plain", "two words", "", "it's"]);
        assert_eq!(render(&cmd), r"echo plain 'two words' '' 'it'\''s'");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_millis(4200)), "4.2s");
        assert_eq!(human(Duration::from_secs(65)), "1m05s");
    }
}
