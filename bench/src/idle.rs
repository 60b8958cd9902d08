//! `ws-idle`: opens N WebSocket clients that send nothing, reads (and drops) whatever the
//! server pushes, and holds them open. Prints `READY connected=N` once all are open, then
//! holds them for `--hold` seconds (or until stdin closes) and prints its `RESULT`.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{Semaphore, watch};

use crate::util::result_line;

/// Connections opened at once.
const CONNECT_AT_ONCE: usize = 100;

/// `ws-idle`'s flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The WebSocket URL to connect to.
    #[arg(long, value_name = "URL")]
    ws: String,
    /// Clients to open.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    clients: usize,
    /// Seconds to hold them open (less if stdin closes first).
    #[arg(long, value_name = "S", default_value_t = 10)]
    hold: u64,
}

pub(crate) fn main(args: Args) -> Result<(), String> {
    let Args {
        ws: url,
        clients,
        hold,
    } = args;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run(url, clients, hold))
}

async fn run(url: String, clients: usize, hold: u64) -> Result<(), String> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let connected = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(CONNECT_AT_ONCE));
    let started = Instant::now();
    for _ in 0..clients {
        let (url, mut stop, conn, failed, frames, gate) = (
            url.clone(),
            stop_rx.clone(),
            connected.clone(),
            failed.clone(),
            frames.clone(),
            gate.clone(),
        );
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok();
            let ws = tokio::time::timeout(
                Duration::from_secs(20),
                tokio_tungstenite::connect_async(url),
            )
            .await;
            drop(permit);
            let Ok(Ok((mut ws, _))) = ws else {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            conn.fetch_add(1, Ordering::Relaxed);
            loop {
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(_)) => { frames.fetch_add(1, Ordering::Relaxed); }
                        _ => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while connected.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < clients as u64 {
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let n = connected.load(Ordering::Relaxed);
    println!(
        "READY connected={n} failed={}",
        failed.load(Ordering::Relaxed)
    );
    let connect_secs = started.elapsed().as_secs_f64();
    // Hold until the time is up or whoever started us closes our stdin.
    let (eof_tx, mut eof_rx) = tokio::sync::mpsc::channel::<()>(1);
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = eof_tx.blocking_send(());
    });
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(hold)) => {}
        _ = eof_rx.recv() => {}
    }
    let still_open = connected.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    println!(
        "{}",
        result_line(&[
            ("clients", clients.to_string()),
            ("connected", n.to_string()),
            ("still_open", still_open.to_string()),
            ("frames", frames.load(Ordering::Relaxed).to_string()),
            ("connect_secs", format!("{connect_secs:.2}")),
        ])
    );
    Ok(())
}
