//! The rail: one tab per service and one for the timeline, with live badges (open
//! connections, peers, clients). On a phone it becomes a row of tabs.

use yew::prelude::*;

use crate::fmt;
use crate::lab::Lab;

/// The tabs, as in `[data-tab=...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Timeline,
    Tcp,
    Udp,
    Http,
    Ws,
    Pool,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Timeline,
        Tab::Tcp,
        Tab::Udp,
        Tab::Http,
        Tab::Ws,
        Tab::Pool,
    ];

    /// The `data-tab` value.
    pub fn key(self) -> &'static str {
        match self {
            Tab::Timeline => "timeline",
            Tab::Tcp => "tcp",
            Tab::Udp => "udp",
            Tab::Http => "http",
            Tab::Ws => "ws",
            Tab::Pool => "pool",
        }
    }

    /// The label shown.
    pub fn label(self) -> &'static str {
        match self {
            Tab::Timeline => "Timeline",
            Tab::Tcp => "TCP",
            Tab::Udp => "UDP",
            Tab::Http => "HTTP",
            Tab::Ws => "WebSocket",
            Tab::Pool => "Pool lab",
        }
    }

    /// Parses a `data-tab` value (or a URL hash).
    pub fn parse(s: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.key() == s)
    }
}

/// The tabs, `tab` selected, each with its service's figure; `onselect` gets a click, or
/// an arrow key. (A function the app calls, not a component: see `notices`.)
pub fn rail(lab: &Lab, tab: Tab, onselect: &Callback<Tab>) -> Html {
    let s = &lab.state;
    let badge = |t: Tab| -> Option<String> {
        match t {
            Tab::Timeline => None,
            Tab::Tcp => Some(s.tcp.len().to_string()),
            Tab::Udp => Some(s.udp.len().to_string()),
            Tab::Http => Some(s.http.len().to_string()),
            Tab::Ws => Some(s.ws.len().to_string()),
            Tab::Pool => lab.pool.as_ref().map(|p| match p.state {
                wirelab_shared::PoolState::Running => "run".to_owned(),
                _ => fmt::id(p.run),
            }),
        }
    };
    let title = |t: Tab| match t {
        Tab::Tcp => "open TCP connections",
        Tab::Udp => "UDP peers seen",
        Tab::Http => "open HTTP connections",
        Tab::Ws => "WebSocket clients",
        Tab::Pool => "last pool run",
        Tab::Timeline => "",
    };
    let onkeydown = {
        let cb = onselect.clone();
        Callback::from(move |e: KeyboardEvent| {
            let i = Tab::ALL.iter().position(|t| *t == tab).unwrap_or(0);
            let n = Tab::ALL.len();
            let next = match e.key().as_str() {
                "ArrowDown" | "ArrowRight" => (i + 1) % n,
                "ArrowUp" | "ArrowLeft" => (i + n - 1) % n,
                _ => return,
            };
            e.prevent_default();
            cb.emit(Tab::ALL[next]);
            focus_tab(Tab::ALL[next]);
        })
    };
    html! {
        <nav class="rail" role="tablist" aria-label="services" aria-orientation="vertical" onkeydown={onkeydown}>
            { for Tab::ALL.into_iter().map(|t| {
                let selected = t == tab;
                let onclick = {
                    let cb = onselect.clone();
                    Callback::from(move |_| cb.emit(t))
                };
                html! {
                    <button role="tab" data-tab={t.key()} id={format!("tab-{}", t.key())}
                        aria-selected={selected.to_string()} tabindex={if selected { "0" } else { "-1" }}
                        onclick={onclick}>
                        <span class={classes!("swatch", format!("bg-{}", t.key()))}></span>
                        { t.label() }
                        if let Some(b) = badge(t) {
                            <span class="badge" title={title(t)}>{ b }</span>
                        }
                    </button>
                }
            }) }
            <div class="rail-foot">{"↑↓ tabs · arrows in the timeline"}</div>
        </nav>
    }
}

fn focus_tab(t: Tab) {
    use wasm_bindgen::JsCast;
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(&format!("tab-{}", t.key())))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}
