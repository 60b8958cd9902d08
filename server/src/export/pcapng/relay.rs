//! Relay mode's connections in the capture: each relayed connection is two TCP
//! conversations, the client leg (client ↔ the proxy's listen address) and the upstream
//! leg (the lab ↔ the upstream), written as the TCP service's are; a `udp` proxy's
//! datagram is one packet on each leg of its session. A byte read from one
//! leg is written on the other, so each `relay_data` is a segment on both. Connections
//! whose `relay_open` is not in the selection are left out (their addresses are unknown).

use wirelab_shared::{CloseReason, Direction, Event, EventKind, Leg};

use super::PcapNg;

/// Keys of the two legs among the capture's conversations, apart from the TCP service's
/// connection ids (which never reach 2⁶²).
fn keys(conn: u64) -> [u64; 2] {
    [conn | 1 << 62, conn | 1 << 63]
}

fn tcp(ts_us: u64, kind: EventKind) -> Event {
    Event {
        seq: 0,
        ts_us,
        kind,
    }
}

impl PcapNg {
    /// Adds the packets of relay event `ev`; false when `ev` is not a relay event.
    pub(super) fn add_relay(&mut self, ev: &Event) -> bool {
        let ts = ev.ts_us;
        match &ev.kind {
            EventKind::RelayOpen {
                conn,
                peer,
                listen,
                upstream,
                upstream_local,
                connect_us,
                ..
            } => {
                let [client, up] = keys(*conn);
                self.add(&tcp(
                    ts,
                    EventKind::TcpOpen {
                        conn: client,
                        peer: peer.clone(),
                        local: listen.clone(),
                        outbound: false,
                        handshake_us: None,
                    },
                ));
                self.add(&tcp(
                    ts,
                    EventKind::TcpOpen {
                        conn: up,
                        peer: upstream.clone(),
                        local: upstream_local.clone(),
                        outbound: true,
                        handshake_us: Some(*connect_us),
                    },
                ));
            }
            EventKind::RelayData {
                conn,
                from,
                size,
                payload,
                ..
            } => {
                let [client, up] = keys(*conn);
                let (read_on, written_on) = match from {
                    Leg::Client => (client, up),
                    Leg::Upstream => (up, client),
                };
                for (key, dir) in [(read_on, Direction::In), (written_on, Direction::Out)] {
                    if !self.conns.contains_key(&key) {
                        continue;
                    }
                    let peer = String::new(); // known: the conversation exists
                    self.add(&tcp(
                        ts,
                        EventKind::TcpData {
                            conn: key,
                            peer,
                            dir,
                            size: *size,
                            payload: payload.clone(),
                        },
                    ));
                }
            }
            EventKind::RelaySend {
                conn,
                to,
                size,
                payload,
                ..
            } => {
                let [client, up] = keys(*conn);
                let key = match to {
                    Leg::Client => client,
                    Leg::Upstream => up,
                };
                if self.conns.contains_key(&key) {
                    self.add(&tcp(
                        ts,
                        EventKind::TcpData {
                            conn: key,
                            peer: String::new(),
                            dir: Direction::Out,
                            size: *size,
                            payload: payload.clone(),
                        },
                    ));
                }
            }
            EventKind::RelayHalfClose { conn, from, .. } => {
                let [client, up] = keys(*conn);
                let (sent_fin, passed_to) = match from {
                    Leg::Client => (client, up),
                    Leg::Upstream => (up, client),
                };
                if let Some(mut c) = self.conns.remove(&sent_fin) {
                    let side = c.side(false);
                    self.fin(ts, &mut c, side);
                    self.conns.insert(sent_fin, c);
                }
                if let Some(mut c) = self.conns.remove(&passed_to) {
                    let side = c.side(true);
                    self.fin(ts, &mut c, side);
                    self.conns.insert(passed_to, c);
                }
            }
            EventKind::RelayClose {
                conn, reason, by, ..
            } => {
                let [client, up] = keys(*conn);
                // The leg it started from ends as the event says; the lab ends the other.
                let (first, other) = match reason {
                    CloseReason::Reset | CloseReason::Error => {
                        (*reason, CloseReason::ResetFromPage)
                    }
                    CloseReason::ResetFromPage => {
                        (CloseReason::ResetFromPage, CloseReason::ClosedFromPage)
                    }
                    r => (*r, *r),
                };
                for (key, leg) in [(client, Leg::Client), (up, Leg::Upstream)] {
                    if !self.conns.contains_key(&key) {
                        continue;
                    }
                    let reason = match by {
                        Some(b) if *b != leg => other,
                        _ => first,
                    };
                    self.add(&tcp(
                        ts,
                        EventKind::TcpClose {
                            conn: key,
                            peer: String::new(),
                            reason,
                            detail: None,
                            duration_us: 0,
                            bytes_in: 0,
                            bytes_out: 0,
                        },
                    ));
                }
            }
            EventKind::RelayUdpOpen {
                session,
                peer,
                listen,
                upstream_local,
                upstream,
                ..
            } => {
                let addrs = [peer, listen, upstream_local, upstream].map(|a| super::parse(a));
                if let [Some(a), Some(b), Some(c), Some(d)] = addrs {
                    self.udp_sessions.insert(*session, [a, b, c, d]);
                }
            }
            EventKind::RelayDatagram {
                session,
                from,
                size,
                payload,
                ..
            } => {
                let Some(&[client, listen, local, upstream]) = self.udp_sessions.get(session)
                else {
                    return true;
                };
                let bytes = payload.bytes();
                let real = (*size as usize).max(bytes.len()).min(65_507);
                let (read, written) = match from {
                    Leg::Client => ((client, listen), (local, upstream)),
                    Leg::Upstream => ((upstream, local), (listen, client)),
                };
                self.packet(ts, read.0, read.1, false, None, &bytes, real);
                self.packet(ts, written.0, written.1, true, None, &bytes, real);
            }
            EventKind::RelayUdpClose { session, .. } => {
                self.udp_sessions.remove(session);
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::pcapng::LabAddrs;
    use wirelab_shared::Payload;

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            ts_us: 1_700_000_000_000_000 + seq,
            kind,
        }
    }

    #[test]
    fn a_relayed_connection_is_two_conversations() {
        let mut w = PcapNg::new(LabAddrs::default());
        let data = |from, bytes: &[u8]| EventKind::RelayData {
            proxy: "p".into(),
            conn: 3,
            peer: "127.0.0.1:40000".into(),
            from,
            size: bytes.len() as u64,
            payload: Payload::capture(bytes, 64),
        };
        let events = [
            EventKind::RelayOpen {
                proxy: "p".into(),
                conn: 3,
                peer: "127.0.0.1:40000".into(),
                listen: "127.0.0.1:16379".into(),
                upstream: "127.0.0.1:6379".into(),
                upstream_local: "127.0.0.1:50000".into(),
                connect_us: 90,
            },
            data(Leg::Client, b"PING\r\n"),
            data(Leg::Upstream, b"+PONG\r\n"),
            EventKind::RelayHalfClose {
                proxy: "p".into(),
                conn: 3,
                peer: "127.0.0.1:40000".into(),
                from: Leg::Client,
            },
            EventKind::RelayClose {
                proxy: "p".into(),
                conn: 3,
                peer: "127.0.0.1:40000".into(),
                reason: CloseReason::Reset,
                by: Some(Leg::Upstream),
                detail: None,
                duration_us: 5,
                client_in: 6,
                client_out: 7,
                upstream_in: 7,
                upstream_out: 6,
            },
        ];
        for (i, k) in events.into_iter().enumerate() {
            w.add(&ev(i as u64 + 1, k));
        }
        // Two handshakes (6), each chunk on both legs (4), the client's FIN and the one
        // passed on (2), the upstream's RST and the lab's RST to the client (2).
        assert_eq!(w.packets, 14);
        assert!(w.conns.is_empty(), "both legs closed");
        // A UDP session: each datagram is a packet on both legs.
        let open = EventKind::RelayUdpOpen {
            proxy: "dns".into(),
            session: 4,
            peer: "127.0.0.1:40001".into(),
            listen: "127.0.0.1:5353".into(),
            upstream: "127.0.0.1:53".into(),
            upstream_local: "0.0.0.0:50001".into(),
        };
        w.add(&ev(20, open));
        let query = EventKind::RelayDatagram {
            proxy: "dns".into(),
            session: 4,
            peer: "127.0.0.1:40001".into(),
            from: Leg::Client,
            size: 3,
            payload: Payload::capture(b"abc", 64),
        };
        w.add(&ev(21, query));
        assert_eq!(w.packets, 16);
        // Something else than a relay event is not taken.
        assert!(!w.add_relay(&ev(
            9,
            EventKind::Chat {
                from: "a".into(),
                text: "b".into()
            }
        )));
    }
}
