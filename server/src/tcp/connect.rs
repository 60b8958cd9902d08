//! A connection opened from the page: loopback only unless `--allow-outbound`, the
//! three-way handshake timed into `TcpOpen.handshake_us`; from then on a connection like
//! any accepted one (same loop, same relay mode, same limit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::conn;

/// How long a handshake may take before the page is told there was no answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection from the lab to `addr` (`host:port`).
pub async fn connect(tcp: &Arc<super::Tcp>, addr: &str) -> Result<String, String> {
    let target = resolve(addr, tcp.allow_outbound).await?;
    let permit = tcp.try_permit().ok_or_else(|| {
        format!(
            "the lab already holds {} TCP connections (--max-tcp-conns): close one first",
            tcp.max_conns
        )
    })?;
    let started = Instant::now();
    let stream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Err(_) => {
            return Err(format!(
                "no answer from {target} within {} s",
                CONNECT_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(format!(
                "{target} refused the connection: nothing listens there"
            ));
        }
        Ok(Err(e)) => return Err(format!("connecting to {target} failed: {e}")),
        Ok(Ok(stream)) => stream,
    };
    let handshake_us = started.elapsed().as_micros() as u64;
    let id = conn::open(tcp, stream, target, permit, Some(handshake_us), None)
        .map_err(|e| format!("{target} went away at once: {e}"))?;
    Ok(format!(
        "connected to {target} as #{id}; the handshake took {handshake_us} µs"
    ))
}

/// The address to connect to: a literal `ip:port`, or a `host:port` resolved (the
/// first loopback answer when only loopback is allowed).
pub(crate) async fn resolve(addr: &str, allow_outbound: bool) -> Result<SocketAddr, String> {
    resolve_all(addr, allow_outbound).await.map(|all| all[0])
}

/// Every address to try for `addr`, in the resolver's order (never none): a literal
/// `ip:port`, or what `host:port` resolves to, only its loopback answers when only
/// loopback is allowed. A client tries each in turn, as Go's `Dial` does: `localhost`
/// often resolves to `::1` first, and a service may listen on 127.0.0.1 only.
pub(crate) async fn resolve_all(
    addr: &str,
    allow_outbound: bool,
) -> Result<Vec<SocketAddr>, String> {
    let addr = addr.trim();
    let candidates: Vec<SocketAddr> = match addr.parse::<SocketAddr>() {
        Ok(a) => vec![a],
        Err(_) => {
            if !addr.contains(':') {
                return Err(format!(
                    "{addr:?} has no port: write host:port, for example 127.0.0.1:8000"
                ));
            }
            match timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(addr)).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(e)) => return Err(format!("cannot resolve {addr:?}: {e}")),
                Err(_) => return Err(format!("resolving {addr:?} took too long")),
            }
        }
    };
    let picked: Vec<SocketAddr> = candidates
        .iter()
        .copied()
        .filter(|a| allow_outbound || a.ip().to_canonical().is_loopback())
        .collect();
    match picked.first() {
        Some(a) if a.port() != 0 => Ok(picked),
        Some(_) => Err(format!("{addr}: port 0 is not a port one can connect to")),
        None if candidates.is_empty() => Err(format!("{addr:?} resolves to no address")),
        None => Err(format!(
            "{addr} is not a loopback address: wirelab only connects out to this machine \
             (127.0.0.1, ::1) unless it runs with --allow-outbound"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_loopback_without_allow_outbound() {
        assert_eq!(
            resolve(" 127.0.0.1:80 ", false).await,
            Ok("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            resolve("[::1]:80", false).await,
            Ok("[::1]:80".parse().unwrap())
        );
        let refused = resolve("10.1.2.3:80", false).await.unwrap_err();
        assert!(refused.contains("--allow-outbound"), "{refused}");
        assert_eq!(
            resolve("10.1.2.3:80", true).await,
            Ok("10.1.2.3:80".parse().unwrap())
        );
        assert!(
            resolve("127.0.0.1", false)
                .await
                .unwrap_err()
                .contains("no port")
        );
        assert!(
            resolve("127.0.0.1:0", false)
                .await
                .unwrap_err()
                .contains("port 0")
        );
        assert!(
            resolve("localhost:80", false)
                .await
                .is_ok_and(|a| a.ip().is_loopback())
        );
    }
}
