//! The app's three steps, as trunk 0.21's Rust pipeline runs them: cargo builds the wasm,
//! wasm-bindgen writes the JS glue and its wasm (both renamed with the hash of cargo's wasm),
//! wasm-opt optimizes that wasm in place; then the SRI digests of what was written.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use wasm_bindgen_cli_support::Bindgen;

use crate::digest;
use crate::page::RustApp;

/// What the app's build left in the output directory, for the page.
pub(crate) struct Output {
    /// The JS glue's file name (`NAME-HASH.js`).
    js: String,
    /// The wasm's file name (`NAME-HASH_bg.wasm`).
    wasm: String,
    /// The `<link rel=preload|modulepreload>`s, in trunk's order: the JS, its snippets,
    /// then the wasm (recorded last, after wasm-opt).
    preloads: Vec<Preload>,
}

/// One preload link with its SRI digest.
struct Preload {
    rel: &'static str,
    href: String,
    integrity: String,
    /// Attributes after `integrity` (the wasm's `as` and `type`).
    extra: &'static str,
}

/// `cargo build --target=wasm32-unknown-unknown` with the arguments trunk gives it (so the
/// two share cargo's cache), and returns the path of the wasm cargo wrote.
pub(crate) fn cargo_build(root: &Path, app: &RustApp) -> Result<PathBuf> {
    let mut manifest = root.join(&app.href);
    if !manifest.ends_with("Cargo.toml") {
        manifest.push("Cargo.toml");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--target=wasm32-unknown-unknown",
            "--manifest-path",
        ])
        .arg(&manifest);
    match &app.profile {
        Some(profile) => cmd.args(["--profile", profile]),
        None => cmd.arg("--release"),
    };
    cmd.args(["--bin", &app.bin]).args(&app.cargo_features);
    println!("$ {}", render(&cmd));
    // Diagnostics stay readable on stderr; stdout carries the messages naming the artifact.
    cmd.arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().context("could not start cargo")?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut wasm = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's messages")?;
        if let Some(path) = wasm_artifact(&line, &app.bin) {
            wasm = Some(path);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status}); its errors are above");
    }
    wasm.context("cargo built, but named no .wasm for the binary")
}

