//! The UDP service: every datagram becomes an event; peers are remembered in a bounded
//! table; relay by `--udp-mode`; the page may send only to peers the lab has heard from
//! (unless `--allow-outbound`), so the lab can never be used as a reflector.
//!
//! - [`faults`]: its toxics (`@udp`), a fault line per peer and direction, on what peers
//!   send and what the service relays (the page's sends and `--bridge` go untouched).

mod faults;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use wirelab_shared::{Direction, EventKind, Payload, UdpPeerInfo};

use crate::bridge::{Bridge, Source};
use crate::config::{Config, RelayMode};
use crate::faults::Toxics;
use crate::hub::{Hub, counters::add, lock, now_us};
use crate::pipeline::Flow;
use faults::PeerFaults;

/// The largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;
/// In broadcast mode a datagram goes to the peers heard from within this window.
const BROADCAST_WINDOW_US: u64 = 60_000_000;
/// The receive buffer asked for. The kernel caps it at `net.core.rmem_max` (and then doubles
/// it for its bookkeeping). The default, about 208 KiB, holds only a few hundred small
/// datagrams (each costs ~1 KiB of buffer), i.e. about 10 ms at 27,000 datagrams/s: a busy
/// fan-out that kept the receive loop waiting that long made the kernel drop datagrams.
pub const RCVBUF_WANTED: usize = 4 * 1024 * 1024;
/// Datagrams handled per wake-up before the loop yields to the other tasks.
const RECV_BATCH: usize = 1024;

/// Binds the UDP service, asking for a [`RCVBUF_WANTED`] receive buffer.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(RCVBUF_WANTED) {
        tracing::warn!("udp: could not ask for a {RCVBUF_WANTED}-byte receive buffer: {e}");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Handle on the UDP service.
pub struct Udp {
    /// The bound socket, shared by the receive loop and the senders.
    socket: Arc<UdpSocket>,
    /// Every peer heard from (or sent to), bounded by `max_peers`.
    peers: Mutex<HashMap<SocketAddr, UdpPeerInfo>>,
    max_peers: usize,
    mode: RelayMode,
    allow_outbound: bool,
    snaplen: usize,
    /// The receive buffer the kernel granted, in bytes (`SO_RCVBUF`).
    rcvbuf: usize,
    /// Where its events and counters go.
    hub: Arc<Hub>,
    /// `--bridge`.
    bridge: Bridge,
    /// Its toxics (`@udp` in the toxics API).
    toxics: Arc<Toxics>,
    /// What each peer's fault lines show (its row's faults), while it has lines.
    fault_names: faults::Names,
}

impl Udp {
    /// A handle on `socket`, configured by `config`, publishing to `hub`.
    pub fn new(
        socket: UdpSocket,
        config: &Config,
        hub: Arc<Hub>,
        bridge: Bridge,
        toxics: Arc<Toxics>,
    ) -> Udp {
        let rcvbuf = socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .unwrap_or(0);
        Udp {
            rcvbuf,
            socket: Arc::new(socket),
            peers: Mutex::new(HashMap::new()),
            max_peers: config.udp_max_peers.max(1),
            mode: config.udp_mode,
            allow_outbound: config.allow_outbound,
            snaplen: config.snaplen,
            hub,
            bridge,
            toxics,
            fault_names: Default::default(),
        }
    }

    /// The address the service is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The receive buffer the kernel granted, in bytes (`SO_RCVBUF`, which on Linux is
    /// twice what was asked for, capped at `net.core.rmem_max`).
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// The peers table, most recent first.
    pub fn peers(&self) -> Vec<UdpPeerInfo> {
        let mut peers: Vec<_> = lock(&self.peers).values().cloned().collect();
        let names = lock(&self.fault_names);
        if !names.is_empty() {
            for p in &mut peers {
                if let Some(shown) = p.peer.parse().ok().and_then(|a| names.get(&a)) {
                    p.faults = crate::faults::line::names(shown);
                }
            }
        }
        drop(names);
        peers.sort_by_key(|p| std::cmp::Reverse(p.last_us));
        peers
    }

