//! The HTTP requests, newest first (the lab's own, and those through `http` proxies,
//! with the proxy named), and the selected exchange the way `curl -v` prints it, with
//! "copy as curl" and replay (a relayed one goes through its proxy again).

use std::rc::Rc;

use wirelab_shared::{CommandKind, EventKind};
use yew::prelude::*;

use crate::components::status_line::status_line;
use crate::components::table::{Col, data_table, num_cell};
use crate::ctx::{use_commander, use_lab, use_timeline};
use crate::row::Row;
use crate::services::browser;
use crate::{curl, fmt};

/// Requests listed (the newest); the HAR export has them all.
const LISTED: usize = 200;

const COLS: &[Col] = &[
    Col::text("time"),
    Col::text("via"),
    Col::text("method"),
    Col::text("target"),
    Col::text("status"),
    Col::num("conn · n"),
    Col::num("ttfb"),
    Col::num("total"),
    Col::num("size"),
];

#[function_component]
pub fn HttpRequests() -> Html {
    let tl = use_timeline();
    let lab = use_lab();
    let cmd = use_commander();
    // None: show the newest exchange as it comes.
    let picked = use_state_eq(Option::<u64>::default);
    let tz = browser::tz_offset_min();
    let host = lab
        .service_addr("http")
        .unwrap_or("127.0.0.1:1337")
        .to_owned();

    let current: Option<Rc<Row>> = match *picked {
        Some(seq) => tl.http.iter().rev().find(|r| r.seq == seq).cloned(),
        None => tl.http.back().cloned(),
    };
    let rows = tl.http.iter().rev().take(LISTED).filter_map(|r| match exchange_of(r) {
        Some((x, via)) => {
            let onclick = {
                let (picked, seq) = (picked.clone(), r.seq);
                Callback::from(move |_| picked.set(Some(seq)))
            };
            let onkeydown = {
                let (picked, seq) = (picked.clone(), r.seq);
                Callback::from(move |e: KeyboardEvent| {
                    if e.key() == "Enter" || e.key() == " " {
                        e.prevent_default();
                        picked.set(Some(seq));
                    }
                })
            };
            let sel = current.as_ref().is_some_and(|c| c.seq == r.seq);
            let status_class = match x.status {
                200..=299 => "s2",
                300..=399 => "s3",
                400..=499 => "s4",
                _ => "s5",
            };
            Some(html! {
                <tr key={r.seq} data-exchange={x.id.to_string()} class={classes!("click", sel.then_some("sel"))}
                    onclick={onclick} onkeydown={onkeydown} tabindex="0">
                    <td>{ fmt::clock(r.ts_us, tz) }</td>
                    <td title={via.map(|p| format!("through the http proxy {p}"))}>{ via.unwrap_or("lab") }</td>
                    <td>{ &x.method }</td>
                    <td class="target" title={x.target.clone()}>{ &x.target }</td>
                    <td class={status_class}>{ x.status }</td>
                    <td class="num" title="connection, and the request's number on it">{ format!("#{} · {}", x.conn, x.seq_on_conn) }</td>
                    { num_cell(fmt::duration_us(x.ttfb_us)) }
                    { num_cell(fmt::duration_us(x.total_us)) }
                    { num_cell(fmt::size(x.resp_size)) }
                </tr>
            })
        }
        None => None,
    });

    let exchange = current
        .as_ref()
        .and_then(|r| exchange_of(r).map(|(x, _)| (r.clone(), Box::new(x.clone()))));
    let view = match exchange {
        Some((row, x)) => {
            let replay = {
                let (cmd, id, seq, picked) = (cmd.clone(), x.id, row.event.seq, picked.clone());
                Callback::from(move |_| {
                    // Show the new exchange as soon as it comes.
                    picked.set(None);
                    cmd.run(
                        "http-replay",
                        format!("replaying exchange {id}"),
                        // By the event's seq: the server rebuilds the request from what it
                        // recorded (exchange ids start again when the lab restarts).
                        CommandKind::Replay { seq, target: None },
                    )
                })
            };
            let curl_cmd = curl::command(&x, &host);
            let copy = Callback::from(move |_| browser::copy(&curl_cmd));
            let follow = {
                let picked = picked.clone();
                Callback::from(move |_| picked.set(None))
            };
            html! {
                <div class="exchange">
                    <div class="row-form">
                        <b>{ format!("#{} {} {}", x.id, x.method, x.target) }</b>
                        if let Some(of) = x.replay_of {
                            <span class="muted">{ format!("replay of #{of}") }</span>
                        }
                        <span class="muted">{ format!("{} · {} · event {}", x.peer, fmt::date_time(row.ts_us, tz), row.seq) }</span>
                        <span class="spacer"></span>
                        if picked.is_some() {
                            <button class="small" onclick={follow} title="show each new request as it comes">{"newest"}</button>
                        }
                        <button id="http-copy-curl" class="small" onclick={copy}>{"copy as curl"}</button>
                        <button id="http-replay" class="small primary" onclick={replay}
                            title="send this request again from the lab">{"Replay"}</button>
                    </div>
                    { status_line(&lab, "http-replay") }
                    <pre id="http-curl-v" class="payload curl">{ curl::verbose(&x) }</pre>
                </div>
            }
        }
        None => html! {
            <div class="exchange empty-note">{"Select a request to see the exchange the way curl -v prints it."}</div>
        },
    };

    html! {
        <div class="cols http-cols">
            <div>
                <h3>{ format!("Requests · {} held", tl.http.len()) }</h3>
                { data_table("", COLS, rows.collect(), tl.http.is_empty().then(|| "No request yet.".to_owned())) }
            </div>
            <div>
                <h3>{"Exchange"}</h3>
                { view }
            </div>
        </div>
    }
}

/// The exchange a row tells, and the proxy it went through (none: the lab's own service).
fn exchange_of(r: &Row) -> Option<(&wirelab_shared::HttpExchange, Option<&str>)> {
    match &r.event.kind {
        EventKind::Http(x) => Some((x, None)),
        EventKind::RelayHttp {
            exchange, proxy, ..
        } => Some((exchange, Some(proxy))),
        _ => None,
    }
}
