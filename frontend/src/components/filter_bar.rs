//! The timeline's filters: protocols, direction, peer and text, rows hidden one by one
//! (from the detail pane), and how many rows pass.

use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use wirelab_shared::{Direction, Protocol};
use yew::prelude::*;

use crate::ctx::TimelineCtx;
use crate::filter::{ALL_PROTOCOLS, Filter};
use crate::fmt;
use crate::timeline::TimelineAction;

fn target_value(e: &Event) -> String {
    e.target()
        .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        .map(|i| i.value())
        .unwrap_or_default()
}

fn input_value(e: &InputEvent) -> String {
    e.target()
        .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        .map(|i| i.value())
        .unwrap_or_default()
}

/// The filter bar for the timeline store `tl`; `onsearch` searches the server's whole
/// history for the current filter (Ctrl+Enter in the text box). A function the timeline
/// pane calls, not a component: it rendered on every change of the timeline, as the pane
/// does.
pub fn filter_bar(tl: &TimelineCtx, onsearch: &Callback<()>) -> Html {
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
                { if p.is_some() { key.to_ascii_uppercase() } else { "All".to_owned() } }
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
    // `change` too: a test driver's "clear" fires no input event.
    let on_text_change = {
        let (f, set) = (f.clone(), set.clone());
        Callback::from(move |e: Event| {
            let text = target_value(&e);
            if text != f.text {
                set(Filter { text, ..f.clone() })
            }
        })
    };
    let on_peer_change = {
        let (f, set) = (f.clone(), set.clone());
        Callback::from(move |e: Event| {
            let peer = target_value(&e);
            if peer != f.peer {
                set(Filter { peer, ..f.clone() })
            }
        })
    };
    let on_text_key = {
        let onsearch = onsearch.clone();
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
    let unhide = {
        let (set, f) = (set.clone(), f.clone());
        Callback::from(move |_| set(f.unhiding()))
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
                value={f.peer.clone()} oninput={on_peer} onchange={on_peer_change} />
            <input id="filter-text" type="search" placeholder="search text" title="filter by text; Ctrl+Enter searches the recorded history"
                aria-label="filter by text" value={f.text.clone()} oninput={on_text} onchange={on_text_change} onkeydown={on_text_key} />
            if !f.is_all() {
                <button id="filter-reset" class="small" onclick={reset} title="show everything again">{"reset"}</button>
            }
            if !f.hidden.is_empty() {
                <button id="show-hidden" class="small" onclick={unhide}
                    title="rows hidden one by one from the detail pane: show them again">
                    { format!("{} hidden · show", fmt::count(f.hidden.len() as u64)) }
                </button>
            }
            <span class="count" title={format!("rows passing the filter, of {} held (at most {})", tl.ring.len(), tl.cap)}>
                <b id="count-shown" data-value={shown.to_string()}>{ fmt::count(shown as u64) }</b>
                { format!(" / {}", fmt::count(tl.ring.len() as u64)) }
            </span>
        </div>
    }
}