    /// Records traffic with `peer`, evicting the least recently seen peer when the table
    /// is full. Returns whether a peer was evicted.
    fn touch(&self, peer: SocketAddr, dir: Direction, bytes: usize) -> bool {
        let now = now_us();
        let mut peers = lock(&self.peers);
        let mut evicted = false;
        if !peers.contains_key(&peer)
            && peers.len() >= self.max_peers
            && let Some(oldest) = peers.iter().min_by_key(|(_, p)| p.last_us).map(|(a, _)| *a)
        {
            peers.remove(&oldest);
            evicted = true;
        }
        let entry = peers.entry(peer).or_insert_with(|| UdpPeerInfo {
            peer: peer.to_string(),
            first_us: now,
            ..Default::default()
        });
        entry.last_us = now;
        match dir {
            Direction::In => {
                entry.dgrams_in += 1;
                entry.bytes_in += bytes as u64;
            }
            Direction::Out => {
                entry.dgrams_out += 1;
                entry.bytes_out += bytes as u64;
            }
        }
        evicted
    }

    fn count(&self, peer: SocketAddr, dir: Direction, bytes: usize) {
        let c = &self.hub.counters;
        match dir {
            Direction::In => {
                add(&c.udp_dgrams_in, 1);
                add(&c.udp_bytes_in, bytes as u64);
            }
            Direction::Out => {
                add(&c.udp_dgrams_out, 1);
                add(&c.udp_bytes_out, bytes as u64);
            }
        }
        if self.touch(peer, dir, bytes) {
            add(&c.udp_peers_evicted, 1);
        }
    }

    /// Handles one received datagram: event, then the toxics, or relay and bridge.
    fn on_datagram(&self, peer: SocketAddr, data: &[u8], faults: &mut PeerFaults) {
        self.count(peer, Direction::In, data.len());
        self.hub.publish(EventKind::UdpDatagram {
            peer: peer.to_string(),
            dir: Direction::In,
            size: data.len() as u64,
            payload: Payload::capture(data, self.snaplen),
        });
        if faults.applies(Flow::Up, peer) && faults.push(Flow::Up, peer, data) {
            self.release(faults, false);
            return;
        }
        self.deliver(peer, data, faults);
        self.release(faults, false);
    }

    /// A datagram from `peer` that went through the toxics (or had none): relayed by
    /// `--udp-mode`, and bridged.
    fn deliver(&self, peer: SocketAddr, data: &[u8], faults: &mut PeerFaults) {
        match self.mode {
            RelayMode::Echo => self.relay_to(&[peer], data, faults),
            RelayMode::Broadcast => {
                let since = now_us().saturating_sub(BROADCAST_WINDOW_US);
                let others = self.recent_peers(since, Some(peer));
                self.relay_to(&others, data, faults);
            }
            RelayMode::Sink => {}
        }
        self.bridge.send(Source::Udp(peer), data);
    }

    /// Sends on what the toxics let through and is due, both ways: every peer's (`all`),
    /// or the peers just handed a datagram.
    fn release(&self, faults: &mut PeerFaults, all: bool) {
        let mut all = all;
        while faults.active() {
            let due = faults.due(all);
            all = false;
            if due.is_empty() {
                return;
            }
            for (flow, peer, datagram) in due {
                match flow {
                    Flow::Up => self.deliver(peer, &datagram, faults),
                    Flow::Down => self.send_counted(peer, &datagram),
                }
            }
        }
    }

    fn recent_peers(&self, since_us: u64, except: Option<SocketAddr>) -> Vec<SocketAddr> {
        lock(&self.peers)
            .iter()
            .filter(|(a, p)| p.last_us >= since_us && Some(**a) != except && p.dgrams_in > 0)
            .map(|(a, _)| *a)
            .collect()
    }

    /// Relayed datagrams are counted, not published as events: a broadcast to N peers
    /// would otherwise multiply every datagram by N on the timeline.
    /// Each goes through the toxics toward that peer, if any apply.
    fn relay_to(&self, peers: &[SocketAddr], data: &[u8], faults: &mut PeerFaults) {
        for &peer in peers {
            if faults.applies(Flow::Down, peer) && faults.push(Flow::Down, peer, data) {
                continue;
            }
            self.send_counted(peer, data);
        }
    }

