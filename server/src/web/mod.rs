//! The dashboard's HTTP side: the page, `/ws`, `/api`, `/healthz`, `/metrics`.
//!
//! - [`assets`]: the built dashboard (`dist/`), embedded in release builds.
//! - [`auth`]: the Origin and token checks.
//! - [`metrics`]: `/metrics` in Prometheus text format.
//! - [`api`]: `/api`, the recorded history and its exports.

pub mod api;
pub mod assets;
pub mod auth;
pub mod metrics;

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
        .route("/metrics", get(metrics::handler))
        .merge(api::routes())
        .fallback(assets::serve)
        .with_state(app)
}
