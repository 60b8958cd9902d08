//! `suite`: every figure of issue 8, side by side with its anchor, into BENCHMARKS.md.
//!
//! - [`fanout`]: figure 2, the UDP to WebSocket fan-out ladders.
//! - [`relay`]: figure 5, the TCP relay's throughput (iperf3) against socat.
//! - [`relay_http`]: figure 6, the HTTP relay (wrk, fixed-rate latency) against mitmdump.
//! - [`faults`]: figure 7, how accurate the lab's toxics are (latency, bandwidth, loss,
//!   duplication, reorder).
//! - [`https`]: figure 8, HTTPS Hello World (keep-alive, and new handshakes per second)
//!   against Node's `https.createServer`.
//! - [`procs`]: starting servers (core 0) and load generators (core 1), wrk, `/metrics`.
//! - [`report`]: medians, bars, the Markdown.
//!
//! Servers are started afresh for each run, on ports in the 310xx range (below the ephemeral ports) so that a lab
//! running on the default ports is left alone. Every loop here is bounded.

mod dashboard;
mod fanout;
mod faults;
mod https;
mod procs;
mod relay;
mod relay_http;
mod report;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use procs::{Held, Server, http_get, load, metric, wrk};
use report::{Figure, Report, Stat};

use crate::util::rss_kib;

// Below the kernel's ephemeral range (32768-60999 by default): thousands of client
// connections would otherwise take these as their own source ports, and a server could not
// bind them while those sit in TIME-WAIT.
const DASH: u16 = 31080;
const HTTP: u16 = 31081;
const TCP: u16 = 31082;
const UDP: u16 = 31083;
const NODE_HELLO: u16 = 31090;
const BARE_AXUM: u16 = 31091;
const RELAY_WS: u16 = 31092;
const RELAY_UDP: u16 = 31093;
const IPERF: u16 = 31094;

/// Where everything is, and how hard to try.
struct Ctx {
    root: PathBuf,
    wirelab: PathBuf,
    bench: PathBuf,
    bare: PathBuf,
    anchors: PathBuf,
    runs: usize,
    quick: bool,
}

/// The ports a lab listens on.
#[derive(Clone, Copy)]
struct LabPorts {
    dash: u16,
    http: u16,
    tcp: u16,
    udp: u16,
}

impl LabPorts {
    /// The suite's own ports.
    fn suite() -> LabPorts {
        LabPorts {
            dash: DASH,
            http: HTTP,
            tcp: TCP,
            udp: UDP,
        }
    }
}

impl Ctx {
    /// A release wirelab on the suite's ports.
    fn wirelab(&self) -> Result<Server, String> {
        self.wirelab_on(LabPorts::suite())
    }

    /// A release wirelab on `ports`, with the flags every figure uses, pinned to core 0.
    fn wirelab_on(&self, ports: LabPorts) -> Result<Server, String> {
        self.wirelab_with(ports, &[])
    }

    /// [`Ctx::wirelab_on`] with `extra` flags after the common ones.
    fn wirelab_with(&self, ports: LabPorts, extra: &[&str]) -> Result<Server, String> {
        self.wirelab_api(ports, None, extra)
    }

