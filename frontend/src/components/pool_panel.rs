//! The connection-pool lab (the seed's `http.Agent`): a form for a run, its live figures
//! (pushed by the server at least 5 times a second), a chart of connections in use and
//! requests waiting, and at the end the totals and the reuse ratio.

use wirelab_shared::{CommandKind, PoolSpec, PoolState};
use yew::prelude::*;

use crate::charts::{nice_max, step_path};
use crate::components::forms::{checked, node_checked, node_value, on_submit, set_node_value};
use crate::components::status_line::status_line;
use crate::components::table::{fig, rich};
use crate::components::try_it::{panel_head, use_try_it};
use crate::ctx::{use_commander, use_lab};
use crate::fmt;

const CHART_W: f64 = 640.0;
const CHART_H: f64 = 150.0;

#[hook]
pub fn use_pool_panel() -> Html {
    let lab = use_lab();
    let copied = use_try_it();
    let cmd = use_commander();
    let http = lab
        .service_addr("http")
        .unwrap_or("127.0.0.1:1337")
        .to_owned();

    // The fields are not bound to state: Yew would put a bound value back while the user
    // is halfway through typing a new number. The form is read when it is sent.
    let no_pool = use_state_eq(bool::default);
    let on_no_pool = {
        let no_pool = no_pool.clone();
        Callback::from(move |e: Event| no_pool.set(checked(&e)))
    };
    let refs = [
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
    ];
    {
        // The defaults, put in once.
        let refs = refs.clone();
        use_effect_with((), move |_| {
            let d = PoolSpec::default();
            set_node_value(&refs[0], &d.requests.to_string());
            set_node_value(&refs[1], &d.concurrency.to_string());
            set_node_value(&refs[2], &d.max_conns.to_string());
        });
    }
    let start = {
        let (cmd, refs) = (cmd.clone(), refs.clone());
        on_submit(move || {
            // What is on screen is the truth (a test driver's "clear" fires no input event).
            let [requests, concurrency, max_conns, keep_alive, no_pool, url] = &refs;
            let num = |r: &NodeRef, name: &str| {
                node_value(r)
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{name} must be a whole number."))
            };
            let read = || -> Result<PoolSpec, String> {
                Ok(PoolSpec {
                    requests: num(requests, "Requests")?,
                    concurrency: num(concurrency, "Concurrency")?,
                    max_conns: num(max_conns, "Max connections")?,
                    keep_alive: node_checked(keep_alive),
                    no_pool: node_checked(no_pool),
                    url: node_value(url).trim().to_owned(),
                })
            };
            let s = match read() {
                Ok(s) => s,
                Err(e) => return cmd.refuse("pool", e),
            };
            if !(1..=10_000).contains(&s.requests) {
                return cmd.refuse("pool", "Requests must be between 1 and 10,000.");
            }
            if s.concurrency == 0 || (!s.no_pool && s.max_conns == 0) {
                return cmd.refuse("pool", "Concurrency and connections must be at least 1.");
            }
            let what = format!(
                "starting {} requests at concurrency {}",
                s.requests, s.concurrency
            );
            cmd.run("pool", what, CommandKind::PoolStart { spec: s });
        })
    };
    let cancel = {
        let cmd = cmd.clone();
        Callback::from(move |_| cmd.run("pool", "cancelling the run", CommandKind::PoolCancel))
    };

    let pool = lab.pool.clone();
    let running = pool.as_ref().is_some_and(|p| p.state == PoolState::Running);
    let figures = pool.as_ref().map(|p| {
        let state = match p.state {
            PoolState::Running => "running",
            PoolState::Done => "done",
            PoolState::Cancelled => "cancelled",
            PoolState::Failed => "failed",
        };
        let total = p.spec.requests.max(1);
        let pct = p.done as f64 / f64::from(total) * 100.0;
        html! {
            <>
                <div class="row-form">
                    <b>{ format!("Run #{}", p.run) }</b>
                    <span id="pool-state" class={classes!("pill", state)}>{ state }</span>
                    <span class="muted">{ format!(
                        "{} requests × {} at once · {} · {}",
                        p.spec.requests, p.spec.concurrency,
                        if p.spec.no_pool { "no pool".to_owned() } else { format!("pool of {}", p.spec.max_conns) },
                        if p.spec.keep_alive && !p.spec.no_pool { "keep-alive" } else { "no keep-alive" }
                    ) }</span>
                    <span class="muted">{ fmt::duration_us(p.elapsed_us) }</span>
                </div>
                <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax={total.to_string()}
                    aria-valuenow={p.done.to_string()}><span style={format!("width:{}%", fmt::fixed(pct, 1))}></span></div>
                if let Some(e) = &p.error {
                    <div class="status err">{ format!("✗ {e}") }</div>
                }
                <div class="figs">
                    { fig("pool-in-use", p.in_use.to_string(), "in use (sockets)") }
                    { fig("pool-idle", p.idle.to_string(), "idle") }
                    { fig("pool-waiting", p.waiting.to_string(), "waiting (requests)") }
                    { fig("pool-opened", fmt::count(p.opened), "connections opened") }
                    { fig("pool-done", fmt::count(p.done), "requests done") }
                    { fig("pool-errors", fmt::count(p.errors), "errors") }
                    { fig("pool-p50", fmt::duration_us(p.p50_us), "latency p50") }
                    { fig("pool-p99", fmt::duration_us(p.p99_us), "latency p99") }
                </div>
                if !running {
                    <p class="totals" id="pool-totals">{ format!(
                        "Totals: {} requests answered, {} failed, over {} connections in {}: reuse ratio {} requests per connection{}.",
                        fmt::count(p.done), fmt::count(p.errors), fmt::count(p.opened), fmt::duration_us(p.elapsed_us),
                        fmt::fixed(p.reuse_ratio(), 1),
                        if p.reuse_ratio() <= 1.05 && p.done > 0 { " (no reuse: a new connection, and a handshake, per request)" } else { "" }
                    ) }<span id="pool-reuse" hidden=true>{ fmt::fixed(p.reuse_ratio(), 2) }</span></p>
                }
            </>
        }
    });

    // The chart: in use and waiting over the run.
    let series = &lab.pool_series;
    let x_max = series.last().map_or(1.0, |p| p.elapsed_us as f64);
    let cap = pool.as_ref().map_or(1, |p| p.spec.max_conns.max(1));
    let y_top = series
        .iter()
        .map(|p| p.in_use.max(p.waiting).max(p.idle))
        .max()
        .unwrap_or(0)
        .max(cap);
    let y_max = nice_max(f64::from(y_top));
    let line = |f: fn(&crate::lab::PoolPoint) -> u32| {
        let pts: Vec<(f64, f64)> = series
            .iter()
            .map(|p| (p.elapsed_us as f64, f64::from(f(p))))
            .collect();
        step_path(&pts, CHART_W, CHART_H, x_max, y_max)
    };
    let n = |v: f64| fmt::short(v, 1);
    let chart = (series.len() >= 2).then(|| html! {
        <figure class="pool-chart">
            <svg viewBox={format!("-34 -8 {} {}", n(CHART_W + 44.0), n(CHART_H + 26.0))} role="img"
                aria-label="connections in use and requests waiting over the run">
                <line class="axis" x1="0" y1={n(CHART_H)} x2={n(CHART_W)} y2={n(CHART_H)} />
                <line class="grid" x1="0" y1="0" x2={n(CHART_W)} y2="0" />
                <line class="grid" x1="0" y1={n(CHART_H / 2.0)} x2={n(CHART_W)} y2={n(CHART_H / 2.0)} />
                <text class="tick" x="-6" y="4" text-anchor="end">{ fmt::short(y_max, 2) }</text>
                <text class="tick" x="-6" y={n(CHART_H / 2.0 + 4.0)} text-anchor="end">{ fmt::short(y_max / 2.0, 2) }</text>
                <text class="tick" x="-6" y={n(CHART_H + 4.0)} text-anchor="end">{"0"}</text>
                <text class="tick" x={n(CHART_W)} y={n(CHART_H + 16.0)} text-anchor="end">{ fmt::duration_us(x_max as u64) }</text>
                if !pool.as_ref().is_some_and(|p| p.spec.no_pool) {
                    <line class="cap" x1="0" x2={n(CHART_W)}
                        y1={n(CHART_H - f64::from(cap) / y_max * CHART_H)}
                        y2={n(CHART_H - f64::from(cap) / y_max * CHART_H)} />
                }
                <path class="s-idle" d={line(|p| p.idle)} />
                <path class="s-waiting" d={line(|p| p.waiting)} />
                <path class="s-in-use" d={line(|p| p.in_use)} />
            </svg>
            <figcaption>
                <span class="key in-use"></span>{"in use "}
                <span class="key waiting"></span>{"waiting "}
                <span class="key idle"></span>{"idle "}
                <span class="key cap"></span>{"pool limit"}
            </figcaption>
        </figure>
    });

    html! {
        <section class="panel" aria-label="connection-pool lab">
            { panel_head("Pool lab", format!("target http://{http}/_/delay/50 unless set"), &copied, vec![format!("curl -v http://{http}/_/delay/50")]) }
            <p class="explain">
                { rich("Node's <b>http.Agent</b> keeps a <b>pool</b> of TCP connections and reuses them for later requests: <b>sockets</b> counts the connections in use, <b>requests</b> counts requests waiting for one, and <b>maxSockets</b> caps the pool. <code>agent: false</code> leaves the pool behind: a new connection (and a handshake) per request. Run the same load both ways and compare the connections opened and the latency.") }
            </p>
            <form onsubmit={start} aria-label="pool run">
                <div class="row-form pool-form">
                    <label class="field">{"requests"}<input id="pool-requests" ref={refs[0].clone()} type="number" min="1" max="10000"
                        /></label>
                    <label class="field">{"concurrency"}<input id="pool-concurrency" ref={refs[1].clone()} type="number" min="1"
                        /></label>
                    <label class="field">{"max connections"}<input id="pool-max-conns" ref={refs[2].clone()} type="number" min="1"
                        disabled={*no_pool} /></label>
                    <label class="check"><input id="pool-keep-alive" ref={refs[3].clone()} type="checkbox" checked=true
                        disabled={*no_pool} />{"keep-alive"}</label>
                    <label class="check" title="agent: false"><input id="pool-no-pool" ref={refs[4].clone()} type="checkbox" checked={*no_pool}
                        onchange={on_no_pool} />{"no pool"}</label>
                    <label class="field grow">{"target URL (empty: the lab's own service)"}<input id="pool-url" ref={refs[5].clone()} type="text"
                        placeholder={format!("http://{http}/_/delay/50")} /></label>
                    <button id="pool-start" class="primary" type="submit" disabled={running}>{"Start"}</button>
                    <button id="pool-cancel" type="button" class="danger" onclick={cancel} disabled={!running}>{"Cancel"}</button>
                </div>
                { status_line(&lab, "pool") }
            </form>
            <div class="pool-live">
                <div>{ figures }</div>
                if let Some(chart) = chart {
                    { chart }
                } else if pool.is_some() {
                    <p class="hint">{"The chart of connections in use and requests waiting is drawn live while a run goes on."}</p>
                }
            </div>
            if pool.is_none() {
                <p class="hint">{"No run yet. Try 200 requests at concurrency 20 through 5 connections with keep-alive, then the same with no pool."}</p>
            }
        </section>
    }
}
