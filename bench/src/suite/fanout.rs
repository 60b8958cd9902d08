//! Figure 2: UDP datagrams in at a fixed rate, N WebSocket clients out, for the Node relay
//! (BATCH_MS=0 and 16) and wirelab.
//!
//! Each server climbs a ladder of rates that doubles until a step is not sustained (twice:
//! a failed step is tried once more, see [`step`]), then
//! bisects twice between the last sustained step and the first failed one, so the highest
//! sustained rate is known to within 12.5% and "3x Node" means something. The highest
//! sustained rate is then run again (`--runs`).

use std::process::Command;
use std::time::Duration;

use super::procs::{load, metric};
use super::report::{Figure, Report, Stat};
use super::{Ctx, DASH, RELAY_UDP, RELAY_WS, Relay, UDP};
use crate::util::rss_kib;

/// The first step of each ladder, by number of clients.
/// (At 1,000 clients the Node relay's batches cost it a send per client every 16 ms,
/// whatever the rate, so its ladder starts low enough to find where it still keeps up.)
const LADDERS: [(usize, u64); 2] = [(100, 1000), (1000, 25)];
/// Steps at most (the doubling stops there even if every step passed): 25 × 2¹⁰ = 25,600/s
/// to 1,000 clients (wirelab reached 12,800, the old top), 1,000 × 2¹⁰ to 100.
const MAX_DOUBLINGS: u32 = 10;
/// Bisections between the last sustained and the first failed step.
const BISECTIONS: u32 = 2;
/// A load generator at or above this share of its core may itself be the bottleneck.
const LOADGEN_BUSY: f64 = 0.9;

/// Seconds between the last client connecting and the first datagram. Each connection to
/// wirelab brings a `hello`, a `snapshot` (up to ~240 KB with 1,000 join events in the
/// backlog) and join events for the others, and a thousand of those take it a while to
/// write; the flood should meet a server at rest. The Node relay sends nothing on connect.
fn settle(relay: Relay, clients: usize) -> f64 {
    match relay {
        Relay::Wirelab if clients >= 1000 => 2.0,
        _ => 0.5,
    }
}

/// One fan-out run: the load generator's result plus the server's CPU and RSS.
struct FanRun {
    rate: u64,
    delivered_per_s: f64,
    loss: f64,
    lagged: u64,
    /// Lost without a `lagged`, and without a drop counted before the fan-out either.
    unreported: u64,
    /// Datagrams the kernel dropped at the server's full receive queue (`ss -m`'s `d`, or
    /// /proc/net/snmp RcvbufErrors).
    kernel_drops: u64,
    /// Events wirelab's hub refused at a full intake (`wirelab_events_dropped_total`).
    hub_drops: u64,
    /// Clients the server closed during the run.
    closed: u64,
    p50: f64,
    p99: f64,
    p999: f64,
    cpu: f64,
    rss_mib: f64,
    loadgen_cpu: f64,
    /// WebSocket payload bytes the clients read per datagram delivered (compressed, where
    /// the server compressed).
    wire_per_msg: f64,
    /// The UDP socket's receive buffer (`ss -m`'s `rb`), in bytes.
    rcvbuf: Option<u64>,
    ok: bool,
}

impl FanRun {
    /// One step of a ladder's trace in the figure's notes.
    fn trace(&self, relay: Relay) -> String {
        format!(
            "{}/s {} (p99 {:.1} ms, loss {:.2}%{}, server CPU {:.0}%, loadgen CPU {:.0}%{})",
            self.rate,
            if self.ok { "ok" } else { "**not sustained**" },
            self.p99,
            self.loss * 100.0,
            if relay == Relay::Wirelab {
                format!(
                    ", lagged {}; dropped before the fan-out: {} by the kernel, {} at the hub",
                    self.lagged, self.kernel_drops, self.hub_drops
                )
            } else {
                format!(", dropped by the kernel {}", self.kernel_drops)
            },
            self.cpu * 100.0,
            self.loadgen_cpu * 100.0,
            if self.closed > 0 {
                format!(", {} clients closed by the server", self.closed)
            } else {
                String::new()
            },
        )
    }
}

