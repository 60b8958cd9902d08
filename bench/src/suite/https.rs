//! Figure 8: HTTPS Hello World. `wrk -t1 -c64` over TLS against the seed's Hello World
//! served with Node's `https.createServer` (`bench/anchors/seed-https.js`) and against
//! wirelab's HTTPS service with one dashboard connected: with keep-alive (req/s, latency),
//! and with `Connection: close`, where each request is a new TCP connection and a new TLS
//! handshake (handshakes/s = req/s).
//!
//! Both servers sign with an ECDSA P-256 key: wirelab its own (rcgen's default, under the
//! lab's CA), Node one that `openssl req` makes for the run in a temporary directory.
//! Same pinning as figure 1: the server on core 0, wrk (and the dashboard client) on core 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::procs::{Held, Server, metric, wrk_url};
use super::report::{Figure, Report, Stat};
use super::{Ctx, DASH, LabPorts};
use crate::util::cpu_secs;

/// Where Node's HTTPS anchor listens.
const NODE_HTTPS: u16 = 31110;
/// Where the lab's HTTPS service listens.
const HTTPS: u16 = 31111;
/// The lab's request counter, which its HTTPS service counts in too.
const COUNTER: &str = "wirelab_requests_total{service=\"http\"}";

/// How wrk uses its connections.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Keep-alive: 64 connections, each handshaken once.
    KeepAlive,
    /// `Connection: close`: a new connection and handshake for every request.
    Close,
}

impl Mode {
    fn headers(self) -> &'static [&'static str] {
        match self {
            Mode::KeepAlive => &[],
            Mode::Close => &["Connection: close"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keep-alive",
            Mode::Close => "new handshakes (`Connection: close`)",
        }
    }
}

/// One server's medians in one mode.
struct Runs {
    rps: Stat,
    p50: Stat,
    p99: Stat,
    /// The server's CPU time over each run's wall time, in % of its one core: well below
    /// 100, wrk (not the server) was the limit.
    cpu: Stat,
    /// The server's CPU time per request wrk counted, in µs: what a request (in the
    /// `Connection: close` mode, a connection and its handshake) costs the server, which
    /// a busy machine sways less than req/s.
    per_req: Stat,
}

/// One server's figures: both modes, and what `openssl s_client` negotiated with it.
struct Measured {
    keep: Runs,
    close: Runs,
    tls: String,
}

