//! Relay mode's panel: every proxy with its counters, enable or disable, delete, and a form
//! to add one (the page's equal of `--proxy` and toxiproxy's API). It is the TCP tab's
//! component: the TCP panel above it (`tcp_panel`) is a function drawn with state it holds.
//!
//! Below them, the `tcp` proxies' faults ([`super::faults_panel`]), then the open relayed
//! connections, both legs side by side (bytes, and the
//! kernel's rtt for each leg), each leg with RST and FIN buttons.
//!
//! Hooks: `#proxy-name`, `#proxy-protocol`, `#proxy-listen`, `#proxy-upstream`,
//! `#proxy-add`; rows `[data-proxy=NAME]` with `[data-proxy-toggle=NAME]`,
//! `[data-proxy-fault=NAME]` (aims the Faults form at it) and `[data-proxy-delete=NAME]`; legs `[data-relay=ID]` with `[data-relay-rst=ID-client]`,
//! `[data-relay-rst=ID-upstream]`, `[data-relay-fin=ID-client]`,
//! `[data-relay-fin=ID-upstream]`, and `[data-relay-faults=ID]` (the toxics that apply
//! to it); the send form `#relay-send-conn`, `#relay-send-leg`, `#relay-send-as` (bytes, ws-text, ws-binary),
//! `#relay-send-input`, `#relay-send-button`.

use wirelab_shared::{CommandKind, Leg, ProxyProtocol, TcpKernelInfo};
use yew::prelude::*;

use crate::components::faults_panel::{FaultRefs, aim, faults_panel, faults_text};
use crate::components::forms::{node_value, on_submit, payload, set_node_value};
use crate::components::send_form::{use_send_form, use_target};
use crate::components::status_line::status_line;
use crate::components::table::{Col, age_cell, data_table, num_cell};
use crate::components::tcp_panel::{TcpState, tcp_panel};
use crate::components::try_it::use_try_it;
use crate::ctx::{use_commander, use_lab};
use crate::fmt;
use crate::lab::LabAction;

const PROXY_COLS: &[Col] = &[
    Col::text("name"),
    Col::text("proto"),
    Col::text("listen"),
    Col::text("upstream"),
    Col::text("state"),
    Col::num("open"),
    Col::num("conns"),
    Col::num("refused"),
    Col::num("up"),
    Col::num("down"),
    Col::text("actions"),
];

const LEG_COLS: &[Col] = &[
    Col::num("id"),
    Col::text("proxy"),
    Col::text("client"),
    Col::text("upstream leg"),
    Col::text("age"),
    Col::num("client in/out").title("client leg: read / written"),
    Col::num("upstream in/out").title("upstream leg: read / written"),
    Col::num("rtt").title("kernel rtt: client leg / upstream leg"),
    Col::text("faults").title("the proxy's toxics that apply to this connection"),
    Col::text("actions"),
];

