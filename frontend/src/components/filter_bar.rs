//! The timeline's toolbar: protocol and direction filters, peer and text search, follow
//! or pause, clear, history, and the exports.

use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use wirelab_shared::{Direction, Protocol};
use yew::prelude::*;

use crate::ctx::{use_lab, use_timeline};
use crate::export;
use crate::filter::{ALL_PROTOCOLS, Filter};
use crate::fmt;
use crate::lab::LabAction;
use crate::services::browser;
use crate::timeline::TimelineAction;

#[derive(Properties, PartialEq)]
pub struct FilterBarProps {
    pub follow: bool,
    pub onfollow: Callback<bool>,
    /// "Load older" (history) was asked for.
    pub onolder: Callback<()>,
    /// Search the server's whole history for the current filter.
    pub onsearch: Callback<()>,
    /// Whether a history request is under way.
    pub busy: bool,
}

fn input_value(e: &InputEvent) -> String {
    e.target()
        .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        .map(|i| i.value())
        .unwrap_or_default()
}

fn stamp() -> String {
    let ts = (browser::now_ms() * 1000.0) as u64;
    fmt::date_time(ts, browser::tz_offset_min())
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect()
}

#[function_component]
pub fn FilterBar(props: &FilterBarProps) -> Html {
    let tl = use_timeline();
    let lab = use_lab();
    let f = (*tl.filter).clone();
    let set = {
        let tl = tl.clone();
        move |f: Filter| tl.dispatch(TimelineAction::SetFilter(f))
    };

    let proto_button = |p: Option<Protocol>| {
        let pressed = match p {
            Some(p) => f.protocols != ALL_PROTOCOLS && f.shows(p),
            None => f.protocols == ALL_PROTOCOLS,
        };
        let onclick = {
            let (f, set) = (f.clone(), set.clone());
            Callback::from(move |e: MouseEvent| {
                let multi = e.ctrl_key() || e.meta_key() || e.shift_key();
                let protocols = match p {
                    Some(p) => Filter::click_protocol(f.protocols, p, multi),
                    None => ALL_PROTOCOLS,
                };
                set(Filter {
                    protocols,
                    ..f.clone()
                });
            })
        };
        let key = p.map_or("all", |p| p.as_str());
        html! {
            <button data-filter-proto={key} aria-pressed={pressed.to_string()} onclick={onclick}
                title={if p.is_some() { "show only this protocol; Ctrl- or Shift-click to add or remove it" } else { "show every protocol" }}>
                { if p.is_some() { key.to_uppercase() } else { "All".to_owned() } }
            </button>
        }
    };
    let dir_button = |d: Option<Direction>, label: &'static str| {
        let onclick = {
            let (f, set) = (f.clone(), set.clone());
            Callback::from(move |_| {
                set(Filter {
                    dir: d,
                    ..f.clone()
                })
            })
        };
        let key = match d {
            None => "all",
            Some(Direction::In) => "in",
            Some(Direction::Out) => "out",
        };
        html! {
            <button data-filter-dir={key} aria-pressed={(f.dir == d).to_string()} onclick={onclick}>{ label }</button>
        }
    };
    let on_text = {
        let (f, set) = (f.clone(), set.clone());
        Callback::from(move |e: InputEvent| {
            set(Filter {
                text: input_value(&e),
                ..f.clone()
            })
        })
    };
    let on_peer = {
        let (f, set) = (f.clone(), set.clone());
        Callback::from(move |e: InputEvent| {
            set(Filter {
                peer: input_value(&e),
                ..f.clone()
            })
        })
    };
    let on_text_key = {
        let onsearch = props.onsearch.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" && (e.ctrl_key() || e.meta_key()) {
                onsearch.emit(());
            }
        })
    };
    let reset = {
        let set = set.clone();
        Callback::from(move |_| set(Filter::default()))
    };
    let clear = {
        let tl = tl.clone();
        Callback::from(move |_| tl.dispatch(TimelineAction::Clear))
    };
    let toggle_follow = {
        let (cb, follow) = (props.onfollow.clone(), props.follow);
        Callback::from(move |_| cb.emit(!follow))
    };
    let version = lab
        .hello
        .as_ref()
        .map(|h| h.version.clone())
        .unwrap_or_default();
    let http_host = lab
        .service_addr("http")
        .unwrap_or("127.0.0.1:1337")
        .to_owned();
    let export_jsonl = {
        let (tl, lab) = (tl.clone(), lab.clone());
        Callback::from(move |_| {
            let text = export::jsonl(tl.view.iter());
            if let Err(e) = browser::download(
                &format!("wirelab-{}.jsonl", stamp()),
                "application/x-ndjson",
                &text,
            ) {
                lab.dispatch(LabAction::Notice {
                    level: "error",
                    text: e,
                });
            }
        })
    };
    let export_har = {
        let (tl, lab) = (tl.clone(), lab.clone());
        Callback::from(move |_| {
            let text = export::har(tl.http.iter(), &version, &http_host);
            if let Err(e) = browser::download(
                &format!("wirelab-{}.har", stamp()),
                "application/json",
                &text,
            ) {
                lab.dispatch(LabAction::Notice {
                    level: "error",
                    text: e,
                });
            }
        })
    };
    let older = {
        let cb = props.onolder.clone();
        Callback::from(move |_| cb.emit(()))
    };
    let search = {
        let cb = props.onsearch.clone();
        Callback::from(move |_| cb.emit(()))
    };
    let shown = tl.view.len();
    html! {
        <div class="filters" role="toolbar" aria-label="timeline filters">
            <div class="seg" role="group" aria-label="protocol">
                { proto_button(None) }
                { for Protocol::ALL.into_iter().map(|p| proto_button(Some(p))) }
            </div>
            <div class="seg" role="group" aria-label="direction">
                { dir_button(None, "both") }
                { dir_button(Some(Direction::In), "in") }
                { dir_button(Some(Direction::Out), "out") }
            </div>
            <input id="filter-peer" type="search" placeholder="peer" aria-label="filter by peer"
                value={f.peer.clone()} oninput={on_peer} />
            <input id="filter-text" type="search" placeholder="search text (Ctrl+Enter: history)"
                aria-label="filter by text" value={f.text.clone()} oninput={on_text} onkeydown={on_text_key} />
            if !f.is_all() {
                <button id="filter-reset" class="small" onclick={reset} title="show everything again">{"reset"}</button>
            }
            <span class="count" title={format!("rows passing the filter, of {} held (at most {})", tl.ring.len(), tl.cap)}>
                <b id="count-shown" data-value={shown.to_string()}>{ fmt::count(shown as u64) }</b>
                { format!(" / {}", fmt::count(tl.ring.len() as u64)) }
            </span>
            <span class="spacer"></span>
            <button id="follow" class="small" aria-pressed={(!props.follow).to_string()} onclick={toggle_follow}
                title="autoscroll: follow the newest event, or hold the view still">
                { if props.follow { "❚❚ pause" } else { "▶ follow" } }
            </button>
            <button id="load-older" class="small" onclick={older} disabled={props.busy}
                title="load older events from the server's recorded history">{"older"}</button>
            <button id="search-server" class="small" onclick={search} disabled={props.busy}
                title="search the server's whole recorded history with these filters">{"search history"}</button>
            <button id="clear" class="small" onclick={clear} title="drop every row held (counters go on)">{"clear"}</button>
            <button id="export-jsonl" class="small" onclick={export_jsonl}
                title="download the rows passing the filter as JSON Lines">{"JSONL"}</button>
            <button id="export-har" class="small" onclick={export_har}
                title="download the HTTP exchanges as HAR 1.2">{"HAR"}</button>
        </div>
    }
}
