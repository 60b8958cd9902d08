//! The lab's side of the closing handshake on `/ws` (the same engine serves the WebSocket
//! service): after its close frame the lab half-closes and reads what the client still
//! sends (for a while), so a client that is still writing reads the close frame and a
//! FIN, not a reset that destroys both.

mod support;

use std::time::{Duration, Instant};

use support::lab;
use support::raw_ws::{self, Ending};
use tokio::io::AsyncWriteExt;

/// Writes `total` zero bytes (a payload under mask key 0) as fast as the socket takes
/// them; returns how many went out and the error that stopped it, if one did.
async fn stream_zeros(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    total: u64,
) -> (u64, Option<std::io::ErrorKind>) {
    let chunk = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    while sent < total {
        let n = chunk.len().min((total - sent) as usize);
        if let Err(e) = w.write_all(&chunk[..n]).await {
            return (sent, Some(e.kind()));
        }
        sent += n as u64;
    }
    (sent, None)
}

#[tokio::test]
async fn a_frame_declaring_100_mb_gets_1009_and_a_fin_not_a_reset() {
    let lab = lab::start().await;
    let mut s = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    const DECLARED: u64 = 100_000_000;
    // What a new user's client does: write the whole message, then read the answer.
    raw_ws::send_header(&mut s, 0x82, DECLARED).await;
    let (mut r, w) = s.into_split();
    let (sent, write_error) = stream_zeros(w, DECLARED).await;
    assert_eq!(
        (sent, write_error),
        (DECLARED, None),
        "the lab read (and dropped) the message instead of resetting the connection"
    );
    let (code, reason) = raw_ws::close_frame(&mut r).await.expect("a close frame");
    assert_eq!(code, 1009, "{reason}");
    assert!(
        reason.contains("65536"),
        "the reason names the limit: {reason}"
    );
    assert_eq!(raw_ws::ending(&mut r).await, Ending::Fin);
}

#[tokio::test]
async fn a_client_still_sending_after_the_close_frame_reads_it_and_a_fin() {
    let lab = lab::start().await;
    let mut s = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    // A reserved bit (1002), and then the client goes on sending for a while: 8 MB of
    // valid frames it had queued.
    raw_ws::send_frame(&mut s, 0x20 | 1, b"rsv2").await;
    let mut more = Vec::new();
    while more.len() < 8 << 20 {
        raw_ws::push_frame(&mut more, 2, &[7u8; 60_000]);
    }
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move { w.write_all(&more).await.map_err(|e| e.kind()) });
    let (code, _) = raw_ws::close_frame(&mut r).await.expect("a close frame");
    assert_eq!(code, 1002);
    assert_eq!(writer.await.unwrap(), Ok(()), "every byte was taken");
    assert_eq!(raw_ws::ending(&mut r).await, Ending::Fin);
}

#[tokio::test]
async fn a_client_that_never_stops_sending_is_cut_off_after_the_linger() {
    let lab = lab::start().await;
    let mut s = raw_ws::upgrade(lab.dashboard, "/ws", &[]).await.unwrap();
    raw_ws::send_header(&mut s, 0x82, u64::MAX >> 1).await;
    let started = Instant::now();
    let (mut r, w) = s.into_split();
    let writer = tokio::spawn(stream_zeros(w, u64::MAX));
    let (code, _) = raw_ws::close_frame(&mut r).await.expect("a close frame");
    assert_eq!(code, 1009);
    let (_, stopped_by) = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the lab stops reading within 10 s")
        .unwrap();
    assert!(stopped_by.is_some(), "the endless write failed in the end");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "the linger is bounded: {took:?}"
    );
}
