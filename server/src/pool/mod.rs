//! The connection-pool lab: the seed's `http.Agent` made visible. A run sends N requests
//! at concurrency C through a pool of at most K connections, with keep-alive on or off,
//! or with no pool at all (`agent: false`), and its figures are pushed live.
//!
//! ## Layout
//! - [`target`]: the URL a run hits (the lab's own `/_/delay/50` by default; loopback
//!   only unless `--allow-outbound`).
//! - [`run`]: the workers, the deadpool pool of hyper client connections, the ticker.
//! - [`stats`]: counters and the latency histogram.
//!
//! One run at a time: starting another while one goes on is refused.

pub mod run;
pub mod stats;
pub mod target;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use wirelab_shared::{EventKind, PoolSpec, PoolState, PoolStatus, ServerMsg};

use crate::hub::{Frame, Hub, lock};
use run::Run;
use target::Target;

/// Most requests in one run.
pub const MAX_REQUESTS: u32 = 10_000;
/// Most requests in flight at once.
pub const MAX_CONCURRENCY: u32 = 1_000;
/// Most pooled connections.
pub const MAX_CONNS: u32 = 1_000;

/// The current or last run.
pub struct Pool {
    /// Behind a lock held only for a few statements, never across an await.
    inner: Mutex<Inner>,
    /// Where its events and live figures go.
    hub: Arc<Hub>,
    /// `--allow-outbound`: a run may target a host off loopback.
    allow_outbound: bool,
    /// The lab's shutdown: a run is cancelled with it.
    shutdown: CancellationToken,
}

#[derive(Default)]
struct Inner {
    /// The last run number given out.
    last_run: u64,
    /// The run going on.
    current: Option<Arc<Run>>,
    /// The figures of the last run that ended.
    last: Option<PoolStatus>,
}

impl Pool {
    /// No run yet; runs publish to `hub` and end at `shutdown`.
    pub fn new(hub: Arc<Hub>, allow_outbound: bool, shutdown: CancellationToken) -> Pool {
        Pool {
            inner: Mutex::default(),
            hub,
            allow_outbound,
            shutdown,
        }
    }

    /// The current run's live figures, or the last run's final ones.
    pub fn status(&self) -> Option<PoolStatus> {
        let (current, last) = {
            let inner = lock(&self.inner);
            match &inner.current {
                Some(run) => (Some(run.clone()), None),
                None => (None, inner.last.clone()),
            }
        };
        match current {
            Some(run) => Some(run.status(PoolState::Running)),
            None => last,
        }
    }

    /// Cancels the running run; it ends promptly as `cancelled`.
    pub fn cancel(&self) -> Result<String, String> {
        match &lock(&self.inner).current {
            Some(run) => {
                run.cancel.cancel();
                Ok(format!("cancelling pool run #{}", run.id))
            }
            None => Err("no pool run is going".into()),
        }
    }
}

/// Checks `spec` and starts a run in the background; the ack names it.
/// An empty URL targets the lab's own HTTP service, at `own_http`.
pub fn start(
    pool: &Arc<Pool>,
    own_http: Result<SocketAddr, String>,
    mut spec: PoolSpec,
) -> Result<String, String> {
    check(&spec)?;
    let target = if spec.url.trim().is_empty() {
        Target::own(own_http?)
    } else {
        Target::parse(&spec.url, pool.allow_outbound)?
    };
    spec.url = target.url.clone();
    let run = {
        let mut inner = lock(&pool.inner);
        if let Some(run) = &inner.current {
            return Err(format!(
                "pool run #{} is still going: cancel it or wait for it to end (one run at a time)",
                run.id
            ));
        }
        let run = Arc::new(Run::new(
            inner.last_run + 1,
            spec,
            target,
            pool.shutdown.child_token(),
        )?);
        inner.last_run += 1;
        inner.current = Some(run.clone());
        run
    };
    let s = &run.spec;
    let how = match (s.no_pool, s.keep_alive) {
        (true, _) => "with no pool (a new connection per request)".to_owned(),
        (false, true) => format!(
            "through a pool of at most {} keep-alive connections",
            s.max_conns
        ),
        (false, false) => format!(
            "through a pool of at most {} connections, keep-alive off",
            s.max_conns
        ),
    };
    let ack = format!(
        "pool run #{} started: {} requests to {} at concurrency {} {how}",
        run.id, s.requests, s.url, s.concurrency
    );
    tokio::spawn(run::drive(pool.clone(), run));
    Ok(ack)
}

/// Refuses a spec out of bounds, saying which bound.
fn check(spec: &PoolSpec) -> Result<(), String> {
    if !(1..=MAX_REQUESTS).contains(&spec.requests) {
        return Err(format!(
            "requests must be 1 to {MAX_REQUESTS}, not {}",
            spec.requests
        ));
    }
    if !(1..=MAX_CONCURRENCY).contains(&spec.concurrency) {
        return Err(format!(
            "concurrency must be 1 to {MAX_CONCURRENCY}, not {}",
            spec.concurrency
        ));
    }
    if !spec.no_pool && !(1..=MAX_CONNS).contains(&spec.max_conns) {
        return Err(format!(
            "max_conns must be 1 to {MAX_CONNS}, not {}",
            spec.max_conns
        ));
    }
    Ok(())
}

/// Ends `run` as `state`: keeps its final figures, tells every dashboard, and frees the
/// lab for the next run.
fn finish(pool: &Pool, run: &Run, state: PoolState) {
    let mut status = run.status(state);
    if state == PoolState::Failed {
        status.error = Some(
            run.first_error()
                .unwrap_or_else(|| "no request was answered".into()),
        );
    }
    {
        let mut inner = lock(&pool.inner);
        inner.last = Some(status.clone());
        if inner.current.as_ref().is_some_and(|c| c.id == run.id) {
            inner.current = None;
        }
    }
    pool.hub
        .broadcast(Frame::message(&ServerMsg::Pool(status.clone())));
    pool.hub.publish(EventKind::PoolFinished {
        run: run.id,
        status,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_out_of_bounds_are_refused() {
        let ok = PoolSpec::default();
        assert!(check(&ok).is_ok());
        let bad = |f: fn(&mut PoolSpec)| {
            let mut s = PoolSpec::default();
            f(&mut s);
            check(&s).unwrap_err()
        };
        assert!(bad(|s| s.requests = 0).contains("requests"));
        assert!(bad(|s| s.requests = 10_001).contains("requests"));
        assert!(bad(|s| s.concurrency = 0).contains("concurrency"));
        assert!(bad(|s| s.max_conns = 0).contains("max_conns"));
        let mut no_pool = PoolSpec {
            no_pool: true,
            max_conns: 0,
            ..PoolSpec::default()
        };
        assert!(check(&no_pool).is_ok());
        no_pool.requests = 10_000;
        assert!(check(&no_pool).is_ok());
    }
}
