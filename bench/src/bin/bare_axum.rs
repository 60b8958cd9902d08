//! The second HTTP anchor: a bare axum hello world, built with the same release profile and
//! run with the same runtime as wirelab (`#[tokio::main]`, the multi-thread runtime; pinned
//! to one core by `taskset`, it runs one worker, as wirelab does there).
//!
//! Usage: `bare-axum PORT` (binds 127.0.0.1:PORT).

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let app = Router::new().fallback(get(|| async { "Hello World\n" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
