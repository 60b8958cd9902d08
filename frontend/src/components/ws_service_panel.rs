//! The WebSocket service's panel (`--ws-service`, beside `/ws` on the WebSocket tab): its
//! clients with their figures, close (a close frame) and drop (RST) per client, and a
//! send form (text as a text message, hex as a binary one; one client or all).

use wirelab_shared::CommandKind;
use yew::prelude::*;

use crate::components::forms::{node_value, on_submit, payload, select_value, set_node_value};
use crate::components::status_line::StatusLine;
use crate::components::table::{Col, data_table};
use crate::components::try_it::TryIt;
use crate::ctx::{use_commander, use_lab};
use crate::fmt;

const COLS: &[Col] = &[
    Col::num("id"),
    Col::text("peer"),
    Col::text("path"),
    Col::text("age"),
    Col::num("frames in / out"),
    Col::num("bytes in / out"),
    Col::text("actions"),
];

#[function_component]
pub fn WsServicePanel() -> Html {
    let lab = use_lab();
    let cmd = use_commander();
    let target = use_state(|| "all".to_owned());
    let hex = use_state(|| false);
    let text_ref = use_node_ref();
    let target_ref = use_node_ref();
    let Some(addr) = lab.service_addr("ws_service").map(str::to_owned) else {
        return html! {};
    };
    let mode = lab.service_mode("ws_service").unwrap_or("echo");
    let s = &lab.state;
    let c = &s.counters;
    let now = s.ts_us;

    let send = {
        let (cmd, target, hex) = (cmd.clone(), target.clone(), hex.clone());
        let (text_ref, target_ref) = (text_ref.clone(), target_ref.clone());
        on_submit(move || match payload(&node_value(&text_ref), *hex, false) {
            Ok((data, enc)) => {
                let chosen = node_value(&target_ref);
                target.set(chosen.clone());
                let client = chosen.parse::<u64>().ok();
                let to = client.map_or("every client".to_owned(), |c| format!("client #{c}"));
                cmd.run(
                    "wss-send",
                    format!("sending to {to}"),
                    CommandKind::WsServiceSend { client, data, enc },
                );
                set_node_value(&text_ref, "");
            }
            Err(e) => cmd.refuse("wss-send", e),
        })
    };
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
                <td class="num">{ format!("#{}", w.id) }</td>
                <td>{ &w.peer }</td>
                <td class="ua" title={w.user_agent.clone()}>
                    { &w.path }
                    if w.deflate { <span class="pill deflate" title="agreed to permessage-deflate">{"deflate"}</span> }
                </td>
                <td>{ fmt::age(now, w.since_us) }</td>
                <td class="num">{ format!("{} / {}", fmt::count(w.frames_in), fmt::count(w.frames_out)) }</td>
                <td class="num">{ format!("{} / {}", fmt::size(w.bytes_in), fmt::size(w.bytes_out)) }</td>
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
            <div class="panel-head">
    <h2>{"WebSocket service"}<span class="addr">{ format!("ws://{addr}/ · {mode}") }</span></h2>
    <TryIt commands={vec![format!("websocat ws://{addr}/")]} />
            </div>
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
            <StatusLine form="wss-close" />
            <form onsubmit={send} aria-label="send to WebSocket service clients">
                <div class="row-form">
                    <select id="wss-send-target" ref={target_ref} aria-label="to" onchange={{
                        let target = target.clone();
                        Callback::from(move |e: Event| target.set(select_value(&e)))
                    }}>
                        <option value="all" selected={*target == "all"}>{"all clients"}</option>
                        { for s.ws_service.iter().map(|w| html! {
                            <option value={w.id.to_string()} selected={*target == w.id.to_string()}>
                                { format!("#{} {}", w.id, w.peer) }
                            </option>
                        }) }
                    </select>
                    <select id="wss-send-enc" aria-label="message type" onchange={{
                        let hex = hex.clone();
                        Callback::from(move |e: Event| hex.set(select_value(&e) == "hex"))
                    }}>
                        <option value="text" selected={!*hex}>{"text"}</option>
                        <option value="hex" selected={*hex}>{"binary (hex)"}</option>
                    </select>
                    <input id="wss-send-input" ref={text_ref} type="text" aria-label="message" autocomplete="off"
                        placeholder={if *hex { "00 ff" } else { "hello" }} />
                    <button id="wss-send-button" class="primary" type="submit">{"Send"}</button>
                </div>
                <StatusLine form="wss-send" />
            </form>
        </section>
    }
}
