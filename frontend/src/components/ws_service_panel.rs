//! The WebSocket service's panel (`--ws-service`, beside `/ws` on the WebSocket tab): its
//! clients with their figures, close (a close frame) and drop (RST) per client, and a
//! send form (text as a text message, hex as a binary one; one client or all).

use wirelab_shared::CommandKind;
use yew::prelude::*;

use crate::components::send_form::{SendForm, SendState, send_form};
use crate::components::status_line::status_line;
use crate::components::table::{Col, age_cell, data_table, num_cell};
use crate::components::try_it::{Copied, panel_head};
use crate::ctx::Commander;
use crate::fmt;
use crate::lab::Lab;

const COLS: &[Col] = &[
    Col::num("id"),
    Col::text("peer"),
    Col::text("path"),
    Col::text("age"),
    Col::num("frames in / out"),
    Col::num("bytes in / out"),
    Col::text("actions"),
];

/// The panel's state: its "try it", its send form and the client it targets. The
/// WebSocket panel holds it, the tab being one component.
pub struct WsServiceState {
    pub copied: Copied,
    pub target: UseStateHandle<String>,
    pub send: SendState,
}

/// The panel, drawn by the WebSocket panel with the state it holds.
pub fn ws_service_panel(lab: &Lab, cmd: &Commander, state: &WsServiceState) -> Html {
    let WsServiceState {
        copied,
        target,
        send,
    } = state;
    let Some(addr) = lab.service_addr("ws_service").map(str::to_owned) else {
        return html! {};
    };
    let mode = lab.service_mode("ws_service").unwrap_or("echo");
    let s = &lab.state;
    let c = &s.counters;
    let now = s.ts_us;

    let close = |id: u64, drop: bool| {
        let cmd = cmd.clone();
        Callback::from(move |_| {
            let what = if drop {
                format!("dropping #{id} (RST)")
            } else {
                format!("closing #{id} (1000)")
            };
            let kind = CommandKind::WsServiceClose {
                client: id,
                code: None,
                reason: String::new(),
                drop,
            };
            cmd.run("wss-close", what, kind)
        })
    };

    let rows = s.ws_service.iter().map(|w| {
        html! {
            <tr key={w.id} data-wss-client={w.id.to_string()}>
                { num_cell(fmt::id(w.id)) }
                <td>{ &w.peer }</td>
                <td class="ua" title={w.user_agent.clone()}>
                    { &w.path }
                    if w.deflate { <span class="pill deflate" title="agreed to permessage-deflate">{"deflate"}</span> }
                </td>
                { age_cell(now, w.since_us) }
                { num_cell(fmt::counts(w.frames_in, w.frames_out)) }
                { num_cell(fmt::sizes(w.bytes_in, w.bytes_out)) }
                <td class="actions">
                    if w.closing { {"closing"} } else {
                        <button class="small" data-wss-close={w.id.to_string()} onclick={close(w.id, false)}
                            title="close: a close frame (1000), then the closing handshake">{"close"}</button>
                        <button class="small danger" data-wss-drop={w.id.to_string()} onclick={close(w.id, true)}
                            title="drop: no close frame, RST; the client sees the connection reset">{"drop"}</button>
                    }
                </td>
            </tr>
        }
    });

    html! {
        <section class="panel" aria-label="WebSocket service">
            { panel_head("WebSocket service", format!("ws://{addr}/ · {mode}"), copied, vec![format!("websocat ws://{addr}/")]) }
            <p class="explain">
                {"A WebSocket server for your own clients: any path upgrades; "}
                { match mode {
                    "broadcast" => "each message goes to every other client",
                    "sink" => "messages are read and kept",
                    _ => "each message comes back as it was sent (text or binary, compressed or not)",
                } }
                {". Every frame, each way, is on the timeline: opcode, FIN, RSV1, length, payload, close code."}
            </p>
            <h3>{ format!("Clients · {} connected · {} since start · {} refused",
                s.ws_service.len(), c.ws_service_clients, c.ws_service_refused) }</h3>
            { data_table("short", COLS, rows.collect(), s.ws_service.is_empty().then(|| format!("No client. Connect one with websocat ws://{addr}/."))) }
            { status_line(lab, "wss-close") }
            { send_form(send, cmd, lab, SendForm {
                name: "wss-send",
                label: "send to WebSocket service clients",
                heading: None,
                targets: s.ws_service.iter().map(|w| (w.id.to_string(), format!("#{} {}", w.id, w.peer))).collect(),
                all: "all clients",
                target: target.clone(),
                enc_label: "message type",
                hex_label: "binary (hex)",
                input_label: "message",
                hex_placeholder: "00 ff",
                newline: None,
                command: |chosen, data, enc| {
                    let client = chosen.parse::<u64>().ok();
                    let to = client.map_or("every client".to_owned(), |c| format!("client #{c}"));
                    (CommandKind::WsServiceSend { client, data, enc }, format!("sending to {to}"))
                },
            }) }
        </section>
    }
}
