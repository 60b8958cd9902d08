//! Load for the fault-accuracy figure (figure 7): each tool runs its own upstream, sends
//! through a lab proxy to it, and says what came back.
//!
//! - `tcp-rtt`: 64-byte messages at a fixed rate through a `tcp` proxy to an echo
//!   upstream of its own; each message carries the instant it was written, so its round
//!   trip is read off when it comes back. Prints `RESULT n= p50_us= p99_us= max_us=`.
//! - `tcp-drain`: an upstream of its own writes as fast as it can through a `tcp` proxy;
//!   the client reads for `--secs` from the first byte. Prints `RESULT bytes= secs=
//!   kb_per_s= window_min= window_max=` (KB of 1,000 bytes; the windows are whole
//!   seconds).
//! - `udp-count`: `--count` numbered datagrams, paced, through a `udp` proxy to an
//!   upstream of its own that counts what reaches it (for toxics on `upstream`; nothing
//!   comes back, so no return leg can lose any): those that never came, the copies beyond
//!   the first, and those whose first copy came after a higher-numbered one. Prints
//!   `RESULT sent= received= lost= duplicated= late=`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::result_line;

/// Bytes per `tcp-rtt` message.
const MESSAGE: usize = 64;
/// `tcp-rtt` messages sent first and not counted (the proxy's first connect upstream).
const WARM_UP: u64 = 20;
/// How long a read waits at most before the tool gives up on the proxy.
const READ_LIMIT: Duration = Duration::from_secs(5);
/// How long `udp-count` waits for the last datagrams after sending (a reorder toxic holds
/// one back for a second at most).
const UDP_TAIL: Duration = Duration::from_millis(1500);

/// An error's words, with what was being done.
fn io(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// `tcp-rtt`'s flags.
#[derive(clap::Args)]
pub(crate) struct RttArgs {
    /// Where the relay listens (its upstream must be `--echo`).
    #[arg(long, value_name = "ADDR")]
    relay: SocketAddr,
    /// Where this tool's echo upstream listens.
    #[arg(long, value_name = "ADDR")]
    echo: SocketAddr,
    /// Messages per second.
    #[arg(long, value_name = "N", default_value_t = 200)]
    rate: u32,
    /// Seconds of messages, after the warm-up ones.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    secs: f64,
}

/// An echo upstream for one TCP connection: whatever it reads it writes back, until the
/// client closes (or is silent for [`READ_LIMIT`]).
fn tcp_echo(listener: TcpListener) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(READ_LIMIT));
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    })
}

/// `tcp-rtt`: see the module docs.
pub(crate) fn tcp_rtt(args: RttArgs) -> Result<(), String> {
    let listener = TcpListener::bind(args.echo).map_err(io("binding the echo upstream"))?;
    let echo = tcp_echo(listener);
    let mut client = TcpStream::connect(args.relay).map_err(io("connecting to the relay"))?;
    client.set_nodelay(true).map_err(io("client"))?;
    client
        .set_read_timeout(Some(READ_LIMIT))
        .map_err(io("client"))?;
    let mut reader = client.try_clone().map_err(io("client"))?;
    let n = WARM_UP + (f64::from(args.rate.max(1)) * args.secs).ceil() as u64;
    let start = Instant::now();
    // Each message's round trip, in µs, read off as it comes back.
    let reading = std::thread::spawn(move || -> Result<Vec<u64>, String> {
        let mut rtts = Vec::with_capacity(n as usize);
        let mut m = [0u8; MESSAGE];
        for _ in 0..n {
            reader
                .read_exact(&mut m)
                .map_err(io("reading the echo through the relay"))?;
            let seq = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
            let sent = u64::from_le_bytes(m[8..16].try_into().expect("8 bytes"));
            let now = start.elapsed().as_nanos() as u64;
            if seq >= WARM_UP {
                rtts.push(now.saturating_sub(sent) / 1000);
            }
        }
        Ok(rtts)
    });
    let every = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut m = [b'x'; MESSAGE];
    for seq in 0..n {
        let due = start + every.mul_f64(seq as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        m[..8].copy_from_slice(&seq.to_le_bytes());
        let sent = start.elapsed().as_nanos() as u64;
        m[8..16].copy_from_slice(&sent.to_le_bytes());
        client
            .write_all(&m)
            .map_err(io("writing through the relay"))?;
    }
    let rtts = reading
        .join()
        .map_err(|_| "the reading thread panicked".to_owned())??;
    drop(client);
    let _ = echo.join();
    let mut sorted = rtts;
    sorted.sort_unstable();
    let at = |q: f64| {
        let i = ((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1);
        sorted.get(i).copied().unwrap_or(0)
    };
    println!(
        "{}",
        result_line(&[
            ("n", sorted.len().to_string()),
            ("p50_us", at(0.50).to_string()),
            ("p99_us", at(0.99).to_string()),
            ("max_us", sorted.last().copied().unwrap_or(0).to_string()),
        ])
    );
    Ok(())
}

/// `tcp-drain`'s flags.
#[derive(clap::Args)]
pub(crate) struct DrainArgs {
    /// Where the relay listens (its upstream must be `--source`).
    #[arg(long, value_name = "ADDR")]
    relay: SocketAddr,
    /// Where this tool's upstream (which writes as fast as it can) listens.
    #[arg(long, value_name = "ADDR")]
    source: SocketAddr,
    /// Seconds to read, from the first byte.
    #[arg(long, value_name = "S", default_value_t = 10)]
    secs: u64,
}

/// `tcp-drain`: see the module docs.
pub(crate) fn tcp_drain(args: DrainArgs) -> Result<(), String> {
    let listener = TcpListener::bind(args.source).map_err(io("binding the source upstream"))?;
    // Writes until the client goes (a write fails) or for the run and a margin at most.
    let limit = Duration::from_secs(args.secs + 15);
    let source = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let _ = s.set_write_timeout(Some(READ_LIMIT));
        let chunk = vec![b'x'; 64 * 1024];
        let until = Instant::now() + limit;
        while Instant::now() < until && s.write_all(&chunk).is_ok() {}
    });
    let mut client = TcpStream::connect(args.relay).map_err(io("connecting to the relay"))?;
    client
        .set_read_timeout(Some(READ_LIMIT))
        .map_err(io("client"))?;
    let mut buf = vec![0u8; 256 * 1024];
    let first = client
        .read(&mut buf)
        .map_err(io("reading the first bytes through the relay"))?;
    if first == 0 {
        return Err("the relay closed before the first byte".into());
    }
    // The bytes after the first read, up to `secs` after it; and per whole second.
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(args.secs);
    let mut windows = vec![0u64; args.secs as usize];
    let mut bytes = 0u64;
    while Instant::now() < end {
        let n = client
            .read(&mut buf)
            .map_err(io("reading through the relay"))?;
        let at = t0.elapsed();
        if n == 0 {
            return Err(format!("the relay closed after {:.1} s", at.as_secs_f64()));
        }
        if at >= Duration::from_secs(args.secs) {
            break;
        }
        bytes += n as u64;
        if let Some(w) = windows.get_mut(at.as_secs() as usize) {
            *w += n as u64;
        }
    }
    drop(client);
    let _ = source.join();
    let kb = |b: u64| b as f64 / 1000.0;
    let min = windows.iter().copied().min().unwrap_or(0);
    let max = windows.iter().copied().max().unwrap_or(0);
    println!(
        "{}",
        result_line(&[
            ("bytes", bytes.to_string()),
            ("secs", args.secs.to_string()),
            ("kb_per_s", format!("{:.1}", kb(bytes) / args.secs as f64)),
            ("window_min", format!("{:.1}", kb(min))),
            ("window_max", format!("{:.1}", kb(max))),
        ])
    );
    Ok(())
}

