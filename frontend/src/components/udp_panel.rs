//! The UDP panel: the peers the lab has heard from, and a send form (text or hex, one
//! peer or all; never to an address the lab has not heard from).

use wirelab_shared::CommandKind;
use yew::prelude::*;

use crate::components::forms::{checked, input_value, on_submit, payload, select_value};
use crate::components::status_line::StatusLine;
use crate::components::try_it::TryIt;
use crate::ctx::{use_commander, use_lab};
use crate::fmt;

#[function_component]
pub fn UdpPanel() -> Html {
    let lab = use_lab();
    let cmd = use_commander();
    let target = use_state(|| "all".to_owned());
    let text = use_state(String::new);
    let hex = use_state(|| false);
    let newline = use_state(|| true);

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
        let (cmd, target, text, hex, newline) = (
            cmd.clone(),
            target.clone(),
            text.clone(),
            hex.clone(),
            newline.clone(),
        );
        on_submit(move || match payload(&text, *hex, *newline) {
            Ok((data, enc)) => {
                let peer = (*target != "all").then(|| (*target).clone());
                let to = peer.clone().unwrap_or_else(|| "every peer".into());
                cmd.run(
                    "udp-send",
                    format!("sending a datagram to {to}"),
                    CommandKind::UdpSend { peer, data, enc },
                );
                text.set(String::new());
            }
            Err(e) => cmd.refuse("udp-send", e),
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
            <h2>{"UDP"}<span class="addr">{ format!("{addr} · {mode}") }</span></h2>
            <p class="explain">
                {"UDP is "}<b>{"connectionless"}</b>{": no handshake and no stream, just "}<b>{"datagrams"}</b>
                {", each sent on its own and delivered whole or not at all, in no promised order. A peer is only an address the lab has heard from. "}
                { match mode {
                    "echo" => "This lab sends each datagram back to its sender.",
                    "sink" => "This lab reads and drops every datagram.",
                    _ => "This lab relays each datagram to every other peer heard from in the last minute.",
                } }
            </p>
            <TryIt commands={vec![format!("nc -u {host} {port}"), format!("echo hello | nc -u -w0 {host} {port}")]} />
            <h3>{ format!("Peers · {} known · {} evicted", s.udp.len(), c.udp_peers_evicted) }</h3>
            <div class="tablewrap">
                <table class="data">
                    <thead><tr>
                        <th>{"peer"}</th><th>{"first seen"}</th><th>{"last seen"}</th>
                        <th class="num">{"dgrams in"}</th><th class="num">{"dgrams out"}</th>
                        <th class="num">{"bytes in"}</th><th class="num">{"bytes out"}</th>
                    </tr></thead>
                    <tbody>
                        { for rows }
                        if s.udp.is_empty() {
                            <tr><td colspan="7" class="empty">{ format!("No peer yet. Send a datagram: echo hello | nc -u -w0 {host} {port}") }</td></tr>
                        }
                    </tbody>
                </table>
            </div>
            <form onsubmit={send} aria-label="send a datagram">
                <h3>{"Send a datagram"}</h3>
                <div class="row-form">
                    <select id="udp-send-target" aria-label="to" onchange={{
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
                    <input id="udp-send-input" type="text" value={(*text).clone()} aria-label="datagram to send"
                        placeholder={if *hex { "de ad be ef" } else { "hello" }}
                        oninput={{ let text = text.clone(); Callback::from(move |e: InputEvent| text.set(input_value(&e))) }} />
                    <label class="check" title="end the text with a newline">
                        <input id="udp-send-newline" type="checkbox" checked={*newline} disabled={*hex}
                            onchange={{ let newline = newline.clone(); Callback::from(move |e: Event| newline.set(checked(&e))) }} />
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
