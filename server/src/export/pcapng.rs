//! Recorded TCP and UDP traffic as a pcapng capture that Wireshark and tshark open: the
//! lab records payloads, not packets, so the Ethernet, IP and TCP/UDP headers around
//! them are made up here (with etherparse), and written with pcap-file.
//!
//! - A UDP datagram is one packet between the peer and the lab's UDP service.
//! - A TCP connection is a proper conversation: SYN, SYN-ACK and ACK when it opened, data
//!   segments whose sequence and acknowledgement numbers run on in each direction, and
//!   FINs (or an RST for a reset) when it closed. Payloads larger than one IPv4 packet
//!   holds are split into several segments.
//! - Only captured bytes can be written. Where the snaplen cut a payload, the packet says
//!   so as a capture would: its captured length is what was kept, its original length (and
//!   the IP and TCP/UDP lengths and sequence numbers) what really travelled.
//! - A connection whose opening is not in the selection (a filter, or retention) starts
//!   with its first data segment, without a made-up handshake.
//!
//! - A relayed connection (relay mode) is two such conversations, one per leg, and a
//!   relayed datagram one packet on each leg ([`relay`]).
//!
//! Times are written in nanoseconds (the interface says so with `if_tsresol`).

mod relay;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use wirelab_shared::{CloseReason, Direction, Event, EventKind};

/// MAC addresses of the made-up link: the lab's, and every peer's.
const LAB_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
/// Bytes of TCP payload per segment at most: an IPv4 packet is at most 65,535 bytes,
/// less 20 of IPv4 header and 20 of TCP header.
pub const MAX_SEGMENT: usize = 65_535 - 20 - 20;
/// The largest Ethernet frame we write: 14 + 65,535.
const SNAPLEN: u32 = 14 + 65_535;
const WINDOW: u16 = 65_535;
const TTL: u8 = 64;

/// The lab's own addresses, for the side of each packet that is the lab.
#[derive(Debug, Clone, Copy, Default)]
pub struct LabAddrs {
    /// The TCP service, for data on a connection whose `tcp_open` is not in the selection.
    pub tcp: Option<SocketAddr>,
    /// The UDP service.
    pub udp: Option<SocketAddr>,
}

