//! The UDP panel: the peers the lab has heard from, and a send form (text or hex, one
//! peer or all; never to an address the lab has not heard from).

use wirelab_shared::CommandKind;
use yew::prelude::*;

use crate::components::faults_panel::faults_text;
use crate::components::send_form::{SendForm, send_form, use_send_form, use_target};
use crate::components::table::{Col, age_cell, data_table, num_cell, rich};
use crate::components::try_it::{panel_head, use_try_it};
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
    Col::text("faults").title("the UDP service's toxics (@udp) that apply to this peer"),
    Col::text("actions"),
];

#[hook]
pub fn use_udp_panel() -> Html {
    let lab = use_lab();
    let copied = use_try_it();
    let cmd = use_commander();
    let target = use_target();
    let send = use_send_form();

    let addr = lab
        .service_addr("udp")
        .unwrap_or("127.0.0.1:1339")
        .to_owned();
    let (host, port) = addr.rsplit_once(':').unwrap_or(("127.0.0.1", "1339"));
    let mode = lab.service_mode("udp").unwrap_or("broadcast");
    let s = &lab.state;
    let c = &s.counters;
    let now = s.ts_us;

    let rows = s.udp.iter().map(|p| {
        let pick = {
            let (target, peer) = (target.clone(), p.peer.clone());
            Callback::from(move |_| target.set(peer.clone()))
        };
        let fault = {
            let (cmd, scope) = (cmd.clone(), format!("peer {}", p.peer));
            Callback::from(move |e: MouseEvent| {
                e.stop_propagation();
                cmd.aim_fault("@udp", scope.clone());
            })
        };
        html! {
            <tr key={p.peer.clone()} data-peer={p.peer.clone()} class={classes!("click", (*target == p.peer).then_some("sel"))}
                onclick={pick} title="send to this peer">
                <td>{ &p.peer }</td>
                { age_cell(now, p.first_us) }
                { age_cell(now, p.last_us) }
                { num_cell(p.dgrams_in.to_string()) }
                { num_cell(p.dgrams_out.to_string()) }
                { num_cell(fmt::size(p.bytes_in)) }
                { num_cell(fmt::size(p.bytes_out)) }
                <td data-peer-faults={p.peer.clone()}>{ faults_text(&p.faults) }</td>
                <td class="actions">
                    <button class="small" data-peer-fault={p.peer.clone()} onclick={fault}
                        title="add a fault for this peer only (the Faults form, TCP tab)">{"fault…"}</button>
                </td>
            </tr>
        }
    });
    html! {
        <section class="panel" aria-label="UDP service">
            { panel_head("UDP", format!("{addr} · {mode}"), &copied, vec![format!("nc -u {host} {port}"), format!("echo hello | nc -u -w0 {host} {port}")]) }
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
            { send_form(&send, &cmd, &lab, SendForm {
                name: "udp-send",
                label: "send a datagram",
                heading: Some("Send a datagram"),
                targets: s.udp.iter().map(|p| (p.peer.clone(), p.peer.clone())).collect(),
                all: "all peers",
                target: target.clone(),
                enc_label: "encoding",
                hex_label: "hex",
                input_label: "datagram to send",
                hex_placeholder: "de ad be ef",
                newline: Some("end the text with a newline"),
                command: |chosen, data, enc| {
                    let peer = (!chosen.is_empty() && chosen != "all").then_some(chosen);
                    let to = peer.clone().unwrap_or_else(|| "every peer".into());
                    (CommandKind::UdpSend { peer, data, enc }, format!("sending a datagram to {to}"))
                },
            }) }
            <p class="hint">{ format!(
                "Since start: {} datagrams in ({}), {} out ({}); {} sends refused or failed.",
                c.udp_dgrams_in, fmt::size(c.udp_bytes_in), c.udp_dgrams_out, fmt::size(c.udp_bytes_out), c.udp_send_errors
            ) }</p>
        </section>
    }
}
