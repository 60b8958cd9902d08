//! The dashboard's HTTP side: the page, `/ws`, `/api`, `/healthz`.
//!
//! - [`assets`]: the built dashboard (`dist/`), embedded in release builds.
//! - [`auth`]: the Origin and token checks.

pub mod assets;
pub mod auth;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::app::App;
use crate::ws;

/// The dashboard's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/ws", get(ws::upgrade::handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(assets::serve)
        .with_state(app)
}
