//! The HTTP panel: the seed's Hello World service, its live requests (see
//! `http_requests`), and its connections with the requests each carried.

use yew::prelude::*;

use crate::components::faults_panel::faults_text;
use crate::components::http_requests::HttpRequests;
use crate::components::table::{Col, age_cell, data_table, num_cell, rich};
use crate::components::try_it::{panel_head, use_try_it};
use crate::ctx::{use_commander, use_lab};
use crate::fmt;
use crate::services::browser;

const COLS: &[Col] = &[
    Col::num("conn"),
    Col::text("peer"),
    Col::text("age"),
    Col::num("requests"),
    Col::text("faults").title("the HTTP service's toxics (@http) that apply to it"),
    Col::text("actions"),
];

/// The HTTPS service: its CA (link and fingerprint), and the names broken on purpose
/// (server/src/tls/sites.rs).
fn https_note(addr: &str, fingerprint: &str) -> Html {
    let port = addr.rsplit(':').next().unwrap_or("1443");
    let ca = crate::link::with_token("/api/ca.pem", browser::page_token().as_deref());
    html! {
        <p id="https-note" class="explain">
            { "HTTPS on " }{ addr }{ ": trust the lab's CA " }
            <a id="https-ca" href={ca} download="ca.pem">{ "ca.pem" }</a>
            { " (SHA-256 " }<code id="https-ca-fingerprint">{ fingerprint }</code>
            { ") with curl --cacert, openssl s_client -CAfile, or Chromium's Authorities. Broken on purpose: " }
            <code>{ "curl -v --cacert ca.pem https://NAME.localhost:" }{ port }{ "/" }</code>
            { " for NAME expired, not-yet-valid, wrong-host, self-signed, untrusted-root, incomplete-chain or tls12-only." }
        </p>
    }
}

#[hook]
pub fn use_http_panel() -> Html {
    let lab = use_lab();
    let cmd = use_commander();
    let copied = use_try_it();
    let addr = lab
        .service_addr("http")
        .unwrap_or("127.0.0.1:1337")
        .to_owned();
    let s = &lab.state;
    let c = &s.counters;
    let now = s.ts_us;
    let reqs_open: u64 = s.http.iter().map(|h| h.requests).sum();
    let fault = |id: u64| {
        let cmd = cmd.clone();
        Callback::from(move |_| cmd.aim_fault("@http", format!("conn {id}")))
    };
    let https = lab.service_addr("https").map(str::to_owned);
    let mut commands = vec![
        format!("curl -v http://{addr}/"),
        format!("curl -v http://{addr}/ http://{addr}/"),
    ];
    if let Some(a) = &https {
        let port = a.rsplit(':').next().unwrap_or("1443");
        commands.push(format!("curl -v --cacert ca.pem https://localhost:{port}/"));
        commands.push(format!(
            "openssl s_client -connect {a} -servername localhost -CAfile ca.pem"
        ));
    }
    html! {
        <section class="panel" aria-label="HTTP service">
            { panel_head("HTTP", addr.clone(), &copied, commands) }
            { https.map(|a| https_note(&a, lab.hello.as_ref().map_or("", |h| &h.ca_fingerprint))) }
            <p class="explain">
                { rich("HTTP is <b>built on TCP</b>: a client opens a TCP connection and sends requests on it. Where the TCP service serves <b>per connection</b>, HTTP serves <b>per request</b>: each request gets one response. With <b>keep-alive</b> the connection stays open for the next request, which saves a handshake; the table of connections below shows how many requests each one carried.") }
            </p>
            <HttpRequests />
            <h3>{ format!("Connections · {} open carrying {} requests · {} requests on {} connections since start · {} refused",
                s.http.len(), reqs_open, c.http_requests, c.http_conns, c.http_refused) }</h3>
            { data_table("short", COLS, s.http.iter().map(|h| html! {
                <tr key={h.id} data-http-conn={h.id.to_string()}>
                    { num_cell(fmt::id(h.id)) }
                    <td>{ &h.peer }</td>
                    { age_cell(now, h.since_us) }
                    { num_cell(h.requests.to_string()) }
                    <td data-http-faults={h.id.to_string()}>{ faults_text(&h.faults) }</td>
                    <td class="actions">
                        <button class="small" data-http-fault={h.id.to_string()} onclick={fault(h.id)}
                            title="add a fault to this connection only (the Faults form, TCP tab)">{"fault…"}</button>
                    </td>
                </tr>
            }).collect(), s.http.is_empty().then(|| {
                "No open connection (curl closes its connection when it is done).".to_owned()
            })) }
            <p class="hint">{ format!("Since start: {} in, {} out.", fmt::size(c.http_bytes_in), fmt::size(c.http_bytes_out)) }</p>
        </section>
    }
}
