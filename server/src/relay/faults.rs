//! A proxy's toxics (or one of the lab's services': `@tcp`, `@http`, `@udp`) changed from
//! the API or the page, alike: each change is checked as toxiproxy checks it, applied (to
//! the live connections too), and a timeline event, in the order they happened. And the
//! fault lines of a proxy's connections, whose notes are `relay_fault` events
//! ([`reporter`], which the services' lines use too).

use std::sync::Arc;

use wirelab_shared::{EventKind, Leg};

use super::proxy::{Proxy, RelayConn};
use super::{RelayError, Relays};
use crate::faults::line::Reporter;
use crate::faults::{Entry, Line, ToxicError, Toxics};
use crate::hub::{Hub, lock};
use crate::pipeline::Flow;

/// Why a change of toxics failed: the proxy, or the toxic.
#[derive(Debug, PartialEq, Eq)]
pub enum ToxicOpError {
    /// The proxy (toxiproxy's 404 `proxy not found`).
    Proxy(RelayError),
    /// The toxic (toxiproxy's statuses and words).
    Toxic(ToxicError),
}

impl From<ToxicError> for ToxicOpError {
    fn from(e: ToxicError) -> ToxicOpError {
        ToxicOpError::Toxic(e)
    }
}

impl std::fmt::Display for ToxicOpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToxicOpError::Proxy(e) => e.fmt(f),
            ToxicOpError::Toxic(e) => e.fmt(f),
        }
    }
}

/// The fault line of `flow` on `conn` (a relayed connection or a UDP session) of `proxy`:
/// what its toxics do is said in `relay_fault` events, and the names of those that apply
/// are kept for its row. `seed` makes its draws (both directions take the same).
pub(super) fn fault_line(
    relays: &Relays,
    proxy: &Proxy,
    conn: &RelayConn,
    flow: Flow,
    seed: u64,
) -> Line {
    let report = reporter(&relays.hub, &proxy.name, conn.id, &conn.peer_text, flow);
    let shown = conn.faults[flow as usize].clone();
    Line::new(flow, proxy.toxics.clone(), seed, report, shown).of(conn.id, conn.peer)
}

/// Where a fault line of `flow` on connection `conn` (0: a UDP service's peer) from
/// `peer`, of proxy (or lab service) `proxy`, says what its toxics did: `relay_fault`
/// events, `from` the leg the bytes were read from (`upstream`: the proxy's upstream, or
/// the lab's service).
pub fn reporter(hub: &Arc<Hub>, proxy: &str, conn: u64, peer: &str, flow: Flow) -> Reporter {
    let (hub, proxy, peer) = (hub.clone(), proxy.to_owned(), peer.to_owned());
    let from = match flow {
        Flow::Up => Leg::Client,
        Flow::Down => Leg::Upstream,
    };
    Box::new(move |toxic: &str, what: String| {
        hub.publish(EventKind::RelayFault {
            proxy: proxy.clone(),
            conn,
            peer: peer.clone(),
            from,
            toxic: toxic.to_owned(),
            what,
        });
    })
}

impl Relays {
    /// The toxics named `proxy`: a proxy's, or one of the lab's services'
    /// ([`super::Services`]).
    fn toxics_of(&self, proxy: &str) -> Result<Arc<Toxics>, ToxicOpError> {
        let services = self.services.named();
        if let Some((_, toxics)) = services.into_iter().find(|(n, _)| *n == proxy) {
            return Ok(toxics.clone());
        }
        let p = self.get(proxy).map_err(ToxicOpError::Proxy)?;
        Ok(p.toxics.clone())
    }

    /// The toxics of proxy `proxy`, as toxiproxy lists them.
    pub fn toxics(&self, proxy: &str) -> Result<Vec<Arc<Entry>>, ToxicOpError> {
        Ok(self.toxics_of(proxy)?.list())
    }

    /// Toxic `toxic` of proxy `proxy`.
    pub fn toxic(&self, proxy: &str, toxic: &str) -> Result<Arc<Entry>, ToxicOpError> {
        Ok(self.toxics_of(proxy)?.get(toxic)?)
    }

    /// Adds the toxic `body` describes (toxiproxy's JSON) to proxy `proxy`.
    pub fn toxic_add(&self, proxy: &str, body: &[u8]) -> Result<Arc<Entry>, ToxicOpError> {
        // An http proxy's bytes go through the same pumps as a tcp proxy's; a udp proxy
        // takes the toxics that act on datagrams. Each change and its event in one
        // order: two clients racing see the timeline in the order the toxics changed.
        let _in_order = lock(&self.toxic_order);
        let entry = self.toxics_of(proxy)?.add(body)?;
        self.toxic_event(proxy, &entry, "added");
        Ok(entry)
    }

    /// Changes toxic `toxic`'s attributes and toxicity as `body` says.
    pub fn toxic_update(
        &self,
        proxy: &str,
        toxic: &str,
        body: &[u8],
    ) -> Result<Arc<Entry>, ToxicOpError> {
        let _in_order = lock(&self.toxic_order);
        let entry = self.toxics_of(proxy)?.update(toxic, body)?;
        self.toxic_event(proxy, &entry, "updated");
        Ok(entry)
    }

    /// Removes toxic `toxic` of proxy `proxy`.
    pub fn toxic_remove(&self, proxy: &str, toxic: &str) -> Result<(), ToxicOpError> {
        let _in_order = lock(&self.toxic_order);
        let gone = self.toxics_of(proxy)?.remove(toxic)?;
        self.toxic_event(proxy, &gone, "removed");
        Ok(())
    }

    /// Removes every toxic of every proxy and of the lab's services (toxiproxy's
    /// `/reset`).
    pub(super) fn toxics_clear(&self) {
        let _in_order = lock(&self.toxic_order);
        let services = self
            .services
            .named()
            .map(|(n, t)| (n.to_owned(), t.clone()));
        let proxies = self
            .all()
            .into_iter()
            .map(|p| (p.name.clone(), p.toxics.clone()));
        for (name, toxics) in services.into_iter().chain(proxies) {
            for gone in toxics.clear() {
                self.toxic_event(&name, &gone, "removed");
            }
        }
    }

    fn toxic_event(&self, proxy: &str, entry: &Entry, action: &str) {
        let info = entry.info();
        self.hub.publish(EventKind::ToxicChange {
            proxy: proxy.to_owned(),
            toxic: info.name,
            action: action.to_owned(),
            detail: format!("{}, {}", info.detail, info.stream),
        });
    }
}
