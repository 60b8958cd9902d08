//! Figure 5: relay mode. iperf3's client sends through a relay to iperf3's server:
//! straight (no relay), through `socat TCP-LISTEN,fork TCP:...` (the usual one-line
//! relay), and through a wirelab `tcp` proxy with a dashboard connected.
//!
//! Same pinning for every row: the relay on the server core, both iperf3 ends on the load
//! core (so the straight row is the same two processes with nothing between them).
//!
//! Figure 5b: the same for datagrams: `wirelab-bench udp-echo` (client and echo upstream,
//! on the load core) straight, through `socat UDP-LISTEN,fork UDP:...` and through a
//! wirelab `udp` proxy with a dashboard connected. Figure 5c: 1,000 idle connections
//! through a wirelab `tcp` proxy (`wirelab-bench tcp-hold`), the lab's RSS per connection.

use std::collections::HashMap;
use std::time::Duration;

use super::procs::{self, Held, Server};
use super::report::{Figure, Report, Stat};
use super::{Ctx, DASH, IPERF, LabPorts, procs_has};
use crate::util::rss_kib;

/// Where socat listens.
const SOCAT: u16 = 31095;
/// Where the wirelab proxy listens.
const PROXY: u16 = 31096;
/// Where socat listens for datagrams.
const UDP_SOCAT: u16 = 31097;
/// Where the wirelab `udp` proxy listens.
const UDP_PROXY: u16 = 31098;
/// The echo upstream of figure 5b, and the upstream of figure 5c.
const UPSTREAM: u16 = 31099;
/// Datagrams in flight in figure 5b.
const UDP_WINDOW: u64 = 32;
/// Bytes per datagram in figure 5b.
const UDP_SIZE: usize = 64;

