//! index.html: its `data-trunk` links in, the finished page out, as trunk 0.21 writes it.
//!
//! trunk rewrites the page with lol_html, which leaves every byte alone but the elements it
//! replaces: each `<link data-trunk rel="css">` becomes a stylesheet link to the hashed copy,
//! the `<link data-trunk rel="rust">` becomes the loader script, and the SRI preloads go at
//! the end of `<head>`. This does the same with string splicing, and refuses any trunk
//! feature it does not reproduce (another `rel`, another attribute), so the two builds can't
//! silently differ.

use std::ops::Range;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::digest;
use crate::wasm::Output;

/// The page's text and its `data-trunk` links.
pub(crate) struct Page {
    /// index.html as read.
    source: String,
    /// Each `data-trunk` link, in document order.
    links: Vec<Link>,
}

/// One `<link data-trunk …>`: where it is and what it asks for.
struct Link {
    /// The whole tag's bytes in [`Page::source`].
    span: Range<usize>,
    kind: Kind,
}

enum Kind {
    /// `rel="css"`: a stylesheet, copied under a hashed name.
    Css { href: String },
    /// `rel="rust"`: the app.
    Rust(RustApp),
}

/// What the `rel="rust"` link asks for.
pub(crate) struct RustApp {
    /// The crate's directory (or its Cargo.toml), relative to the page.
    pub(crate) href: String,
    /// `data-bin`: the binary to build, which also names the output files.
    pub(crate) bin: String,
    /// `data-cargo-profile`; without it trunk's release build uses `--release`.
    pub(crate) profile: Option<String>,
    /// `data-wasm-opt`.
    pub(crate) wasm_opt: OptLevel,
    /// `data-wasm-opt-params`: more wasm-opt arguments, after the level and the file.
    pub(crate) wasm_opt_params: Vec<String>,
    /// `data-cargo-all-features`, `data-cargo-no-default-features` and
    /// `data-cargo-features`, as cargo arguments in trunk's order.
    pub(crate) cargo_features: Vec<String>,
}

/// `data-wasm-opt`: absent means wasm-opt's default passes (`-O`), `0` means no wasm-opt.
pub(crate) struct OptLevel(Option<String>);

impl OptLevel {
    /// wasm-opt's flag (`-Oz`), or None when wasm-opt is off.
    pub(crate) fn flag(&self) -> Option<String> {
        match self.0.as_deref() {
            None => Some("-O".to_owned()),
            Some("0") => None,
            Some(level) => Some(format!("-O{level}")),
        }
    }
}

/// The attributes the trunk-free build reproduces, per kind; anything else is refused.
const CSS_ATTRS: &[&str] = &["data-trunk", "rel", "href"];
const RUST_ATTRS: &[&str] = &[
    "data-trunk",
    "rel",
    "href",
    "data-bin",
    "data-cargo-profile",
    "data-wasm-opt",
    "data-wasm-opt-params",
    "data-cargo-features",
    "data-cargo-no-default-features",
    "data-cargo-all-features",
    "data-type",
];

impl Page {
    /// Finds the `data-trunk` links in `source`.
    pub(crate) fn parse(source: &str) -> Result<Page> {
        let mut links = Vec::new();
        for tag in tags(source) {
            let tag = tag?;
            let trunk = tag.attrs.iter().any(|(name, _)| name == "data-trunk");
            if !trunk {
                continue;
            }
            if tag.name != "link" {
                bail!(
                    "<{} data-trunk> is not reproduced by the trunk-free build (only \
                     <link data-trunk rel=\"css\"> and rel=\"rust\" are); build with trunk, \
                     or teach webdist/src/page.rs",
                    tag.name
                );
            }
            let kind = link_kind(&tag.attrs)?;
            links.push(Link {
                span: tag.span,
                kind,
            });
        }
        let apps = links
            .iter()
            .filter(|link| matches!(link.kind, Kind::Rust(_)))
            .count();
        if apps != 1 {
            bail!("expected exactly one <link data-trunk rel=\"rust\">, found {apps}");
        }
        if !source.contains("</head>") {
            bail!("no </head>: trunk puts the preload links at the end of <head>");
        }
        Ok(Page {
            source: source.to_owned(),
            links,
        })
    }

    /// The `rel="rust"` link (there is exactly one: [`Page::parse`] checked).
    pub(crate) fn rust_app(&self) -> Result<&RustApp> {
        self.links
            .iter()
            .find_map(|link| match &link.kind {
                Kind::Rust(app) => Some(app),
                Kind::Css { .. } => None,
            })
            .context("no <link data-trunk rel=\"rust\">")
    }

