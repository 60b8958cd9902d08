//! Reads `Cargo.lock` without a TOML parser: its `[[package]]` entries always list `name` and
//! then `version`, one `key = "value"` per line, which is all this needs.

use crate::sh::{Result, fail, repo_root};

/// The version `Cargo.lock` pins for `package`; fails when it is missing or pinned twice.
pub(crate) fn locked_version(package: &str) -> Result<String> {
    let path = repo_root().join("Cargo.lock");
    let text = std::fs::read_to_string(&path).or_else(|err| {
        fail(format!(
            "could not read {}: {err}. Run `cargo generate-lockfile` at the repo root.",
            path.display()
        ))
    })?;
    let versions = versions_of(&text, package);
    match versions.as_slice() {
        [version] => Ok(version.clone()),
        [] => fail(format!(
            "Cargo.lock pins no `{package}` package; run `cargo update -p {package}` or check \
             that the frontend still depends on it."
        )),
        many => fail(format!(
            "Cargo.lock pins several `{package}` versions ({}); the frontend needs exactly one. \
             Align them in Cargo.toml, then `cargo update -p {package}`.",
            many.join(", ")
        )),
    }
}

/// Every version of `package` that `lock` (a Cargo.lock's text) lists.
fn versions_of(lock: &str, package: &str) -> Vec<String> {
    let mut versions = Vec::new();
    let mut in_package = false;
    for line in lock.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = false;
        } else if let Some(name) = value_of(line, "name") {
            in_package = name == package;
        } else if let Some(version) = value_of(line, "version").filter(|_| in_package) {
            versions.push(version.to_owned());
            in_package = false;
        }
    }
    versions
}

/// The string value of `line` when it reads `key = "value"`.
fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line
        .strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    rest.strip_prefix('"')?.strip_suffix('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "wasm-bindgen-macro",
]

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.130"
"#;

    #[test]
    fn finds_only_the_exact_package() {
        assert_eq!(versions_of(LOCK, "wasm-bindgen"), ["0.2.130"]);
        assert!(versions_of(LOCK, "wasm").is_empty());
    }

    #[test]
    fn the_workspace_lock_pins_one_wasm_bindgen() {
        let version = locked_version("wasm-bindgen").expect("Cargo.lock pins wasm-bindgen");
        assert!(version.starts_with("0.2."), "{version}");
    }

    /// webdist's wasm-bindgen (the library) must be the crate's version, as the CLI must.
    #[test]
    fn webdist_runs_the_wasm_bindgen_the_frontend_uses() {
        assert_eq!(
            locked_version("wasm-bindgen-cli-support").expect("webdist's wasm-bindgen"),
            locked_version("wasm-bindgen").expect("the frontend's wasm-bindgen"),
        );
    }
}
