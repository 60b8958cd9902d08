//! Kernel figures per connection (rtt, rttvar, cwnd, retransmits, bytes acked): Linux's
//! `struct tcp_info`, read the way `ss -ti` reads it.
//!
//! `getsockopt(TCP_INFO)` would need `unsafe` (forbidden in this workspace): socket2 has
//! no getter for it (rust-lang/socket2#362) and nix has none either. The kernel's
//! sock_diag netlink interface gives the same struct as plain bytes over a socket that
//! socket2 opens safely: one dump of the host's TCP sockets, matched to the lab's
//! connections by address pair. Elsewhere than Linux there are no figures (`None`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::conn::Conn;
use crate::hub::lock;

/// A connection's identity for matching: (local, peer), IPv4-mapped addresses as IPv4.
type Key = (SocketAddr, SocketAddr);

fn key(local: SocketAddr, peer: SocketAddr) -> Key {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    (canon(local), canon(peer))
}

/// Reads the figures of `conns` and stores them in each (blocking: run it off the
/// runtime's worker threads).
pub(crate) fn refresh(conns: &[Arc<Conn>]) {
    let slots: Vec<Slot<'_>> = conns.iter().map(|c| (c.local, c.peer, &c.kernel)).collect();
    refresh_slots(&slots);
}

/// One socket whose figures are wanted: its local and peer addresses, and where to keep
/// them (a relayed connection has two, one per leg).
pub(crate) type Slot<'a> = (
    SocketAddr,
    SocketAddr,
    &'a Mutex<Option<wirelab_shared::TcpKernelInfo>>,
);