    /// One relayed datagram to `peer`, counted.
    fn send_counted(&self, peer: SocketAddr, data: &[u8]) {
        match self.socket.try_send_to(data, peer) {
            Ok(_) => self.count(peer, Direction::Out, data.len()),
            Err(e) => {
                tracing::debug!(%peer, "udp relay failed: {e}");
                add(&self.hub.counters.udp_send_errors, 1);
            }
        }
    }

    /// `--bridge`: send to every peer heard from recently (the bridge's task calls it).
    pub fn relay(&self, except: Option<SocketAddr>, data: &[u8]) {
        let since = now_us().saturating_sub(BROADCAST_WINDOW_US);
        for peer in self.recent_peers(since, except) {
            let _ = self.socket.try_send_to(data, peer);
        }
    }

    /// Sends a datagram from the page to `peer`, or to every known peer. Only peers the
    /// lab has heard from, unless `--allow-outbound`.
    pub async fn send(&self, peer: Option<&str>, data: &[u8]) -> Result<String, String> {
        if data.len() > MAX_DATAGRAM {
            return Err(format!(
                "a UDP datagram holds at most {MAX_DATAGRAM} bytes; this one has {}",
                data.len()
            ));
        }
        let targets = match peer {
            Some(p) => {
                let addr: SocketAddr = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("{p:?} is not an address like 127.0.0.1:5000"))?;
                if !self.allow_outbound && !lock(&self.peers).contains_key(&addr) {
                    add(&self.hub.counters.udp_send_errors, 1);
                    return Err(format!(
                        "{addr} has not sent anything to the lab; wirelab only sends to peers it \
                         has heard from (run it with --allow-outbound to lift this)"
                    ));
                }
                vec![addr]
            }
            None => self.recent_peers(0, None),
        };
        if targets.is_empty() {
            return Err("no UDP peers yet: send the lab a datagram first (nc -u)".into());
        }
        let mut sent = 0;
        let mut last_err = None;
        for addr in &targets {
            match self.socket.send_to(data, addr).await {
                Ok(_) => {
                    sent += 1;
                    self.count(*addr, Direction::Out, data.len());
                    self.hub.publish(EventKind::UdpDatagram {
                        peer: addr.to_string(),
                        dir: Direction::Out,
                        size: data.len() as u64,
                        payload: Payload::capture(data, self.snaplen),
                    });
                }
                Err(e) => {
                    add(&self.hub.counters.udp_send_errors, 1);
                    last_err = Some(format!("sending to {addr} failed: {e}"));
                }
            }
        }
        match (sent, last_err) {
            (0, Some(e)) => Err(e),
            (n, _) => Ok(format!("sent {} bytes to {n} peer(s)", data.len())),
        }
    }
}

/// Receives datagrams until `shutdown`. Each wake-up drains the socket (up to
/// [`RECV_BATCH`] datagrams) without going back to the scheduler in between, so a burst
/// that arrived while the fan-out kept this task waiting is taken in one go.
pub async fn run(udp: Arc<Udp>, shutdown: CancellationToken) {
    let socket = udp.socket.clone();
    // One byte more than the largest datagram, so none is ever cut silently.
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut faults = PeerFaults::new(udp.toxics.clone(), udp.hub.clone(), udp.fault_names.clone());
    loop {
        let wake = faults.next_at();
        let ready = tokio::select! {
            r = socket.readable() => r,
            // A datagram the toxics held is due, or the toxics changed.
            _ = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)),
                if wake.is_some() => {
                udp.release(&mut faults, true);
                continue;
            }
            _ = faults.changed() => {
                udp.release(&mut faults, true);
                continue;
            }
            _ = shutdown.cancelled() => break,
        };
        if let Err(e) = ready {
            tracing::warn!("udp: waiting for datagrams failed: {e}");
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let mut handled = 0;
        while handled < RECV_BATCH {
            match socket.try_recv_from(&mut buf) {
                Ok((n, peer)) => {
                    udp.on_datagram(peer, &buf[..n], &mut faults);
                    handled += 1;
                }
                // Drained: `readable()` waits for the next datagram.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // An ICMP "port unreachable" for an earlier send shows up here on Linux.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    tracing::warn!("udp receive failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    break;
                }
            }
        }
        if handled == RECV_BATCH {
            tokio::task::yield_now().await;
        }
    }
}
