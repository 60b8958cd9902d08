//! Relay mode's panel: every proxy with its counters, enable or disable, delete, and a form
//! to add one (the page's equal of `--proxy` and toxiproxy's API).
//!
//! Hooks: `#proxy-name`, `#proxy-protocol`, `#proxy-listen`, `#proxy-upstream`,
//! `#proxy-add`; rows `[data-proxy=NAME]` with `[data-proxy-toggle=NAME]` and
//! `[data-proxy-delete=NAME]`.

use wirelab_shared::{CommandKind, ProxyProtocol};
use yew::prelude::*;

use crate::components::forms::{node_value, on_submit, set_node_value};
use crate::components::status_line::StatusLine;
use crate::ctx::{use_commander, use_lab};
use crate::fmt;

#[function_component]
pub fn ProxiesPanel() -> Html {
    let lab = use_lab();
    let cmd = use_commander();
    let name_ref = use_node_ref();
    let protocol_ref = use_node_ref();
    let listen_ref = use_node_ref();
    let upstream_ref = use_node_ref();
    let proxies = &lab.state.proxies;

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

    let rows = proxies.iter().map(|p| {
        let state = if p.enabled { "listening" } else { "disabled" };
        html! {
            <tr key={p.name.clone()} data-proxy={p.name.clone()}>
                <td>{ &p.name }</td>
                <td>{ p.protocol.as_str() }</td>
                <td>{ &p.listen }</td>
                <td>{ &p.upstream }</td>
                <td>{ state }</td>
                <td class="num">{ p.open }</td>
                <td class="num">{ p.conns }</td>
                <td class="num">{ p.refused }</td>
                <td class="num" title="from clients / to the upstream">
                    { format!("{} / {}", fmt::size(p.client_in), fmt::size(p.upstream_out)) }
                </td>
                <td class="num" title="from the upstream / to clients">
                    { format!("{} / {}", fmt::size(p.upstream_in), fmt::size(p.client_out)) }
                </td>
                <td class="actions">
                    <button class="small" data-proxy-toggle={p.name.clone()} onclick={toggle(&p.name, !p.enabled)}>
                        { if p.enabled { "disable" } else { "enable" } }
                    </button>
                    <button class="small danger" data-proxy-delete={p.name.clone()} onclick={delete(&p.name)}>
                        {"delete"}
                    </button>
                </td>
            </tr>
        }
    });

    html! {
        <section class="panel" aria-label="Proxies">
            <div class="panel-head"><h2>{"Proxies"}<span class="addr">{"relay mode"}</span></h2></div>
            <p class="explain">
                {"A proxy puts the lab between your client and your own service: each client connection gets its own connection to the upstream, and both legs show in the timeline."}
            </p>
            <div class="tablewrap">
                <table class="data">
                    <thead><tr>
                        <th>{"name"}</th><th>{"proto"}</th><th>{"listen"}</th><th>{"upstream"}</th>
                        <th>{"state"}</th><th class="num">{"open"}</th><th class="num">{"conns"}</th>
                        <th class="num">{"refused"}</th><th class="num">{"up"}</th><th class="num">{"down"}</th>
                        <th>{"actions"}</th>
                    </tr></thead>
                    <tbody>
                        { for rows }
                        if proxies.is_empty() {
                            <tr><td colspan="11" class="empty">{"No proxy yet: add one below, start the lab with --proxy, or use a toxiproxy client."}</td></tr>
                        }
                    </tbody>
                </table>
            </div>
            <StatusLine form="proxy-row" />
            <form onsubmit={add} aria-label="add a proxy">
                <h3>{"Add a proxy"}</h3>
                <div class="row-form">
                    <input id="proxy-name" ref={name_ref} type="text" aria-label="name" placeholder="redis" />
                    <select id="proxy-protocol" ref={protocol_ref} aria-label="protocol">
                        <option value="tcp" selected=true>{"tcp"}</option>
                        <option value="udp">{"udp"}</option>
                    </select>
                    <input id="proxy-listen" ref={listen_ref} type="text" aria-label="listen" placeholder="127.0.0.1:0" />
                    <input id="proxy-upstream" ref={upstream_ref} type="text" aria-label="upstream" placeholder="127.0.0.1:6379" />
                    <button id="proxy-add" class="primary" type="submit">{"Add"}</button>
                </div>
                <StatusLine form="proxy-add" />
            </form>
        </section>
    }
}
