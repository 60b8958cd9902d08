//! The chat: the latest lines from every client (and, with `--bridge`, from TCP and UDP),
//! and a box to say something to all of them.

use wirelab_shared::{CommandKind, EventKind};
use yew::prelude::*;

use crate::components::forms::{node_value, on_submit, set_node_value};
use crate::components::status_line::status_line;
use crate::ctx::{use_commander, use_lab, use_timeline};
use crate::fmt;
use crate::services::browser;

/// Lines shown.
const SHOWN: usize = 60;

#[function_component]
pub fn ChatBox() -> Html {
    let tl = use_timeline();
    let cmd = use_commander();
    let lab = use_lab();
    let input = use_node_ref();
    let log = use_node_ref();
    let tz = browser::tz_offset_min();

    // Keep the newest line in view.
    {
        let log = log.clone();
        use_effect_with(tl.chat.back().map(|r| r.seq), move |_| {
            if let Some(el) = log.cast::<web_sys::Element>() {
                el.set_scroll_top(el.scroll_height());
            }
        });
    }
    let send = {
        let (cmd, input) = (cmd.clone(), input.clone());
        on_submit(move || {
            let t = node_value(&input).trim().to_owned();
            if t.is_empty() {
                cmd.refuse("chat", "Nothing to say: type a message.");
                return;
            }
            cmd.run("chat", "sending", CommandKind::Chat { text: t });
            set_node_value(&input, "");
        })
    };
    let skip = tl.chat.len().saturating_sub(SHOWN);
    html! {
        <form class="chat" onsubmit={send} aria-label="chat">
            <h3>{"Chat"}</h3>
            <div id="chat-log" class="chat-log" ref={log} role="log" aria-live="polite">
                { for tl.chat.iter().skip(skip).filter_map(|r| match &r.event.kind {
                    EventKind::Chat { from, text } => Some(html! {
                        <div class="chat-line" key={r.seq} data-seq={r.seq.to_string()}>
                            <span class="c-time">{ fmt::clock(r.ts_us, tz) }</span>
                            <span class="from">{ from }</span>
                            <span class="text">{ text }</span>
                        </div>
                    }),
                    _ => None,
                }) }
                if tl.chat.is_empty() {
                    <div class="empty-note">{"No chat yet. Say something, or connect with websocat and type."}</div>
                }
            </div>
            <div class="row-form">
                <input id="chat-input" ref={input} type="text" placeholder="say something to every client"
                    aria-label="chat message" autocomplete="off" />
                <button id="chat-send" class="primary" type="submit">{"Send"}</button>
            </div>
            { status_line(&lab, "chat") }
        </form>
    }
}