    /// Copies the stylesheets (from `root`, the page's directory) into `out` under hashed
    /// names, and returns the finished page for the app's `output`.
    pub(crate) fn render(&self, root: &Path, out: &Path, output: &Output) -> Result<String> {
        let mut html = String::with_capacity(self.source.len() + 1024);
        let mut at = 0;
        for link in &self.links {
            html.push_str(&self.source[at..link.span.start]);
            match &link.kind {
                Kind::Css { href } => html.push_str(&stylesheet(root, href, out)?),
                Kind::Rust(_) => html.push_str(&output.loader_script()),
            }
            at = link.span.end;
        }
        html.push_str(&self.source[at..]);
        // lol_html's `append` on <head>: just before its end tag.
        let head_end = html.find("</head>").context("no </head>")?;
        html.insert_str(head_end, &output.preload_links());
        Ok(html)
    }
}

/// Reads a `data-trunk` link's attributes into what it asks for.
fn link_kind(attrs: &[(String, String)]) -> Result<Kind> {
    let get = |name: &str| {
        attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let rel = get("rel").unwrap_or_default();
    let allowed = match rel.as_str() {
        "css" => CSS_ATTRS,
        "rust" => RUST_ATTRS,
        other => bail!(
            "<link data-trunk rel=\"{other}\"> is not reproduced by the trunk-free build \
             (only rel=\"css\" and rel=\"rust\" are); build with trunk, or teach \
             webdist/src/page.rs"
        ),
    };
    if let Some((name, _)) = attrs.iter().find(|(name, _)| !allowed.contains(&&**name)) {
        bail!(
            "<link data-trunk rel=\"{rel}\"> has `{name}`, which the trunk-free build does not \
             reproduce; drop it, or teach webdist/src/page.rs what trunk does with it"
        );
    }
    let href =
        get("href").with_context(|| format!("<link data-trunk rel=\"{rel}\"> has no href"))?;
    if rel == "css" {
        return Ok(Kind::Css { href });
    }
    if get("data-type").is_some_and(|kind| kind != "main") {
        bail!("only data-type=\"main\" is reproduced (a worker is not)");
    }
    let bin = get("data-bin").context(
        "the rel=\"rust\" link needs data-bin (the binary to build, which names the files)",
    )?;
    let (features, no_default) = (
        get("data-cargo-features"),
        get("data-cargo-no-default-features").is_some(),
    );
    let cargo_features = if get("data-cargo-all-features").is_some() {
        if no_default || features.is_some() {
            bail!("data-cargo-all-features can't go with the other two feature attributes");
        }
        vec!["--all-features".to_owned()]
    } else {
        let mut args = Vec::new();
        if no_default {
            args.push("--no-default-features".to_owned());
        }
        if let Some(features) = features {
            args.extend(["--features".to_owned(), features]);
        }
        args
    };
    Ok(Kind::Rust(RustApp {
        href,
        bin,
        profile: get("data-cargo-profile"),
        wasm_opt: OptLevel(get("data-wasm-opt")),
        wasm_opt_params: get("data-wasm-opt-params")
            .map(|params| params.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        cargo_features,
    }))
}

/// Copies the stylesheet `href` into `out` as `stem-HASH.ext` and returns trunk's link to it.
fn stylesheet(root: &Path, href: &str, out: &Path) -> Result<String> {
    let path = root.join(href);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
        bail!("{href}: a stylesheet needs a name with an extension");
    };
    let name = format!(
        "{}-{}.{}",
        stem.to_string_lossy(),
        digest::file_hash(&bytes),
        ext.to_string_lossy()
    );
    std::fs::write(out.join(&name), &bytes).with_context(|| format!("writing {name}"))?;
    Ok(format!(
        r#"<link rel="stylesheet" href="/{name}" integrity="{}"/>"#,
        digest::sri(&bytes)
    ))
}

/// One start tag.
struct Tag {
    /// Its lowercased name.
    name: String,
    /// Its attributes, names lowercased, values as written (no entity decoding: the
    /// attributes this reads are paths and names).
    attrs: Vec<(String, String)>,
    /// From `<` to `>`, inclusive.
    span: Range<usize>,
}

/// The `<link>` and `<script>` start tags of `html`, skipping comments and scripts' text.
fn tags(html: &str) -> impl Iterator<Item = Result<Tag>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        loop {
            let start = at + html[at..].find('<')?;
            let rest = &html[start..];
            if rest.starts_with("<!--") {
                at = match rest.find("-->") {
                    Some(end) => start + end + 3,
                    None => return Some(Err(anyhow::anyhow!("unclosed <!-- comment"))),
                };
                continue;
            }
            at = start + 1;
            let name_len = rest[1..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len() - 1);
            let name = rest[1..=name_len].to_ascii_lowercase();
            if name != "link" && name != "script" {
                continue;
            }
            return Some(match attributes(&rest[1 + name_len..]) {
                Ok((attrs, len)) => {
                    let end = start + 1 + name_len + len;
                    // A script's text is not markup: resume after its end tag.
                    at = match html[end..].find("</script") {
                        Some(close) if name == "script" => end + close,
                        _ => end,
                    };
                    Ok(Tag {
                        name,
                        attrs,
                        span: start..end,
                    })
                }
                Err(err) => Err(err.context(format!("in the <{name}> at byte {start}"))),
            });
        }
    })
}

