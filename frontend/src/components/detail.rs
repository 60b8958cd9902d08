//! The selected event in full: its fields, and its payload as text, as a hex and ASCII
//! dump, or as the JSON the server sent; HTTP exchanges as `curl -v` tells them. From
//! here a payload can be sent again (replay) and an HTTP request replayed.

use wirelab_shared::{CommandKind, Direction, EventKind};
use yew::prelude::*;

use crate::components::forms::node_value;
use crate::components::status_line::status_line;
use crate::ctx::{Commander, TimelineCtx};
use crate::lab::Lab;
use crate::services::browser;
use crate::timeline::TimelineAction;
use crate::{curl, export, fmt, hexdump};

/// How the payload is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum View {
    Text,
    Hex,
    Json,
}

/// The pane's own state, held by the timeline pane (the pane is a function it calls, not
/// a component: see the crate's layout).
pub struct DetailState {
    /// How the payload is shown; back to text when the pane closes.
    pub view: UseStateHandle<View>,
    replay_to: NodeRef,
}

#[hook]
pub fn use_detail() -> DetailState {
    DetailState {
        view: use_state_eq(|| View::Text),
        replay_to: use_node_ref(),
    }
}

/// The pane for event `seq`; `onclose` closes it.
pub fn detail(
    tl: &TimelineCtx,
    lab: &Lab,
    cmd: &Commander,
    state: &DetailState,
    seq: u64,
    onclose: &Callback<()>,
) -> Html {
    let (view, replay_to) = (state.view.clone(), &state.replay_to);
    let close = onclose.reform(|_: MouseEvent| ());
    let Some(row) = tl.find(seq).cloned() else {
        return html! {
            <section id="detail" class="detail" aria-label="event detail">
                <div class="detail-head">
                    <b>{ fmt::id(seq) }</b>
                    <span class="muted">{"is no longer held (cleared, or pushed out of the ring)."}</span>
                    <span class="spacer"></span>
                    <button class="small" onclick={close} aria-label="close detail">{"×"}</button>
                </div>
            </section>
        };
    };
    let hide = {
        let (tl, cb, seq) = (tl.clone(), onclose.clone(), row.seq);
        Callback::from(move |_| {
            tl.dispatch(TimelineAction::SetFilter(tl.filter.hiding(seq)));
            cb.emit(());
        })
    };
    let tz = browser::tz_offset_min();
    let http_host = lab
        .service_addr("http")
        .unwrap_or("127.0.0.1:1337")
        .to_owned();
    let body = match (*view, &row.event.kind) {
        (View::Json, _) => export::pretty(&row.event),
        (View::Text, EventKind::Http(x)) => curl::verbose(x),
        (View::Text, EventKind::Tls(x)) => crate::tls_text::verbose(x),
        (View::Text, EventKind::RelayHttp { exchange, note, .. }) => {
            let mut text = curl::verbose(exchange);
            if let Some(n) = note {
                text = format!("* {n}\n{text}");
            }
            text
        }
        (View::Hex, EventKind::Http(x) | EventKind::RelayHttp { exchange: x, .. }) => format!(
            "request body ({}):\n{}\n\nresponse body ({}):\n{}",
            fmt::size(x.body_size),
            hexdump::dump(&x.body.bytes()),
            fmt::size(x.resp_size),
            hexdump::dump(&x.resp_body.bytes())
        ),
        (View::Text, k) => match k.payload() {
            Some(p) if p.is_text() => p.data.clone(),
            Some(p) => format!(
                "[binary: {} captured; shown as hex]\n{}",
                fmt::size(p.bytes().len() as u64),
                hexdump::dump(&p.bytes())
            ),
            None => match k {
                EventKind::Chat { text, .. } => text.clone(),
                _ => row.preview.clone(),
            },
        },
        (View::Hex, k) => match k {
            EventKind::Chat { text, .. } => hexdump::dump(text.as_bytes()),
            _ => k
                .payload()
                .map_or_else(|| "(no payload)".to_owned(), |p| hexdump::dump(&p.bytes())),
        },
    };
    let cut = row.event.kind.payload().map_or(0, |p| p.cut);
    let view_button = |v: View, key: &'static str, label: &'static str| {
        let onclick = {
            let view = view.clone();
            Callback::from(move |_| view.set(v))
        };
        html! { <button data-view={key} aria-pressed={(*view == v).to_string()} onclick={onclick}>{ label }</button> }
    };
    let copy = {
        let body = body.clone();
        Callback::from(move |_| browser::copy(&body))
    };
    let replay = row.replayable().then(|| {
        let (cmd, seq, target_ref) = (cmd.clone(), row.seq, replay_to.clone());
        let onclick = Callback::from(move |_| {
            let to = node_value(&target_ref).trim().to_owned();
            let (what, target) = if to.is_empty() {
                (format!("replaying event {seq}"), None)
            } else {
                (format!("replaying event {seq} to {to}"), Some(to))
            };
            cmd.run("detail", what, CommandKind::Replay { seq, target })
        });
        html! {
            <>
                <input id="replay-target" ref={replay_to.clone()} type="text" class="replay-to"
                    placeholder="to: same" aria-label="replay to (a TCP connection id or a UDP peer; empty: where it came from)"
                    title="where to send it again: a TCP connection id or a UDP peer address; empty: where it came from" />
                <button id="detail-replay" class="small" onclick={onclick}
                    title="send this payload again">{"replay"}</button>
            </>
        }
    });
    let http_actions = match &row.event.kind {
        EventKind::Http(x) => {
            let (cmd, id, seq) = (cmd.clone(), x.id, row.event.seq);
            let replay = Callback::from(move |_| {
                cmd.run(
                    "detail",
                    format!("replaying exchange {id}"),
                    CommandKind::Replay { seq, target: None },
                )
            });
            let curl_cmd = curl::command(x, &http_host);
            let copy_curl = Callback::from(move |_| browser::copy(&curl_cmd));
            html! {
                <>
                    <button class="small" onclick={replay} title="send this request again from the server">{"replay"}</button>
                    <button class="small" onclick={copy_curl}>{"copy as curl"}</button>
                </>
            }
        }
        _ => html! {},
    };
    let mut facts = vec![
        ("time", fmt::date_time(row.ts_us, tz)),
        ("event", format!("{} {}", row.proto.as_str(), row.kind)),
    ];
    if !row.peer.is_empty() {
        facts.push(("peer", row.peer.clone()));
    }
    if let Some(c) = row.conn() {
        facts.push(("conn", format!("#{c}")));
    }
    if let Some(d) = row.dir {
        let dir = match d {
            Direction::In => "in",
            Direction::Out => "out",
        };
        facts.push(("dir", dir.to_owned()));
    }
    if row.size >= 1024 {
        facts.push(("size", format!("{} ({} B)", fmt::size(row.size), row.size)));
    } else if row.size > 0 {
        facts.push(("size", fmt::size(row.size)));
    }
    if cut > 0 {
        facts.push(("not captured", fmt::size(cut)));
    }
    html! {
        <section id="detail" class="detail" aria-label="event detail" data-seq={row.seq.to_string()}>
            <div class="detail-head">
                <b>{ fmt::id(row.seq) }</b>
                { for facts.into_iter().map(|(k, v)| html! {
                    <span class="fact"><span class="k">{ k }</span>{ v }</span>
                }) }
                <span class="spacer"></span>
                <div class="detail-actions">
                <div class="seg" role="group" aria-label="show as">
                    { view_button(View::Text, "text", "text") }
                    { view_button(View::Hex, "hex", "hex") }
                    { view_button(View::Json, "json", "JSON") }
                </div>
                <button class="small" onclick={copy}>{"copy"}</button>
                <button id="detail-hide" class="small" onclick={hide}
                    title="hide this row from the timeline and its exports (the filter bar shows hidden rows again)">{"hide"}</button>
                { replay }
                { http_actions }
                <button class="small" onclick={close} aria-label="close detail" title="close (Esc)">{"×"}</button>
                </div>
            </div>
            { status_line(lab, "detail") }
            <pre id="detail-payload" class="payload" tabindex="0">{ body }</pre>
        </section>
    }
}
