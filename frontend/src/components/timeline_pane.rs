//! The unified timeline: filter bar, the virtualized list, and the detail pane of the
//! selected row; plus "load older" and history search against `/api/events`.

use wirelab_shared::Protocol;
use yew::prelude::*;

use crate::components::detail::{View, detail, use_detail};
use crate::components::filter_bar::filter_bar;
use crate::components::timeline_actions::{Actions, timeline_actions, use_pcapng_link};
use crate::components::timeline_list::TimelineList;
use crate::ctx::{use_commander, use_lab, use_timeline};
use crate::filter::ALL_PROTOCOLS;
use crate::lab::LabAction;
use crate::services::browser;
use crate::services::history::{self, HistoryError, Query};
use crate::timeline::TimelineAction;

/// Events asked for per history request.
const HISTORY_PAGE: u32 = 1000;

#[function_component]
pub fn TimelinePane() -> Html {
    let tl = use_timeline();
    let lab = use_lab();
    let cmd = use_commander();
    let selected = use_state_eq(Option::<u64>::default);
    let follow = use_state_eq(|| true);
    let busy = use_state_eq(bool::default);
    let pcapng = use_pcapng_link();
    let detail_state = use_detail();
    let onselect = {
        let (selected, view) = (selected.clone(), detail_state.view.clone());
        Callback::from(move |s: Option<u64>| {
            // A pane opened again shows text first.
            if s.is_none() {
                view.set(View::Text);
            }
            selected.set(s)
        })
    };
    let onfollow = {
        let follow = follow.clone();
        Callback::from(move |f: bool| follow.set(f))
    };
    let onclose = onselect.reform(|()| None);

    // History: older rows before the first held, or a search over everything recorded.
    let fetch = {
        let (tl, lab, busy) = (tl.clone(), lab.clone(), busy.clone());
        move |search: bool| {
            if *busy {
                return;
            }
            let f = tl.filter.clone();
            let protocol = (f.protocols != ALL_PROTOCOLS).then(|| {
                Protocol::ALL
                    .into_iter()
                    .filter(|p| f.shows(*p))
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            });
            let query = Query {
                until_seq: tl
                    .first_seq()
                    .map(|s| s.saturating_sub(1))
                    .filter(|_| !search),
                protocol: protocol.filter(|_| search),
                peer: Some(f.peer.clone()).filter(|_| search),
                q: Some(f.text.clone()).filter(|_| search),
                limit: HISTORY_PAGE,
                ..Query::default()
            };
            if !search && tl.first_seq() == Some(1) {
                lab.dispatch(LabAction::Notice {
                    level: "info",
                    text: "The timeline already starts at the first event.".into(),
                });
                return;
            }
            busy.set(true);
            let (tl, lab, busy) = (tl.clone(), lab.clone(), busy.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let result = history::fetch(&query, browser::page_token().as_deref()).await;
                busy.set(false);
                match result {
                    Ok(page) => {
                        let n = page.events.len();
                        tl.dispatch(TimelineAction::PrependOlder(page.events));
                        let text = if search {
                            format!("History search: {n} matching events loaded into the timeline (older than what was held).")
                        } else {
                            format!("Loaded {n} older events.")
                        };
                        lab.dispatch(LabAction::Notice { level: "info", text });
                    }
                    Err(HistoryError::Unavailable) => lab.dispatch(LabAction::Notice {
                        level: "warn",
                        text: "This lab keeps no recorded history (no /api/events): only the live timeline is available.".into(),
                    }),
                    Err(HistoryError::Failed(e)) => lab.dispatch(LabAction::Notice {
                        level: "error",
                        text: format!("History request failed: {e}"),
                    }),
                }
            });
        }
    };
    let onolder = {
        let fetch = fetch.clone();
        Callback::from(move |_| fetch(false))
    };
    let onsearch = Callback::from(move |_| fetch(true));

    let udp = lab.service_addr("udp").unwrap_or("127.0.0.1:1339");
    let try_cmd = match udp.rsplit_once(':') {
        Some((host, port)) => format!("echo hello | nc -u -w0 {host} {port}"),
        None => format!("echo hello | nc -u -w0 {udp}"),
    };
    html! {
        <section class="timeline" aria-label="timeline">
            { filter_bar(&tl, &onsearch) }
            <TimelineList selected={*selected} onselect={onselect} follow={*follow} onfollow={onfollow.clone()}
                try_cmd={try_cmd}>
                { timeline_actions(&tl, &lab, Actions {
                    follow: *follow,
                    onfollow,
                    onolder,
                    onsearch,
                    busy: *busy,
                    pcapng,
                }) }
            </TimelineList>
            if let Some(seq) = *selected {
                { detail(&tl, &lab, &cmd, &detail_state, seq, &onclose) }
            }
        </section>
    }
}
