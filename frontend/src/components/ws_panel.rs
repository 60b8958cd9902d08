//! The WebSocket panel: the clients of `/ws` (dashboards and plain clients alike), the
//! chat (see `chat_box`), and the seed's "lighter headers" point in live numbers; then the
//! WebSocket service's panel (`ws_service_panel`), whose state it holds.

use yew::prelude::*;

use crate::components::chat_box::ChatBox;
use crate::components::send_form::{use_send_form, use_target};
use crate::components::table::{Col, age_cell, data_table, fig, num_cell, rich};
use crate::components::try_it::{panel_head, use_try_it};
use crate::components::ws_service_panel::{WsServiceState, ws_service_panel};
use crate::ctx::{use_commander, use_lab};
use crate::fmt;
use crate::services::browser;
use crate::wscost;

const COLS: &[Col] = &[
    Col::num("id"),
    Col::text("peer"),
    Col::text("kind"),
    Col::text("user agent"),
    Col::text("age"),
    Col::num("frames in / out"),
    Col::num("bytes in / out"),
    Col::num("lag").title("times told it fell behind"),
    Col::num("drops").title("events it missed by falling behind"),
];

#[hook]
pub fn use_ws_panel() -> Html {
    let lab = use_lab();
    let copied = use_try_it();
    let cmd = use_commander();
    let service = WsServiceState {
        copied: use_try_it(),
        target: use_target(),
        send: use_send_form(),
    };
    let s = &lab.state;
    let c = &s.counters;
    let now = s.ts_us;
    let me = lab.hello.as_ref().map(|h| h.client);
    let addr = lab
        .service_addr("ws")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            web_sys::window()
                .and_then(|w| w.location().host().ok())
                .unwrap_or_else(|| "127.0.0.1:8080".into())
        });
    let token = browser::page_token()
        .filter(|_| lab.hello.as_ref().is_some_and(|h| h.token_required))
        .map(|t| format!("?token={}", crate::link::percent_encode(&t)))
        .unwrap_or_default();

    // Lighter headers: one 20-byte message, and everything since the lab started.
    let (down, up, poll) = wscost::per_message(20, &addr);
    let cost = wscost::from_counters(
        c.ws_frames_in,
        c.ws_bytes_in,
        c.ws_frames_out,
        c.ws_bytes_out,
        &addr,
    );
    let req_len = wscost::poll_request(&addr).len();
    let resp_len = wscost::poll_response(20).len();
    let bar = |v: u64, max: u64| {
        let pct = if max == 0 {
            0.0
        } else {
            (v as f64 / max as f64 * 100.0).max(0.4)
        };
        format!("width:{}%", fmt::fixed(pct, 2))
    };

    let rows = s.ws.iter().map(|w| {
        let mine = me == Some(w.id);
        html! {
            <tr key={w.id} data-ws-client={w.id.to_string()} class={classes!(mine.then_some("sel"))}>
                { num_cell(fmt::id(w.id)) }
                <td>{ &w.peer }</td>
                <td>
                    { if mine { "this page" } else if w.dashboard { "dashboard" } else { "client" } }
                    if w.deflate {
                        <span class="pill deflate" title="agreed to permessage-deflate: frames shared by 8 or more such clients, and everything to a client off loopback, go compressed (bytes out counts what went on the wire)">{"deflate"}</span>
                    }
                </td>
                <td class="ua" title={w.user_agent.clone()}>{ &w.user_agent }</td>
                { age_cell(now, w.since_us) }
                { num_cell(fmt::counts(w.frames_in, w.frames_out)) }
                { num_cell(fmt::sizes(w.bytes_in, w.bytes_out)) }
                <td class={classes!("num", (w.lagged > 0).then_some("warn"))}>{ w.lagged }</td>
                <td class={classes!("num", (w.missed > 0).then_some("warn"))}>{ w.missed }</td>
            </tr>
        }
    });

    html! {
        <>
        <section class="panel" aria-label="WebSocket service">
            { panel_head("WebSocket", format!("ws://{addr}/ws"), &copied, vec![format!("websocat ws://{addr}/ws{token}")]) }
            <p class="explain">
                { rich("A WebSocket starts as an HTTP request and then keeps <b>one TCP connection</b> open for both sides: the server can <b>push</b> without being asked, and both can send at any time (<b>full duplex</b>). Each message costs a few bytes of framing instead of a full set of HTTP headers: <b>lighter headers</b>. This page itself lives on this channel; chat goes to every client.") }
            </p>
            <h3>{ format!("Clients · {} connected · {} since start · {} refused · {} closed as too slow",
                s.ws.len(), c.ws_clients, c.ws_refused, c.ws_slow_closed) }</h3>
            { data_table("short", COLS, rows.collect(), s.ws.is_empty().then(|| "No client.".to_owned())) }
            <div class="cols">
                <ChatBox />
                <div class="lighter" aria-label="lighter headers">
                    <h3>{"Lighter headers"}</h3>
                    <p class="hint">{ format!(
                        "A 20-byte message costs {down} B of framing from server to client and {up} B the other way (client frames are masked). \
                         Polling for it over HTTP would cost about {poll} B of headers: {req_len} B of request and {resp_len} B of response."
                    ) }</p>
                    <div class="bars">
                        <div class="bar-row"><span class="bar-l">{"WebSocket"}</span>
                            <span class="bar"><span class="fill ws-fill" style={bar(u64::from(up as u32), poll)}></span></span>
                            <span class="bar-v">{ format!("{down}–{up} B") }</span></div>
                        <div class="bar-row"><span class="bar-l">{"HTTP poll"}</span>
                            <span class="bar"><span class="fill http-fill" style={bar(poll, poll)}></span></span>
                            <span class="bar-v">{ format!("{poll} B") }</span></div>
                    </div>
                    <div class="figs">
                        { fig("ws-messages", fmt::count(cost.messages), "messages since start") }
                        { fig("ws-framing", fmt::size(cost.ws_bytes), "WebSocket framing") }
                        { fig("ws-poll-cost", fmt::size(cost.http_bytes), "as HTTP polls") }
                        { fig("ws-ratio", if cost.ws_bytes > 0 { fmt::fixed(cost.ratio(), 0) + "×" } else { "—".into() }, "lighter") }
                    </div>
                    <details>
                        <summary>{"the poll this assumes"}</summary>
                        <pre class="payload small-pre">{ format!("{}{}", wscost::poll_request(&addr), wscost::poll_response(20)) }</pre>
                    </details>
                </div>
            </div>
        </section>
        { ws_service_panel(&lab, &cmd, &service) }
        </>
    }
}