/// The `.wasm` of binary `bin` when `line` is cargo's `compiler-artifact` message for it.
fn wasm_artifact(line: &str, bin: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    let target = message.get("target")?;
    let is_bin = target
        .get("kind")?
        .as_array()?
        .iter()
        .any(|kind| kind == "bin");
    if message.get("reason")? != "compiler-artifact" || target.get("name")? != bin || !is_bin {
        return None;
    }
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|name| name.as_str())
        .find(|name| name.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// wasm-bindgen on cargo's `wasm` into `scratch`, then its two files into `out` under
/// trunk's hashed names (the hash is of cargo's wasm, as trunk's is).
pub(crate) fn bindgen(app: &RustApp, wasm: &Path, scratch: &Path, out: &Path) -> Result<Output> {
    let dir = scratch.join("wasm-bindgen");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // trunk runs `wasm-bindgen --target=web --out-dir=DIR --out-name=BIN WASM --no-typescript`;
    // the CLI turns that into these calls (wasm-bindgen-cli's `rmain`), defaults included,
    // since some of the library's own defaults differ (omit_default_module_path).
    let mut bindgen = Bindgen::new();
    bindgen.web(true)?;
    #[allow(deprecated)]
    bindgen
        .input_path(wasm)
        .debug(false)
        .demangle(true)
        .keep_lld_exports(false)
        .keep_debug(false)
        .split_debug_info(false)
        .remove_name_section(false)
        .remove_producers_section(false)
        .typescript(false)
        .omit_imports(false)
        .omit_default_module_path(false)
        .split_linked_modules(false)
        .js_string_builtins(false)
        .ts_typed_array_buffers(false)
        .reference_types(false)
        .reset_state_function(false)
        .force_enable_abort_handler(false)
        .out_name(&app.bin);
    bindgen.generate(&dir)?;

    let cargo_wasm = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let hashed = format!("{}-{}", app.bin, digest::file_hash(&cargo_wasm));
    let (js, wasm) = (format!("{hashed}.js"), format!("{hashed}_bg.wasm"));
    let js_bytes = copy(&dir.join(format!("{}.js", app.bin)), &out.join(&js))?;
    copy(&dir.join(format!("{}_bg.wasm", app.bin)), &out.join(&wasm))?;
    let mut preloads = vec![Preload::module(js.clone(), &js_bytes)];
    let snippets = dir.join("snippets");
    if snippets.is_dir() {
        let mut files = Vec::new();
        copy_tree(&snippets, &out.join("snippets"), "snippets", &mut files)?;
        // trunk lists them in hash-set order; sorted is as good, and stable.
        files.sort();
        for (href, bytes) in files {
            preloads.push(Preload::module(href, &bytes));
        }
    }
    Ok(Output { js, wasm, preloads })
}

/// `wasm-opt --output=SCRATCH/BIN_bg.wasm LEVEL OUT/WASM [PARAMS]`, then the result back over
/// the wasm in `out`: trunk's command, so the same binaryen makes the same bytes.
///
/// wasm-opt takes 10 s or more for the same result whenever the frontend did not change (a
/// second `cargo xtask lab`), so its last result is kept, keyed by its input, its arguments
/// and wasm-opt's version, and reused when all are the same.
pub(crate) fn optimize(
    wasm_opt: &Path,
    level: String,
    app: &RustApp,
    scratch: &Path,
    out: &Path,
    output: &Output,
) -> Result<()> {
    let dir = scratch.join("wasm-opt");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = out.join(&output.wasm);
    let version = Command::new(wasm_opt)
        .arg("--version")
        .output()
        .ok()
        .filter(|run| run.status.success())
        .with_context(|| {
            format!(
                "could not run {} --version (`cargo xtask bootstrap` installs binaryen's wasm-opt)",
                wasm_opt.display()
            )
        })?
        .stdout;
    let mut key =
        std::fs::read(&target).with_context(|| format!("reading {}", target.display()))?;
    key.extend_from_slice(level.as_bytes());
    for param in &app.wasm_opt_params {
        key.extend_from_slice(b"\0");
        key.extend_from_slice(param.as_bytes());
    }
    key.extend_from_slice(&version);
    let kept = dir.join(format!("{}.wasm", digest::file_hash(&key)));
    if kept.is_file() {
        println!(
            "same input, arguments and wasm-opt as last time: reusing {}",
            kept.display()
        );
        copy(&kept, &target)?;
        return Ok(());
    }

    let optimized = dir.join(format!("{}_bg.wasm", app.bin));
    let mut cmd = Command::new(wasm_opt);
    cmd.arg(format!("--output={}", optimized.display()))
        .arg(level)
        .arg(&target)
        .args(&app.wasm_opt_params);
    println!("$ {}", render(&cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", wasm_opt.display()))?;
    if !status.success() {
        bail!("wasm-opt failed ({status})");
    }
    copy(&optimized, &target)?;
    // Keep this result only: the directory holds one wasm, whatever the number of builds.
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") && path != optimized {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    std::fs::rename(&optimized, &kept).with_context(|| format!("keeping {}", kept.display()))?;
    Ok(())
}

impl Output {
    /// Records the wasm's preload with the digest of its final bytes.
    pub(crate) fn record_wasm_digest(&mut self, out: &Path) -> Result<()> {
        let path = out.join(&self.wasm);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        self.preloads.push(Preload {
            rel: "preload",
            href: self.wasm.clone(),
            integrity: digest::sri(&bytes),
            extra: r#" as="fetch" type="application/wasm""#,
        });
        Ok(())
    }

    /// trunk's default loader, which takes the rust link's place (trunk 0.21's
    /// `default_initializer`, for wasm-bindgen >= 0.2.93, no nonce, bindings imported).
    pub(crate) fn loader_script(&self) -> String {
        let (js, wasm) = (&self.js, &self.wasm);
        let bind = "\nwindow.wasmBindings = bindings;\n";
        let fire =
            "\ndispatchEvent(new CustomEvent(\"TrunkApplicationStarted\", {detail: {wasm}}));\n";
        format!(
            "\n<script type=\"module\">\nimport init, * as bindings from '/{js}';\n\
             const wasm = await init({{ module_or_path: '/{wasm}' }});\n\n{bind}\n{fire}\n</script>"
        )
    }

    /// The preload links trunk appends to `<head>`.
    pub(crate) fn preload_links(&self) -> String {
        self.preloads
            .iter()
            .map(|p| {
                format!(
                    r#"<link rel="{}" href="/{}" crossorigin="anonymous" integrity="{}"{}>"#,
                    p.rel, p.href, p.integrity, p.extra
                )
            })
            .collect()
    }
}

impl Preload {
    fn module(href: String, bytes: &[u8]) -> Preload {
        Preload {
            rel: "modulepreload",
            href,
            integrity: digest::sri(bytes),
            extra: "",
        }
    }
}

/// Copies `from` to `to` and returns the bytes.
fn copy(from: &Path, to: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    std::fs::write(to, &bytes).with_context(|| format!("writing {}", to.display()))?;
    Ok(bytes)
}

/// Copies the tree `from` into `to`, listing each file as (`href` under `prefix`, bytes).
fn copy_tree(
    from: &Path,
    to: &Path,
    prefix: &str,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let href = format!("{prefix}/{name}");
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &to.join(&name), &href, files)?;
        } else {
            files.push((href, copy(&entry.path(), &to.join(&name))?));
        }
    }
    Ok(())
}

