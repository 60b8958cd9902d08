//! The UDP service's toxics (`@udp` in the toxics API): a fault line per peer and
//! direction, acting on datagrams as on a `udp` proxy's sessions ([`crate::faults`]).
//! [`Flow::Up`] is what a peer sends the service, [`Flow::Down`] what the service relays
//! to a peer (echo, broadcast). The receive loop owns them: it pushes datagrams in, sends
//! what is due, and sleeps until the next one is. A peer gets lines when some toxic
//! covers a way it is heard or sent on, and keeps them (so its toxicity draw, made from
//! its address, holds) until no toxic is left or it has been quiet for [`IDLE`] with
//! nothing held; [`MAX_LINES`] peers at most: past that a new peer's datagrams go
//! untouched. A datagram handed in is released with its peer's lines only; the others'
//! wait for the timer, so a datagram costs the same whatever the number of peers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::faults::line::Shown;
use crate::faults::{Due, Line, Toxics};
use crate::hub::Hub;
use crate::hub::counters::add;
use crate::hub::lock;
use crate::pipeline::Flow;
use crate::relay::UDP_SERVICE;
use crate::relay::faults::reporter;

/// Peers with fault lines at most.
pub(super) const MAX_LINES: usize = 4096;
/// A peer's lines are let go after this long without a datagram, holding nothing.
const IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// One peer's lines: [up, down], and when a datagram last went into one.
struct Peer {
    lines: [Line; 2],
    used: Instant,
}

/// What each peer's lines show, shared with the peers table.
pub(super) type Names = Arc<Mutex<HashMap<SocketAddr, [Shown; 2]>>>;

/// See the module docs.
pub(super) struct PeerFaults {
    /// The service's toxics.
    toxics: Arc<Toxics>,
    /// Where fault events go.
    hub: Arc<Hub>,
    /// Each peer's lines.
    lines: HashMap<SocketAddr, Peer>,
    /// Peers handed a datagram since the last release.
    touched: Vec<SocketAddr>,
    /// Woken at every change of the toxics.
    changes: watch::Receiver<u64>,
    /// What each peer's lines show.
    names: Names,
}

impl PeerFaults {
    /// No lines yet.
    pub(super) fn new(toxics: Arc<Toxics>, hub: Arc<Hub>, names: Names) -> PeerFaults {
        PeerFaults {
            changes: toxics.subscribe(),
            toxics,
            hub,
            lines: HashMap::new(),
            touched: Vec::new(),
            names,
        }
    }

    /// Whether a datagram travelling `flow` with `peer` goes through the toxics (one
    /// relaxed load when none is set and none holds anything).
    pub(super) fn applies(&self, flow: Flow, peer: SocketAddr) -> bool {
        self.toxics.covers(flow)
            || (!self.lines.is_empty()
                && self
                    .lines
                    .get(&peer)
                    .is_some_and(|p| p.lines[flow as usize].head_at().is_some()))
    }

    /// Whether some peer has lines (else there is nothing to release).
    pub(super) fn active(&self) -> bool {
        !self.lines.is_empty()
    }

    /// Hands `data` to `peer`'s line of `flow` (dropped, and counted, while the line
    /// holds its most); `false` when the table of lines is full (the caller sends it on
    /// untouched).
    pub(super) fn push(&mut self, flow: Flow, peer: SocketAddr, data: &[u8]) -> bool {
        if !self.lines.contains_key(&peer) {
            if self.lines.len() >= MAX_LINES {
                return false;
            }
            let shown: [Shown; 2] = Default::default();
            let line = |flow: Flow| self.line(flow, peer, shown[flow as usize].clone());
            let lines = [line(Flow::Up), line(Flow::Down)];
            let used = Instant::now();
            self.lines.insert(peer, Peer { lines, used });
            lock(&self.names).insert(peer, shown);
        }
        let entry = self.lines.get_mut(&peer).expect("just made");
        entry.used = Instant::now();
        if !self.touched.contains(&peer) {
            self.touched.push(peer);
        }
        let line = &mut entry.lines[flow as usize];
        match line.has_room() {
            true => line.push(Instant::now(), Bytes::copy_from_slice(data)),
            false => add(&self.hub.counters.fault_dropped, 1),
        }
        true
    }

    /// The datagrams due now, each with its way and peer: of every peer (`all`: the
    /// timer, or a change of the toxics), or of those handed a datagram since the last
    /// call. Every peer's: lines no longer wanted are let go.
    pub(super) fn due(&mut self, all: bool) -> Vec<(Flow, SocketAddr, Bytes)> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut take = |peer: SocketAddr, entry: &mut Peer| {
            for (flow, line) in [Flow::Up, Flow::Down]
                .into_iter()
                .zip(entry.lines.iter_mut())
            {
                while let Due::Write(datagram) = line.next(now, true) {
                    out.push((flow, peer, datagram));
                }
            }
        };
        let touched = std::mem::take(&mut self.touched);
        if !all {
            for peer in touched {
                if let Some(entry) = self.lines.get_mut(&peer) {
                    take(peer, entry);
                }
            }
            return out;
        }
        for (peer, entry) in &mut self.lines {
            take(*peer, entry);
        }
        let none_left = !self.toxics.covers(Flow::Up) && !self.toxics.covers(Flow::Down);
        let before = self.lines.len();
        self.lines.retain(|_, p| {
            let holds = p.lines.iter().any(|l| l.held() > 0);
            holds || !(none_left || now.duration_since(p.used) >= IDLE)
        });
        if self.lines.len() < before {
            lock(&self.names).retain(|peer, _| self.lines.contains_key(peer));
        }
        out
    }

    /// When the next held datagram is due, if one is held.
    pub(super) fn next_at(&mut self) -> Option<Instant> {
        let now = Instant::now();
        self.lines
            .values_mut()
            .flat_map(|p| p.lines.iter_mut())
            .filter_map(|line| match line.next(now, false) {
                Due::Wait(at) => Some(at),
                Due::Write(_) => Some(now),
                _ => None,
            })
            .min()
    }

    /// Until the toxics change (a removed toxic lets what it held go).
    pub(super) async fn changed(&mut self) {
        if self.changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// A new line of `flow` for `peer`, whose notes are `relay_fault` events of `@udp`.
    fn line(&self, flow: Flow, peer: SocketAddr, shown: Shown) -> Line {
        let report = reporter(&self.hub, UDP_SERVICE, 0, &peer.to_string(), flow);
        // From the peer's address: its lines made again (after IDLE) draw as before.
        let ip = match peer.ip() {
            std::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
            std::net::IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                (bits as u64) ^ (bits >> 64) as u64
            }
        };
        let seed = ip ^ u64::from(peer.port()).rotate_left(32);
        // A peer has no connection id: toxics kept to a peer reach it, those kept to a
        // connection never do (ids start at 1).
        Line::new(flow, self.toxics.clone(), seed, report, shown)
            .for_datagrams()
            .of(0, peer)
    }
}
