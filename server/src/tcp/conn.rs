//! One open connection as the rest of the lab sees it: who it is, its figures, its
//! outgoing queue, and the way to ask its loop ([`super::session`]) to close it; and
//! [`open`], which registers it, publishes `TcpOpen` and starts that loop.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use wirelab_shared::{EventKind, TcpConnInfo, TcpKernelInfo};

use super::queue::{OutQueue, PushError, QUEUE_BYTES};
use super::{Tcp, session};
use crate::faults::line::Shown;
use crate::hub::{Hub, counters::add, lock};

/// Registers an established connection, publishes `TcpOpen` and starts its task.
/// `handshake_us` is set for connections opened from the page; `accepted_on` for those the
/// TLS front accepted (its address, where `stream` is the lab's own plaintext leg).
pub(crate) fn open(
    tcp: &Arc<Tcp>,
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    handshake_us: Option<u64>,
    accepted_on: Option<SocketAddr>,
) -> io::Result<u64> {
    let local = match accepted_on {
        Some(addr) => addr,
        None => stream.local_addr()?,
    };
    // Interactive relaying: small writes go out at once.
    let _ = stream.set_nodelay(true);
    let (out, rx) = OutQueue::new(QUEUE_BYTES);
    let id = tcp.next_id();
    let outbound = handshake_us.is_some();
    let conn = Arc::new(Conn::new(id, peer, local, outbound, out, tcp.hub.clone()));
    tcp.insert(conn.clone());
    add(&tcp.hub.counters.tcp_conns, 1);
    tcp.hub.publish(EventKind::TcpOpen {
        conn: id,
        peer: conn.peer_text.clone(),
        local: show(local),
        outbound,
        handshake_us,
    });
    tcp.tasks
        .spawn(session::serve(tcp.clone(), stream, conn, rx, permit));
    Ok(id)
}

/// Where a socket bound to `addr` is reached from the lab itself: an unspecified IP
/// (`0.0.0.0`, `::`) made loopback.
pub(crate) fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// An address as events show it: an IPv4 client of a dual-stack (`[::]`) listener as
/// `127.0.0.1:5000`, not `[::ffff:127.0.0.1]:5000`.
pub(crate) fn show(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

/// What the page asked of a connection: nothing yet, FIN, or RST (which wins over FIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum CloseRequest {
    None = 0,
    Fin = 1,
    Reset = 2,
}

/// See the module docs.
pub(crate) struct Conn {
    /// The lab-wide id, from 1, shown as `#id`.
    pub(crate) id: u64,
    /// The other end.
    pub(crate) peer: SocketAddr,
    /// `peer` as text, as every event carries it.
    pub(crate) peer_text: String,
    /// The lab's end.
    pub(crate) local: SocketAddr,
    /// Opened by the lab (connect out) rather than accepted.
    pub(crate) outbound: bool,
    /// When it was established, microseconds since the Unix epoch.
    pub(crate) since_us: u64,
    /// Bytes read from the peer.
    pub(crate) bytes_in: AtomicU64,
    /// Bytes written to the peer.
    pub(crate) bytes_out: AtomicU64,
    /// The peer has sent FIN.
    pub(crate) half_closed: AtomicBool,
    /// Set once the connection is on its way out: no more sends are taken.
    pub(crate) closing: AtomicBool,
    /// What the page asked for, as a [`CloseRequest`].
    close_request: AtomicU8,
    /// Wakes the loop when `close_request` changes.
    pub(crate) close_wake: Notify,
    /// Chunks waiting to be written, bounded in bytes.
    out: OutQueue,
    /// The latest TCP_INFO figures (refreshed at most once a second).
    pub(crate) kernel: Mutex<Option<TcpKernelInfo>>,
    /// The service's toxics that apply to it now, read and written.
    pub(crate) faults: [Shown; 2],
    /// For counting dropped relay bytes wherever the relay is called from.
    hub: Arc<Hub>,
}

