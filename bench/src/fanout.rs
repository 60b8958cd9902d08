//! `udp-fanout`: sends UDP datagrams at a fixed rate, each carrying `wlb:<seq>:<send_us>:`,
//! while N WebSocket clients receive. Reads both wirelab's batched `events` frames (and its
//! `lagged { missed }`) and the Node relay's per-datagram objects or arrays: it only looks
//! for the markers in the text, wherever the server put them.
//!
//! Reports delivered messages/s, loss (and how much of it the server reported as `lagged`),
//! and end-to-end latency from the sender's clock to the receiving client's.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use memchr::memmem;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::util::{Flags, cpu_secs, now_us, result_line};

/// Bytes of each datagram (the marker, padded).
const PAYLOAD: usize = 48;
/// Longest wait after the last datagram for the clients to catch up.
const DRAIN: Duration = Duration::from_secs(3);
/// Connections opened at once.
const CONNECT_AT_ONCE: usize = 64;

/// What one client saw.
struct Seen {
    /// Distinct datagrams received.
    received: u64,
    /// Sum of wirelab's `lagged { missed }`.
    lagged_missed: u64,
    frames: u64,
    bytes: u64,
    latency: Histogram<u64>,
}

pub(crate) fn main(flags: &Flags) -> Result<(), String> {
    let udp: SocketAddr = flags
        .str("udp")?
        .parse()
        .map_err(|_| "--udp: bad address")?;
    let url = flags.str("ws")?.to_owned();
    let clients: usize = flags.num("clients", 100)?;
    let rate: u64 = flags.num("rate", 1000)?;
    let secs: f64 = flags.num("secs", 3.0)?;
    let total = (rate as f64 * secs).round() as u64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run(udp, url, clients, rate, total))
}