    /// [`Ctx::wirelab_with`] with toxiproxy's API on `127.0.0.1:<api>` (`None`: off, as
    /// every other figure has it; clap takes `--toxiproxy-api` once only).
    fn wirelab_api(
        &self,
        ports: LabPorts,
        api: Option<u16>,
        extra: &[&str],
    ) -> Result<Server, String> {
        let w = self.wirelab.to_string_lossy();
        let a = |p: u16| format!("127.0.0.1:{p}");
        let (d, h, t, u) = (a(ports.dash), a(ports.http), a(ports.tcp), a(ports.udp));
        let api = api.map_or_else(|| "off".to_owned(), a);
        let mut args = vec![
            &w,
            "--ephemeral",
            "--dashboard",
            &d,
            "--http",
            &h,
            "--tcp",
            &t,
            "--udp",
            &u,
            "--tcp-mode",
            "sink",
            "--udp-mode",
            "sink",
            // Not measured, and its default port must not clash with another suite.
            "--ws-service",
            "off",
            "--tls-tcp",
            "off",
            "--max-ws-clients",
            "6000",
            // Off, or on a suite port: a toxiproxy (or a lab) on toxiproxy's own port
            // must not matter.
            "--toxiproxy-api",
            &api,
        ];
        // Off unless the figure asks for it (clap takes `--https` once only): its default
        // port, like the WebSocket service's, must not clash with a lab on the defaults.
        if !extra.contains(&"--https") {
            args.extend(["--https", "off"]);
        }
        args.extend_from_slice(extra);
        Server::start(
            &args,
            &[("RUST_LOG", "warn".to_owned())],
            &self.root,
            ports.dash,
        )
    }

    fn relay(&self, batch_ms: u32) -> Result<Server, String> {
        Server::start(
            &["node", "node-relay.js"],
            &[
                ("UDP_PORT", RELAY_UDP.to_string()),
                ("WS_PORT", RELAY_WS.to_string()),
                ("BATCH_MS", batch_ms.to_string()),
            ],
            &self.anchors,
            RELAY_WS,
        )
    }

    fn bench_args(&self, args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// The suite's parts, for `--only`.
const PARTS: [&str; 9] = [
    "http",
    "fanout",
    "idle",
    "tcp",
    "relay",
    "relay-http",
    "faults",
    "https",
    "dashboard",
];

/// `suite`'s flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where to write the report, under --root.
    #[arg(long, value_name = "FILE", default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Runs of each figure (default 3, or 1 with --quick).
    #[arg(long, value_name = "N")]
    runs: Option<usize>,
    /// Shorter runs, one of each, for a first look.
    #[arg(long)]
    quick: bool,
    /// Run the servers and load generators under a realtime policy.
    #[arg(long)]
    rt: bool,
    /// Only these parts, comma-separated.
    #[arg(long, value_name = "PARTS", value_delimiter = ',', value_parser = PARTS)]
    only: Option<Vec<String>>,
    /// Where the release binaries are, under --root.
    #[arg(long, value_name = "DIR", default_value = "target/release")]
    bin_dir: PathBuf,
    /// The repository's root.
    #[arg(long, value_name = "DIR", default_value = ".")]
    root: PathBuf,
    /// The build profile to name in the report.
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "release (fat LTO, codegen-units 1)"
    )]
    profile: String,
    /// Where the dashboard runs write the renderer's CPU profile of the flood (and of the
    /// page's load, to FILE.load): `.cpuprofile` JSON for Chromium's DevTools.
    #[arg(long, value_name = "FILE")]
    dashboard_profile: Option<String>,
}