/// Reads the figures of every slot's socket and stores them (blocking, as [`refresh`]).
pub(crate) fn refresh_slots(slots: &[Slot<'_>]) {
    if slots.is_empty() {
        return;
    }
    let v4 = slots.iter().any(|s| s.0.is_ipv4());
    let v6 = slots.iter().any(|s| s.0.is_ipv6());
    match query(v4, v6) {
        Ok(figures) => {
            for (local, peer, kernel) in slots {
                *lock(kernel) = figures.get(&key(*local, *peer)).copied();
            }
        }
        Err(e) => tracing::debug!("no TCP_INFO figures: {e}"),
    }
}

#[cfg(not(target_os = "linux"))]
fn query(
    _v4: bool,
    _v6: bool,
) -> std::io::Result<std::collections::HashMap<Key, wirelab_shared::TcpKernelInfo>> {
    Ok(Default::default())
}

#[cfg(target_os = "linux")]
use linux::query;

#[cfg(target_os = "linux")]
mod linux {
    //! The sock_diag request and the parsing of its answer (layouts from
    //! `linux/netlink.h`, `linux/inet_diag.h` and `linux/tcp.h`; native byte order except
    //! ports and addresses).

    use std::collections::HashMap;
    use std::io::{self, Read};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::time::Duration;

    use socket2::{Domain, Protocol, Socket, Type};
    use wirelab_shared::TcpKernelInfo;

    use super::{Key, key};

    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;
    const AF_NETLINK: i32 = 16;
    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const IPPROTO_TCP: u8 = 6;
    /// The attribute that carries `struct tcp_info`.
    const INET_DIAG_INFO: u16 = 2;
    /// Every state that has a peer: ESTABLISHED, FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK,
    /// CLOSING (SYN_SENT/SYN_RECV, TIME_WAIT and LISTEN are no lab connection).
    const STATES: u32 = 1 << 1 | 1 << 4 | 1 << 5 | 1 << 8 | 1 << 9 | 1 << 11;
    const NLMSG_HDR: usize = 16;
    /// `struct inet_diag_msg`.
    const DIAG_MSG: usize = 72;

    /// One dump per address family asked for, merged.
    pub(super) fn query(v4: bool, v6: bool) -> io::Result<HashMap<Key, TcpKernelInfo>> {
        let mut out = HashMap::new();
        let families = [(v4, AF_INET), (v6, AF_INET6)];
        for (_, family) in families.into_iter().filter(|(want, _)| *want) {
            dump(family, &mut out)?;
        }
        Ok(out)
    }

    fn dump(family: u8, out: &mut HashMap<Key, TcpKernelInfo>) -> io::Result<()> {
        let mut sock = Socket::new(
            Domain::from(AF_NETLINK),
            Type::DGRAM,
            Some(Protocol::from(NETLINK_SOCK_DIAG)),
        )?;
        sock.set_read_timeout(Some(Duration::from_millis(500)))?;
        // Unbound and unconnected, a netlink socket sends to the kernel.
        sock.send(&request(family))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sock.read(&mut buf)?;
            if parse(&buf[..n], out)? {
                return Ok(());
            }
        }
    }

    /// `nlmsghdr` + `inet_diag_req_v2` asking for every TCP socket of `family` in
    /// [`STATES`], with its `tcp_info`.
    pub(super) fn request(family: u8) -> Vec<u8> {
        let mut b = Vec::with_capacity(NLMSG_HDR + 56);
        b.extend_from_slice(&((NLMSG_HDR + 56) as u32).to_ne_bytes());
        b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        b.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
        b.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        b.extend_from_slice(&[family, IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), 0]);
        b.extend_from_slice(&STATES.to_ne_bytes());
        b.extend_from_slice(&[0u8; 48]); // inet_diag_sockid: any
        b
    }

    /// Parses one datagram of the answer into `out`; true when the dump is complete.
    pub(super) fn parse(buf: &[u8], out: &mut HashMap<Key, TcpKernelInfo>) -> io::Result<bool> {
        let mut at = 0;
        while at + NLMSG_HDR <= buf.len() {
            let len = u32_at(buf, at) as usize;
            if len < NLMSG_HDR || at + len > buf.len() {
                return Err(io::Error::other("a malformed sock_diag answer"));
            }
            let body = &buf[at + NLMSG_HDR..at + len];
            match u16::from_ne_bytes([buf[at + 4], buf[at + 5]]) {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let code = body
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    return Err(io::Error::from_raw_os_error(-code));
                }
                SOCK_DIAG_BY_FAMILY => {
                    if let Some((k, info)) = socket(body) {
                        out.insert(k, info);
                    }
                }
                _ => {}
            }
            at += len.next_multiple_of(4);
        }
        Ok(false)
    }

    /// One `inet_diag_msg` and its attributes.
    fn socket(msg: &[u8]) -> Option<(Key, TcpKernelInfo)> {
        if msg.len() < DIAG_MSG {
            return None;
        }
        let addr = |at: usize| -> Option<IpAddr> {
            match msg[0] {
                AF_INET => Some(Ipv4Addr::from(<[u8; 4]>::try_from(&msg[at..at + 4]).ok()?).into()),
                AF_INET6 => {
                    Some(Ipv6Addr::from(<[u8; 16]>::try_from(&msg[at..at + 16]).ok()?).into())
                }
                _ => None,
            }
        };
        let sport = u16::from_be_bytes([msg[4], msg[5]]);
        let dport = u16::from_be_bytes([msg[6], msg[7]]);
        let local = SocketAddr::new(addr(8)?, sport);
        let peer = SocketAddr::new(addr(24)?, dport);
        let mut at = DIAG_MSG;
        while at + 4 <= msg.len() {
            let len = u16::from_ne_bytes([msg[at], msg[at + 1]]) as usize;
            let kind = u16::from_ne_bytes([msg[at + 2], msg[at + 3]]);
            if len < 4 || at + len > msg.len() {
                return None;
            }
            if kind == INET_DIAG_INFO {
                return Some((key(local, peer), tcp_info(&msg[at + 4..at + len])?));
            }
            at += len.next_multiple_of(4);
        }
        None
    }

    /// The figures wirelab shows from `struct tcp_info` (offsets from `linux/tcp.h`).
    pub(super) fn tcp_info(b: &[u8]) -> Option<TcpKernelInfo> {
        if b.len() < 104 {
            return None;
        }
        let bytes_acked = b
            .get(120..128)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map_or(0, u64::from_ne_bytes);
        Some(TcpKernelInfo {
            rtt_us: u32_at(b, 68),
            rttvar_us: u32_at(b, 72),
            cwnd: u32_at(b, 80),
            retransmits: u32_at(b, 100),
            bytes_acked,
        })
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::collections::HashMap;
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn a_loopback_connection_has_figures() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).unwrap();
        let figures = query(true, false).unwrap();
        let mine = key(server.local_addr().unwrap(), server.peer_addr().unwrap());
        let info = figures
            .get(&mine)
            .expect("the accepted socket is in the dump");
        assert!(info.cwnd > 0, "{info:?}");
        let theirs = key(client.local_addr().unwrap(), client.peer_addr().unwrap());
        assert!(figures.contains_key(&theirs));
        // Only sockets with a peer: the listener is not there.
        assert!(figures.keys().all(|(_, peer)| peer.port() != 0));
    }

    #[test]
    fn tcp_info_reads_the_documented_offsets() {
        let mut b = vec![0u8; 232];
        b[68..72].copy_from_slice(&250u32.to_ne_bytes());
        b[72..76].copy_from_slice(&40u32.to_ne_bytes());
        b[80..84].copy_from_slice(&10u32.to_ne_bytes());
        b[100..104].copy_from_slice(&3u32.to_ne_bytes());
        b[120..128].copy_from_slice(&12345u64.to_ne_bytes());
        let info = linux::tcp_info(&b).unwrap();
        assert_eq!(
            (
                info.rtt_us,
                info.rttvar_us,
                info.cwnd,
                info.retransmits,
                info.bytes_acked
            ),
            (250, 40, 10, 3, 12345)
        );
        assert_eq!(linux::tcp_info(&b[..100]), None);
        // An old kernel's shorter struct: no bytes_acked.
        assert_eq!(linux::tcp_info(&b[..104]).unwrap().bytes_acked, 0);
    }

    #[test]
    fn the_request_is_a_well_formed_dump_request() {
        let req = linux::request(2);
        assert_eq!(req.len(), 72);
        assert_eq!(u32::from_ne_bytes(req[..4].try_into().unwrap()), 72);
        assert_eq!(&req[16..19], &[2, 6, 2]);
        let mut out = HashMap::new();
        // A lone NLMSG_DONE ends the dump.
        let mut done = 16u32.to_ne_bytes().to_vec();
        done.extend_from_slice(&3u16.to_ne_bytes());
        done.extend_from_slice(&[0u8; 10]);
        assert!(linux::parse(&done, &mut out).unwrap());
        assert!(linux::parse(&done[..8], &mut out).is_ok_and(|d| !d));
    }
}
