//! `dash`: one client on `/ws` that reads every frame like a dashboard, until its stdin
//! closes. Reports frames, bytes, events, `lagged` misses and the TCP `data` events seen
//! (to show a flood of reads arrives merged, not one frame per read).

use std::io::Read;

use futures_util::StreamExt;
use memchr::memmem;
use tokio_tungstenite::tungstenite::Message;

use crate::util::result_line;

/// `dash`'s flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The WebSocket URL to connect to.
    #[arg(long, value_name = "URL")]
    ws: String,
}

pub(crate) fn main(args: Args) -> Result<(), String> {
    let url = args.ws;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run(url))
}

async fn run(url: String) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    println!("READY");
    let (eof_tx, mut eof_rx) = tokio::sync::mpsc::channel::<()>(1);
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = eof_tx.blocking_send(());
    });
    let seq = memmem::Finder::new(br#"{"seq":"#);
    let tcp_data = memmem::Finder::new(br#""type":"tcp_data""#);
    let (mut frames, mut bytes, mut events, mut data_events, mut missed, mut closed) =
        (0u64, 0u64, 0u64, 0u64, 0u64, false);
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = eof_rx.recv() => break,
        };
        match msg {
            Some(Ok(Message::Text(t))) => {
                let b = t.as_bytes();
                frames += 1;
                bytes += b.len() as u64;
                if b.starts_with(br#"{"type":"events""#) {
                    events += seq.find_iter(b).count() as u64;
                    data_events += tcp_data.find_iter(b).count() as u64;
                } else if b.starts_with(br#"{"type":"lagged""#) {
                    missed += serde_json::from_slice::<serde_json::Value>(b)
                        .ok()
                        .and_then(|v| v.get("missed")?.as_u64())
                        .unwrap_or(0);
                }
            }
            Some(Ok(_)) => {}
            _ => {
                closed = true;
                break;
            }
        }
    }
    println!(
        "{}",
        result_line(&[
            ("frames", frames.to_string()),
            ("bytes", bytes.to_string()),
            ("events", events.to_string()),
            ("tcp_data_events", data_events.to_string()),
            ("missed", missed.to_string()),
            ("closed_early", closed.to_string()),
        ])
    );
    Ok(())
}
