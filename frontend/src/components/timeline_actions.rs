//! The timeline's actions, on its column header row: follow or pause, older history,
//! history search, clear, and the exports: JSON Lines and HAR of the rows held, made in the
//! page, and the recorded TCP and UDP history as a Wireshark capture, made by the server.

use yew::prelude::*;

use crate::ctx::{LabCtx, TimelineCtx};
use crate::export;
use crate::fmt;
use crate::lab::LabAction;
use crate::link;
use crate::services::browser;
use crate::timeline::TimelineAction;

/// What the timeline pane hands the actions.
pub struct Actions {
    pub follow: bool,
    pub onfollow: Callback<bool>,
    /// Load older events from the recorded history.
    pub onolder: Callback<()>,
    /// Search the whole recorded history with the current filter.
    pub onsearch: Callback<()>,
    /// Whether a history request is under way.
    pub busy: bool,
    /// The capture's download link (with the page's token).
    pub pcapng: String,
}

/// The capture's download link, made once per pane.
#[hook]
pub fn use_pcapng_link() -> String {
    (*use_memo((), |_| {
        link::with_token("/api/capture.pcapng", browser::page_token().as_deref())
    }))
    .clone()
}

/// `YYYYMMDDHHMMSS`, local time, for file names.
fn stamp() -> String {
    let ts = (browser::now_ms() * 1000.0) as u64;
    fmt::date_time(ts, browser::tz_offset_min())
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect()
}

/// The actions, for the timeline pane's stores. (A function the pane calls, not a
/// component: the pane renders on every timeline change, as this did.)
pub fn timeline_actions(tl: &TimelineCtx, lab: &LabCtx, props: Actions) -> Html {
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
            let name = format!("wirelab-{}.jsonl", stamp());
            if let Err(e) = browser::download(&name, "application/x-ndjson", &text) {
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
            let name = format!("wirelab-{}.har", stamp());
            if let Err(e) = browser::download(&name, "application/json", &text) {
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
    html! {
        <div class="tl-actions" role="toolbar" aria-label="timeline actions">
            <button id="follow" class="small" aria-pressed={(!props.follow).to_string()} onclick={toggle_follow}
                title="autoscroll: follow the newest event, or hold the view still">
                { if props.follow { "❚❚ pause" } else { "▶ follow" } }
            </button>
            <button id="load-older" class="small" onclick={older} disabled={props.busy}
                title="load older events from the server's recorded history">{"older"}</button>
            <button id="search-server" class="small" onclick={search} disabled={props.busy}
                title="search the server's whole recorded history with these filters (Ctrl+Enter in the search box)">{"history"}</button>
            <button id="clear" class="small" onclick={clear} title="drop every row held (the counters go on)">{"clear"}</button>
            <button id="export-jsonl" class="small" onclick={export_jsonl}
                title="download the rows passing the filter as JSON Lines">{"⤓ JSONL"}</button>
            <button id="export-har" class="small" onclick={export_har}
                title="download the HTTP exchanges as HAR 1.2">{"⤓ HAR"}</button>
            <a id="export-pcapng" class="btn small" download="wirelab.pcapng"
                href={props.pcapng}
                title="download the recorded TCP and UDP history as a pcapng capture for Wireshark (made by the server, from its recording)">{"⤓ pcapng"}</a>
        </div>
    }
}
