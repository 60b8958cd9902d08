//! `http-rate`: GET requests at a fixed rate over kept-alive connections, each request's
//! latency measured from the time it was due (not from when it went out, so a server that
//! stalls is charged for the requests that queued behind it: no coordinated omission).
//! Reports p50, p99, p99.9 and max in µs, and the requests and errors.
//!
//! `--conns` threads share the rate, each with its own connection and schedule; a
//! response is read by its `Content-Length` (the servers measured send one).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::util::result_line;

/// `http-rate`'s flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The HTTP server (or relay) to ask.
    #[arg(long, value_name = "ADDR")]
    addr: SocketAddr,
    /// Requests per second, all connections together.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    rate: u32,
    /// Seconds of requests (after one second of warm-up, not counted).
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    secs: f64,
    /// Connections (and threads) sharing the rate.
    #[arg(long, value_name = "N", default_value_t = 4)]
    conns: u32,
    /// The path asked for.
    #[arg(long, value_name = "PATH", default_value = "/")]
    path: String,
}

/// What one connection measured.
struct Measured {
    hist: Histogram<u64>,
    errors: u64,
}

pub(crate) fn main(args: Args) -> Result<(), String> {
    let every = Duration::from_secs_f64(f64::from(args.conns) / f64::from(args.rate.max(1)));
    let warm = Duration::from_secs(1);
    let run = Duration::from_secs_f64(args.secs);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: wirelab-bench\r\n\r\n",
        args.path, args.addr
    );
    let start = Instant::now() + Duration::from_millis(50);
    let threads: Vec<_> = (0..args.conns)
        .map(|i| {
            let request = request.clone();
            let addr = args.addr;
            // The connections' schedules are spread over one interval.
            let offset = every * i / args.conns;
            std::thread::spawn(move || connection(addr, &request, start + offset, every, warm, run))
        })
        .collect();
    let mut all = histogram()?;
    let mut errors = 0;
    for t in threads {
        let m = t.join().map_err(|_| "a connection's thread panicked")??;
        all.add(&m.hist).map_err(|e| e.to_string())?;
        errors += m.errors;
    }
    println!(
        "{}",
        result_line(&[
            ("requests", all.len().to_string()),
            ("errors", errors.to_string()),
            ("p50_us", all.value_at_quantile(0.50).to_string()),
            ("p99_us", all.value_at_quantile(0.99).to_string()),
            ("p999_us", all.value_at_quantile(0.999).to_string()),
            ("max_us", all.max().to_string()),
        ])
    );
    Ok(())
}

/// One connection's requests, due every `every` from `first`; those due in the warm-up
/// are not counted.
fn connection(
    addr: SocketAddr,
    request: &str,
    first: Instant,
    every: Duration,
    warm: Duration,
    run: Duration,
) -> Result<Measured, String> {
    let mut hist = histogram()?;
    let mut errors = 0;
    let mut conn = connect(addr)?;
    let mut buf = vec![0u8; 64 * 1024];
    let (counted_from, end) = (first + warm, first + warm + run);
    let mut due = first;
    while due < end {
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let ok = conn.write_all(request.as_bytes()).is_ok() && read_response(&mut conn, &mut buf);
        let took = due.elapsed();
        if !ok {
            errors += 1;
            conn = connect(addr)?;
        } else if due >= counted_from {
            hist.saturating_record(took.as_micros() as u64);
        }
        due += every;
    }
    Ok(Measured { hist, errors })
}

/// 1 µs to 60 s, 3 significant digits.
fn histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    Ok(s)
}

/// Reads one response with a `Content-Length` body; whether it came whole.
fn read_response(conn: &mut TcpStream, buf: &mut [u8]) -> bool {
    let mut have = 0;
    loop {
        let Ok(n) = conn.read(&mut buf[have..]) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        have += n;
        let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") else {
            if have == buf.len() {
                return false;
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let total = end + 4 + length;
        if total > buf.len() {
            return false; // bodies this big are not what this tool measures
        }
        while have < total {
            match conn.read(&mut buf[have..total]) {
                Ok(0) | Err(_) => return false,
                Ok(n) => have += n,
            }
        }
        return head.starts_with("http/1.1 2");
    }
}