pub(super) fn https(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    let secs = if ctx.quick { 3 } else { 5 };
    let keys = Keys::make()?;
    let node = {
        let s = Server::start(
            &["node", "seed-https.js"],
            &[
                ("PORT", NODE_HTTPS.to_string()),
                ("KEY", keys.key().to_string_lossy().into_owned()),
                ("CERT", keys.cert().to_string_lossy().into_owned()),
            ],
            &ctx.anchors,
            NODE_HTTPS,
        )?;
        let m = measure(
            ctx,
            report,
            "Node seed-https.js",
            s.pid(),
            NODE_HTTPS,
            secs,
            false,
        )?;
        drop(s);
        m
    };
    let addr = format!("127.0.0.1:{HTTPS}");
    let lab = ctx.wirelab_with(LabPorts::suite(), &["--https", &addr])?;
    let url = format!("ws://127.0.0.1:{DASH}/ws");
    let (dash, _) = Held::start(
        &ctx.bench,
        &ctx.bench_args(&["dash", "--ws", &url]),
        Duration::from_secs(10),
    )?;
    let wl = measure(ctx, report, "wirelab", lab.pid(), HTTPS, secs, true)?;
    let d = dash.finish()?;
    drop(lab);

    let mut fig = Figure::new(
        "8. HTTPS Hello World (`wrk -t1 -c64` over TLS)",
        &[
            "server",
            "mode",
            "req/s",
            "p50 ms",
            "p99 ms",
            "server CPU %",
            "server CPU µs/req",
            "req/s vs Node",
        ],
    );
    for mode in [Mode::KeepAlive, Mode::Close] {
        let pick = |m: &Measured| -> (f64, [String; 5]) {
            let r = if mode == Mode::KeepAlive {
                &m.keep
            } else {
                &m.close
            };
            let shown = [
                r.rps.show(0),
                r.p50.show(3),
                r.p99.show(3),
                r.cpu.show(0),
                r.per_req.show(1),
            ];
            (r.rps.median, shown)
        };
        let base = pick(&node).0;
        for (name, m) in [
            ("Node `seed-https.js`", &node),
            ("wirelab, 1 dashboard connected", &wl),
        ] {
            let (median, shown) = pick(m);
            let mut row = vec![name.to_owned(), mode.name().to_owned()];
            row.extend(shown);
            row.push(format!("{:.2}x", median / base));
            fig.row(row);
        }
    }
    fig.notes.push(format!(
        "{} runs of {secs} s in each mode after a 1 s warm-up. With `-H 'Connection: close'` \
         every request is a new TCP connection and TLS handshake, so req/s = handshakes/s. \
         wrk checks every answer is 2xx (none failed unless listed below); wirelab's own \
         request counter must match wrk's count (within the 64 in flight when wrk stops). \
         Server CPU %: the server process's CPU time (all its threads) over the run, of its \
         one core; well below 100 means the server was not the limit.",
        ctx.runs
    ));
    fig.notes.push(
        "Keys: both ECDSA P-256 (signature ECDSA-SHA256). Node's is self-signed, made by \
         `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1` for the run; \
         wirelab's is its leaf under the lab's CA (it sends leaf + intermediate). wrk (OpenSSL) \
         verifies no certificate."
            .into(),
    );
    fig.notes.push(format!(
        "Negotiated with OpenSSL's `s_client` (as wrk's OpenSSL would): Node {}; wirelab {}.",
        node.tls, wl.tls
    ));
    fig.notes.push(
        "wrk keeps each connection's TLS session across its reconnects (OpenSSL's client \
         session cache), so some of the `Connection: close` handshakes are resumptions where \
         the server allows them, not full handshakes. And while a handshake waits for the \
         server, wrk's event loop spins on the socket being writable, so in this mode wrk's \
         own core is busy and may be what limits the rate (see server CPU %)."
            .into(),
    );
    let g = |k: &str| d.get(k).cloned().unwrap_or_default();
    fig.notes.push(format!(
        "wirelab's dashboard client read {} frames ({} MB) holding {} events; {} events \
         reported missed (`lagged`).",
        g("frames"),
        g("bytes").parse::<f64>().unwrap_or(0.0) as u64 / 1_000_000,
        g("events"),
        g("missed")
    ));
    let keep = wl.keep.rps.median / node.keep.rps.median;
    report.bar(
        "HTTPS keep-alive: ≥ 2.0x Node req/s",
        Some(keep >= 2.0),
        format!(
            "{keep:.2}x ({:.0} vs {:.0} req/s); p99 {:.2} ms vs Node {:.2} ms",
            wl.keep.rps.median, node.keep.rps.median, wl.keep.p99.median, node.keep.p99.median
        ),
    );
    let close = wl.close.rps.median / node.close.rps.median;
    report.bar(
        "HTTPS new handshakes: ≥ 2.0x Node handshakes/s",
        Some(close >= 2.0),
        format!(
            "{close:.2}x ({:.0} vs {:.0} handshakes/s); p99 {:.2} ms vs Node {:.2} ms",
            wl.close.rps.median, node.close.rps.median, wl.close.p99.median, node.close.p99.median
        ),
    );
    report.figures.push(fig);
    Ok(())
}