/// `cmd` as a line for the log.
fn render(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let mut line = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_binarys_wasm_in_cargos_messages() {
        let artifact = r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"app"},"filenames":["/t/app.d","/t/app.wasm"]}"#;
        assert_eq!(wasm_artifact(artifact, "app"), Some("/t/app.wasm".into()));
        assert_eq!(wasm_artifact(artifact, "other"), None);
        let lib = artifact.replace(r#"["bin"]"#, r#"["lib"]"#);
        assert_eq!(wasm_artifact(&lib, "app"), None);
        assert_eq!(wasm_artifact("Compiling app", "app"), None);
    }

    #[test]
    fn loader_and_preloads_as_trunk_writes_them() {
        let mut output = Output {
            js: "app-1f.js".into(),
            wasm: "app-1f_bg.wasm".into(),
            preloads: vec![Preload::module("app-1f.js".into(), b"js")],
        };
        let dir = std::env::temp_dir().join(format!("webdist-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("app-1f_bg.wasm"), b"wasm").expect("write");
        output.record_wasm_digest(&dir).expect("digest");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(
            output.preload_links(),
            format!(
                r#"<link rel="modulepreload" href="/app-1f.js" crossorigin="anonymous" integrity="{}"><link rel="preload" href="/app-1f_bg.wasm" crossorigin="anonymous" integrity="{}" as="fetch" type="application/wasm">"#,
                digest::sri(b"js"),
                digest::sri(b"wasm")
            )
        );
        let script = output.loader_script();
        assert!(script.starts_with(
            "\n<script type=\"module\">\nimport init, * as bindings from '/app-1f.js';\n"
        ));
        assert!(script.contains("await init({ module_or_path: '/app-1f_bg.wasm' });\n\n\nwindow.wasmBindings = bindings;\n\n\ndispatchEvent("));
        assert!(script.ends_with("{detail: {wasm}}));\n\n</script>"));
    }
}
