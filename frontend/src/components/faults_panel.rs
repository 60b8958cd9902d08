//! Faults on relay mode's proxies (a `udp` proxy takes the toxics that act on datagrams):
//! every proxy's toxics with what each did and a button to remove it, and a form to add
//! one, from a preset (3G, satellite, flaky, lossy Wi-Fi) or custom (toxiproxy's types
//! and attributes, and wirelab's for datagrams). A toxic applies to the proxy's live
//! connections too.
//!
//! Hooks: `#fault-proxy`, `#fault-preset`, `#fault-stream`, `#fault-type`,
//! `#fault-attributes`, `#fault-toxicity`, `#fault-scope`, `#fault-add`; rows
//! `[data-toxic=PROXY/NAME]` with `[data-toxic-remove=PROXY/NAME]`.

use web_sys::HtmlSelectElement;
use wirelab_shared::CommandKind;
use yew::prelude::*;

use crate::components::forms::{node_value, on_submit, set_node_value};
use crate::components::status_line::status_line;
use crate::components::table::{Col, data_table, num_cell};
use crate::ctx::Commander;
use crate::faults::{PRESETS, TYPES, attributes, preset, scope, toxicity};
use crate::fmt;
use crate::lab::Lab;

const COLS: &[Col] = &[
    Col::text("proxy"),
    Col::text("toxic"),
    Col::text("stream"),
    Col::text("does"),
    Col::num("conns").title("connections (per direction) that got it / that its toxicity spared"),
    Col::num("bytes").title("bytes it handled / dropped"),
    Col::num("acted / ended").title("chunks or datagrams it acted on / connections it ended"),
    Col::text("actions"),
];

/// The form's fields: proxy, preset, stream, type, attributes, toxicity, scope. The
/// Proxies panel holds them, so that a connection row's "fault…" can aim the form.
pub type FaultRefs = [NodeRef; 7];

/// Points the form at `proxy` (or a lab service) and `scope` (`conn 12`, `peer ...`): a
/// row's "fault…" button.
pub fn aim(refs: &FaultRefs, proxy: &str, scope: &str) {
    if let Some(s) = refs[0].cast::<HtmlSelectElement>() {
        s.set_value(proxy);
    }
    set_node_value(&refs[6], scope);
}

/// A row's faults: the names of the toxics that apply to it now, or a dash.
pub fn faults_text(faults: &[String]) -> String {
    match faults.is_empty() {
        true => "—".to_owned(),
        false => faults.join(", "),
    }
}

