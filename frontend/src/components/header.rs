//! The header: connection state, the server and its services, the live event rate, and
//! the counters that make holes visible (events received, missed through lag, dropped).

use gloo_timers::callback::Interval;
use yew::prelude::*;

use crate::ctx::use_lab;
use crate::fmt;
use crate::lab::Lab;
use crate::link::ConnStatus;
use crate::rates::Measure;
use crate::services::browser;
use crate::timeline::Timeline;

/// `#conn-state`; counts down while reconnecting.
#[function_component]
pub fn ConnState() -> Html {
    let lab = use_lab();
    let tick = use_force_update();
    let reconnecting = matches!(lab.conn, ConnStatus::Reconnecting { .. });
    use_effect_with(reconnecting, move |on| {
        let interval = on.then(|| Interval::new(250, move || tick.force_update()));
        move || drop(interval)
    });
    let class = match lab.conn {
        ConnStatus::Connected => "conn ok",
        ConnStatus::Connecting => "conn wait",
        ConnStatus::Reconnecting { .. } => "conn bad",
    };
    html! {
        <span class={class} role="status" aria-live="polite">
            <span class="dot" aria-hidden="true"></span>
            <span id="conn-state">{ lab.conn.label(browser::now_ms()) }</span>
            if let Some(ms) = lab.rtt_ms {
                <span class="rtt" title="round trip of a ping over the push channel">
                    { fmt::duration_us((ms * 1000.0) as u64) }
                </span>
            }
        </span>
    }
}

/// The header from the app's stores. (A function the app calls, not a component: it
/// rendered on every change of either store anyway, as the app does.)
pub fn header(lab: &Lab, tl: &Timeline) -> Html {
    let c = &tl.counts;
    let brand_title = lab.hello.as_ref().map_or_else(
        || "wirelab".to_owned(),
        |h| format!("{} {} · protocol v{}", h.server, h.version, h.protocol),
    );
    let services =
        lab.hello.as_ref().map(|h| {
            h.services
            .iter()
            .map(|s| {
                let mode = s.mode.as_deref().map(|m| format!(" · {m}")).unwrap_or_default();
                html! {
                    <span class="svc" title={format!("{} service{mode}", s.name.to_ascii_uppercase())}>
                        <b>{ s.name.to_ascii_uppercase() }</b>{" "}{ &s.addr }
                    </span>
                }
            })
            .collect::<Html>()
        });
    let rate = tl.rates.last_second(Measure::Events);
    let bytes = tl.rates.last_second(Measure::Bytes);
    let dropped = lab.state.counters.events_dropped;
    let missed = c.lagged_missed;
    let holes_title = format!(
        "{} lagged frames; {} sequence numbers never received; {} rows pushed out of the {}-row ring; {} cleared",
        c.lagged_frames, c.holes, c.evicted, tl.cap, c.cleared
    );
    html! {
        <header class="top">
            <span class="brand" title={brand_title}>{"wirelab"}</span>
            <ConnState />
            <span class="services">{ services }</span>
            <span class="spacer"></span>
            <span class="stat" title="events per second (last complete second)">
                <b>{ fmt::compact(rate as f64) }</b>{" ev/s · "}<b>{ fmt::size(bytes) }</b>{"/s"}
            </span>
            <span class="stat" title={format!("events this page received (exact; the timeline keeps the newest {}). The lab has published {} since it started.", tl.cap, lab.state.counters.events)}>
                {"events "}<b id="count-events" data-value={c.received.to_string()}>{ c.received }</b>
            </span>
            <span class={classes!("stat", (missed > 0).then_some("warn"))} title={holes_title}>
                {"lagged "}<b id="count-lagged" data-value={missed.to_string()}>{ missed }</b>
            </span>
            <span class={classes!("stat", (dropped > 0).then_some("warn"))}
                title="events the lab's hub dropped because its intake was full">
                {"dropped "}<b id="count-dropped" data-value={dropped.to_string()}>{ dropped }</b>
            </span>
        </header>
    }
}