/// Runs `measure` against a lab with the proxy `spec` (`--proxy`'s form) and one
/// dashboard connected, as every relay figure's wirelab row is measured: what `measure`
/// gave, and the dashboard's figures (frames, events, missed).
pub(super) fn through_lab<T>(
    ctx: &Ctx,
    spec: &str,
    measure: impl FnOnce() -> Result<T, String>,
) -> Result<(T, HashMap<String, String>), String> {
    let lab = ctx.wirelab_with(LabPorts::suite(), &["--proxy", spec])?;
    let url = format!("ws://127.0.0.1:{DASH}/ws");
    let (dash, _) = Held::start(
        &ctx.bench,
        &ctx.bench_args(&["dash", "--ws", &url]),
        Duration::from_secs(10),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let measured = measure()?;
    let dashboard = dash.finish()?;
    drop(lab);
    Ok((measured, dashboard))
}

/// One iperf3 run of `secs` to `port`, in MB/s received.
fn iperf(port: u16, secs: u64) -> Result<f64, String> {
    let out = procs::scheduled(procs::LOAD_CORE)
        .args(["iperf3", "-c", "127.0.0.1", "-J", "-p"])
        .arg(port.to_string())
        .args(["-t", &secs.to_string()])
        .output()
        .map_err(|e| format!("iperf3: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("iperf3 output (port {port}): {e}"))?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(format!("iperf3 through port {port}: {e}"));
    }
    v.pointer("/end/sum_received/bits_per_second")
        .and_then(|b| b.as_f64())
        .map(|bps| bps / 8.0 / 1e6)
        .ok_or_else(|| format!("iperf3 through port {port}: no sum_received"))
}

pub(super) fn relay(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    // Each figure on its own: one that fails leaves the others measured.
    for (name, figure) in [
        ("tcp", tcp as fn(&Ctx, &mut Report) -> Result<(), String>),
        ("udp", udp),
        ("idle", idle),
    ] {
        if let Err(e) = figure(ctx, report) {
            report.failures.push(format!("relay {name}: {e}"));
        }
    }
    Ok(())
}

/// Figure 5.
fn tcp(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    if !procs_has("iperf3") || !procs_has("socat") {
        report.bar(
            "TCP relay: ≥ 1.5x socat and ≥ half of straight",
            None,
            "not measured: iperf3 and socat are needed (apt-get install -y iperf3 socat)".into(),
        );
        return Ok(());
    }
    let secs = if ctx.quick { 2 } else { 3 };
    let upstream = format!("127.0.0.1:{IPERF}");
    let (mut straight, mut socat, mut wirelab) = (Vec::new(), Vec::new(), Vec::new());
    let mut notes = Vec::new();
    for i in 0..ctx.runs {
        let port = IPERF.to_string();
        let iperf_server = ["iperf3", "-s", "-p", &port];
        let _iperf = Server::start_on(procs::LOAD_CORE, &iperf_server, &[], &ctx.root, IPERF)?;
        straight.push(iperf(IPERF, secs)?);

        let listen = format!("TCP-LISTEN:{SOCAT},fork,reuseaddr,bind=127.0.0.1");
        let connect = format!("TCP:{upstream}");
        let s = Server::start(&["socat", &listen, &connect], &[], &ctx.root, SOCAT)?;
        socat.push(iperf(SOCAT, secs)?);
        drop(s);

        let proxy = format!("bench=tcp://127.0.0.1:{PROXY}->{upstream}");
        let (rate, d) = through_lab(ctx, &proxy, || iperf(PROXY, secs))?;
        wirelab.push(rate);
        let g = |k: &str| d.get(k).map_or("?", String::as_str).to_owned();
        notes.push(format!(
            "run {i}: the dashboard got {} frames, {} missed",
            g("frames"),
            g("missed")
        ));
    }
    let (st, so, wl) = (Stat::of(&straight), Stat::of(&socat), Stat::of(&wirelab));
    let mut fig = Figure::new(
        "5. TCP relay: iperf3 through a relay to iperf3",
        &["path", "MB/s", "vs straight", "vs socat"],
    );
    let row = |name: &str, s: &Stat| {
        vec![
            name.to_owned(),
            s.show(0),
            format!("{:.2}x", s.median / st.median),
            format!("{:.2}x", s.median / so.median),
        ]
    };
    fig.row(row("straight (no relay)", &st));
    fig.row(row("socat TCP-LISTEN,fork", &so));
    fig.row(row("wirelab tcp proxy (1 dashboard connected)", &wl));
    fig.notes.push(format!(
        "{secs} s per run; the relay on core {}, both iperf3 ends on core {}.",
        procs::SERVER_CORE,
        procs::LOAD_CORE
    ));
    fig.notes.extend(notes);
    report.bar(
        "TCP relay: ≥ 1.5x socat and ≥ half of straight",
        Some(wl.median >= 1.5 * so.median && wl.median >= 0.5 * st.median),
        format!(
            "{:.0} MB/s: {:.2}x socat, {:.2}x straight",
            wl.median,
            wl.median / so.median,
            wl.median / st.median
        ),
    );
    report.figures.push(fig);
    Ok(())
}

/// One `udp-echo` run of `secs` through `relay` (or straight to the echo): (datagrams
/// echoed per second, datagrams lost).
fn udp_echo(ctx: &Ctx, relay: u16, secs: f64) -> Result<(f64, u64), String> {
    let (r, e) = (
        format!("127.0.0.1:{relay}"),
        format!("127.0.0.1:{UPSTREAM}"),
    );
    let (w, size, s) = (
        UDP_WINDOW.to_string(),
        UDP_SIZE.to_string(),
        secs.to_string(),
    );
    let args = [
        "udp-echo", "--relay", &r, "--echo", &e, "--window", &w, "--size", &size, "--secs", &s,
    ];
    let got = procs::load(&ctx.bench, &ctx.bench_args(&args), Duration::from_secs(60))?;
    let num = |k: &str| {
        got.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("udp-echo through port {relay}: no {k}"))
    };
    Ok((num("per_s")?, num("lost")? as u64))
}

/// Figure 5b.
fn udp(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    let bar = "UDP relay: ≥ 2x socat lossless datagrams/s";
    if !procs_has("socat") {
        let why = "not measured: socat is needed (apt-get install -y socat)";
        report.bar(bar, None, why.into());
        return Ok(());
    }
    let secs = if ctx.quick { 2.0 } else { 3.0 };
    let upstream = format!("127.0.0.1:{UPSTREAM}");
    let (mut straight, mut socat, mut wirelab) = (Vec::new(), Vec::new(), Vec::new());
    let (mut lost, mut notes) = (Vec::new(), Vec::new());
    for i in 0..ctx.runs {
        let (rate, l) = udp_echo(ctx, UPSTREAM, secs)?;
        straight.push(rate);
        lost.push(("straight", l));

        let listen = format!("UDP-LISTEN:{UDP_SOCAT},fork,reuseaddr,bind=127.0.0.1");
        let connect = format!("UDP:{upstream}");
        // `-T 1`: each forked child (one per client address) ends a second after its last
        // datagram; killing the listening parent leaves them running otherwise.
        let cmd = ["socat", "-T", "1", &listen, &connect];
        let s = Server::spawn_on(procs::SERVER_CORE, &cmd, &[], &ctx.root)?;
        std::thread::sleep(Duration::from_millis(300));
        let (rate, l) = udp_echo(ctx, UDP_SOCAT, secs)?;
        socat.push(rate);
        lost.push(("socat", l));
        drop(s);

        let proxy = format!("bench=udp://127.0.0.1:{UDP_PROXY}->{upstream}");
        let ((rate, l), d) = through_lab(ctx, &proxy, || udp_echo(ctx, UDP_PROXY, secs))?;
        wirelab.push(rate);
        lost.push(("wirelab", l));
        let g = |k: &str| d.get(k).map_or("?", String::as_str).to_owned();
        notes.push(format!(
            "run {i}: the dashboard got {} frames holding {} events, {} missed",
            g("frames"),
            g("events"),
            g("missed")
        ));
    }
    let lossless = lost.iter().all(|(_, l)| *l == 0);
    for (path, l) in lost.iter().filter(|(_, l)| *l > 0) {
        report
            .failures
            .push(format!("udp relay ({path}): {l} datagrams never came back"));
    }
    let (st, so, wl) = (Stat::of(&straight), Stat::of(&socat), Stat::of(&wirelab));
    let mut fig = Figure::new(
        "5b. UDP relay: datagrams echoed through a relay, none lost",
        &["path", "datagrams/s", "vs straight", "vs socat"],
    );
    let row = |name: &str, s: &Stat| {
        vec![
            name.to_owned(),
            s.show(0),
            format!("{:.2}x", s.median / st.median),
            format!("{:.2}x", s.median / so.median),
        ]
    };
    fig.row(row("straight (no relay)", &st));
    fig.row(row("socat UDP-LISTEN,fork", &so));
    fig.row(row("wirelab udp proxy (1 dashboard connected)", &wl));
    fig.notes.push(format!(
        "Lossless datagrams/s: a closed-loop client keeps {UDP_WINDOW} datagrams of \
         {UDP_SIZE} bytes in flight through the relay to an echo upstream (each one echoed \
         back lets the next go) for {secs} s after a 0.5 s warm-up; the rate is datagrams \
         echoed per second, and a run counts only if every datagram sent came back \
         ({}). Each datagram crosses the relay twice (both legs, both directions). The \
         relay on core {}, client and echo on core {}.",
        if lossless {
            "all did"
        } else {
            "some did not: see the failures"
        },
        procs::SERVER_CORE,
        procs::LOAD_CORE
    ));
    fig.notes.extend(notes);
    report.bar(
        bar,
        Some(lossless && wl.median >= 2.0 * so.median),
        format!(
            "{:.0} datagrams/s: {:.2}x socat, {:.2}x straight{}",
            wl.median,
            wl.median / so.median,
            wl.median / st.median,
            if lossless { "" } else { "; some were lost" }
        ),
    );
    report.figures.push(fig);
    Ok(())
}

/// Figure 5c.
fn idle(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    let n: usize = 1000;
    let mut fig = Figure::new(
        &format!("5c. Memory per idle relayed TCP connection ({n} connections)"),
        &[
            "relay",
            "KiB per connection (both legs)",
            "RSS with none (MiB)",
            "RSS with N (MiB)",
        ],
    );
    let upstream = format!("127.0.0.1:{UPSTREAM}");
    let (mut kib, mut r0, mut r1) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ctx.runs {
        let proxy = format!("hold=tcp://127.0.0.1:{PROXY}->{upstream}");
        let lab = ctx.wirelab_with(LabPorts::suite(), &["--proxy", &proxy])?;
        std::thread::sleep(Duration::from_millis(500));
        let pid = lab.pid();
        let before = rss_kib(pid, "VmRSS").ok_or("no RSS")?;
        let (relay, ns) = (format!("127.0.0.1:{PROXY}"), n.to_string());
        let args = [
            "tcp-hold",
            "--relay",
            &relay,
            "--upstream",
            &upstream,
            "--conns",
            &ns,
        ];
        let (held, ready) =
            Held::start(&ctx.bench, &ctx.bench_args(&args), Duration::from_secs(90))?;
        if !ready.contains(&format!("connected={n} accepted={n}")) {
            report.failures.push(format!("relay idle run {i}: {ready}"));
        }
        std::thread::sleep(Duration::from_secs(2));
        let after = rss_kib(pid, "VmRSS").ok_or("no RSS")?;
        let r = held.finish()?;
        if r.get("still_open").map(String::as_str) != Some(ns.as_str()) {
            report.failures.push(format!(
                "relay idle run {i}: only {:?} connections still open at the end",
                r.get("still_open")
            ));
        }
        drop(lab);
        kib.push(after.saturating_sub(before) as f64 / n as f64);
        r0.push(before as f64 / 1024.0);
        r1.push(after as f64 / 1024.0);
    }
    let k = Stat::of(&kib);
    fig.row(vec![
        "wirelab tcp proxy".into(),
        k.show(2),
        Stat::of(&r0).show(1),
        Stat::of(&r1).show(1),
    ]);
    fig.notes.push(format!(
        "(the lab's RSS with {n} connections held open through one proxy, both legs up, 2 s \
         after the last, minus its RSS before the first) / {n}; VmRSS from /proc/PID/status. \
         Nobody sends a byte. Reported, no bar (issue 14)."
    ));
    report.figures.push(fig);
    Ok(())
}
