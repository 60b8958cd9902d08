//! Live charts of the last 60 s: events/s (line) and bytes/s (area) per protocol. They
//! chart complete seconds only, so they re-render once a second, not with every batch.

use std::rc::Rc;

use wirelab_shared::Protocol;
use yew::prelude::*;

use crate::components::sparkline::sparkline;
use crate::fmt;
use crate::rates::{Measure, RateWindow};
use crate::timeline::Timeline;

/// The timeline's rates, handed on only when a second has passed (a function the app calls
/// on its renders, which follow the timeline's; `Charts` skips all but one a second).
pub fn charts_strip(tl: &Timeline) -> Html {
    html! { <Charts second={tl.rates.newest()} rates={Rc::new(tl.rates.clone())} /> }
}

#[derive(Properties)]
struct ChartsProps {
    /// What the props compare: the charts show complete seconds only.
    second: u64,
    rates: Rc<RateWindow>,
}

impl PartialEq for ChartsProps {
    fn eq(&self, other: &Self) -> bool {
        self.second == other.second
    }
}

#[function_component]
fn Charts(props: &ChartsProps) -> Html {
    let rates = &props.rates;
    let card = |p: Option<Protocol>| {
        let ev: Vec<f64> = rates
            .series(p, Measure::Events)
            .into_iter()
            .map(|v| v as f64)
            .collect();
        let by: Vec<f64> = rates
            .series(p, Measure::Bytes)
            .into_iter()
            .map(|v| v as f64)
            .collect();
        let (now_ev, now_by) = (
            ev.last().copied().unwrap_or(0.0),
            by.last().copied().unwrap_or(0.0),
        );
        let peak = ev.iter().copied().fold(0.0, f64::max);
        let total: f64 = ev.iter().sum();
        let (name, class) = match p {
            Some(p) => (p.as_str().to_ascii_uppercase(), p.as_str()),
            None => ("ALL".to_owned(), "all"),
        };
        let label = format!(
            "{name}: events per second over the last minute, peak {}, {} in all",
            fmt::short(peak, 1),
            fmt::short(total, 1)
        );
        html! {
            <div class="chart" data-chart={class}>
                <div class="chart-head">
                    <span class={classes!("chart-name", class)}>{ name }</span>
                    <span class="chart-now" title="last complete second">
                        <b>{ fmt::compact(now_ev) }</b>{"/s · "}{ fmt::size(now_by as u64) }{"/s"}
                    </span>
                </div>
                { sparkline(&ev, Some(&by), class, label) }
                <div class="chart-foot">{ format!("peak {}/s · {} in 60 s", fmt::compact(peak), fmt::compact(total)) }</div>
            </div>
        }
    };
    html! {
        <div class="charts" aria-label="events and bytes per second, last 60 s">
            { card(None) }
            { for [Protocol::Tcp, Protocol::Udp, Protocol::Http, Protocol::Ws].into_iter().map(|p| card(Some(p))) }
        </div>
    }
}
