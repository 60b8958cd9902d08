//! Figure 5: relay mode's TCP throughput. iperf3's client sends through a relay to
//! iperf3's server: straight (no relay), through `socat TCP-LISTEN,fork TCP:...` (the
//! usual one-line relay), and through a wirelab `tcp` proxy with a dashboard connected.
//!
//! Same pinning for every row: the relay on the server core, both iperf3 ends on the load
//! core (so the straight row is the same two processes with nothing between them).

use std::time::Duration;

use super::procs::{self, Held, Server};
use super::report::{Figure, Report, Stat};
use super::{Ctx, DASH, IPERF, LabPorts, procs_has};

/// Where socat listens.
const SOCAT: u16 = 31095;
/// Where the wirelab proxy listens.
const PROXY: u16 = 31096;

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
        let lab = ctx.wirelab_with(LabPorts::suite(), &["--proxy", &proxy])?;
        let url = format!("ws://127.0.0.1:{DASH}/ws");
        let (dash, _) = Held::start(
            &ctx.bench,
            &ctx.bench_args(&["dash", "--ws", &url]),
            Duration::from_secs(10),
        )?;
        std::thread::sleep(Duration::from_millis(300));
        wirelab.push(iperf(PROXY, secs)?);
        let d = dash.finish()?;
        drop(lab);
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