/// One TCP connection as it is being written.
struct Conv {
    /// The side that sent the SYN, and the other.
    client: SocketAddr,
    server: SocketAddr,
    /// Whether the client is the lab (a connection opened from the page).
    lab_is_client: bool,
    /// Next sequence number of the client and of the server.
    next: [u32; 2],
    /// Whether each side has sent its FIN.
    fin: [bool; 2],
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// Flags of one TCP segment.
#[derive(Default, Clone, Copy)]
struct Flags {
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    psh: bool,
}

/// Writes events as pcapng, a piece at a time (see [`PcapNg::take`]).
pub struct PcapNg {
    out: PcapNgWriter<Vec<u8>>,
    lab: LabAddrs,
    conns: HashMap<u64, Conv>,
    /// Open UDP relay sessions: the client, the proxy's listen address, the session's
    /// own socket and the upstream.
    udp_sessions: HashMap<u64, [SocketAddr; 4]>,
    /// Packets written so far.
    pub packets: u64,
}

impl PcapNg {
    /// A capture with its section and interface headers already written.
    pub fn new(lab: LabAddrs) -> PcapNg {
        let mut out = PcapNgWriter::new(Vec::with_capacity(64 * 1024)).expect("writing to a Vec");
        let iface = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: SNAPLEN,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed("wirelab")),
                InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                    "recorded by wirelab; headers synthesized around the captured payloads",
                )),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        out.write_pcapng_block(iface).expect("writing to a Vec");
        PcapNg {
            out,
            lab,
            conns: HashMap::new(),
            udp_sessions: HashMap::new(),
            packets: 0,
        }
    }

    /// The bytes written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.out.get_mut())
    }

    /// Adds the packets `ev` stands for (none for events that are not TCP or UDP traffic,
    /// or whose addresses don't parse).
    pub fn add(&mut self, ev: &Event) {
        if self.add_relay(ev) {
            return;
        }
        let ts = ev.ts_us;
        match &ev.kind {
            EventKind::UdpDatagram {
                peer,
                dir,
                size,
                payload,
            } => {
                let (Some(peer), Some(lab)) = (parse(peer), self.lab.udp) else {
                    return;
                };
                let (src, dst, from_lab) = match dir {
                    Direction::In => (peer, lab, false),
                    Direction::Out => (lab, peer, true),
                };
                let bytes = payload.bytes();
                let real = (*size as usize).max(bytes.len()).min(65_507);
                self.packet(ts, src, dst, from_lab, None, &bytes, real);
            }
            EventKind::TcpOpen {
                conn,
                peer,
                local,
                outbound,
                handshake_us,
            } => {
                let (Some(peer), Some(local)) = (parse(peer), parse(local)) else {
                    return;
                };
                let (client, server) = if *outbound {
                    (local, peer)
                } else {
                    (peer, local)
                };
                let c = Conv::new(*conn, client, server, *outbound);
                let syn_ts = ts.saturating_sub(handshake_us.unwrap_or(0));
                let (ci, si) = (c.next[CLIENT], c.next[SERVER]);
                let syn = Flags {
                    syn: true,
                    ..Default::default()
                };
                let syn_ack = Flags {
                    syn: true,
                    ack: true,
                    ..Default::default()
                };
                let ack = Flags {
                    ack: true,
                    ..Default::default()
                };
                self.segment(syn_ts, &c, CLIENT, ci, 0, syn, &[], 0);
                self.segment(ts, &c, SERVER, si, ci.wrapping_add(1), syn_ack, &[], 0);
                self.segment(
                    ts,
                    &c,
                    CLIENT,
                    ci.wrapping_add(1),
                    si.wrapping_add(1),
                    ack,
                    &[],
                    0,
                );
                let mut c = c;
                c.next = [ci.wrapping_add(1), si.wrapping_add(1)];
                self.conns.insert(*conn, c);
            }
            EventKind::TcpData {
                conn,
                peer,
                dir,
                size,
                payload,
            } => {
                let Some(c) = self.conv(*conn, peer) else {
                    return;
                };
                let side = c.side(*dir == Direction::Out);
                let bytes = payload.bytes();
                let total = (*size as usize).max(bytes.len());
                let mut c = c;
                let mut sent = 0;
                while sent < total {
                    let n = (total - sent).min(MAX_SEGMENT);
                    let kept = &bytes[sent.min(bytes.len())..(sent + n).min(bytes.len())];
                    let flags = Flags {
                        ack: true,
                        psh: sent + n == total,
                        ..Default::default()
                    };
                    let (seq, ack) = (c.next[side], c.next[1 - side]);
                    self.segment(ts, &c, side, seq, ack, flags, kept, n);
                    c.next[side] = seq.wrapping_add(n as u32);
                    sent += n;
                }
                self.conns.insert(*conn, c);
            }
            EventKind::TcpHalfClose { conn, peer } => {
                let Some(mut c) = self.conv(*conn, peer) else {
                    return;
                };
                let side = c.side(false);
                self.fin(ts, &mut c, side);
                self.conns.insert(*conn, c);
            }
            EventKind::TcpClose {
                conn, peer, reason, ..
            } => {
                let Some(mut c) = self.conv(*conn, peer) else {
                    return;
                };
                let (peer_side, lab_side) = (c.side(false), c.side(true));
                match reason {
                    CloseReason::Reset | CloseReason::Error => self.rst(ts, &c, peer_side),
                    CloseReason::ResetFromPage | CloseReason::FaultReset => {
                        self.rst(ts, &c, lab_side)
                    }
                    CloseReason::Fin
                    | CloseReason::Fault
                    | CloseReason::ClosedFromPage
                    | CloseReason::IdleTimeout
                    | CloseReason::Shutdown => {
                        let first = if *reason == CloseReason::Fin {
                            peer_side
                        } else {
                            lab_side
                        };
                        let first = if c.fin[1 - first] { 1 - first } else { first };
                        self.fin(ts, &mut c, first);
                        self.fin(ts, &mut c, 1 - first);
                        let ack = Flags {
                            ack: true,
                            ..Default::default()
                        };
                        let (seq, ack_no) = (c.next[first], c.next[1 - first]);
                        self.segment(ts, &c, first, seq, ack_no, ack, &[], 0);
                    }
                }
                self.conns.remove(conn);
            }
            _ => {}
        }
    }

    /// The connection `conn`, or one made up for a connection whose opening is not in the
    /// selection (to the lab's TCP service).
    fn conv(&mut self, conn: u64, peer: &str) -> Option<Conv> {
        if let Some(c) = self.conns.remove(&conn) {
            return Some(c);
        }
        let (peer, lab) = (parse(peer)?, self.lab.tcp?);
        let mut c = Conv::new(conn, peer, lab, false);
        c.next = [
            c.next[CLIENT].wrapping_add(1),
            c.next[SERVER].wrapping_add(1),
        ];
        Some(c)
    }

    /// `side` sends its FIN (once).
    fn fin(&mut self, ts: u64, c: &mut Conv, side: usize) {
        if c.fin[side] {
            return;
        }
        let flags = Flags {
            fin: true,
            ack: true,
            ..Default::default()
        };
        let (seq, ack) = (c.next[side], c.next[1 - side]);
        self.segment(ts, c, side, seq, ack, flags, &[], 0);
        c.next[side] = seq.wrapping_add(1);
        c.fin[side] = true;
    }

    fn rst(&mut self, ts: u64, c: &Conv, side: usize) {
        let flags = Flags {
            rst: true,
            ack: true,
            ..Default::default()
        };
        self.segment(ts, c, side, c.next[side], c.next[1 - side], flags, &[], 0);
    }

    /// One TCP segment from `side` of `c`, carrying `real` bytes of which `kept` were
    /// captured.
    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        ts: u64,
        c: &Conv,
        side: usize,
        seq: u32,
        ack: u32,
        flags: Flags,
        kept: &[u8],
        real: usize,
    ) {
        let (src, dst) = if side == CLIENT {
            (c.client, c.server)
        } else {
            (c.server, c.client)
        };
        let from_lab = (side == CLIENT) == c.lab_is_client;
        let tcp = Tcp { seq, ack, flags };
        self.packet(ts, src, dst, from_lab, Some(tcp), kept, real);
    }

    /// Writes one packet: `kept` is what was captured of the `real` payload bytes.
    #[allow(clippy::too_many_arguments)]
    fn packet(
        &mut self,
        ts_us: u64,
        src: SocketAddr,
        dst: SocketAddr,
        from_lab: bool,
        tcp: Option<Tcp>,
        kept: &[u8],
        real: usize,
    ) {
        let kept = &kept[..kept.len().min(real)];
        let (smac, dmac) = if from_lab {
            (LAB_MAC, PEER_MAC)
        } else {
            (PEER_MAC, LAB_MAC)
        };
        let eth = PacketBuilder::ethernet2(smac, dmac);
        let ip = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), TTL),
            (s, d) => eth.ipv6(v6(s).octets(), v6(d).octets(), TTL),
        };
        // The real payload, with zeros where bytes were not captured: the lengths in
        // every header come out right, and the frame is cut back to what was captured.
        let mut payload = Vec::with_capacity(real);
        payload.extend_from_slice(kept);
        payload.resize(real, 0);
        let mut frame = Vec::with_capacity(real + 80);
        let written = match tcp {
            None => ip
                .udp(src.port(), dst.port())
                .write(&mut frame, &payload)
                .map_err(|e| e.to_string()),
            Some(t) => {
                let mut b = ip.tcp(src.port(), dst.port(), t.seq, WINDOW);
                if t.flags.syn {
                    b = b.syn();
                }
                if t.flags.ack {
                    b = b.ack(t.ack);
                }
                if t.flags.fin {
                    b = b.fin();
                }
                if t.flags.rst {
                    b = b.rst();
                }
                if t.flags.psh {
                    b = b.psh();
                }
                b.write(&mut frame, &payload).map_err(|e| e.to_string())
            }
        };
        if let Err(e) = written {
            tracing::debug!("pcapng: skipped a packet: {e}");
            return;
        }
        let original_len = frame.len() as u32;
        frame.truncate(frame.len() - (real - kept.len()));
        let mut options = Vec::new();
        if kept.len() < real {
            options.push(EnhancedPacketOption::Comment(Cow::Owned(format!(
                "wirelab captured {} of {} payload bytes (snaplen)",
                kept.len(),
                real
            ))));
        }
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_micros(ts_us),
            original_len,
            data: Cow::Owned(frame),
            options,
        };
        if self.out.write_pcapng_block(block).is_ok() {
            self.packets += 1;
        }
    }
}

