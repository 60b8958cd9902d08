//! The TCP service (issue 4 fills this in).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wirelab_shared::TcpConnInfo;

use crate::app::App;
use crate::config::Config;

/// Handle on the TCP service.
pub struct Tcp {}

impl Tcp {
    /// A handle configured by `config`.
    pub fn new(_config: &Config) -> Tcp {
        Tcp {}
    }

    /// The open connections.
    pub fn infos(&self) -> Vec<TcpConnInfo> {
        Vec::new()
    }

    /// Sends bytes from the page to one connection, or to all.
    pub async fn send(&self, _app: &App, _conn: Option<u64>, _bytes: &[u8]) -> Result<String, String> {
        Err("the TCP service is not built yet".into())
    }

    /// Closes (FIN) or resets (RST) a connection.
    pub fn close(&self, _conn: u64, _reset: bool) -> Result<String, String> {
        Err("the TCP service is not built yet".into())
    }

    /// `--bridge`: sends to every connection but `except`.
    pub fn relay(&self, _except: Option<u64>, _bytes: &[u8]) {}
}

/// Opens a connection from the lab to `addr`.
pub async fn connect(_app: &Arc<App>, _addr: &str) -> Result<String, String> {
    Err("the TCP service is not built yet".into())
}

/// Accepts connections until `shutdown`.
pub async fn run(_listener: TcpListener, _app: Arc<App>, shutdown: CancellationToken) {
    shutdown.cancelled().await;
}
