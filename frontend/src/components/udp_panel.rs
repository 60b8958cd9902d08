//! The UDP panel: the peers the lab has heard from, and a send form (text or hex, one
//! peer or all; never to an address the lab has not heard from).

use wirelab_shared::CommandKind;
use yew::prelude::*;

use crate::components::forms::{
    node_checked, node_value, on_submit, payload, select_value, set_node_value,
};
use crate::components::status_line::StatusLine;
use crate::components::table::{Col, data_table, rich};
use crate::components::try_it::TryIt;
use crate::ctx::{use_commander, use_lab};
use crate::fmt;

const COLS: &[Col] = &[
    Col::text("peer"),
    Col::text("first seen"),
    Col::text("last seen"),
    Col::num("dgrams in"),
    Col::num("dgrams out"),
    Col::num("bytes in"),
    Col::num("bytes out"),
];

#[function_component]
pub fn UdpPanel() -> Html {
    let lab = use_lab();
    let cmd = use_commander();
    let target = use_state(|| "all".to_owned());
    let text_ref = use_node_ref();
    let target_ref = use_node_ref();
    let newline_ref = use_node_ref();
    let hex = use_state(|| false);

    let addr = lab
        .service_addr("udp")
        .unwrap_or("127.0.0.1:1339")
        .to_owned();
    let (host, port) = addr.rsplit_once(':').unwrap_or(("127.0.0.1", "1339"));
    let mode = lab.service_mode("udp").unwrap_or("broadcast");
    let s = &lab.state;
    let c = &s.counters;
    let now = s.ts_us;

    let send = {
        let (cmd, target, hex) = (cmd.clone(), target.clone(), hex.clone());
        let (text_ref, target_ref, newline_ref) =
            (text_ref.clone(), target_ref.clone(), newline_ref.clone());
        on_submit(move || {
            let text = node_value(&text_ref);
            match payload(&text, *hex, node_checked(&newline_ref)) {
                Ok((data, enc)) => {
                    let chosen = node_value(&target_ref);
                    target.set(chosen.clone());
                    let peer = (!chosen.is_empty() && chosen != "all").then_some(chosen);
                    let to = peer.clone().unwrap_or_else(|| "every peer".into());
                    cmd.run(
                        "udp-send",
                        format!("sending a datagram to {to}"),
                        CommandKind::UdpSend { peer, data, enc },
                    );
                    set_node_value(&text_ref, "");
                }
                Err(e) => cmd.refuse("udp-send", e),
            }
        })
    };
    let rows = s.udp.iter().map(|p| {
        let pick = {
            let (target, peer) = (target.clone(), p.peer.clone());
            Callback::from(move |_| target.set(peer.clone()))
        };
        html! {
            <tr key={p.peer.clone()} data-peer={p.peer.clone()} class={classes!("click", (*target == p.peer).then_some("sel"))}
                onclick={pick} title="send to this peer">
                <td>{ &p.peer }</td>
                <td>{ fmt::age(now, p.first_us) }</td>
                <td>{ fmt::age(now, p.last_us) }</td>
                <td class="num">{ p.dgrams_in }</td>
                <td class="num">{ p.dgrams_out }</td>
                <td class="num">{ fmt::size(p.bytes_in) }</td>
                <td class="num">{ fmt::size(p.bytes_out) }</td>
            </tr>
        }
    });
    html! {
        <section class="panel" aria-label="UDP service">
            <div class="panel-head">
    <h2>{"UDP"}<span class="addr">{ format!("{addr} · {mode}") }</span></h2>
    <TryIt commands={vec![format!("nc -u {host} {port}"), format!("echo hello | nc -u -w0 {host} {port}")]} />
            </div>
            <p class="explain">
                { rich("UDP is <b>connectionless</b>: no handshake and no stream, just <b>datagrams</b>, each sent on its own and delivered whole or not at all, in no promised order. A peer is only an address the lab has heard from. ") }
                { match mode {
                    "echo" => "This lab sends each datagram back to its sender.",
                    "sink" => "This lab reads and drops every datagram.",
                    _ => "This lab relays each datagram to every other peer heard from in the last minute.",
                } }
            </p>
            <h3>{ format!("Peers · {} known · {} evicted", s.udp.len(), c.udp_peers_evicted) }</h3>
            { data_table("", COLS, rows.collect(), s.udp.is_empty().then(|| format!("No peer yet. Send a datagram: echo hello | nc -u -w0 {host} {port}"))) }
            <form onsubmit={send} aria-label="send a datagram">
                <h3>{"Send a datagram"}</h3>
                <div class="row-form">
                    <select id="udp-send-target" ref={target_ref} aria-label="to" onchange={{
                        let target = target.clone();
                        Callback::from(move |e: Event| target.set(select_value(&e)))
                    }}>
                        <option value="all" selected={*target == "all"}>{"all peers"}</option>
                        { for s.udp.iter().map(|p| html! {
                            <option value={p.peer.clone()} selected={*target == p.peer}>{ &p.peer }</option>
                        }) }
                    </select>
                    <select id="udp-send-enc" aria-label="encoding" onchange={{
                        let hex = hex.clone();
                        Callback::from(move |e: Event| hex.set(select_value(&e) == "hex"))
                    }}>
                        <option value="text" selected={!*hex}>{"text"}</option>
                        <option value="hex" selected={*hex}>{"hex"}</option>
                    </select>
                    <input id="udp-send-input" ref={text_ref} type="text" aria-label="datagram to send" autocomplete="off"
                        placeholder={if *hex { "de ad be ef" } else { "hello" }} />
                    <label class="check" title="end the text with a newline">
                        <input id="udp-send-newline" ref={newline_ref} type="checkbox" checked=true disabled={*hex} />
                        {"\\n"}
                    </label>
                    <button id="udp-send-button" class="primary" type="submit">{"Send"}</button>
                </div>
                <StatusLine form="udp-send" />
            </form>
            <p class="hint">{ format!(
                "Since start: {} datagrams in ({}), {} out ({}); {} sends refused or failed.",
                c.udp_dgrams_in, fmt::size(c.udp_bytes_in), c.udp_dgrams_out, fmt::size(c.udp_bytes_out), c.udp_send_errors
            ) }</p>
        </section>
    }
}