/// The toxics of every proxy and the form to add one (the Proxies panel's part).
pub fn faults_panel(lab: &Lab, cmd: &Commander, refs: &FaultRefs) -> Html {
    // Every proxy, and the lab's own TCP service (`@tcp`, listed once it has toxics).
    let proxies = &lab.state.proxies;
    let real: Vec<_> = proxies
        .iter()
        .filter(|p| !p.name.starts_with('@'))
        .collect();

    let add = {
        let (cmd, refs) = (cmd.clone(), refs.clone());
        on_submit(move || {
            let [proxy, chosen, stream, kind, attrs, tox, at] = refs.each_ref().map(node_value);
            let at = match scope(&at) {
                Ok(s) => s,
                Err(e) => return cmd.refuse("fault-add", e),
            };
            if let Some(kinds) = preset(&proxy, &chosen, &stream, &at) {
                for kind in kinds {
                    cmd.run("fault-add", format!("adding {chosen} to {proxy}"), kind);
                }
                return;
            }
            let (attributes, toxicity) = match (attributes(&attrs), toxicity(&tox)) {
                (Ok(a), Ok(t)) => (a, t),
                (Err(e), _) | (_, Err(e)) => return cmd.refuse("fault-add", e),
            };
            let what = format!("adding {kind} to {proxy}");
            let kind = CommandKind::ToxicAdd {
                proxy,
                name: String::new(),
                kind,
                stream,
                toxicity,
                attributes,
                conn: at.0,
                peer: at.1,
            };
            cmd.run("fault-add", what, kind);
        })
    };
    let remove = |proxy: &str, name: &str| {
        let (cmd, proxy, name) = (cmd.clone(), proxy.to_owned(), name.to_owned());
        Callback::from(move |_| {
            let what = format!("removing {name} from {proxy}");
            let kind = CommandKind::ToxicRemove {
                proxy: proxy.clone(),
                name: name.clone(),
            };
            cmd.run("fault-row", what, kind)
        })
    };
    let rows = proxies.iter().flat_map(|p| {
        p.toxics.iter().map(|t| {
            let key = format!("{}/{}", p.name, t.name);
            html! {
                <tr key={key.clone()} data-toxic={key.clone()}>
                    <td>{ &p.name }</td>
                    <td>{ &t.name }</td>
                    <td>{ &t.stream }</td>
                    <td>{ &t.detail }</td>
                    <td class="num">{ format!("{} / {}", t.conns, t.spared) }</td>
                    { num_cell(fmt::sizes(t.bytes, t.dropped)) }
                    <td class="num">{ format!("{} / {}", t.acted, t.cuts) }</td>
                    <td class="actions">
                        <button class="small danger" data-toxic-remove={key} onclick={remove(&p.name, &t.name)}>
                            {"remove"}
                        </button>
                    </td>
                </tr>
            }
        })
    });
    let any = proxies.iter().any(|p| !p.toxics.is_empty());
    let [
        proxy_ref,
        preset_ref,
        stream_ref,
        type_ref,
        attrs_ref,
        tox_ref,
        scope_ref,
    ] = refs.clone();

    html! { <>
        <h3>{"Faults"}</h3>
        if any {
            { data_table("", COLS, rows.collect(), None) }
            { status_line(lab, "fault-row") }
        }
        <form onsubmit={add} aria-label="add a fault">
            <div class="row-form">
                <select id="fault-proxy" ref={proxy_ref} aria-label="proxy">
                    // Each default marked: yew adds a list's options last first, and the
                    // first one added would be chosen.
                    { for real.iter().enumerate().map(|(i, p)| html! { <option value={p.name.clone()} selected={i == 0}>{ &p.name }</option> }) }
                    <option value="@tcp" selected={real.is_empty()}>{"@tcp: the lab's TCP service"}</option>
                    <option value="@http">{"@http: the lab's HTTP service"}</option>
                    <option value="@udp">{"@udp: the lab's UDP service"}</option>
                </select>
                <select id="fault-preset" ref={preset_ref} aria-label="preset">
                    { for PRESETS.iter().map(|(v, label)| html! { <option value={*v} selected={*v == "3g"}>{ *label }</option> }) }
                </select>
                <select id="fault-stream" ref={stream_ref} aria-label="stream"
                    title="downstream: upstream → client (toxiproxy's default); upstream: client → upstream">
                    <option value="downstream" selected=true>{"downstream"}</option>
                    <option value="upstream">{"upstream"}</option>
                    <option value="both">{"both"}</option>
                </select>
                <select id="fault-type" ref={type_ref} aria-label="custom: type">
                    { for TYPES.iter().map(|t| html! { <option value={*t} selected={*t == "latency"}>{ *t }</option> }) }
                </select>
                <input id="fault-attributes" ref={attrs_ref} type="text" aria-label="custom: attributes"
                    placeholder="latency=100 jitter=10" />
                <input id="fault-toxicity" ref={tox_ref} type="text" aria-label="custom: toxicity"
                    placeholder="toxicity 1" />
                <input id="fault-scope" ref={scope_ref} type="text" aria-label="scope"
                    placeholder="all, or conn 12, or peer 10.0.0.7" />
                <button id="fault-add" class="primary" type="submit">{"Add fault"}</button>
            </div>
            { status_line(lab, "fault-add") }
        </form>
    </> }
}
