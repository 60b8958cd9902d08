//! trunk, for development: `cargo xtask serve` (trunk serve, installing trunk on first use),
//! and the check that trunk's release build of index.html is byte for byte the `dist/` that
//! webdist built, so the page the browser tests load is also the one trunk makes.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::sh::{self, Result, fail, timed};

/// `cargo xtask serve [ARGS]`: installs trunk and the wasm-bindgen CLI if missing (about 12
/// minutes on 2 cores, once), then becomes `trunk serve --offline ARGS`.
pub(crate) fn serve(args: &[String]) -> Result {
    timed(
        "bootstrap --dev",
        "about 12 min (trunk, wasm-bindgen-cli); seconds once installed",
        || crate::bootstrap::run(true),
    )?;
    let mut cmd = sh::cmd("trunk");
    cmd.args(["serve", "--offline"]).args(args);
    println!(
        "\nThe page trunk serves (http://127.0.0.1:8081/ unless --port says otherwise) needs \
         the lab beside it for /ws and /api: `cargo run -p wirelab` in another terminal.\n$ {}",
        sh::render(&cmd)
    );
    let err = cmd.exec();
    fail(format!("could not start trunk: {err}"))
}

/// What [`check`] found.
pub(crate) enum Checked {
    /// trunk's build and dist/ hold the same files with the same bytes.
    Same { files: usize },
    /// trunk or the wasm-bindgen CLI is not installed: the reason.
    Skipped(String),
}

/// Builds index.html with `trunk build --release` into `target/trunk-dist` and compares it
/// with `dist/` (which `dist::run` must have just built). Skips, saying why, when trunk's
/// tools are not installed; fails on any difference, naming the files.
pub(crate) fn check() -> Result<Checked> {
    if let Err(missing) = crate::bootstrap::dev_tools_present() {
        return Ok(Checked::Skipped(format!(
            "{missing} (`cargo xtask bootstrap --dev` installs trunk and wasm-bindgen-cli, \
             about 12 min on 2 cores)"
        )));
    }
    let root = sh::repo_root();
    let out = sh::target_dir().join("trunk-dist");
    // `--offline`: every tool is in place and trunk must not try to download any. It runs
    // the same cargo build as webdist, so the wasm is already built.
    sh::run(
        sh::cmd("trunk")
            .args(["build", "--release", "--offline", "--dist"])
            .arg(&out),
        "trunk build failed: the error above says why.",
    )?;
    let (ours, theirs) = (files(&root.join("dist"))?, files(&out)?);
    let differences = differences(&ours, &theirs);
    if !differences.is_empty() {
        return fail(format!(
            "trunk's build of index.html and webdist's dist/ differ:\n  {}\nSee `diff -r dist {}`; \
             webdist must write what trunk {} writes (webdist/src/page.rs and wasm.rs).",
            differences.join("\n  "),
            out.display(),
            crate::bootstrap::TRUNK_VERSION,
        ));
    }
    Ok(Checked::Same { files: ours.len() })
}

/// Each file that is only in `ours` (dist/), only in `theirs` (trunk's) or differs, as a line.
fn differences(
    ours: &BTreeMap<String, Vec<u8>>,
    theirs: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut found = Vec::new();
    for (name, bytes) in ours {
        match theirs.get(name) {
            None => found.push(format!("{name}: only in dist/")),
            Some(other) if other != bytes => found.push(format!("{name}: differs")),
            Some(_) => {}
        }
    }
    for name in theirs.keys().filter(|name| !ours.contains_key(*name)) {
        found.push(format!("{name}: only in trunk's build"));
    }
    found
}

/// Every file under `dir`, by its path relative to `dir`, with its bytes.
fn files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let here = dir.join(&relative);
        let entries = std::fs::read_dir(&here)
            .or_else(|err| fail(format!("could not list {}: {err}", here.display())))?;
        for entry in entries {
            let entry = entry.or_else(|err| fail(format!("listing {}: {err}", here.display())))?;
            let path = relative.join(entry.file_name());
            if entry.path().is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(entry.path()).or_else(|err| {
                    fail(format!("could not read {}: {err}", entry.path().display()))
                })?;
                found.insert(path.to_string_lossy().into_owned(), bytes);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_every_file_that_is_not_the_same() {
        let tree = |files: &[(&str, &str)]| -> BTreeMap<String, Vec<u8>> {
            files
                .iter()
                .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
                .collect()
        };
        let ours = tree(&[("index.html", "a"), ("app.js", "b"), ("old.css", "c")]);
        let theirs = tree(&[("index.html", "a"), ("app.js", "B"), ("new.css", "c")]);
        assert_eq!(
            differences(&ours, &theirs),
            [
                "app.js: differs",
                "old.css: only in dist/",
                "new.css: only in trunk's build"
            ]
        );
        assert!(differences(&ours, &ours).is_empty());
    }
}