async fn run(
    udp: SocketAddr,
    url: String,
    clients: usize,
    rate: u64,
    total: u64,
) -> Result<(), String> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let accounted = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(CONNECT_AT_ONCE));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (url, stop, acc, conn, gate) = (
            url.clone(),
            stop_rx.clone(),
            accounted.clone(),
            connected.clone(),
            gate.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok();
            let ws = tokio::time::timeout(
                Duration::from_secs(10),
                tokio_tungstenite::connect_async(url),
            )
            .await;
            drop(permit);
            let ws = match ws {
                Ok(Ok((ws, _))) => ws,
                Ok(Err(e)) => return Err(format!("connect: {e}")),
                Err(_) => return Err("connect: timed out".to_owned()),
            };
            conn.fetch_add(1, Ordering::Relaxed);
            Ok(receive(ws, total, stop, acc).await)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while connected.load(Ordering::Relaxed) < clients as u64 {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {clients} clients connected",
                connected.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let hello/snapshot and the join events settle before the flood.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let cpu0 = cpu_secs(std::process::id()).unwrap_or(0.0);
    let started = Instant::now();
    let sender = std::thread::spawn(move || send(udp, rate, total));
    while !sender.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent = sender.join().map_err(|_| "sender panicked")??;
    let send_secs = started.elapsed().as_secs_f64();
    let expected = sent * clients as u64;
    let drain_until = Instant::now() + DRAIN;
    while accounted.load(Ordering::Relaxed) < expected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(std::process::id()).unwrap_or(0.0) - cpu0;
    let _ = stop_tx.send(true);

    let mut latency =
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(|e| e.to_string())?;
    let (mut delivered, mut lost, mut lagged, mut unreported, mut frames, mut bytes) =
        (0, 0, 0, 0, 0, 0);
    for t in tasks {
        let seen = t.await.map_err(|e| e.to_string())??;
        let lost_here = sent.saturating_sub(seen.received);
        delivered += seen.received;
        lost += lost_here;
        lagged += seen.lagged_missed.min(lost_here);
        unreported += lost_here.saturating_sub(seen.lagged_missed);
        frames += seen.frames;
        bytes += seen.bytes;
        latency.add(&seen.latency).map_err(|e| e.to_string())?;
    }
    let ms = |q: f64| format!("{:.2}", latency.value_at_quantile(q) as f64 / 1000.0);
    println!(
        "{}",
        result_line(&[
            ("clients", clients.to_string()),
            ("rate", rate.to_string()),
            ("sent", sent.to_string()),
            ("send_rate", format!("{:.0}", sent as f64 / send_secs)),
            ("expected", expected.to_string()),
            ("delivered", delivered.to_string()),
            (
                "delivered_per_s",
                format!("{:.0}", delivered as f64 / send_secs)
            ),
            ("lost", lost.to_string()),
            ("lagged", lagged.to_string()),
            ("unreported", unreported.to_string()),
            ("p50_ms", ms(0.5)),
            ("p99_ms", ms(0.99)),
            ("p999_ms", ms(0.999)),
            ("max_ms", format!("{:.2}", latency.max() as f64 / 1000.0)),
            ("frames", frames.to_string()),
            ("bytes", bytes.to_string()),
            ("loadgen_cpu", format!("{:.2}", cpu / wall)),
        ])
    );
    Ok(())
}

/// Sends `total` datagrams at `rate` per second, in 1 ms slices.
fn send(to: SocketAddr, rate: u64, total: u64) -> Result<u64, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    sock.connect(to).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buf = Vec::with_capacity(PAYLOAD);
    // Bounded: the rate's duration plus slack.
    let give_up = started + Duration::from_secs_f64(total as f64 / rate as f64 * 2.0 + 5.0);
    while sent < total && Instant::now() < give_up {
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
        while sent < due {
            buf.clear();
            buf.extend_from_slice(format!("wlb:{sent}:{}:", now_us()).as_bytes());
            buf.resize(PAYLOAD.max(buf.len()), b'x');
            match sock.send(&buf) {
                Ok(_) => sent += 1,
                // The kernel's buffer is full: try again in the next slice.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(105) => break, // ENOBUFS
                Err(e) => return Err(format!("udp send: {e}")),
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(sent)
}

async fn receive<S>(
    mut ws: S,
    total: u64,
    mut stop: watch::Receiver<bool>,
    accounted: Arc<AtomicU64>,
) -> Seen
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let marker = memmem::Finder::new(b"wlb:");
    let mut bits = vec![0u64; (total as usize).div_ceil(64)];
    let mut seen = Seen {
        received: 0,
        lagged_missed: 0,
        frames: 0,
        bytes: 0,
        latency: Histogram::new_with_bounds(1, 600_000_000, 2).expect("bounds"),
    };
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_),
            )) => continue,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
        };
        let now = now_us();
        let bytes = text.as_bytes();
        seen.frames += 1;
        seen.bytes += bytes.len() as u64;
        if bytes.starts_with(br#"{"type":"lagged""#) {
            let missed = serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .and_then(|v| v.get("missed")?.as_u64())
                .unwrap_or(0);
            seen.lagged_missed += missed;
            accounted.fetch_add(missed, Ordering::Relaxed);
            continue;
        }
        let mut new = 0;
        for at in marker.find_iter(bytes) {
            let Some((seq, sent_us)) = parse_marker(&bytes[at + 4..]) else {
                continue;
            };
            let (word, bit) = ((seq / 64) as usize, seq % 64);
            if seq >= total || bits[word] & (1 << bit) != 0 {
                continue;
            }
            bits[word] |= 1 << bit;
            new += 1;
            let _ = seen.latency.record(now.saturating_sub(sent_us).max(1));
        }
        seen.received += new;
        accounted.fetch_add(new, Ordering::Relaxed);
    }
    seen
}

/// Reads `<seq>:<us>:` after a marker.
fn parse_marker(b: &[u8]) -> Option<(u64, u64)> {
    let (seq, rest) = digits(b)?;
    let (us, _) = digits(rest.strip_prefix(b":")?)?;
    Some((seq, us))
}

fn digits(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    Some((v, &b[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse_in_both_formats() {
        assert_eq!(parse_marker(b"12:345:xxx\"}"), Some((12, 345)));
        assert_eq!(parse_marker(b"12345"), None);
    }
}
