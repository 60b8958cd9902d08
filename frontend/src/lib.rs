//! # wirelab-frontend: the dashboard
//!
//! A Yew app, compiled to wasm by trunk (`index.html` and `Trunk.toml` at the repository
//! root), that shows everything the lab sees, live, over the `/ws` push channel, and acts
//! on it with the commands of `wirelab-shared`.
//!
//! ## Layout
//! Browser-free logic (plain Rust, unit-tested natively with `cargo test`):
//! - [`deque`]: `ChunkDeque`, a deque in shared chunks, cheap to clone in a reducer.
//! - [`row`]: `Row`, an event prepared once for display (preview, kind, peer, size).
//! - [`filter`]: the timeline filter (protocols, direction, peer, text).
//! - [`timeline`]: the timeline store (`Reducible`): bounded ring, filtered view,
//!   exact counters, rates.
//! - [`lab`]: the lab store (`Reducible`): connection state, `hello`, `state`, pool
//!   figures, command results.
//! - [`route`]: splits each batch of server frames between the two stores.
//! - [`rates`]: per-second events and bytes per protocol over the last 60 s.
//! - [`link`]: connection state labels, reconnect backoff, `/ws` URLs.
//! - [`fmt`]: times to the millisecond, sizes, durations, counts.
//! - [`hexdump`]: hex and ASCII dumps.
//! - [`export`]: JSON Lines and HAR 1.2.
//! - [`curl`]: an HTTP exchange as `curl -v` prints it, and as a `curl` command.
//! - [`wscost`]: WebSocket framing bytes against HTTP polling headers.
//! - [`charts`]: SVG paths for sparklines and the pool chart.
//! - [`faults`]: the "add fault" form's presets and fields, as `toxic_add` commands.
//!
//! Side effects ([`services`]): `socket` (the push channel: reconnect, resume, at most one
//! flush per animation frame, paced by what the last one cost), `history` (`GET /api/events`), `browser` (clock, downloads,
//! clipboard).
//!
//! Components ([`components`], one per file, thin): `app` (stores, socket, contexts,
//! layout), `header` (connection state, services, rate, counters), `rail` (tabs),
//! `charts_strip` and `sparkline` (the last minute per protocol), `timeline_pane`
//! (timeline, history requests), `filter_bar`, `timeline_actions` (follow, clear,
//! exports), `timeline_list` (virtualized, autoscroll), `row_view`, `detail` (payload as
//! text, hex or JSON; replay); the panels `tcp_panel`, `udp_panel`, `http_panel` with
//! `http_requests`, `ws_panel` with `chat_box`, `pool_panel`, `proxies_panel` with
//! `faults_panel`; and small parts: `try_it`,
//! `status_line` (a form's `ack`/`error`), `notices`, `forms` (reading inputs),
//! `send_form` (the TCP, UDP and WebSocket-service send form), `table` (data tables, and
//! static text with markup). `header`, `rail`, `notices`, `status_line`, `try_it`,
//! `filter_bar`, `timeline_actions`, `detail`, `sparkline`, `send_form` and the outer part
//! of `charts_strip` are functions (with a hook for their state where they have some)
//! rather than components: the app, pane or panel renders them with its own stores, and a
//! component's own code costs the wasm some hundreds of bytes gzip each. The five tab
//! panels are hooks that draw them (`use_proxies_panel`, ...), run by one component,
//! the app's `TabPanel`, keyed by its tab.
//! [`ctx`] holds the context types and their hooks.
//!
//! Data flow: `services::socket` parses frames as they come and hands them over at most once
//! per animation frame (less often while each hand-over is costly, see `link::flush_gap_ms`);
//! `route` splits them into timeline inputs and lab actions; the two
//! reducers apply them; components re-render from context. Rows are `Rc<Row>` compared by
//! pointer; the list's row components keep their places (not keyed), so an append
//! re-renders only the places whose row changed, patching text rather than rebuilding.
//!
//! ## Stable hooks for browser tests
//! - `#conn-state`: text is exactly `connecting`, `connected` or `reconnecting in Ns`.
//! - Timeline rows: `.row[data-seq]` (only the visible rows are in the DOM);
//!   `#timeline-list` is the scrolling element; `#jump-new` (the "N new" button) and
//!   `#follow` (pause or resume autoscroll).
//! - Counters: `#count-events` (events received, exact; plain digits, also in
//!   `data-value`), `#count-lagged` (events the server said this page missed),
//!   `#count-shown` (rows passing the filter).
//! - Filters: `#filter-text`, `#filter-peer`, `[data-filter-proto=all|tcp|udp|http|ws|pool|system]`
//!   (a click shows that protocol only, Ctrl/Shift-click adds or removes it;
//!   `aria-pressed` tells the state), `[data-filter-dir=all|in|out]`, `#filter-reset`,
//!   `#clear`.
//! - Tabs: `[data-tab=timeline|tcp|udp|http|ws|pool]`.
//! - Detail pane: `#detail`, `[data-view=text|hex]`, `#detail-payload`.
//! - Exports: `#export-jsonl`, `#export-har`.
//! - TCP: `#tcp-send-target` (`all` or a connection id), `#tcp-send-enc`,
//!   `#tcp-send-input`, `#tcp-send-button`, `[data-close-conn=ID]`, `[data-reset-conn=ID]`,
//!   `#tcp-connect-addr`, `#tcp-connect-button`, rows `[data-conn=ID]`.
//! - UDP: `#udp-send-target` (`all` or a peer address), `#udp-send-enc`,
//!   `#udp-send-input`, `#udp-send-button`, rows `[data-peer=ADDR]`.
//! - HTTP: `[data-exchange=ID]`, `#http-replay`, `#http-copy-curl`, `#http-curl-v`.
//! - WebSocket: `#chat-input`, `#chat-send`, `#chat-log`.
//! - Pool: `#pool-requests`, `#pool-concurrency`, `#pool-max-conns`, `#pool-keep-alive`,
//!   `#pool-no-pool`, `#pool-url`, `#pool-start`, `#pool-cancel`; figures `#pool-in-use`,
//!   `#pool-idle`, `#pool-waiting`, `#pool-done`, `#pool-opened`, `#pool-errors`,
//!   `#pool-p50`, `#pool-p99`, `#pool-state`.
//! - Command results: `.status[data-form=NAME]` next to each form, with class `ok`,
//!   `err` or `pending`.
//! - Performance: after each event flush the socket sets `window.__wirelabFlushes` to
//!   `[count, total_ms, max_ms]` (what flushes cost, hand-over to end of render; the
//!   benchmark's figure 5 reads it).

pub mod charts;
pub mod components;
pub mod ctx;
pub mod curl;

pub mod deque;
pub mod export;
pub mod faults;

pub mod filter;
pub mod fmt;
pub mod hexdump;
pub mod lab;
pub mod link;
pub mod rates;
pub mod relay_row;
pub mod route;
pub mod row;
pub mod services;
pub mod timeline;
pub mod tls_text;
pub mod wscost;

/// Starts the app in the page's `<body>`.
pub fn start() {
    yew::Renderer::<components::app::App>::new().render();
}