#[derive(Clone, Copy)]
struct Tcp {
    seq: u32,
    ack: u32,
    flags: Flags,
}

impl Conv {
    fn new(conn: u64, client: SocketAddr, server: SocketAddr, lab_is_client: bool) -> Conv {
        // Made-up initial sequence numbers, fixed per connection so an export is repeatable.
        let isn = (conn as u32).wrapping_mul(0x9E37_79B9) ^ 0x1000_0000;
        Conv {
            client,
            server,
            lab_is_client,
            next: [isn, isn ^ 0x5555_5555],
            fin: [false, false],
        }
    }

    /// The side (client or server) that is the lab (`true`) or the peer.
    fn side(&self, lab: bool) -> usize {
        if lab == self.lab_is_client {
            CLIENT
        } else {
            SERVER
        }
    }
}

fn parse(addr: &str) -> Option<SocketAddr> {
    addr.parse().ok()
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{LaxNetSlice, LaxSlicedPacket, NetSlice, SlicedPacket, TransportSlice};
    use pcap_file::pcapng::{Block, PcapNgReader};
    use wirelab_shared::Payload;

    const LAB_TCP: &str = "127.0.0.1:1338";
    const PEER: &str = "127.0.0.1:40000";

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            ts_us: 1_700_000_000_000_000 + seq,
            kind,
        }
    }

    fn data(conn: u64, dir: Direction, bytes: &[u8], snaplen: usize) -> EventKind {
        EventKind::TcpData {
            conn,
            peer: PEER.into(),
            dir,
            size: bytes.len() as u64,
            payload: Payload::capture(bytes, snaplen),
        }
    }

    /// Every packet: (captured frame, original length, comment present).
    fn read(bytes: &[u8]) -> Vec<(Vec<u8>, u32, bool)> {
        let mut reader = PcapNgReader::new(bytes).unwrap();
        let mut out = Vec::new();
        while let Some(block) = reader.next_block() {
            if let Block::EnhancedPacket(p) = block.unwrap() {
                // pcap-file reads the times as nanoseconds, as the interface says.
                assert_eq!(p.timestamp.as_micros() / 1_000_000, 1_700_000_000);
                out.push((p.data.to_vec(), p.original_len, !p.options.is_empty()));
            }
        }
        let iface = &reader.interfaces()[0];
        assert!(
            iface
                .options
                .contains(&InterfaceDescriptionOption::IfTsResol(9))
        );
        out
    }

    struct Seg {
        src: u16,
        seq: u32,
        ack: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: Vec<u8>,
    }

    fn tcp(frame: &[u8]) -> Seg {
        // Lax: a cut packet's IP length says more than was captured.
        let p = LaxSlicedPacket::from_ethernet(frame).unwrap();
        assert!(matches!(p.net, Some(LaxNetSlice::Ipv4(_))));
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!("not TCP")
        };
        Seg {
            src: t.source_port(),
            seq: t.sequence_number(),
            ack: t.acknowledgment_number(),
            syn: t.syn(),
            fin: t.fin(),
            rst: t.rst(),
            payload: t.payload().to_vec(),
        }
    }

    #[test]
    fn a_tcp_connection_is_a_whole_conversation() {
        let mut w = PcapNg::new(LabAddrs::default());
        let open = EventKind::TcpOpen {
            conn: 7,
            peer: PEER.into(),
            local: LAB_TCP.into(),
            outbound: false,
            handshake_us: None,
        };
        let close = EventKind::TcpClose {
            conn: 7,
            peer: PEER.into(),
            reason: CloseReason::Fin,
            detail: None,
            duration_us: 1,
            bytes_in: 5,
            bytes_out: 3,
        };
        for (i, k) in [
            open,
            data(7, Direction::In, b"hello", 64),
            data(7, Direction::Out, b"hey", 64),
            close,
        ]
        .into_iter()
        .enumerate()
        {
            w.add(&ev(i as u64 + 1, k));
        }
        let packets = read(&w.take());
        assert_eq!(w.packets, 8);
        let segs: Vec<Seg> = packets.iter().map(|(f, _, _)| tcp(f)).collect();
        // SYN, SYN-ACK, ACK.
        assert!(segs[0].syn && segs[0].src == 40000);
        assert!(segs[1].syn && segs[1].src == 1338 && segs[1].ack == segs[0].seq + 1);
        assert_eq!(
            (segs[2].seq, segs[2].ack),
            (segs[0].seq + 1, segs[1].seq + 1)
        );
        // Data runs on in each direction.
        assert_eq!(segs[3].payload, b"hello");
        assert_eq!(segs[3].seq, segs[0].seq + 1);
        assert_eq!(segs[4].payload, b"hey");
        assert_eq!(
            (segs[4].seq, segs[4].ack),
            (segs[1].seq + 1, segs[0].seq + 6)
        );
        // The peer's FIN, the lab's, the last ACK.
        assert!(segs[5].fin && segs[5].src == 40000 && segs[5].seq == segs[0].seq + 6);
        assert!(segs[6].fin && segs[6].src == 1338 && segs[6].seq == segs[1].seq + 4);
        assert_eq!(
            (segs[7].seq, segs[7].ack),
            (segs[0].seq + 7, segs[1].seq + 5)
        );
        assert!(!segs.iter().any(|s| s.rst));
    }

    #[test]
    fn big_payloads_are_split_and_cut_ones_keep_their_real_length() {
        let mut w = PcapNg::new(LabAddrs {
            tcp: Some(LAB_TCP.parse().unwrap()),
            udp: None,
        });
        // No tcp_open: the conversation starts with the data.
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        w.add(&ev(1, data(3, Direction::In, &big, 70_000)));
        w.add(&ev(
            2,
            EventKind::TcpClose {
                conn: 3,
                peer: PEER.into(),
                reason: CloseReason::Reset,
                detail: None,
                duration_us: 1,
                bytes_in: 0,
                bytes_out: 0,
            },
        ));
        let packets = read(&w.take());
        assert_eq!(packets.len(), 3);
        let (first, second) = (tcp(&packets[0].0), tcp(&packets[1].0));
        assert_eq!(first.payload.len(), MAX_SEGMENT);
        assert_eq!(first.payload, &big[..MAX_SEGMENT]);
        assert_eq!(second.seq, first.seq.wrapping_add(MAX_SEGMENT as u32));
        // The second segment carries 100,000 - 65,495 bytes, of which 70,000 - 65,495 were
        // captured.
        assert_eq!(
            packets[1].1 as usize,
            14 + 20 + 20 + (100_000 - MAX_SEGMENT)
        );
        assert_eq!(packets[1].0.len(), 14 + 20 + 20 + (70_000 - MAX_SEGMENT));
        assert!(packets[1].2, "a cut packet has a comment");
        assert!(!packets[0].2);
        let rst = tcp(&packets[2].0);
        assert!(rst.rst && rst.src == 40000 && rst.seq == first.seq.wrapping_add(100_000));
    }

    #[test]
    fn udp_datagrams_go_between_the_peer_and_the_udp_service() {
        let mut w = PcapNg::new(LabAddrs {
            tcp: None,
            udp: Some("127.0.0.1:1339".parse().unwrap()),
        });
        for (seq, dir, peer) in [
            (1, Direction::In, "127.0.0.1:5000"),
            (2, Direction::Out, "127.0.0.1:5000"),
            (3, Direction::In, "[::1]:5001"),
            (4, Direction::In, "not an address"),
        ] {
            w.add(&ev(
                seq,
                EventKind::UdpDatagram {
                    peer: peer.into(),
                    dir,
                    size: 2,
                    payload: Payload::capture(&[seq as u8, 0xff], 64),
                },
            ));
        }
        w.add(&ev(
            5,
            EventKind::Chat {
                from: "a".into(),
                text: "b".into(),
            },
        ));
        let packets = read(&w.take());
        assert_eq!(packets.len(), 3);
        let ports: Vec<(u16, u16, Vec<u8>)> = packets
            .iter()
            .map(|(f, _, _)| {
                let p = SlicedPacket::from_ethernet(f).unwrap();
                let Some(TransportSlice::Udp(u)) = p.transport else {
                    panic!("not UDP")
                };
                (u.source_port(), u.destination_port(), u.payload().to_vec())
            })
            .collect();
        assert_eq!(ports[0], (5000, 1339, vec![1, 0xff]));
        assert_eq!(ports[1], (1339, 5000, vec![2, 0xff]));
        assert_eq!(ports[2], (5001, 1339, vec![3, 0xff]));
        let v6 = SlicedPacket::from_ethernet(&packets[2].0).unwrap();
        assert!(matches!(v6.net, Some(NetSlice::Ipv6(_))));
    }
}
