//! `cargo xtask dist`: bootstrap, then build the dashboard into `dist/` with the workspace's
//! `webdist` tool (what `trunk build --release` does, without trunk: see webdist/src/main.rs),
//! and report the size of the wasm it made (raw and gzipped, as a browser would fetch it).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::sh::{self, Result, fail, timed};

/// The sizes of one built `.wasm` file.
pub(crate) struct WasmSize {
    /// Its path, relative to the repo root.
    pub(crate) path: PathBuf,
    /// Bytes on disk.
    pub(crate) raw: u64,
    /// Bytes after `gzip -9`: roughly what goes over the wire.
    pub(crate) gzip: u64,
}

/// Bootstraps, builds `dist/`, prints and returns the wasm sizes.
pub(crate) fn run() -> Result<Vec<WasmSize>> {
    timed("bootstrap", "about 30 s (wasm32 target, wasm-opt)", || {
        crate::bootstrap::run(false)
    })?;
    build()
}

fn build() -> Result<Vec<WasmSize>> {
    let root = sh::repo_root();
    if !root.join("index.html").is_file() {
        return fail(
            "index.html is missing at the repo root: the dashboard is built from it (by \
             webdist, or trunk), so restore it from git.",
        );
    }
    timed(
        "build the webdist tool: cargo build -p wirelab-webdist",
        "about 35 s",
        || {
            sh::run(
                sh::cargo().args(["build", "-p", "wirelab-webdist"]),
                "The webdist tool does not build; see the compiler's error above.",
            )
        },
    )?;
    // webdist writes into a staging directory, and dist/ only gets the files that changed
    // (see `mirror`). It announces and times its own steps (cargo, wasm-bindgen, wasm-opt).
    let target = sh::target_dir();
    let stage = target.join("webdist-dist");
    sh::run(
        sh::cmd(target.join("debug/wirelab-webdist"))
            .arg("--html")
            .arg(root.join("index.html"))
            .arg("--out")
            .arg(&stage)
            .arg("--scratch")
            .arg(target.join("webdist"))
            .arg("--wasm-opt")
            .arg(sh::node_bin_dir().join("wasm-opt")),
        "If a tool is missing, run `cargo xtask bootstrap`; otherwise the error above comes \
         from the frontend's build or from index.html.",
    )?;
    let dist = root.join("dist");
    let changes = publish(&stage, &dist)?;
    println!(
        "dist/: {} files updated, {} unchanged, {} removed",
        changes.written, changes.unchanged, changes.removed
    );
    let sizes = wasm_sizes(&dist)?;
    if sizes.is_empty() {
        return fail(
            "webdist finished but left no .wasm file in dist/; check index.html's rust link.",
        );
    }
    for size in &sizes {
        println!(
            "{}: {} raw, {} gzip -9",
            size.path.display(),
            kib(size.raw),
            kib(size.gzip)
        );
    }
    Ok(sizes)
}

/// Mirrors `stage` into `dist` (see [`mirror`]).
fn publish(stage: &Path, dist: &Path) -> Result<Changes> {
    let mut changes = Changes::default();
    mirror(stage, dist, &mut changes).or_else(|err| {
        fail(format!(
            "could not copy {} to {}: {err}",
            stage.display(),
            dist.display()
        ))
    })?;
    Ok(changes)
}

/// What [`mirror`] did.
#[derive(Default)]
struct Changes {
    written: usize,
    unchanged: usize,
    removed: usize,
}

/// Makes `to` a copy of `from`, writing only the files whose bytes differ.
///
/// The release server embeds dist/ and cargo rebuilds it whenever a file there is newer
/// (server/build.rs); rewriting identical files would cost a ~1 min release build on every
/// `cargo xtask lab`.
fn mirror(from: &Path, to: &Path, changes: &mut Changes) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    let mut wanted = std::collections::HashSet::new();
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        wanted.insert(entry.file_name());
        if entry.file_type()?.is_dir() {
            if target.is_file() {
                std::fs::remove_file(&target)?;
            }
            mirror(&source, &target, changes)?;
        } else if target.is_file() && std::fs::read(&target)? == std::fs::read(&source)? {
            changes.unchanged += 1;
        } else {
            if target.is_dir() {
                std::fs::remove_dir_all(&target)?;
            }
            std::fs::copy(&source, &target)?;
            changes.written += 1;
        }
    }
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        if !wanted.contains(&entry.file_name()) {
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
            changes.removed += 1;
        }
    }
    Ok(())
}

/// Measures every `.wasm` directly in `dist`.
fn wasm_sizes(dist: &Path) -> Result<Vec<WasmSize>> {
    let entries = std::fs::read_dir(dist)
        .or_else(|err| fail(format!("could not list {}: {err}", dist.display())))?;
    let mut sizes = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "wasm") {
            let raw = entry.metadata().map(|meta| meta.len()).unwrap_or(0);
            let gzip = gzip_size(&path)?;
            let path = path
                .strip_prefix(sh::repo_root())
                .unwrap_or(&path)
                .to_path_buf();
            sizes.push(WasmSize { path, raw, gzip });
        }
    }
    sizes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(sizes)
}

/// The length of `gzip -9 -c file`'s output.
fn gzip_size(file: &Path) -> Result<u64> {
    let no_gzip =
        |err: std::io::Error| sh::error(format!("could not run gzip on {}: {err}", file.display()));
    let mut child = sh::cmd("gzip")
        .args(["-9", "-c"])
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(no_gzip)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let size = std::io::copy(&mut stdout, &mut std::io::sink()).map_err(no_gzip)?;
    let status = child.wait().map_err(no_gzip)?;
    if !status.success() {
        return fail(format!("gzip failed on {} ({status})", file.display()));
    }
    Ok(size)
}

/// `bytes` in KiB with one decimal.
pub(crate) fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}
