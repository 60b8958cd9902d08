//! The HTTP service (issue 5 fills this in).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wirelab_shared::state::HttpConnInfo;

use crate::app::App;
use crate::config::Config;

/// Handle on the HTTP service.
pub struct Http {}

impl Http {
    /// A handle configured by `config`.
    pub fn new(_config: &Config) -> Http {
        Http {}
    }

    /// The open connections and the requests each carried.
    pub fn conns(&self) -> Vec<HttpConnInfo> {
        Vec::new()
    }
}

/// Sends exchange `exchange`'s request again.
pub async fn replay(_app: &Arc<App>, _exchange: u64) -> Result<String, String> {
    Err("the HTTP service is not built yet".into())
}

/// Serves until `shutdown`.
pub async fn run(_listener: TcpListener, _app: Arc<App>, shutdown: CancellationToken) {
    shutdown.cancelled().await;
}
