//! The connection-pool lab: the seed's `http.Agent` made visible. A run sends N requests
//! at concurrency C through a pool of at most K connections (or none), and the server
//! pushes its figures live.

use serde::{Deserialize, Serialize};

/// What a pool run does; sent with the `pool_start` command.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default)]
pub struct PoolSpec {
    /// Where to send the requests: a URL. Empty means the lab's own HTTP service at
    /// `/_/delay/50`. Other hosts need `--allow-outbound`.
    pub url: String,
    /// How many requests in all (1 to 10,000).
    pub requests: u32,
    /// How many requests are in flight at once (what the page's "clients" want).
    pub concurrency: u32,
    /// At most this many pooled connections (the Agent's `maxSockets`).
    pub max_conns: u32,
    /// Keep connections alive between requests. Off: a connection per request, but the
    /// pool still caps how many are open at once.
    pub keep_alive: bool,
    /// Leave the pool behind (`agent: false`): every request opens its own connection,
    /// with no limit but the concurrency.
    pub no_pool: bool,
}

impl Default for PoolSpec {
    fn default() -> Self {
        PoolSpec {
            url: String::new(),
            requests: 200,
            concurrency: 20,
            max_conns: 5,
            keep_alive: true,
            no_pool: false,
        }
    }
}

/// Where a run is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum PoolState {
    #[default]
    Running,
    Done,
    Cancelled,
    Failed,
}

/// A run's live figures, pushed at least five times a second while it runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct PoolStatus {
    pub run: u64,
    pub state: PoolState,
    pub spec: PoolSpec,
    /// Connections carrying a request now (the Agent's `sockets`).
    pub in_use: u32,
    /// Open connections waiting in the pool for a request.
    pub idle: u32,
    /// Requests waiting for a connection (the Agent's `requests`).
    pub waiting: u32,
    /// Connections opened since the run began.
    pub opened: u64,
    /// Requests answered.
    pub done: u64,
    /// Requests that failed.
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub elapsed_us: u64,
    /// Why the run failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PoolStatus {
    /// Requests per connection opened: 1.0 means no reuse at all.
    pub fn reuse_ratio(&self) -> f64 {
        if self.opened == 0 {
            0.0
        } else {
            self.done as f64 / self.opened as f64
        }
    }
}
