//! The once-a-second `state`: dashboards (clients whose upgrade carried an Origin header)
//! get the WebSocket client list; every other client gets it empty, so the frame does not
//! grow with the number of clients.

mod support;

use support::lab::{self, Client, TestLab};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wirelab_shared::{LabState, ServerMsg};

/// A client that says it is a page of the lab (its own Origin), as a browser would.
async fn dashboard(lab: &TestLab) -> Client {
    let mut req = format!("ws://{}/ws", lab.dashboard)
        .into_client_request()
        .unwrap();
    let origin = format!("http://{}", lab.dashboard).parse().unwrap();
    req.headers_mut().insert("Origin", origin);
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("the dashboard connects");
    Client { ws }
}

/// The next `state` (they come once a second; `next` waits up to 5 s per message).
async fn next_state(c: &mut Client) -> LabState {
    loop {
        if let ServerMsg::State(s) = c.next().await {
            return *s;
        }
    }
}

#[tokio::test]
async fn only_dashboards_get_the_websocket_client_list() {
    let lab = lab::start().await;
    let mut page = dashboard(&lab).await;
    page.handshake().await;
    let mut bot = Client::connect(&lab, "").await;
    bot.handshake().await;

    // A state taken after both joined lists both for the page: the page as a dashboard,
    // the bot as not.
    let mut listed = Vec::new();
    for _ in 0..5 {
        listed = next_state(&mut page).await.ws;
        if listed.len() == 2 {
            break;
        }
    }
    let mut flags: Vec<bool> = listed.iter().map(|c| c.dashboard).collect();
    flags.sort();
    assert_eq!(flags, [false, true], "the page's state lists {listed:?}");

    // The bot's state has everything else (here the counters: connections so far) but
    // no client list.
    let state = next_state(&mut bot).await;
    assert!(state.ws.is_empty(), "the bot got {:?}", state.ws);
    assert!(
        state.counters.ws_clients >= 2,
        "counters: {:?}",
        state.counters
    );
}
