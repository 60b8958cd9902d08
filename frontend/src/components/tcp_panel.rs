//! The TCP panel: open connections with their kernel figures (TCP_INFO), close (FIN) and
//! reset (RST) per connection, a send form (text or hex, one connection or all), and a
//! connect-out form.

use wirelab_shared::CommandKind;
use yew::prelude::*;

use crate::components::faults_panel::{FaultRefs, aim, faults_text};
use crate::components::forms::{node_value, on_submit};
use crate::components::send_form::{SendForm, SendState, send_form};
use crate::components::status_line::status_line;
use crate::components::table::{Col, age_cell, data_table, num_cell, rich};
use crate::components::try_it::{Copied, panel_head};
use crate::ctx::Commander;
use crate::fmt;
use crate::lab::Lab;

const COLS: &[Col] = &[
    Col::num("id"),
    Col::text("peer"),
    Col::text("age"),
    Col::num("in"),
    Col::num("out"),
    Col::num("rtt").title("smoothed round-trip time"),
    Col::num("rttvar").title("round-trip time variation"),
    Col::num("cwnd").title("congestion window, segments"),
    Col::num("retrans"),
    Col::num("acked"),
    Col::text("state"),
    Col::text("faults").title("the TCP service's toxics (@tcp) that apply to it"),
    Col::text("actions"),
];

/// The panel's state: its "try it", the connection its send form targets, its send
/// form, and the connect-out address field. The Proxies panel holds it, the tab being one
/// component.
pub struct TcpState {
    pub copied: Copied,
    pub target: UseStateHandle<String>,
    pub addr_ref: NodeRef,
    pub send: SendState,
}

