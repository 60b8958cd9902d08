//! The per-client pump driven without sockets: its Sink and Stream are channels, so the
//! test decides exactly when the "client" reads and what it sends.

mod support;

use std::time::Duration;

use axum::extract::ws::Message;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use support::lab::{self, Client};
use wirelab::ws::frame::{Outgoing, WsError};
use wirelab::ws::{ClientStats, pump};
use wirelab_shared::{CLOSE_TOO_SLOW, EventKind, ServerMsg};

type Incoming = Result<Message, WsError>;

/// Starts a pump for a fake client; returns what it writes and where to feed it frames.
fn fake_client(
    lab: &lab::TestLab,
    queue: usize,
) -> (mpsc::Receiver<Outgoing>, mpsc::Sender<Incoming>, u64) {
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(queue);
    let (in_tx, in_rx) = mpsc::channel::<Incoming>(8);
    let stats = lab
        .app
        .ws
        .join(16, ClientStats::default())
        .expect("room for a client");
    let id = stats.id;
    tokio::spawn(pump::run(lab.app.clone(), stats, out_tx, in_rx, None));
    (out_rx, in_tx, id)
}

async fn next_msg(out: &mut mpsc::Receiver<Outgoing>) -> ServerMsg {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), out.next())
            .await
            .expect("the pump wrote within 5 s")
            .expect("the pump is still running");
        if let Outgoing::Plain(Message::Text(t)) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn the_pump_greets_answers_commands_and_forwards_events() {
    let lab = lab::start().await;
    let (mut out, mut input, id) = fake_client(&lab, 64);
    let ServerMsg::Hello(hello) = next_msg(&mut out).await else {
        panic!("hello first")
    };
    assert_eq!(hello.client, id);
    assert!(matches!(next_msg(&mut out).await, ServerMsg::Snapshot(_)));

    input
        .send(Ok(Message::Text(r#"{"type":"ping","id":41}"#.into())))
        .await
        .unwrap();
    loop {
        if let ServerMsg::Pong { id, .. } = next_msg(&mut out).await {
            assert_eq!(id, 41);
            break;
        }
    }
    lab.app.hub.publish(EventKind::Chat {
        from: "test".into(),
        text: "through the pump".into(),
    });
    loop {
        if let ServerMsg::Events { events } = next_msg(&mut out).await
            && events.iter().any(
                |e| matches!(&e.kind, EventKind::Chat { text, .. } if text == "through the pump"),
            )
        {
            break;
        }
    }
}

#[tokio::test]
async fn a_client_whose_stream_ends_is_gone_and_says_so() {
    let lab = lab::start().await;
    let mut watcher = Client::connect(&lab, "").await;
    watcher.handshake().await;
    let (mut out, input, id) = fake_client(&lab, 64);
    next_msg(&mut out).await;
    drop(input);
    let ev = watcher
        .wait_event(|k| matches!(k, EventKind::WsClose { client, .. } if *client == id))
        .await;
    let EventKind::WsClose { code, reason, .. } = ev.kind else {
        unreachable!()
    };
    assert_eq!((code, reason.as_str()), (None, "vanished"));
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_as_too_slow_and_others_go_on() {
    let lab = lab::start_with(|c| c.ws_stuck_secs = 1).await;
    let mut watcher = Client::connect(&lab, "").await;
    watcher.handshake().await;
    // A sink that holds one frame and is never read: hello fills it.
    let (_out, _input, id) = fake_client(&lab, 0);
    for i in 0..50 {
        lab.app.hub.publish(EventKind::Chat {
            from: "flood".into(),
            text: format!("line {i}"),
        });
        lab.app.hub.flush();
    }
    let ev = watcher
        .wait_event(|k| matches!(k, EventKind::WsClose { client, .. } if *client == id))
        .await;
    let EventKind::WsClose { code, .. } = ev.kind else {
        unreachable!()
    };
    assert_eq!(code, Some(CLOSE_TOO_SLOW));
    assert_eq!(lab.app.hub.counters.snapshot().ws_slow_closed, 1);
    // The watcher still gets new events.
    lab.app.hub.publish(EventKind::Chat {
        from: "after".into(),
        text: "still flowing".into(),
    });
    watcher
        .wait_event(|k| matches!(k, EventKind::Chat { text, .. } if text == "still flowing"))
        .await;
}

/// The close code comes from the error's type, never from its text: a socket error that
/// happens to read like a framing error is still a client gone, not a 1009 or a 1002.
#[tokio::test]
async fn the_close_code_is_chosen_by_the_error_type_not_its_text() {
    let lab = lab::start().await;
    let mut watcher = Client::connect(&lab, "").await;
    watcher.handshake().await;
    let cases: Vec<(WsError, Option<u16>)> = vec![
        (
            WsError::Io(std::io::Error::other("message too big (utf-8)")),
            None,
        ),
        (
            WsError::Io(std::io::Error::other("protocol error: says the OS")),
            None,
        ),
        (WsError::Protocol("text that is not utf-8"), Some(1002)),
        (WsError::TooBig { limit: 10 }, Some(1009)),
        (WsError::Utf8, Some(1007)),
    ];
    for (error, want) in cases {
        let shown = error.to_string();
        let (mut out, mut input, id) = fake_client(&lab, 64);
        next_msg(&mut out).await;
        input.send(Err(error)).await.unwrap();
        let ev = watcher
            .wait_event(|k| matches!(k, EventKind::WsClose { client, .. } if *client == id))
            .await;
        let EventKind::WsClose { code, .. } = ev.kind else {
            unreachable!()
        };
        assert_eq!(code, want, "{shown}");
    }
}