#[hook]
pub fn use_proxies_panel() -> Html {
    let lab = use_lab();
    let cmd = use_commander();
    let tcp = TcpState {
        copied: use_try_it(),
        target: use_target(),
        addr_ref: use_node_ref(),
        send: use_send_form(),
    };
    let name_ref = use_node_ref();
    let protocol_ref = use_node_ref();
    let listen_ref = use_node_ref();
    let upstream_ref = use_node_ref();
    let proxies = &lab.state.proxies;
    let send_conn_ref = use_node_ref();
    let send_leg_ref = use_node_ref();
    let send_text_ref = use_node_ref();
    let fault_refs: FaultRefs = [
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
    ];
    // A row of another tab pointed the Faults form somewhere: done once the form is here.
    {
        let (refs, lab_store) = (fault_refs.clone(), cmd.lab.clone());
        use_effect_with(lab.fault_aim.clone(), move |wanted| {
            if let Some((proxy, scope)) = wanted {
                aim(&refs, proxy, scope);
                lab_store.dispatch(LabAction::AimFault(None));
            }
        });
    }
    let send_as_ref = use_node_ref();
    let send = {
        let cmd = cmd.clone();
        let refs = (
            send_conn_ref.clone(),
            send_leg_ref.clone(),
            send_text_ref.clone(),
            send_as_ref.clone(),
        );
        on_submit(move || {
            let Ok(conn) = node_value(&refs.0).parse::<u64>() else {
                cmd.refuse("proxy-send", "no relayed connection chosen");
                return;
            };
            let leg = match node_value(&refs.1).as_str() {
                "upstream" => Leg::Upstream,
                _ => Leg::Client,
            };
            let send_as = node_value(&refs.3);
            match payload(&node_value(&refs.2), false, false) {
                Ok((data, enc)) => {
                    let kind = match send_as.as_str() {
                        "ws-text" | "ws-binary" => CommandKind::RelayWsSend {
                            conn,
                            leg,
                            data,
                            enc,
                            binary: send_as == "ws-binary",
                        },
                        _ => CommandKind::RelaySend {
                            conn,
                            leg,
                            data,
                            enc,
                        },
                    };
                    cmd.run("proxy-send", format!("sending toward #{conn}"), kind);
                    set_node_value(&refs.2, "");
                }
                Err(e) => cmd.refuse("proxy-send", e),
            }
        })
    };

    let add = {
        let cmd = cmd.clone();
        let refs = (
            name_ref.clone(),
            protocol_ref.clone(),
            listen_ref.clone(),
            upstream_ref.clone(),
        );
        on_submit(move || {
            let (name, protocol, listen, upstream) = (
                node_value(&refs.0).trim().to_owned(),
                node_value(&refs.1),
                node_value(&refs.2).trim().to_owned(),
                node_value(&refs.3).trim().to_owned(),
            );
            let listen = if listen.is_empty() {
                "127.0.0.1:0".to_owned()
            } else {
                listen
            };
            let protocol = ProxyProtocol::parse(&protocol).unwrap_or_default();
            cmd.run(
                "proxy-add",
                format!("making proxy {name}"),
                CommandKind::ProxyAdd {
                    name,
                    protocol,
                    listen,
                    upstream,
                },
            );
            set_node_value(&refs.0, "");
        })
    };
    let toggle = |name: &str, enabled: bool| {
        let (cmd, name) = (cmd.clone(), name.to_owned());
        Callback::from(move |_| {
            let what = format!("{} {name}", if enabled { "enabling" } else { "disabling" });
            let kind = CommandKind::ProxySet {
                name: name.clone(),
                enabled,
            };
            cmd.run("proxy-row", what, kind)
        })
    };
    let delete = |name: &str| {
        let (cmd, name) = (cmd.clone(), name.to_owned());
        Callback::from(move |_| {
            let kind = CommandKind::ProxyDelete { name: name.clone() };
            cmd.run("proxy-row", format!("deleting {name}"), kind)
        })
    };

    let act = |conn: u64, leg: Leg, reset: bool| {
        let cmd = cmd.clone();
        Callback::from(move |_| {
            let side = if leg == Leg::Client {
                "client"
            } else {
                "upstream"
            };
            let what = match reset {
                true => format!("resetting #{conn}'s {side} leg"),
                false => format!("FIN toward #{conn}'s {side}"),
            };
            cmd.run(
                "proxy-leg",
                what,
                CommandKind::RelayClose { conn, leg, reset },
            )
        })
    };
    let rtt = |k: Option<TcpKernelInfo>| {
        k.map_or("—".to_owned(), |k| fmt::duration_us(u64::from(k.rtt_us)))
    };
    let now = lab.state.ts_us;
    let legs = proxies
        .iter()
        .flat_map(|p| p.legs.iter().map(move |l| (p, l)))
        .map(|(p, l)| {
            let (id, name) = (l.conn, p.name.as_str());
            let fault = {
                let (name, refs) = (name.to_owned(), fault_refs.clone());
                Callback::from(move |_| aim(&refs, &name, &format!("conn {id}")))
            };
            let buttons = |leg: Leg| {
                let (key, fin, rst) = match leg {
                    Leg::Client => ("client", "FIN→client", "RST client"),
                    Leg::Upstream => ("upstream", "FIN→upstream", "RST upstream"),
                };
                let hook = format!("{id}-{key}");
                html! { <>
                    <button class="small" data-relay-fin={hook.clone()} onclick={act(id, leg, false)}
                        title="the lab sends FIN toward this leg">{ fin }</button>
                    <button class="small danger" data-relay-rst={hook} onclick={act(id, leg, true)}
                        title="the lab resets this leg (RST)">{ rst }</button>
                </> }
            };
            html! {
                <tr key={id} data-relay={id.to_string()}>
                    <td class="num">{ format!("#{id}") }</td>
                    <td>{ name }</td>
                    <td>{ &l.peer }{ if l.client_half_closed { " (FIN)" } else { "" } }{ if l.websocket { " · ws" } else { "" } }</td>
                    <td>{ &l.upstream_local }{ if l.upstream_half_closed { " (FIN)" } else { "" } }</td>
                    { age_cell(now, l.since_us) }
                    { num_cell(fmt::sizes(l.client_in, l.client_out)) }
                    { num_cell(fmt::sizes(l.upstream_in, l.upstream_out)) }
                    <td class="num">{ format!("{} / {}", rtt(l.client_kernel), rtt(l.upstream_kernel)) }</td>
                    <td data-relay-faults={id.to_string()}>{ faults_text(&l.faults) }</td>
                    <td class="actions">
                        if p.protocol != ProxyProtocol::Udp {
                            { buttons(Leg::Client) }{ buttons(Leg::Upstream) }
                        }
                        <button class="small" data-relay-fault={id.to_string()} onclick={fault}
                            title="add a fault to this connection only">{"fault…"}</button>
                    </td>
                </tr>
            }
        });
    let any_legs = proxies.iter().any(|p| !p.legs.is_empty());

    // `@tcp` (the lab's own TCP service) is listed with its faults only.
    let real: Vec<_> = proxies
        .iter()
        .filter(|p| !p.name.starts_with('@'))
        .collect();
    let rows = real.iter().map(|p| {
        let state = if p.enabled { "listening" } else { "disabled" };
        let fault = {
            let (name, refs) = (p.name.clone(), fault_refs.clone());
            Callback::from(move |_| aim(&refs, &name, ""))
        };
        html! {
            <tr key={p.name.clone()} data-proxy={p.name.clone()}>
                <td>{ &p.name }</td>
                <td>{ p.protocol.as_str() }</td>
                <td>{ &p.listen }</td>
                <td>{ &p.upstream }</td>
                <td>{ state }</td>
                { num_cell(p.open.to_string()) }
                { num_cell(p.conns.to_string()) }
                { num_cell(p.refused.to_string()) }
                <td class="num" title="from clients / to the upstream">
                    { fmt::sizes(p.client_in, p.upstream_out) }
                </td>
                <td class="num" title="from the upstream / to clients">
                    { fmt::sizes(p.upstream_in, p.client_out) }
                </td>
                <td class="actions">
                    <button class="small" data-proxy-toggle={p.name.clone()} onclick={toggle(&p.name, !p.enabled)}>
                        { if p.enabled { "disable" } else { "enable" } }
                    </button>
                    <button class="small" data-proxy-fault={p.name.clone()} onclick={fault}
                        title="add a fault to every connection of this proxy (the Faults form below)">{"fault…"}</button>
                    <button class="small danger" data-proxy-delete={p.name.clone()} onclick={delete(&p.name)}>
                        {"delete"}
                    </button>
                </td>
            </tr>
        }
    });

    html! {
        <>
        { tcp_panel(&lab, &cmd, &tcp, &fault_refs) }
        <section class="panel" aria-label="Proxies">
            <div class="panel-head"><h2>{"Proxies"}<span class="addr">{"relay mode"}</span></h2></div>
            <p class="explain">
                {"A proxy puts the lab between your client and your own service: each client connection gets its own connection to the upstream, and both legs show in the timeline."}
            </p>
            { data_table("", PROXY_COLS, rows.collect(), real.is_empty().then(|| {
                "No proxy yet: add one below, start the lab with --proxy, or use a toxiproxy client."
                    .to_owned()
            })) }
            { status_line(&lab, "proxy-row") }
            { faults_panel(&lab, &cmd, &fault_refs) }
            if any_legs {
                <h3>{"Relayed connections"}</h3>
                { data_table("", LEG_COLS, legs.collect(), None) }
                { status_line(&lab, "proxy-leg") }
                <form onsubmit={send} aria-label="send toward a leg">
                    <div class="row-form">
                        <select id="relay-send-conn" ref={send_conn_ref} aria-label="connection">
                            { for proxies.iter().flat_map(|p| p.legs.iter()).map(|l| html! {
                                <option value={l.conn.to_string()}>{ format!("#{} {}", l.conn, l.peer) }</option>
                            }) }
                        </select>
                        <select id="relay-send-leg" ref={send_leg_ref} aria-label="toward">
                            <option value="client" selected=true>{"toward the client"}</option>
                            <option value="upstream">{"toward the upstream"}</option>
                        </select>
                        <select id="relay-send-as" ref={send_as_ref} aria-label="send as"
                            title="raw bytes into the stream, or one WebSocket message (an http proxy's connection after its upgrade: it goes between frames, masked toward the upstream)">
                            <option value="bytes" selected=true>{"bytes"}</option>
                            <option value="ws-text">{"WebSocket text"}</option>
                            <option value="ws-binary">{"WebSocket binary"}</option>
                        </select>
                        <input id="relay-send-input" ref={send_text_ref} type="text" aria-label="data to send" placeholder="hello" />
                        <button id="relay-send-button" type="submit">{"Send"}</button>
                    </div>
                    { status_line(&lab, "proxy-send") }
                </form>
            }
            <form onsubmit={add} aria-label="add a proxy">
                <h3>{"Add a proxy"}</h3>
                <div class="row-form">
                    <input id="proxy-name" ref={name_ref} type="text" aria-label="name" placeholder="redis" />
                    <select id="proxy-protocol" ref={protocol_ref} aria-label="protocol">
                        <option value="tcp" selected=true>{"tcp"}</option>
                        <option value="http">{"http"}</option>
                        <option value="udp">{"udp"}</option>
                    </select>
                    <input id="proxy-listen" ref={listen_ref} type="text" aria-label="listen" placeholder="127.0.0.1:0" />
                    <input id="proxy-upstream" ref={upstream_ref} type="text" aria-label="upstream" placeholder="127.0.0.1:6379" />
                    <button id="proxy-add" class="primary" type="submit">{"Add"}</button>
                </div>
                { status_line(&lab, "proxy-add") }
            </form>
        </section>
        </>
    }
}