/// The panel, drawn by the Proxies panel with the state it holds.
pub fn tcp_panel(lab: &Lab, cmd: &Commander, state: &TcpState, faults: &FaultRefs) -> Html {
    let TcpState {
        copied,
        target,
        addr_ref,
        send,
    } = state;

    let tcp_addr = lab
        .service_addr("tcp")
        .unwrap_or("127.0.0.1:1338")
        .to_owned();
    let (host, port) = tcp_addr.rsplit_once(':').unwrap_or(("127.0.0.1", "1338"));
    let mode = lab.service_mode("tcp").unwrap_or("broadcast");
    let s = &lab.state;
    let now = s.ts_us;
    let c = &s.counters;

    let connect = {
        let (cmd, addr_ref, tcp_addr) = (cmd.clone(), addr_ref.clone(), tcp_addr.clone());
        on_submit(move || {
            let typed = node_value(&addr_ref);
            let a = if typed.trim().is_empty() {
                tcp_addr.clone()
            } else {
                typed.trim().to_owned()
            };
            cmd.run(
                "tcp-connect",
                format!("connecting to {a}"),
                CommandKind::TcpConnect { addr: a },
            );
        })
    };
    let close = |id: u64, reset: bool| {
        let cmd = cmd.clone();
        Callback::from(move |_| {
            let what = if reset {
                format!("resetting #{id} (RST)")
            } else {
                format!("closing #{id} (FIN)")
            };
            cmd.run("tcp-close", what, CommandKind::TcpClose { conn: id, reset })
        })
    };
    let pick = |id: u64| {
        let target = target.clone();
        Callback::from(move |_| target.set(id.to_string()))
    };
    let aim_at = |id: u64| {
        let refs = faults.clone();
        Callback::from(move |_| aim(&refs, "@tcp", &format!("conn {id}")))
    };

    let rows = s.tcp.iter().map(|t| {
        let k = t.kernel.unwrap_or_default();
        let has_k = t.kernel.is_some();
        let kv = |v: String| if has_k { v } else { "—".to_owned() };
        let state = if t.half_closed { "half-closed" } else { "open" };
        html! {
            <tr key={t.id} data-conn={t.id.to_string()} class={classes!((**target == t.id.to_string()).then_some("sel"))}>
                { num_cell(fmt::id(t.id)) }
                <td>{ &t.peer }{ if t.outbound { " ↗" } else { "" } }</td>
                { age_cell(now, t.since_us) }
                { num_cell(fmt::size(t.bytes_in)) }
                { num_cell(fmt::size(t.bytes_out)) }
                { num_cell(kv(fmt::duration_us(u64::from(k.rtt_us)))) }
                { num_cell(kv(fmt::duration_us(u64::from(k.rttvar_us)))) }
                { num_cell(kv(k.cwnd.to_string())) }
                { num_cell(kv(k.retransmits.to_string())) }
                { num_cell(kv(fmt::size(k.bytes_acked))) }
                <td>{ state }</td>
                <td data-conn-faults={t.id.to_string()}>{ faults_text(&t.faults) }</td>
                <td class="actions">
                    <button class="small" onclick={pick(t.id)} title="send to this connection">{"target"}</button>
                    <button class="small" data-close-conn={t.id.to_string()} onclick={close(t.id, false)}
                        title="close: the lab sends FIN, the peer reads EOF">{"close"}</button>
                    <button class="small danger" data-reset-conn={t.id.to_string()} onclick={close(t.id, true)}
                        title="reset: the lab sends RST, the peer sees 'connection reset'">{"reset"}</button>
                    <button class="small" data-conn-fault={t.id.to_string()} onclick={aim_at(t.id)}
                        title="add a fault to this connection only (the Faults form below)">{"fault…"}</button>
                </td>
            </tr>
        }
    });

    html! {
        <section class="panel" aria-label="TCP service">
            { panel_head("TCP", format!("{tcp_addr} · {mode}"), copied, vec![format!("nc {host} {port}")]) }
            <p class="explain">
                { rich("TCP is <b>connection-oriented</b>: before any data moves, client and server agree to talk in a <b>three-way handshake</b> (SYN, SYN-ACK, ACK). Then both sides hold a reliable, ordered byte stream until one closes it (FIN) or aborts it (RST). ") }
                { match mode {
                    "echo" => "This lab echoes what each client sends.",
                    "sink" => "This lab reads and drops what clients send.",
                    _ => "This lab relays what one client sends to every other, like a tiny chat server.",
                } }
            </p>
            <h3>{ format!("Connections · {} open · {} since start · {} refused", s.tcp.len(), c.tcp_conns, c.tcp_refused) }</h3>
            { data_table("", COLS, rows.collect(), s.tcp.is_empty().then(|| format!("No open connection. Open one with nc {host} {port}."))) }
            { status_line(lab, "tcp-close") }
            <div class="cols">
                { send_form(send, cmd, lab, SendForm {
                    name: "tcp-send",
                    label: "send to TCP connections",
                    heading: Some("Send"),
                    targets: s.tcp.iter().map(|t| (t.id.to_string(), format!("#{} {}", t.id, t.peer))).collect(),
                    all: "all connections",
                    target: target.clone(),
                    enc_label: "encoding",
                    hex_label: "hex",
                    input_label: "data to send",
                    hex_placeholder: "68 65 6c 6c 6f 0a",
                    newline: Some("end the text with a newline, as nc does"),
                    command: |chosen, data, enc| {
                        let conn = chosen.parse::<u64>().ok();
                        let to = conn.map_or("every connection".to_owned(), |c| format!("connection #{c}"));
                        (CommandKind::TcpSend { conn, data, enc }, format!("sending to {to}"))
                    },
                }) }
                <form onsubmit={connect} aria-label="connect out">
                    <h3>{"Connect out"}</h3>
                    <div class="row-form">
                        <input id="tcp-connect-addr" ref={addr_ref.clone()} type="text" aria-label="address"
                            placeholder={tcp_addr.clone()} />
                        <button id="tcp-connect-button" type="submit">{"Connect"}</button>
                    </div>
                    { status_line(lab, "tcp-connect") }
                    <p class="hint">
                        { if lab.hello.as_ref().is_some_and(|h| h.allow_outbound) {
                            "The lab opens the connection itself and times the handshake; any address is allowed (--allow-outbound)."
                        } else {
                            "The lab opens the connection itself and times the handshake; loopback addresses only (start the lab with --allow-outbound for others)."
                        } }
                    </p>
                </form>
            </div>
            <p class="hint">{ format!("Since start: {} in, {} out", fmt::size(c.tcp_bytes_in), fmt::size(c.tcp_bytes_out)) }</p>
        </section>
    }
}