impl Conn {
    /// A connection record; `out` is the sending side of its queue.
    pub(crate) fn new(
        id: u64,
        peer: SocketAddr,
        local: SocketAddr,
        outbound: bool,
        out: OutQueue,
        hub: Arc<Hub>,
    ) -> Conn {
        Conn {
            id,
            peer,
            peer_text: show(peer),
            local,
            outbound,
            since_us: crate::hub::now_us(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            half_closed: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close_request: AtomicU8::new(CloseRequest::None as u8),
            close_wake: Notify::new(),
            out,
            kernel: Mutex::new(None),
            faults: Default::default(),
            hub,
        }
    }

    /// Queues bytes from the page; the loop publishes them as a `TcpData` event once
    /// written.
    pub(crate) fn send(&self, bytes: Bytes) -> Result<(), PushError> {
        if self.closing.load(Relaxed) {
            return Err(PushError::Closed);
        }
        self.out.try_push(bytes, true)
    }

    /// Queues a relayed copy; when the queue is full the copy is dropped and counted.
    /// Relayed copies are counted, never published: a broadcast to N connections would
    /// otherwise put every chunk N times on the timeline (the same rule as UDP).
    pub(crate) fn relay(&self, bytes: Bytes) -> Result<(), PushError> {
        if self.closing.load(Relaxed) {
            return Err(PushError::Closed);
        }
        let len = bytes.len() as u64;
        let pushed = self.out.try_push(bytes, false);
        if pushed == Err(PushError::Full) {
            add(&self.hub.counters.tcp_bytes_dropped, len);
        }
        pushed
    }

    /// Bytes that may still be queued for this connection.
    pub(crate) fn room(&self) -> usize {
        self.out.room()
    }

    /// Asks the loop to close (FIN) or reset (RST). Returns false when a close of at
    /// least that strength was already asked for.
    pub(crate) fn request_close(&self, reset: bool) -> bool {
        let want = if reset {
            CloseRequest::Reset
        } else {
            CloseRequest::Fin
        };
        let before = self.close_request.fetch_max(want as u8, Relaxed);
        if before >= want as u8 {
            return false;
        }
        self.close_wake.notify_one();
        true
    }

    /// What the page has asked for so far.
    pub(crate) fn close_requested(&self) -> CloseRequest {
        match self.close_request.load(Relaxed) {
            0 => CloseRequest::None,
            1 => CloseRequest::Fin,
            _ => CloseRequest::Reset,
        }
    }

    /// The row the TCP panel shows.
    pub(crate) fn info(&self) -> TcpConnInfo {
        TcpConnInfo {
            id: self.id,
            peer: self.peer_text.clone(),
            local: show(self.local),
            outbound: self.outbound,
            since_us: self.since_us,
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            half_closed: self.half_closed.load(Relaxed),
            kernel: *lock(&self.kernel),
            faults: crate::faults::line::names(&self.faults),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> (
        Conn,
        tokio::sync::mpsc::UnboundedReceiver<super::super::queue::Outgoing>,
    ) {
        let (out, rx) = OutQueue::new(4);
        let hub = Arc::new(Hub::new(1, 0, 1));
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        (Conn::new(7, addr, addr, false, out, hub), rx)
    }

    #[test]
    fn a_full_queue_drops_relayed_copies_and_counts_their_bytes() {
        let (c, _rx) = conn();
        assert_eq!(c.relay(Bytes::from_static(b"abc")), Ok(()));
        assert_eq!(c.relay(Bytes::from_static(b"defg")), Err(PushError::Full));
        // A refused page send is an error for the page, not a relay drop.
        assert_eq!(c.send(Bytes::from_static(b"hijk")), Err(PushError::Full));
        assert_eq!(c.hub.counters.snapshot().tcp_bytes_dropped, 4);
    }

    #[test]
    fn mapped_addresses_show_as_ipv4() {
        assert_eq!(
            show("[::ffff:127.0.0.1]:5000".parse().unwrap()),
            "127.0.0.1:5000"
        );
        assert_eq!(show("[::1]:5000".parse().unwrap()), "[::1]:5000");
    }

    #[test]
    fn reset_wins_over_fin_and_a_closing_connection_takes_no_more() {
        let (c, _rx) = conn();
        assert_eq!(c.close_requested(), CloseRequest::None);
        assert!(c.request_close(false));
        assert!(!c.request_close(false));
        assert!(c.request_close(true));
        assert!(!c.request_close(false));
        assert_eq!(c.close_requested(), CloseRequest::Reset);
        c.closing.store(true, Relaxed);
        assert_eq!(c.send(Bytes::from_static(b"x")), Err(PushError::Closed));
    }
}