/// Checks the server's answer, asks what it negotiates, then runs wrk in both modes.
/// `wirelab`: compare its request counter with wrk's count.
fn measure(
    ctx: &Ctx,
    report: &mut Report,
    name: &str,
    pid: u32,
    port: u16,
    secs: u32,
    wirelab: bool,
) -> Result<Measured, String> {
    let url = format!("https://127.0.0.1:{port}/");
    let answer = curl(&url)?;
    if answer != "Hello World\n200" {
        return Err(format!(
            "{name} answered {answer:?}, not 200 \"Hello World\\n\""
        ));
    }
    let tls = negotiated(port)?;
    let mut modes = Vec::new();
    for mode in [Mode::KeepAlive, Mode::Close] {
        wrk_url(&url, 1, mode.headers())?;
        let (mut rps, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new());
        let (mut cpu, mut per_req) = (Vec::new(), Vec::new());
        for i in 0..ctx.runs {
            let before = if wirelab { metric(DASH, COUNTER)? } else { 0 };
            let (cpu0, t0) = (cpu_secs(pid), Instant::now());
            let w = wrk_url(&url, secs, mode.headers())?;
            if let (Some(a), Some(b)) = (cpu0, cpu_secs(pid)) {
                cpu.push((b - a) / t0.elapsed().as_secs_f64() * 100.0);
                per_req.push((b - a) * 1e6 / w.requests.max(1) as f64);
            }
            let what = format!("https {name} {} run {i}", mode.name());
            if w.errors > 0 {
                report.failures.push(format!(
                    "{what}: {} socket errors or non-2xx answers",
                    w.errors
                ));
            }
            if wirelab {
                std::thread::sleep(Duration::from_millis(200));
                let served = metric(DASH, COUNTER)? - before;
                if served < w.requests || served > w.requests + 64 {
                    report.failures.push(format!(
                        "{what}: wirelab counted {served} requests, wrk {}",
                        w.requests
                    ));
                }
            }
            rps.push(w.rps);
            p50.push(w.p50_ms);
            p99.push(w.p99_ms);
        }
        modes.push(Runs {
            rps: Stat::of(&rps),
            p50: Stat::of(&p50),
            p99: Stat::of(&p99),
            cpu: Stat::of(&cpu),
            per_req: Stat::of(&per_req),
        });
    }
    let close = modes.pop().ok_or("no runs")?;
    let keep = modes.pop().ok_or("no runs")?;
    Ok(Measured { keep, close, tls })
}

/// `GET url` with curl, certificate unchecked: the body, then the status.
fn curl(url: &str) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "5", "-w", "%{http_code}", url])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What OpenSSL's client negotiates on `port`: version and cipher, and whether a second
/// connection resumes the first one's session.
fn negotiated(port: u16) -> Result<String, String> {
    let dir = Temp::new("session")?;
    let session = dir.0.join("session.pem");
    let first = s_client(port, "-sess_out", &session)?;
    let second = s_client(port, "-sess_in", &session)?;
    let line = |text: &str, start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .map(str::to_owned)
    };
    let new = line(first.as_str(), "New, ")
        .ok_or_else(|| format!("openssl s_client on port {port}: no \"New, \" line"))?;
    let chosen = new.trim_start_matches("New, ").replace(", Cipher is ", " ");
    let resumed = if line(second.as_str(), "Reused, ").is_some() {
        "resumes a session"
    } else {
        "resumes no session"
    };
    Ok(format!("{chosen}, {resumed}"))
}

/// One `openssl s_client` connection to `port` that sends a `Connection: close` GET and
/// reads to the end (so a TLS 1.3 session ticket sent after the handshake is kept), saving
/// or offering the session in `file` (`-sess_out` or `-sess_in`): its output.
fn s_client(port: u16, flag: &str, file: &Path) -> Result<String, String> {
    let mut child = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-ign_eof", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(flag)
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("openssl s_client: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("openssl s_client: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A directory of the suite's own under the system's temporary one, removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new(what: &str) -> Result<Temp, String> {
        let dir = std::env::temp_dir().join(format!("wirelab-bench-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Temp(dir))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Node's key and self-signed certificate: ECDSA P-256, as wirelab's.
struct Keys(Temp);

impl Keys {
    fn make() -> Result<Keys, String> {
        let dir = Temp::new("https-keys")?;
        let keys = Keys(dir);
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(keys.key())
            .arg("-out")
            .arg(keys.cert())
            .output()
            .map_err(|e| format!("openssl req: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "openssl req could not make Node's key: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(keys)
    }

    fn key(&self) -> PathBuf {
        self.0.0.join("key.pem")
    }

    fn cert(&self) -> PathBuf {
        self.0.0.join("cert.pem")
    }
}
