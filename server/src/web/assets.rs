//! The dashboard's files. A release build embeds `dist/` (built by `cargo xtask dist`), so
//! the one binary is a complete install; a debug build reads `dist/` from disk. Without a
//! built dashboard, every page says how to build it.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../dist"]
#[allow_missing = true]
struct Dist;

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>wirelab</title>\
<body style=\"font:16px system-ui;max-width:40em;margin:4em auto\">\
<h1>wirelab is running, but its dashboard was not built</h1>\
<p>This binary was built without the dashboard. Build it with <code>cargo xtask lab</code> \
(or <code>cargo xtask dist</code>, then rebuild the server), or run <code>cargo xtask serve</code> \
beside <code>cargo run -p wirelab</code> and open the page trunk prints.</p>\
<p>The services and <code>/ws</code> work all the same.</p>";

/// Serves a file from `dist/`; paths that are not files get the page itself.
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (file, path) = match Dist::get(path).filter(|_| !path.is_empty()) {
        Some(file) => (file, path),
        None => match Dist::get("index.html") {
            Some(file) => (file, "index.html"),
            None => {
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    NOT_BUILT,
                )
                    .into_response();
            }
        },
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = (
        [(header::CONTENT_TYPE, mime.as_ref())],
        file.data.into_owned(),
    )
        .into_response();
    let headers = response.headers_mut();
    // dist/ (trunk's layout) has a content hash in every file name but the page's own.
    let cache = if path == "index.html" {
        "no-cache"
    } else {
        "public, max-age=31536000, immutable"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if path == "index.html" {
        // Nothing from elsewhere: the page works offline and can't be made to load
        // a foreign script. The loader (trunk's) is an inline module script.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
                 style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
                 frame-ancestors 'none'",
            ),
        );
    }
    response
}
