//! The connection-pool lab (issue 5 fills this in).

use std::sync::Arc;

use wirelab_shared::{PoolSpec, PoolStatus};

use crate::app::App;

/// The current or last run.
#[derive(Default)]
pub struct Pool {}

impl Pool {
    /// The current or last run's figures.
    pub fn status(&self) -> Option<PoolStatus> {
        None
    }

    /// Cancels the running run.
    pub fn cancel(&self) -> Result<String, String> {
        Err("no pool run is going".into())
    }
}

/// Starts a run.
pub fn start(_app: &Arc<App>, _spec: PoolSpec) -> Result<String, String> {
    Err("the pool lab is not built yet".into())
}