/// `udp-count`'s flags.
#[derive(clap::Args)]
pub(crate) struct CountArgs {
    /// Where the relay listens (its upstream must be `--sink`).
    #[arg(long, value_name = "ADDR")]
    relay: SocketAddr,
    /// Where this tool's counting upstream listens.
    #[arg(long, value_name = "ADDR")]
    sink: SocketAddr,
    /// Datagrams to send.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    count: u64,
    /// Datagrams per second.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    rate: u64,
    /// Bytes per datagram (at least 8: the sequence number).
    #[arg(long, value_name = "B", default_value_t = 64)]
    size: usize,
}

/// What reached the upstream of the datagrams sent.
struct Tally {
    /// Copies of each, by sequence number.
    copies: Vec<u32>,
    /// Datagrams whose first copy came after a higher-numbered one.
    late: u64,
}

/// The counting upstream: tallies every datagram until `done`.
fn sink(socket: UdpSocket, count: u64, done: Arc<AtomicBool>) -> JoinHandle<Tally> {
    std::thread::spawn(move || {
        let mut t = Tally {
            copies: vec![0; count as usize],
            late: 0,
        };
        let mut highest: Option<u64> = None;
        let mut buf = [0u8; 2048];
        while !done.load(Relaxed) {
            let Ok(n) = socket.recv(&mut buf) else {
                continue; // its read timeout: look at `done` again
            };
            if n < 8 {
                continue;
            }
            let seq = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
            let Some(c) = t.copies.get_mut(seq as usize) else {
                continue;
            };
            *c += 1;
            if *c == 1 && highest.is_some_and(|h| h > seq) {
                t.late += 1;
            }
            highest = highest.max(Some(seq));
        }
        t
    })
}

/// `udp-count`: see the module docs.
pub(crate) fn udp_count(args: CountArgs) -> Result<(), String> {
    let upstream = UdpSocket::bind(args.sink).map_err(io("binding the counting upstream"))?;
    upstream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(io("counting upstream"))?;
    let done = Arc::new(AtomicBool::new(false));
    let counting = sink(upstream, args.count, done.clone());
    let client = UdpSocket::bind("127.0.0.1:0").map_err(io("client"))?;
    client.connect(args.relay).map_err(io("client"))?;
    let mut datagram = vec![b'x'; args.size.max(8)];
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    for seq in 0..args.count {
        // Paced in batches of 8, so that no queue on the way overflows.
        if seq % 8 == 0 {
            let due = start + every.mul_f64(seq as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        datagram[..8].copy_from_slice(&seq.to_le_bytes());
        client
            .send(&datagram)
            .map_err(io("sending through the relay"))?;
    }
    std::thread::sleep(UDP_TAIL);
    done.store(true, Relaxed);
    let t = counting
        .join()
        .map_err(|_| "the counting thread panicked".to_owned())?;
    let lost = t.copies.iter().filter(|c| **c == 0).count() as u64;
    let received: u64 = t.copies.iter().map(|c| u64::from(*c)).sum();
    let duplicated: u64 = t
        .copies
        .iter()
        .map(|c| u64::from(c.saturating_sub(1)))
        .sum();
    println!(
        "{}",
        result_line(&[
            ("sent", args.count.to_string()),
            ("received", received.to_string()),
            ("lost", lost.to_string()),
            ("duplicated", duplicated.to_string()),
            ("late", t.late.to_string()),
        ])
    );
    Ok(())
}