fn fan_run(
    ctx: &Ctx,
    relay: Relay,
    clients: usize,
    rate: u64,
    secs: f64,
) -> Result<FanRun, String> {
    let server = match relay {
        Relay::Node(b) => ctx.relay(b)?,
        Relay::Wirelab => ctx.wirelab()?,
    };
    let (udp_port, udp, ws) = match relay {
        Relay::Node(_) => (
            RELAY_UDP,
            format!("127.0.0.1:{RELAY_UDP}"),
            format!("ws://127.0.0.1:{RELAY_WS}/"),
        ),
        Relay::Wirelab => (
            UDP,
            format!("127.0.0.1:{UDP}"),
            format!("ws://127.0.0.1:{DASH}/ws"),
        ),
    };
    let pid = server.pid();
    let wl = relay == Relay::Wirelab;
    let dropped = "wirelab_events_dropped_total";
    let (kernel0, hub0) = (
        udp_rcvbuf_errors(),
        if wl { metric(DASH, dropped)? } else { 0 },
    );
    let (c, r, s) = (clients.to_string(), rate.to_string(), secs.to_string());
    let (pid_arg, settle) = (pid.to_string(), settle(relay, clients).to_string());
    let res = load(
        &ctx.bench,
        &ctx.bench_args(&[
            "udp-fanout",
            "--udp",
            &udp,
            "--ws",
            &ws,
            "--clients",
            &c,
            "--rate",
            &r,
            "--secs",
            &s,
            "--settle",
            &settle,
            "--server-pid",
            &pid_arg,
        ]),
        Duration::from_secs(120),
    )?;
    let rss = rss_kib(pid, "VmHWM").unwrap_or(0) as f64 / 1024.0;
    // The server's own socket's drop count when `ss` shows it (the server is fresh, so it
    // covers this run only); else the whole machine's, which other programs add to.
    let skmem = udp_skmem(udp_port);
    let kernel_drops = skmem.map_or_else(
        || udp_rcvbuf_errors().saturating_sub(kernel0),
        |(_, drops)| drops,
    );
    // A server that fell far behind may take a while to answer (5 s a try).
    let hub_drops = if wl {
        let mut tries = 0;
        loop {
            tries += 1;
            match metric(DASH, dropped) {
                Ok(n) => break n.saturating_sub(hub0),
                Err(e) if tries == 3 => return Err(e),
                Err(_) => {}
            }
        }
    } else {
        0
    };
    drop(server);
    let f = |k: &str| {
        res.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let expected = f("expected");
    let run = FanRun {
        rate,
        delivered_per_s: f("delivered_per_s"),
        loss: f("lost") / expected,
        lagged: f("lagged") as u64,
        unreported: (f("unreported") as u64)
            .saturating_sub((kernel_drops + hub_drops) * clients as u64),
        kernel_drops,
        hub_drops,
        closed: f("closed_by_server") as u64,
        p50: f("p50_ms"),
        p99: f("p99_ms"),
        p999: f("p999_ms"),
        cpu: f("server_cpu"),
        rss_mib: rss,
        loadgen_cpu: f("loadgen_cpu"),
        wire_per_msg: f("bytes") / f("delivered"),
        rcvbuf: skmem.map(|(rb, _)| rb),
        ok: false,
    };
    let ok = f("send_rate") >= 0.97 * rate as f64 && run.loss <= 0.001 && run.p99 < 50.0;
    Ok(FanRun { ok, ..run })
}

/// The rate halfway between two steps, rounded to a tidy number.
fn between(ok: u64, failed: u64) -> u64 {
    let mid = (ok + failed) / 2;
    let unit = if mid >= 10_000 {
        500
    } else if mid >= 1000 {
        50
    } else {
        5
    };
    (mid + unit / 2) / unit * unit
}

/// One step of a ladder, pushed onto `runs`: a step that fails is tried once more (a
/// stall of the machine or a single late frame should not end a ladder: both servers
/// showed such one-off failures), and passes if either try did. Returns the index of the
/// passing run.
fn step(
    ctx: &Ctx,
    relay: Relay,
    clients: usize,
    rate: u64,
    secs: f64,
    runs: &mut Vec<FanRun>,
) -> Result<Option<usize>, String> {
    for _ in 0..2 {
        let run = fan_run(ctx, relay, clients, rate, secs)?;
        let ok = run.ok;
        runs.push(run);
        if ok {
            return Ok(Some(runs.len() - 1));
        }
    }
    Ok(None)
}

/// Climbs the ladder for one server: (every run in order, the highest sustained rate).
fn climb(
    ctx: &Ctx,
    relay: Relay,
    clients: usize,
    first: u64,
    secs: f64,
) -> Result<(Vec<FanRun>, Option<usize>), String> {
    let mut runs: Vec<FanRun> = Vec::new();
    let mut best: Option<usize> = None;
    let mut failed: Option<u64> = None;
    let mut rate = first;
    for _ in 0..=MAX_DOUBLINGS {
        match step(ctx, relay, clients, rate, secs, &mut runs)? {
            Some(at) => {
                best = Some(at);
                rate *= 2;
            }
            None => {
                failed = Some(rate);
                break;
            }
        }
    }
    if let (Some(mut lo), Some(mut hi)) = (best.map(|i| runs[i].rate), failed) {
        for _ in 0..BISECTIONS {
            let mid = between(lo, hi);
            if mid <= lo || mid >= hi {
                break;
            }
            match step(ctx, relay, clients, mid, secs, &mut runs)? {
                Some(at) => {
                    lo = mid;
                    best = Some(at);
                }
                None => hi = mid,
            }
        }
    }
    Ok((runs, best))
}

/// Figure 2, for 100 and then 1,000 clients.
pub(super) fn fanout(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    let secs = if ctx.quick { 2.0 } else { 3.0 };
    for (clients, first) in LADDERS {
        let mut fig = Figure::new(
            &format!("2. Fan-out: UDP in, {clients} WebSocket clients out"),
            &[
                "server",
                "highest rate sustained (datagrams/s)",
                "delivered msgs/s",
                "loss",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "server CPU (of 1 core, during the flood)",
                "server peak RSS MiB",
                "loadgen CPU",
                "wire bytes per delivered msg",
            ],
        );
        let mut best = Vec::new();
        let mut rcvbufs = Vec::new();
        let mut busy_loadgen = false;
        for relay in [Relay::Node(0), Relay::Node(16), Relay::Wirelab] {
            let (mut ladder, top) = climb(ctx, relay, clients, first, secs)?;
            for run in &ladder {
                if relay == Relay::Wirelab && run.unreported > 0 {
                    report.failures.push(format!("fan-out wirelab {clients} clients @ {}/s: {} datagrams lost without a `lagged` and without a drop counted by the kernel or the hub", run.rate, run.unreported));
                }
                busy_loadgen |= run.loadgen_cpu >= LOADGEN_BUSY;
            }
            if let Some(b) = ladder.first().and_then(|r| r.rcvbuf) {
                rcvbufs.push(format!("{}: {} KiB", relay.name(), b / 1024));
            }
            let trace: Vec<String> = ladder.iter().map(|r| r.trace(relay)).collect();
            fig.notes
                .push(format!("{}: {}", relay.name(), trace.join("; ")));
            let Some(top) = top else {
                let mut row = vec![relay.name(), format!("< {first}")];
                row.resize(fig.header.len(), String::new());
                fig.row(row);
                best.push((relay, 0));
                continue;
            };
            let rate = ladder[top].rate;
            // The highest step below the top that passed, in case the repeats fail.
            let below = ladder
                .iter()
                .filter(|r| r.ok && r.rate < rate)
                .map(|r| r.rate)
                .max()
                .unwrap_or(0);
            let mut runs = vec![ladder.swap_remove(top)];
            for _ in 1..ctx.runs {
                runs.push(fan_run(ctx, relay, clients, rate, secs)?);
            }
            let sustained = runs.iter().filter(|r| r.ok).count() * 2 > runs.len();
            let stat = |f: fn(&FanRun) -> f64| Stat::of(&runs.iter().map(f).collect::<Vec<_>>());
            fig.row(vec![
                relay.name(),
                if sustained {
                    rate.to_string()
                } else {
                    format!("{below} ({rate} passed the ladder but not most repeats, shown here)")
                },
                stat(|r| r.delivered_per_s).show(0),
                format!("{:.3}%", stat(|r| r.loss).median * 100.0),
                stat(|r| r.p50).show(2),
                stat(|r| r.p99).show(2),
                stat(|r| r.p999).show(2),
                format!("{:.0}%", stat(|r| r.cpu).median * 100.0),
                stat(|r| r.rss_mib).show(0),
                format!("{:.0}%", stat(|r| r.loadgen_cpu).median * 100.0),
                format!("{:.0}", stat(|r| r.wire_per_msg).median),
            ]);
            best.push((relay, if sustained { rate } else { below }));
        }
        let node = best
            .iter()
            .filter(|(r, _)| *r != Relay::Wirelab)
            .map(|b| b.1)
            .max()
            .unwrap_or(0);
        let wl = best
            .iter()
            .find(|(r, _)| *r == Relay::Wirelab)
            .map_or(0, |b| b.1);
        let ceiling = first << MAX_DOUBLINGS;
        let met = if node >= ceiling {
            None
        } else {
            Some(wl >= 3 * node.max(1))
        };
        report.bar(
            &format!("Fan-out, {clients} clients: ≥ 3x Node's highest sustained rate (p99 < 50 ms, no unreported loss)"),
            met,
            format!(
                "wirelab {wl}/s vs Node {}{}",
                if node == 0 {
                    format!("< {first}/s (none of its ladder)")
                } else {
                    format!("{node}/s ({:.1}x)", wl as f64 / node as f64)
                },
                if wl >= ceiling { " (wirelab reached the top of the ladder)" } else { "" }
            ),
        );
        fig.notes.push(format!(
            "{secs} s of datagrams (48 bytes each) per run; sustained = the sender kept the rate, loss ≤ 0.1%, p99 < 50 ms. The ladder doubles from {first}/s until a step fails (a failed step is tried once more, and passes if either try does), then bisects {BISECTIONS} times; the highest sustained step is run {} times in all. Latency is from the sender's clock to the client's, both on this machine. Delivered msgs/s = datagrams × clients delivered per second.",
            ctx.runs
        ));
        fig.notes.push(format!(
            "The load generator is one thread on its own core: an epoll loop over raw sockets with a minimal WebSocket client, checking every client's delivery. Like a browser, each client offers permessage-deflate: Node's `ws` declines it (its default), wirelab agrees and, with 8 or more such clients, compresses each shared frame once for all of them (`--ws-compress auto`); the load generator inflates each distinct compressed message once and checks every other client's copy byte for byte against it. {}",
            if busy_loadgen {
                format!("Some steps had it at ≥ {:.0}% of its core (see the traces): those figures may be its limit, not the server's.", LOADGEN_BUSY * 100.0)
            } else {
                format!("It stayed below {:.0}% of its core at every step.", LOADGEN_BUSY * 100.0)
            }
        ));
        if !rcvbufs.is_empty() {
            fig.notes.push(format!(
                "UDP receive buffers (`ss -m` rb, the kernel's own accounting): {}.",
                rcvbufs.join(", ")
            ));
        }
        report.figures.push(fig);
    }
    Ok(())
}

/// The kernel's count of UDP datagrams dropped at a full receive queue (all sockets).
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(head), Some(vals)) = (udp.next(), udp.next()) else {
        return 0;
    };
    head.split_whitespace()
        .zip(vals.split_whitespace())
        .find(|(k, _)| *k == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The receive buffer and the drop count of the UDP socket bound to `port`, from `ss -uanm`
/// (`skmem:(r0,rb8388608,...,d0)`).
fn udp_skmem(port: u16) -> Option<(u64, u64)> {
    let out = Command::new("ss")
        .args(["-uanm", &format!("sport = :{port}")])
        .output()
        .ok()?;
    parse_skmem(&String::from_utf8_lossy(&out.stdout))
}

fn parse_skmem(text: &str) -> Option<(u64, u64)> {
    let inner = text.split("skmem:(").nth(1)?.split(')').next()?;
    let field = |name: &str| {
        inner
            .split(',')
            .find_map(|f| f.strip_prefix(name)?.parse::<u64>().ok())
    };
    Some((field("rb")?, field("d")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skmem_gives_the_buffer_and_the_drops() {
        let ss = "UNCONN 0 0 127.0.0.1:31083 0.0.0.0:*\n\t skmem:(r0,rb8388608,t0,tb212992,f4096,w0,o0,bl0,d17)\n";
        assert_eq!(parse_skmem(ss), Some((8_388_608, 17)));
        assert_eq!(parse_skmem("State Recv-Q\n"), None);
    }

    #[test]
    fn bisection_lands_on_tidy_rates_strictly_between() {
        assert_eq!(between(16_000, 32_000), 24_000);
        assert_eq!(between(16_000, 24_000), 20_000);
        assert_eq!(between(2000, 4000), 3000);
        assert_eq!(between(2000, 3000), 2500);
        assert_eq!(between(100, 200), 150);
        assert_eq!(between(100, 150), 125);
    }
}