pub(crate) fn main(args: Args) -> Result<(), String> {
    let root = args.root.clone();
    let bins = root.join(&args.bin_dir);
    let quick = args.quick;
    let ctx = Ctx {
        wirelab: bins.join("wirelab"),
        bench: bins.join("wirelab-bench"),
        bare: bins.join("bare-axum"),
        anchors: root.join("target/anchors"),
        runs: args.runs.unwrap_or(if quick { 1 } else { 3 }),
        quick,
        root: root.clone(),
    };
    for p in [&ctx.wirelab, &ctx.bench, &ctx.bare] {
        if !p.exists() {
            return Err(format!(
                "{} is missing: build it first (cargo xtask bench does)",
                p.display()
            ));
        }
    }
    if !ctx.anchors.join("node_modules/ws").exists() {
        return Err(format!(
            "{}: run npm ci there first (cargo xtask bench does)",
            ctx.anchors.display()
        ));
    }
    let want = |part: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|p| p == part))
    };
    let started = Instant::now();
    let mut report = Report::default();
    let load_before = loadavg();
    report.machine = machine(&args.profile);
    procs::set_realtime(args.rt);
    report
        .machine
        .push(("scheduling".into(), procs::scheduling()));

    type Step = fn(&Ctx, &mut Report) -> Result<(), String>;
    let steps: [(&str, Step); 8] = [
        ("http", http),
        ("fanout", fanout::fanout),
        ("idle", idle),
        ("tcp", tcp),
        ("relay", relay::relay),
        ("relay-http", relay_http::relay_http),
        ("faults", faults::faults),
        ("https", https::https),
    ];
    for (name, step) in steps {
        if want(name) {
            eprintln!("[{:>5.0}s] {name}", started.elapsed().as_secs_f64());
            if let Err(e) = step(&ctx, &mut report) {
                report.failures.push(format!("{name}: {e}"));
            }
        }
    }
    if want("dashboard") {
        dashboard::dashboard(&ctx, args.dashboard_profile.as_deref(), &mut report);
    }
    report.machine.push((
        "load average (1 min) before / after".into(),
        format!(
            "{load_before} / {} (2 cores; others may have been compiling)",
            loadavg()
        ),
    ));
    report.machine.push((
        "suite took".into(),
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    ));
    let out = root.join(&args.out);
    let md = report.markdown("cargo xtask bench");
    std::fs::write(&out, &md).map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!("{md}");
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "not installed".into())
}

fn machine(profile: &str) -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    vec![
        ("CPU".into(), format!("{cpu}, {cores} cores")),
        ("kernel".into(), first_line("uname", &["-sr"])),
        ("rustc".into(), first_line("rustc", &["-V"])),
        ("node".into(), first_line("node", &["--version"])),
        ("wrk".into(), first_line("wrk", &["-v"])),
        ("iperf3".into(), first_line("iperf3", &["--version"])),
        ("wirelab commit".into(), first_line("git", &["rev-parse", "--short", "HEAD"])),
        ("profile".into(), profile.to_owned()),
        ("wirelab flags".into(), "`--ephemeral --tcp-mode sink --udp-mode sink --ws-service off --max-ws-clients 6000 --toxiproxy-api off --https off` (figure 8: `--https` on a suite port), other settings default".into()),
    ]
}

/// Figure 1: wrk against Node's Hello World, a bare axum, and wirelab with a dashboard.
fn http(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    let secs = if ctx.quick { 3 } else { 5 };
    let mut fig = Figure::new(
        "1. HTTP Hello World (`wrk -t1 -c64`)",
        &[
            "server",
            "req/s",
            "p50 ms",
            "p99 ms",
            "req/s vs Node",
            "req/s vs bare axum",
        ],
    );
    let node_port = NODE_HELLO.to_string();
    let node = {
        let s = Server::start(
            &["node", "seed-hello.js"],
            &[("PORT", node_port)],
            &ctx.anchors,
            NODE_HELLO,
        )?;
        http_runs(
            ctx,
            report,
            "Node seed-hello.js",
            s,
            NODE_HELLO,
            secs,
            false,
        )?
    };
    let bare = {
        let b = ctx.bare.to_string_lossy();
        let port = BARE_AXUM.to_string();
        let s = Server::start(&[&b, &port], &[], &ctx.root, BARE_AXUM)?;
        http_runs(ctx, report, "bare axum", s, BARE_AXUM, secs, false)?
    };
    let wl = http_runs(ctx, report, "wirelab", ctx.wirelab()?, HTTP, secs, true)?;
    for (name, r) in [
        ("Node `seed-hello.js`", &node),
        ("bare axum 0.8 (same profile and runtime as wirelab)", &bare),
        ("wirelab, 1 dashboard connected", &wl),
    ] {
        fig.row(vec![
            name.to_owned(),
            r.rps.show(0),
            r.p50.show(3),
            r.p99.show(3),
            format!("{:.2}x", r.rps.median / node.rps.median),
            format!("{:.2}x", r.rps.median / bare.rps.median),
        ]);
    }
    fig.notes.push(format!("{} runs of {secs} s each after a 1 s warm-up; wrk checks every answer is 2xx (none failed unless listed below); wirelab's own request counter must match wrk's count (within the 64 in flight when wrk stops).", ctx.runs));
    fig.notes.extend(wl.notes.iter().cloned());
    let ratio = wl.rps.median / node.rps.median;
    report.bar(
        "HTTP: ≥ 2.0x Node req/s, p99 no worse",
        Some(ratio >= 2.0 && wl.p99.median <= node.p99.median),
        format!(
            "{ratio:.2}x; p99 {:.2} ms vs Node {:.2} ms",
            wl.p99.median, node.p99.median
        ),
    );
    let vs_bare = wl.rps.median / bare.rps.median;
    report.bar(
        "HTTP: ≥ 0.9x bare axum req/s (inspection costs ≤ 10%)",
        Some(vs_bare >= 0.9),
        format!(
            "{vs_bare:.2}x ({:.0} vs {:.0} req/s)",
            wl.rps.median, bare.rps.median
        ),
    );
    report.figures.push(fig);
    Ok(())
}

