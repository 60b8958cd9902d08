//! Load for the relay figures.
//!
//! - `udp-echo`: a closed-loop UDP client through a relay to an echo upstream of its own.
//!   It keeps `--window` datagrams in flight: each one echoed back lets the next go. A
//!   datagram not back within [`LOST_AFTER`] is lost (the window is refilled, and the
//!   loss counted); one that comes back later still counts as echoed, once. Prints
//!   `RESULT sent= echoed= lost= per_s=`, `per_s` being echoed datagrams per second.
//! - `tcp-hold`: N TCP clients through a relay to a listener of its own that accepts and
//!   holds them, nobody sending a byte. Prints `READY connected=N accepted=N` once both
//!   legs of every one are up, holds them until stdin closes, then prints `RESULT`.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::util::result_line;

/// A datagram not echoed within this long is lost.
const LOST_AFTER: Duration = Duration::from_millis(200);

/// `udp-echo`'s flags.
#[derive(clap::Args)]
pub(crate) struct UdpArgs {
    /// Where the relay listens (its upstream must be `--echo`).
    #[arg(long, value_name = "ADDR")]
    relay: SocketAddr,
    /// Where this tool's echo upstream listens.
    #[arg(long, value_name = "ADDR")]
    echo: SocketAddr,
    /// Datagrams in flight at most.
    #[arg(long, value_name = "N", default_value_t = 32)]
    window: u64,
    /// Bytes per datagram (at least 8: the sequence number).
    #[arg(long, value_name = "B", default_value_t = 64)]
    size: usize,
    /// Seconds to measure, after a 0.5 s warm-up.
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    secs: f64,
}

pub(crate) fn udp_echo(args: UdpArgs) -> Result<(), String> {
    let io = |what: &'static str| move |e: std::io::Error| format!("{what}: {e}");
    let echo = UdpSocket::bind(args.echo).map_err(io("binding the echo upstream"))?;
    echo.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(io("echo"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let echoing = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Relaxed) {
                if let Ok((n, from)) = echo.recv_from(&mut buf) {
                    let _ = echo.send_to(&buf[..n], from);
                }
            }
        })
    };
    let client = UdpSocket::bind("127.0.0.1:0").map_err(io("client"))?;
    client.connect(args.relay).map_err(io("client"))?;
    client
        .set_read_timeout(Some(LOST_AFTER))
        .map_err(io("client"))?;
    let mut datagram = vec![b'x'; args.size.max(8)];
    let (mut sent, mut echoed) = (0u64, 0u64);
    let mut back = Vec::new(); // one flag per sequence number: echoed already
    let mut send = |sent: &mut u64, back: &mut Vec<bool>| {
        datagram[..8].copy_from_slice(&sent.to_le_bytes());
        let _ = client.send(&datagram);
        back.push(false);
        *sent += 1;
    };
    let mut in_flight = 0;
    let started = Instant::now();
    let warm = started + Duration::from_millis(500);
    let end = warm + Duration::from_secs_f64(args.secs);
    let (mut counted_from, mut at_warm) = (None, 0);
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if counted_from.is_none() && now >= warm {
            counted_from = Some(now);
            at_warm = echoed;
        }
        if now >= end {
            break;
        }
        while in_flight < args.window {
            send(&mut sent, &mut back);
            in_flight += 1;
        }
        match client.recv(&mut buf) {
            Ok(n) if n >= 8 => {
                let seq = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
                if let Some(seen) = back.get_mut(seq as usize).filter(|s| !**s) {
                    *seen = true;
                    echoed += 1;
                    in_flight = in_flight.saturating_sub(1);
                }
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // The window's datagrams are lost (unless they come back later): a new one.
                in_flight = 0;
            }
            Err(_) => {} // ICMP from an earlier send: the relay was not there yet
        }
    }
    let measured = counted_from.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let per_s = (echoed - at_warm) as f64 / measured.max(1e-9);
    // Stragglers: what comes back now was not lost after all.
    let until = Instant::now() + LOST_AFTER;
    while Instant::now() < until {
        if let Ok(n) = client.recv(&mut buf)
            && n >= 8
        {
            let seq = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
            if let Some(seen) = back.get_mut(seq as usize).filter(|s| !**s) {
                *seen = true;
                echoed += 1;
            }
        }
    }
    stop.store(true, Relaxed);
    let _ = echoing.join();
    println!(
        "{}",
        result_line(&[
            ("sent", sent.to_string()),
            ("echoed", echoed.to_string()),
            ("lost", (sent - echoed).to_string()),
            ("per_s", format!("{per_s:.0}")),
        ])
    );
    Ok(())
}

/// `tcp-hold`'s flags.
#[derive(clap::Args)]
pub(crate) struct HoldArgs {
    /// Where the relay listens (its upstream must be `--upstream`).
    #[arg(long, value_name = "ADDR")]
    relay: SocketAddr,
    /// Where this tool's upstream listens.
    #[arg(long, value_name = "ADDR")]
    upstream: SocketAddr,
    /// Connections to open.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    conns: usize,
}

pub(crate) fn tcp_hold(args: HoldArgs) -> Result<(), String> {
    let listener = TcpListener::bind(args.upstream).map_err(|e| format!("upstream: {e}"))?;
    let n = args.conns;
    let accepting = std::thread::spawn(move || {
        let mut held = Vec::with_capacity(n);
        while held.len() < n {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => break,
            }
        }
        held
    });
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        match TcpStream::connect(args.relay) {
            Ok(s) => clients.push(s),
            Err(e) => return Err(format!("connecting to the relay: {e}")),
        }
    }
    // Every upstream leg is up once the relay has connected them all.
    let until = Instant::now() + Duration::from_secs(60);
    while !accepting.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let upstream = if accepting.is_finished() {
        accepting.join().unwrap_or_default()
    } else {
        Vec::new()
    };
    println!(
        "READY connected={} accepted={}",
        clients.len(),
        upstream.len()
    );
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    // Still open: a read would block (nothing sent), not end (FIN) or fail (RST).
    let open = clients
        .iter()
        .filter(|c| {
            c.set_nonblocking(true).is_ok()
                && matches!(c.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock)
        })
        .count();
    println!("{}", result_line(&[("still_open", open.to_string())]));
    Ok(())
}