/// Parses attributes up to and including the tag's `>`; returns them and the bytes read.
fn attributes(text: &str) -> Result<(Vec<(String, String)>, usize)> {
    let bytes = text.as_bytes();
    let mut attrs = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        match bytes.get(i) {
            None => bail!("the tag never ends"),
            Some(b'>') => return Ok((attrs, i + 1)),
            Some(_) => {}
        }
        let name_start = i;
        while i < bytes.len() && !b" \t\r\n=/>".contains(&bytes[i]) {
            i += 1;
        }
        let name = text[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let len = text[i + 1..]
                        .find(quote as char)
                        .with_context(|| format!("the value of {name} never ends"))?;
                    value = text[i + 1..i + 1 + len].to_owned();
                    i += len + 2;
                }
                _ => {
                    let start = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = text[start..i].to_owned();
                }
            }
        }
        attrs.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!doctype html>
<html><head>
    <!-- <link data-trunk rel="sass" href="old.scss"> -->
    <link rel="icon" href="data:image/svg+xml,%3Csvg/%3E" />
    <script>document.write('<link data-trunk rel="css" href="no.css">')</script>
    <link data-trunk rel="css" href="style.css" />
    <link data-trunk rel=rust href="frontend" data-bin="app" data-wasm-opt='z'>
</head><body></body></html>"#;

    #[test]
    fn finds_the_trunk_links_and_what_they_ask_for() {
        let page = Page::parse(PAGE).expect("parses");
        assert_eq!(
            page.links.len(),
            2,
            "the comment and the plain icon are skipped"
        );
        let css = &page.source[page.links[0].span.clone()];
        assert_eq!(css, r#"<link data-trunk rel="css" href="style.css" />"#);
        let app = page.rust_app().expect("has an app");
        assert_eq!((app.href.as_str(), app.bin.as_str()), ("frontend", "app"));
        assert_eq!(app.profile, None);
        assert_eq!(app.wasm_opt.flag().as_deref(), Some("-Oz"));
        assert!(app.wasm_opt_params.is_empty() && app.cargo_features.is_empty());
        assert!(page.source[page.links[1].span.clone()].ends_with("data-wasm-opt='z'>"));
    }

    #[test]
    fn refuses_what_it_does_not_reproduce() {
        let error = |html: &str| format!("{:#}", Page::parse(html).err().expect("refused"));
        let head = "<head><link data-trunk rel=\"rust\" href=\".\" data-bin=\"a\"/>";
        assert!(
            error(&format!(
                "{head}<link data-trunk rel=\"copy-dir\" href=\"x\"></head>"
            ))
            .contains("rel=\"copy-dir\"")
        );
        assert!(
            error(&format!(
                "{head}<link data-trunk rel=\"css\" href=\"a.css\" data-inline></head>"
            ))
            .contains("data-inline")
        );
        assert!(
            error(&format!(
                "{head}<script data-trunk src=\"a.js\"></script></head>"
            ))
            .contains("<script data-trunk>")
        );
        assert!(error("<head></head>").contains("exactly one"));
        assert!(
            error("<head><link data-trunk rel=\"rust\" href=\".\"></head>").contains("data-bin")
        );
    }

    #[test]
    fn features_and_wasm_opt_params_as_trunk_passes_them() {
        let app = |attrs: &str| {
            let html = format!(
                "<head><link data-trunk rel=\"rust\" href=\".\" data-bin=\"a\" {attrs}></head>"
            );
            let page = Page::parse(&html).map_err(|err| format!("{err:#}"))?;
            let app = page.rust_app().map_err(|err| format!("{err:#}"))?;
            Ok::<_, String>((app.cargo_features.join(" "), app.wasm_opt_params.join(" ")))
        };
        assert_eq!(
            app(
                "data-cargo-features=\"x y\" data-cargo-no-default-features data-wasm-opt-params=\" --strip-debug  -c\""
            ),
            Ok((
                "--no-default-features --features x y".to_owned(),
                "--strip-debug -c".to_owned()
            ))
        );
        assert_eq!(
            app("data-cargo-all-features"),
            Ok(("--all-features".to_owned(), String::new()))
        );
        assert!(app("data-cargo-all-features data-cargo-features=\"x\"").is_err());
    }

    #[test]
    fn wasm_opt_levels_as_trunk_reads_them() {
        let flag = |level: Option<&str>| OptLevel(level.map(str::to_owned)).flag();
        assert_eq!(flag(None).as_deref(), Some("-O"));
        assert_eq!(flag(Some("0")), None);
        assert_eq!(flag(Some("s")).as_deref(), Some("-Os"));
    }
}