struct HttpRuns {
    rps: Stat,
    p50: Stat,
    p99: Stat,
    notes: Vec<String>,
}

fn http_runs(
    ctx: &Ctx,
    report: &mut Report,
    name: &str,
    server: Server,
    port: u16,
    secs: u32,
    wirelab: bool,
) -> Result<HttpRuns, String> {
    let (status, body) = http_get(port, "/")?;
    if status != 200 || body != "Hello World\n" {
        return Err(format!(
            "{name} answered {status} {body:?}, not 200 \"Hello World\\n\""
        ));
    }
    let dash = if wirelab {
        let url = format!("ws://127.0.0.1:{DASH}/ws");
        Some(
            Held::start(
                &ctx.bench,
                &ctx.bench_args(&["dash", "--ws", &url]),
                Duration::from_secs(10),
            )?
            .0,
        )
    } else {
        None
    };
    let counter = "wirelab_requests_total{service=\"http\"}";
    wrk(port, 1)?;
    let (mut rps, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ctx.runs {
        let before = if wirelab { metric(DASH, counter)? } else { 0 };
        let w = wrk(port, secs)?;
        if w.errors > 0 {
            report.failures.push(format!(
                "http {name} run {i}: {} errors or non-2xx answers",
                w.errors
            ));
        }
        if wirelab {
            std::thread::sleep(Duration::from_millis(200));
            let served = metric(DASH, counter)? - before;
            if served < w.requests || served > w.requests + 64 {
                report.failures.push(format!(
                    "http {name} run {i}: wirelab counted {served} requests, wrk {}",
                    w.requests
                ));
            }
        }
        rps.push(w.rps);
        p50.push(w.p50_ms);
        p99.push(w.p99_ms);
    }
    let mut notes = Vec::new();
    if let Some(dash) = dash {
        let r = dash.finish()?;
        let get = |k: &str| r.get(k).cloned().unwrap_or_default();
        notes.push(format!(
            "wirelab's dashboard client read {} frames ({} MB) holding {} events; {} events reported missed (`lagged`).",
            get("frames"),
            get("bytes").parse::<f64>().unwrap_or(0.0) as u64 / 1_000_000,
            get("events"),
            get("missed")
        ));
    }
    drop(server);
    Ok(HttpRuns {
        rps: Stat::of(&rps),
        p50: Stat::of(&p50),
        p99: Stat::of(&p99),
        notes,
    })
}

/// The servers of figure 2.
#[derive(Clone, Copy, PartialEq)]
enum Relay {
    Node(u32),
    Wirelab,
}

impl Relay {
    fn name(self) -> String {
        match self {
            Relay::Node(b) => format!("Node relay, BATCH_MS={b}"),
            Relay::Wirelab => "wirelab".to_owned(),
        }
    }
}

/// Figure 3: memory per idle WebSocket client.
fn idle(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    let n: usize = if ctx.quick { 1000 } else { 5000 };
    let mut fig = Figure::new(
        &format!("3. Memory per idle WebSocket client ({n} clients)"),
        &[
            "server",
            "KiB per client",
            "RSS with none (MiB)",
            "RSS with N (MiB)",
        ],
    );
    let mut per = Vec::new();
    for relay in [Relay::Node(0), Relay::Wirelab] {
        let (mut kib, mut r0, mut r1) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..ctx.runs {
            let server = match relay {
                Relay::Node(b) => ctx.relay(b)?,
                Relay::Wirelab => ctx.wirelab()?,
            };
            let url = match relay {
                Relay::Node(_) => format!("ws://127.0.0.1:{RELAY_WS}/"),
                Relay::Wirelab => format!("ws://127.0.0.1:{DASH}/ws"),
            };
            std::thread::sleep(Duration::from_millis(500));
            let pid = server.pid();
            let before = rss_kib(pid, "VmRSS").ok_or("no RSS")?;
            let ns = n.to_string();
            let (held, ready) = Held::start(
                &ctx.bench,
                &ctx.bench_args(&["ws-idle", "--ws", &url, "--clients", &ns, "--hold", "120"]),
                Duration::from_secs(90),
            )?;
            if !ready.contains(&format!("connected={n} ")) {
                report
                    .failures
                    .push(format!("idle {} run {i}: {ready}", relay.name()));
            }
            std::thread::sleep(Duration::from_secs(2));
            let after = rss_kib(pid, "VmRSS").ok_or("no RSS")?;
            let r = held.finish()?;
            if r.get("still_open").map(String::as_str) != Some(ns.as_str()) {
                report.failures.push(format!(
                    "idle {} run {i}: only {:?} clients still open at the end",
                    relay.name(),
                    r.get("still_open")
                ));
            }
            drop(server);
            kib.push(after.saturating_sub(before) as f64 / n as f64);
            r0.push(before as f64 / 1024.0);
            r1.push(after as f64 / 1024.0);
        }
        let k = Stat::of(&kib);
        fig.row(vec![
            relay.name(),
            k.show(2),
            Stat::of(&r0).show(1),
            Stat::of(&r1).show(1),
        ]);
        per.push(k.median);
    }
    fig.notes.push("(RSS with N clients, 2 s after the last connected, minus RSS before the first) / N; VmRSS from /proc/PID/status. The clients read (and drop) whatever the server pushes.".into());
    let (node, wl) = (per[0], per[1]);
    report.bar(
        "Memory: ≤ 8 KiB per idle WebSocket client, below Node",
        Some(wl <= 8.0 && wl < node),
        format!("wirelab {wl:.2} KiB vs Node {node:.2} KiB"),
    );
    report.figures.push(fig);
    Ok(())
}

/// Figure 4: one sender into the TCP service, against iperf3 on the same loopback.
fn tcp(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    let secs = if ctx.quick { 2 } else { 3 };
    let mut fig = Figure::new(
        "4. TCP ingest: one sender, as fast as it can",
        &[
            "server",
            "MB/s",
            "vs iperf3",
            "server peak RSS MiB",
            "RSS growth MiB",
        ],
    );
    let mut iperf = Vec::new();
    if procs_has("iperf3") {
        for _ in 0..ctx.runs {
            let port = IPERF.to_string();
            let server = Server::start(&["iperf3", "-s", "-p", &port], &[], &ctx.root, IPERF)?;
            let out = procs::scheduled(procs::LOAD_CORE)
                .args([
                    "iperf3",
                    "-c",
                    "127.0.0.1",
                    "-J",
                    "-p",
                    &port,
                    "-t",
                    &secs.to_string(),
                ])
                .output()
                .map_err(|e| format!("iperf3: {e}"))?;
            drop(server);
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).map_err(|e| format!("iperf3 output: {e}"))?;
            let bps = v
                .pointer("/end/sum_received/bits_per_second")
                .and_then(|b| b.as_f64())
                .ok_or("iperf3: no sum_received")?;
            iperf.push(bps / 8.0 / 1e6);
        }
    }
    let ip = Stat::of(&iperf);
    if ip.n > 0 {
        fig.row(vec![
            "iperf3 (the ceiling)".into(),
            ip.show(0),
            "1.00x".into(),
            String::new(),
            String::new(),
        ]);
    }
    let (mut mbs, mut peak, mut growth, mut dash_notes, mut bounded, mut kept_up) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), true, true);
    for i in 0..ctx.runs {
        let server = ctx.wirelab()?;
        let pid = server.pid();
        let url = format!("ws://127.0.0.1:{DASH}/ws");
        let (dash, _) = Held::start(
            &ctx.bench,
            &ctx.bench_args(&["dash", "--ws", &url]),
            Duration::from_secs(10),
        )?;
        std::thread::sleep(Duration::from_millis(300));
        let before = rss_kib(pid, "VmRSS").unwrap_or(0);
        let addr = format!("127.0.0.1:{TCP}");
        let r = load(
            &ctx.bench,
            &ctx.bench_args(&["tcp-ingest", "--tcp", &addr, "--secs", &secs.to_string()]),
            Duration::from_secs(60),
        )?;
        let sent: u64 = r.get("bytes").and_then(|b| b.parse().ok()).unwrap_or(0);
        let series = "wirelab_bytes_in_total{service=\"tcp\"}";
        let until = Instant::now() + Duration::from_secs(5);
        let mut counted = metric(DASH, series)?;
        while counted != sent && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
            counted = metric(DASH, series)?;
        }
        if counted != sent {
            report.failures.push(format!(
                "tcp run {i}: sent {sent} bytes, wirelab counted {counted}"
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
        let hwm = rss_kib(pid, "VmHWM").unwrap_or(0);
        let d = dash.finish()?;
        drop(server);
        let g = |k: &str| d.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if g("missed") > 0 {
            kept_up = false;
        }
        dash_notes.push(format!("run {i}: {sent} bytes sent = {counted} counted; the dashboard got {} frames, {} `tcp_data` events, {} missed", g("frames"), g("tcp_data_events"), g("missed")));
        let grew = hwm.saturating_sub(before) as f64 / 1024.0;
        if grew > 64.0 {
            bounded = false;
        }
        mbs.push(
            r.get("mb_per_s")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
        );
        peak.push(hwm as f64 / 1024.0);
        growth.push(grew);
    }
    let m = Stat::of(&mbs);
    fig.row(vec![
        "wirelab (sink mode, 1 dashboard connected)".into(),
        m.show(0),
        if ip.n > 0 {
            format!("{:.2}x", m.median / ip.median)
        } else {
            "—".into()
        },
        Stat::of(&peak).show(1),
        Stat::of(&growth).show(1),
    ]);
    fig.notes.push(format!("{secs} s per run, 256 KiB writes; the server's `wirelab_bytes_in_total{{service=\"tcp\"}}` must equal the bytes sent. RSS growth = peak (VmHWM) minus RSS before the sender; bounded means ≤ 64 MiB."));
    fig.notes.extend(dash_notes);
    report.bar(
        "TCP ingest: ≥ 1 GB/s, memory bounded, dashboard keeping up",
        Some(m.median >= 1000.0 && bounded && kept_up),
        format!(
            "{:.0} MB/s; peak RSS growth {:.1} MiB; dashboard {}",
            m.median,
            Stat::of(&growth).max,
            if kept_up { "missed nothing" } else { "lagged" }
        ),
    );
    report.figures.push(fig);
    Ok(())
}

fn procs_has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}
