//! `wirelab-webdist`: builds the dashboard into a directory the way `trunk build --release`
//! does, without trunk.
//!
//! ```text
//! wirelab-webdist --out DIR [--html index.html] [--scratch DIR] [--wasm-opt PATH]
//! ```
//!
//! trunk takes about 9 minutes to compile on 2 cores, and wasm-bindgen's CLI 2.5 more; this
//! tool is wasm-bindgen's own library and a few hundred lines, so a first `cargo xtask lab`
//! does not wait for them. `cargo xtask dist` runs it; trunk stays the tool for `trunk serve`.
//! It reads the same `index.html` and writes the same files trunk 0.21 writes: the wasm
//! (cargo, then wasm-bindgen, then wasm-opt at the page's `data-wasm-opt` level) and its JS
//! under content-hashed names, the CSS likewise, and the page with the links replaced by
//! trunk's loader script and its SRI preloads. `cargo xtask test` compares the two outputs
//! byte for byte wherever trunk is installed.
//!
//! # Layout
//!
//! - `main.rs`: the flags, and the steps in order, each announced with a rough first-run time
//!   and followed by its real one.
//! - `page.rs`: finds index.html's `data-trunk` links (refusing the kinds it does not
//!   reproduce), and writes the finished page.
//! - `wasm.rs`: the cargo build for wasm32 (the artifact named by cargo's JSON messages),
//!   wasm-bindgen with the CLI's defaults, and wasm-opt.
//! - `digest.rs`: trunk's content hash for file names (seahash) and SRI digests (sha384).

mod digest;
mod page;
mod wasm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::page::Page;

const USAGE: &str = "usage: wirelab-webdist --out DIR [--html index.html] [--scratch DIR] \
                     [--wasm-opt PATH]";

/// What the flags say.
struct Args {
    /// The page to build (trunk's `[build] target`); its directory is where cargo runs.
    html: PathBuf,
    /// The directory to fill (emptied first), as trunk's `--dist`.
    out: PathBuf,
    /// Where wasm-bindgen's and wasm-opt's intermediate files go (trunk uses `target/`).
    scratch: PathBuf,
    /// The wasm-opt to run (binaryen 132 from `cargo xtask bootstrap`).
    wasm_opt: PathBuf,
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wirelab-webdist: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Args> {
    let (mut html, mut out, mut scratch, mut wasm_opt) = (None, None, None, None);
    let mut args = std::env::args_os().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.to_str() {
            Some("--html") => &mut html,
            Some("--out") => &mut out,
            Some("--scratch") => &mut scratch,
            Some("--wasm-opt") => &mut wasm_opt,
            _ => bail!("unexpected argument {flag:?}\n{USAGE}"),
        };
        let value = args
            .next()
            .with_context(|| format!("{flag:?} needs a value"))?;
        *slot = Some(PathBuf::from(value));
    }
    let Some(out) = out else {
        bail!("--out is required\n{USAGE}")
    };
    Ok(Args {
        html: html.unwrap_or_else(|| "index.html".into()),
        scratch: scratch.unwrap_or_else(|| "target/webdist".into()),
        wasm_opt: wasm_opt.unwrap_or_else(|| "wasm-opt".into()),
        out,
    })
}

fn run(args: &Args) -> Result<()> {
    let source = std::fs::read_to_string(&args.html)
        .with_context(|| format!("reading {}", args.html.display()))?;
    let page = Page::parse(&source).with_context(|| format!("in {}", args.html.display()))?;
    let root = args.html.parent().unwrap_or(Path::new(".")).to_path_buf();
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    let app = page.rust_app()?;

    if args.out.exists() {
        std::fs::remove_dir_all(&args.out)
            .with_context(|| format!("emptying {}", args.out.display()))?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let built = step(
        &format!(
            "cargo build of the dashboard's wasm (profile {})",
            app.profile.as_deref().unwrap_or("release")
        ),
        "about 1 min",
        || wasm::cargo_build(&root, app),
    )?;
    let mut output = step("wasm-bindgen --target web", "about 1 s", || {
        wasm::bindgen(app, &built, &args.scratch, &args.out)
    })?;
    if let Some(level) = app.wasm_opt.flag() {
        step(&format!("wasm-opt {level}"), "about 10 s", || {
            wasm::optimize(
                &args.wasm_opt,
                level,
                app,
                &args.scratch,
                &args.out,
                &output,
            )
        })?;
    }
    output.record_wasm_digest(&args.out)?;
    let html = page.render(&root, &args.out, &output)?;
    let index = args.out.join("index.html");
    std::fs::write(&index, html).with_context(|| format!("writing {}", index.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Runs `work`, announced as `name` with roughly how long it takes on a first run on 2 cores,
/// then says how long it took (the same lines as `cargo xtask`'s own steps).
fn step<T>(name: &str, first_run: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    println!("\n==> {name}  [first run on 2 cores: {first_run}]");
    let start = Instant::now();
    let value = work().with_context(|| name.to_owned())?;
    println!("==> {name}: done in {:.1}s", start.elapsed().as_secs_f64());
    Ok(value)
}
