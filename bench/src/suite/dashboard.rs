//! Figure 5: the dashboard. The wasm sizes from `dist/`, then, per run, a release wirelab
//! (core 0, `dist/` embedded) and a headless Chromium (core 1) driven over the Chrome
//! DevTools Protocol:
//!
//! 1. the lab gets [`SEED`] datagrams first, so the page loads a full snapshot backlog;
//! 2. a fresh page opens the dashboard: time to first contentful paint, and to the first
//!    animation frame with timeline rows in the DOM (both from navigation start);
//! 3. [`RATE`] datagrams a second for [`SECS`] s, paced in 10 ms ticks, while the page
//!    records long tasks (`PerformanceObserver` `longtask`) and the gaps between animation
//!    frames; CDP's `Performance.getMetrics` gives the main thread's busy time;
//! 4. the page's `#count-events` must reach exactly what the lab published
//!    (`wirelab_events_total`), else the run is listed as a failed check.
//!
//! The bar: no long task during the flood and its catch-up (the browser reports as long
//! every task over 50 ms).

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::Ctx;
use super::procs::{LOAD_CORE, Server, metric};
use super::report::{Figure, Report, Stat};

/// This figure's own ports (in the suite's range, below the ephemeral ports, and apart
/// from the other figures' so that a lab left over from one of them can't answer here):
/// the lab's dashboard, HTTP, TCP and UDP services, and Chromium's DevTools.
const DASH: u16 = 31180;
const HTTP: u16 = 31181;
const TCP: u16 = 31182;
const UDP: u16 = 31183;
const CDP_PORT: u16 = 31189;
/// Datagrams in the lab before the page opens (the default backlog holds 1,000).
const SEED: u64 = 1_000;
/// The flood: datagrams a second, for how long, in ticks of 10 ms.
const RATE: u64 = 5_000;
const SECS: u64 = 10;
const TICK: Duration = Duration::from_millis(10);

/// Installed before the page's own scripts: records paints, long tasks, animation frame
/// gaps, the first frame with timeline rows, and the cost of each of the page's event
/// flushes (it publishes `window.__wirelabFlushes`), into `window.__bench`.
const MONITOR: &str = r#"(() => {
  const m = window.__bench = { longTasks: [], gaps: [], paints: {}, rowsAt: null };
  const observe = (type, f) => { try { new PerformanceObserver(l => l.getEntries().forEach(f))
    .observe({ type, buffered: true }); } catch (e) {} };
  observe('longtask', e => m.longTasks.push([e.startTime, e.duration]));
  observe('paint', e => { m.paints[e.name] = e.startTime; });
  m.flushes = []; let flushed = 0;
  Object.defineProperty(window, '__wirelabFlushes', { configurable: true, get: () => null,
    set: v => { m.flushes.push([performance.now(), v[1] - flushed]); flushed = v[1]; } });
  let last = null;
  const frame = t => { if (last !== null) m.gaps.push([t, t - last]); last = t;
    requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  new MutationObserver((_, obs) => {
    if (m.rowsAt === null && document.querySelector('.row')) {
      obs.disconnect();
      requestAnimationFrame(() => { m.rowsAt = performance.now(); });
    }
  }).observe(document, { childList: true, subtree: true });
})()"#;

/// What one run measured.
struct Run {
    fcp_ms: f64,
    rows_ms: f64,
    load_longest_ms: f64,
    long_tasks: usize,
    long_max_ms: f64,
    long_total_ms: f64,
    gap_max_ms: f64,
    gap_p99_ms: f64,
    applied_per_s: f64,
    busy_pct: f64,
    flushes_per_s: f64,
    flush_mean_ms: f64,
    flush_max_ms: f64,
    /// Other programs running under a realtime policy during the flood.
    realtime: Vec<String>,
    counted: u64,
    published: u64,
}

pub(super) fn dashboard(ctx: &Ctx, trace: Option<&str>, report: &mut Report) {
    let mut fig = Figure::new("5. The dashboard", &["figure", "value"]);
    let dist = ctx.root.join("dist");
    sizes(&dist, &mut fig);

    let mut runs = Vec::new();
    let mut errors = Vec::new();
    match chromium() {
        None => errors.push("no Chromium (apt-get install chromium)".to_owned()),
        Some(chrome) => {
            for i in 0..ctx.runs {
                match run(ctx, &chrome, i, trace) {
                    Ok(r) => {
                        if r.counted != r.published {
                            report.failures.push(format!(
                                "dashboard run {i}: the page counted {} events, the lab published {}",
                                r.counted, r.published
                            ));
                        }
                        runs.push(r);
                    }
                    Err(e) => errors.push(format!("run {i}: {e}")),
                }
            }
        }
    }
    for e in &errors {
        report.failures.push(format!("dashboard: {e}"));
    }
    if runs.is_empty() {
        fig.notes.push(format!(
            "The browser measurements did not run: {}",
            errors.join("; ")
        ));
        report.bar(
            "Dashboard: main thread never blocked > 50 ms during a 5,000 events/s flood",
            None,
            "not measured (see failed checks)".into(),
        );
        report.figures.push(fig);
        return;
    }
    let stat = |f: fn(&Run) -> f64| Stat::of(&runs.iter().map(f).collect::<Vec<_>>());
    let rows: [(&str, Stat, usize, &str); 14] = [
        ("first contentful paint", stat(|r| r.fcp_ms), 0, " ms"),
        (
            "first timeline rows painted (1,000-event snapshot)",
            stat(|r| r.rows_ms),
            0,
            " ms",
        ),
        (
            "longest task while loading",
            stat(|r| r.load_longest_ms),
            0,
            " ms",
        ),
        (
            "flood: long tasks (> 50 ms)",
            stat(|r| r.long_tasks as f64),
            0,
            "",
        ),
        (
            "flood: longest long task (0: none)",
            stat(|r| r.long_max_ms),
            0,
            " ms",
        ),
        (
            "flood: long tasks, total",
            stat(|r| r.long_total_ms),
            0,
            " ms",
        ),
        (
            "flood: worst gap between frames",
            stat(|r| r.gap_max_ms),
            0,
            " ms",
        ),
        (
            "flood: gap between frames, p99",
            stat(|r| r.gap_p99_ms),
            1,
            " ms",
        ),
        (
            "flood: events applied per second",
            stat(|r| r.applied_per_s),
            0,
            "",
        ),
        ("flood: main thread busy", stat(|r| r.busy_pct), 0, " %"),
        (
            "flood: the page's event flushes per second",
            stat(|r| r.flushes_per_s),
            0,
            "",
        ),
        (
            "flood: one flush (apply and render), mean",
            stat(|r| r.flush_mean_ms),
            1,
            " ms",
        ),
        (
            "flood: one flush, longest",
            stat(|r| r.flush_max_ms),
            0,
            " ms",
        ),
        (
            "events counted by the page = published by the lab",
            Stat::of(&[runs.iter().filter(|r| r.counted == r.published).count() as f64]),
            0,
            &format!(" of {} runs", runs.len()),
        ),
    ];
    for (what, s, digits, unit) in rows {
        fig.row(vec![what.into(), format!("{}{unit}", s.show(digits))]);
    }
    fig.notes.push(format!(
        "Headless Chromium ({}) pinned to core {LOAD_CORE}, a fresh profile per run, driven over the DevTools protocol; \
         release wirelab pinned to core 0 with `dist/` embedded. Times to first paint are from navigation start. \
         The flood is {RATE} UDP datagrams a second for {SECS} s (paced in 10 ms ticks) after {SEED} seeded ones; \
         its window ends when the page has counted every event the lab published. Long tasks are the browser's \
         own (`PerformanceObserver` `longtask`, > 50 ms); frame gaps are `requestAnimationFrame` deltas; busy is \
         CDP `Performance.getMetrics` `TaskDuration` over the window.",
        first_line_of(&chrome_version())
    ));
    for (i, r) in runs.iter().enumerate() {
        if !r.realtime.is_empty() {
            fig.notes.push(format!(
                "Run {i} is not trustworthy: other programs ran under a realtime policy during its flood \
                 and can take a core from the browser for up to 950 ms a second: {}.",
                r.realtime.join(", ")
            ));
        }
    }
    for e in &errors {
        fig.notes.push(format!("failed {e}"));
    }
    let longest = stat(|r| r.long_max_ms);
    let worst = runs.iter().map(|r| r.long_max_ms).fold(0.0, f64::max);
    let tasks = stat(|r| r.long_tasks as f64);
    report.bar(
        "Dashboard: main thread never blocked > 50 ms during a 5,000 events/s flood",
        Some(runs.iter().all(|r| r.long_tasks == 0) && errors.is_empty()),
        format!(
            "{} long tasks, longest {} ms (worst of {} runs: {worst:.0} ms); first rows painted at {} ms",
            tasks.show(0),
            longest.show(0),
            runs.len(),
            stat(|r| r.rows_ms).show(0)
        ),
    );
    report.figures.push(fig);
}

/// The wasm's size, raw and gzipped.
fn sizes(dist: &Path, fig: &mut Figure) {
    let wasm = std::fs::read_dir(dist).ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "wasm"))
    });
    match wasm {
        Some(w) => {
            let raw = std::fs::metadata(&w).map_or(0, |m| m.len());
            let gz = Command::new("sh")
                .args(["-c", &format!("gzip -9 -c '{}' | wc -c", w.display())])
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or(0);
            fig.row(vec![
                "wasm raw".into(),
                format!("{:.0} KiB", raw as f64 / 1024.0),
            ]);
            fig.row(vec![
                "wasm gzip -9".into(),
                format!("{:.0} KiB", gz as f64 / 1024.0),
            ]);
        }
        None => fig.row(vec![
            "wasm".into(),
            "no dist/ (run cargo xtask dist)".into(),
        ]),
    }
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn chrome_version() -> String {
    chromium()
        .and_then(|c| Command::new(c).arg("--version").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn first_line_of(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// One run: a fresh lab, seed, a fresh browser, load, flood, read.
///
/// With `profile`, the renderer's CPU profile of the flood goes there, and that of the
/// page's load to `<profile>.load` (`.cpuprofile` JSON, for Chromium's DevTools; a wasm
/// built with its name section shows Rust's function names).
fn run(ctx: &Ctx, chrome: &Path, i: usize, profile: Option<&str>) -> Result<Run, String> {
    let _lab = lab(ctx)?;
    let udp = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let to = ("127.0.0.1", UDP);
    // The seed: 100 per 10 ms, so the kernel's buffer never overflows.
    for n in 0..SEED {
        let line = format!("seed {n:04} {}", "·".repeat(40));
        udp.send_to(line.as_bytes(), to)
            .map_err(|e| format!("seed: {e}"))?;
        if n % 100 == 99 {
            std::thread::sleep(TICK);
        }
    }
    wait_for(Duration::from_secs(5), || {
        Ok(metric(DASH, "wirelab_events_total")? >= SEED)
    })
    .map_err(|e| format!("the lab did not take the seed: {e}"))?;

    let browser = Browser::start(chrome, i)?;
    let mut cdp = browser.page()?;
    cdp.call("Page.enable", json!({}))?;
    cdp.call("Performance.enable", json!({}))?;
    cdp.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": MONITOR }),
    )?;
    if profile.is_some() {
        cdp.call("Profiler.enable", json!({}))?;
        cdp.call("Profiler.setSamplingInterval", json!({ "interval": 200 }))?;
        cdp.call("Profiler.start", json!({}))?;
    }
    cdp.call(
        "Page.navigate",
        json!({ "url": format!("http://127.0.0.1:{DASH}/") }),
    )?;
    wait_for(Duration::from_secs(30), || {
        Ok(cdp.eval("window.__bench && window.__bench.rowsAt !== null && document.getElementById('conn-state').textContent === 'connected'")? == json!(true))
    })
    .map_err(|e| format!("the dashboard did not show rows: {e}"))?;
    wait_for(Duration::from_secs(10), || Ok(count(&mut cdp)? >= SEED))
        .map_err(|e| format!("the page did not count the snapshot: {e}"))?;
    // A quiet second, so the load's own work is over before the flood starts.
    std::thread::sleep(Duration::from_secs(1));
    // What the lab published before the backlog the page loaded (and its own start-up
    // events): the page can't have counted those.
    let before_page = metric(DASH, "wirelab_events_total")?.saturating_sub(count(&mut cdp)?);
    if let Some(path) = profile {
        let p = cdp.call("Profiler.stop", json!({}))?;
        let path = format!("{path}.load");
        std::fs::write(&path, p["profile"].to_string())
            .map_err(|e| format!("writing {path}: {e}"))?;
    }
    let loaded = cdp.eval(
        "({ fcp: window.__bench.paints['first-contentful-paint'] || 0, rows: window.__bench.rowsAt, \
           flushes: window.__bench.flushes.slice(0, 4).map(f => [Math.round(f[0]), Math.round(f[1])]), \
           tasks: window.__bench.longTasks.map(t => [Math.round(t[0]), Math.round(t[1])]), \
           longest: Math.max(0, ...window.__bench.longTasks.map(t => t[1])) })",
    )?;
    eprintln!(
        "dashboard run {i}: load [ms from navigation start, ms]: first flushes {}, long tasks {}, first paint {}, rows {}",
        loaded["flushes"], loaded["tasks"], loaded["fcp"], loaded["rows"]
    );

    // The flood.
    let t0 = cdp.eval("performance.now()")?.as_f64().unwrap_or(0.0);
    let count0 = count(&mut cdp)?;
    let busy0 = task_secs(&mut cdp)?;
    if profile.is_some() {
        cdp.call("Profiler.enable", json!({}))?;
        cdp.call("Profiler.setSamplingInterval", json!({ "interval": 200 }))?;
        cdp.call("Profiler.start", json!({}))?;
    }
    let started = Instant::now();
    let rt_before = realtime_others();
    let sender = std::thread::spawn(move || flood(&udp, to));
    let sent = sender
        .join()
        .map_err(|_| "the flood's sender panicked".to_owned())??;
    let t1 = cdp.eval("performance.now()")?.as_f64().unwrap_or(0.0);
    let mut realtime = rt_before;
    for p in realtime_others() {
        if !realtime.contains(&p) {
            realtime.push(p);
        }
    }
    let count1 = count(&mut cdp)?;
    let flood_secs = started.elapsed().as_secs_f64();
    // The lab's intake settles, then the page must count exactly what it published.
    let mut published = 0;
    wait_for(Duration::from_secs(5), || {
        let now = metric(DASH, "wirelab_events_total")?;
        let settled = now == published;
        published = now;
        Ok(settled)
    })?;
    let published = published - before_page;
    let caught_up = wait_for(
        Duration::from_secs(20),
        || Ok(count(&mut cdp)? >= published),
    );
    let t2 = cdp.eval("performance.now()")?.as_f64().unwrap_or(0.0);
    let busy1 = task_secs(&mut cdp)?;
    if let Some(path) = profile {
        let p = cdp.call("Profiler.stop", json!({}))?;
        std::fs::write(path, p["profile"].to_string())
            .map_err(|e| format!("writing {path}: {e}"))?;
        eprintln!("dashboard run {i}: the flood's CPU profile is in {path}");
    }
    let counted = count(&mut cdp)?;
    let lagged = cdp
        .eval("Number(document.getElementById('count-lagged').dataset.value)")?
        .as_u64()
        .unwrap_or(0);
    if lagged > 0 {
        eprintln!("dashboard run {i}: the page was told it missed {lagged} events");
    }
    if let Err(e) = caught_up {
        eprintln!("dashboard run {i}: the page did not catch up: {e}");
    }
    let m = cdp.eval(&format!(
        "(() => {{ const b = window.__bench; \
           const tasks = b.longTasks.filter(t => t[0] >= {t0}).map(t => t[1]); \
           const gaps = b.gaps.filter(g => g[0] >= {t0} && g[0] <= {t2}).map(g => g[1]).sort((a, b) => a - b); \
           const fl = b.flushes.filter(f => f[0] >= {t0} && f[0] <= {t2}).map(f => f[1]); \
           return {{ tasks, flushes: fl.length, flushMean: fl.length ? fl.reduce((a, c) => a + c, 0) / fl.length : 0, \
             flushMax: Math.max(0, ...fl), \
             flushTop: b.flushes.filter(f => f[0] >= {t0} && f[0] <= {t2}).sort((a, c) => c[1] - a[1]).slice(0, 8).map(f => [Math.round(f[0] - {t0}), Math.round(f[1])]), \
             gapTop: b.gaps.filter(g => g[0] >= {t0} && g[0] <= {t2}).sort((a, c) => c[1] - a[1]).slice(0, 5).map(g => [Math.round(g[0] - {t0}), Math.round(g[1])]), \
             longAt: b.longTasks.filter(t => t[0] >= {t0}).map(t => [Math.round(t[0] - {t0}), Math.round(t[1])]), gapMax: gaps.length ? gaps[gaps.length - 1] : 0, \
             gapP99: gaps.length ? gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * 0.99))] : 0 }}; }})()"
    ))?;
    browser.close(&mut cdp);
    let tasks: Vec<f64> = m["tasks"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    let window_s = ((t2 - t0) / 1000.0).max(0.001);
    eprintln!(
        "dashboard run {i}: sent {sent} in {flood_secs:.1} s; page {count0} -> {count1} (end of flood) -> {counted}, lab {published}; long tasks {tasks:?}"
    );
    eprintln!(
        "dashboard run {i}: [ms into the flood, ms]: long tasks {}, costliest flushes {}, longest frame gaps {}",
        m["longAt"], m["flushTop"], m["gapTop"]
    );
    Ok(Run {
        fcp_ms: num(&loaded["fcp"]),
        rows_ms: num(&loaded["rows"]),
        load_longest_ms: num(&loaded["longest"]),
        long_tasks: tasks.len(),
        long_max_ms: tasks.iter().copied().fold(0.0, f64::max),
        long_total_ms: tasks.iter().fold(0.0, |a, b| a + b),
        gap_max_ms: num(&m["gapMax"]),
        gap_p99_ms: num(&m["gapP99"]),
        applied_per_s: count1.saturating_sub(count0) as f64 / ((t1 - t0) / 1000.0).max(0.001),
        busy_pct: 100.0 * (busy1 - busy0) / window_s,
        flushes_per_s: num(&m["flushes"]) / window_s,
        flush_mean_ms: num(&m["flushMean"]),
        flush_max_ms: num(&m["flushMax"]),
        realtime,
        counted,
        published,
    })
}

/// A release wirelab on this figure's ports, with the suite's flags, pinned to core 0.
fn lab(ctx: &Ctx) -> Result<Server, String> {
    if TcpStream::connect(("127.0.0.1", CDP_PORT)).is_ok() {
        return Err(format!(
            "127.0.0.1:{CDP_PORT} is already taken (a browser left over?)"
        ));
    }
    ctx.wirelab_on(super::LabPorts {
        dash: DASH,
        http: HTTP,
        tcp: TCP,
        udp: UDP,
    })
}

/// [`RATE`] datagrams a second for [`SECS`] s, on an absolute 10 ms schedule.
fn flood(udp: &UdpSocket, to: (&str, u16)) -> Result<u64, String> {
    let per_tick = RATE * TICK.as_millis() as u64 / 1000;
    let ticks = SECS * 1000 / TICK.as_millis() as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    for t in 0..ticks {
        let at = start + TICK * t as u32;
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for _ in 0..per_tick {
            udp.send_to(format!("flood-{sent:06}").as_bytes(), to)
                .map_err(|e| format!("flood: {e}"))?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Programs other than kernel threads and this figure's own running under SCHED_FIFO or
/// SCHED_RR (`pid name`):
/// they take a core from the browser whenever they want it, so a run beside them measures
/// them, not the page.
fn realtime_others() -> Vec<String> {
    let Ok(out) = Command::new("ps")
        .args(["-eo", "pid,ppid,cls,comm", "--no-headers"])
        .output()
    else {
        return Vec::new();
    };
    let me = std::process::id().to_string();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [pid, ppid, cls, comm, ..] = f.as_slice() else {
                return None;
            };
            let kernel = *pid == "2" || *ppid == "2";
            // This figure's own lab runs under `--rt` too.
            let ours = *ppid == me;
            (!kernel && !ours && matches!(*cls, "FF" | "RR")).then(|| format!("{pid} {comm}"))
        })
        .collect()
}

/// The page's `#count-events`.
fn count(cdp: &mut Cdp) -> Result<u64, String> {
    let v = cdp.eval(
        "(() => { const e = document.getElementById('count-events'); return e ? Number(e.dataset.value) : 0 })()",
    )?;
    Ok(v.as_u64().unwrap_or(0))
}

/// The renderer's main thread busy time so far (CDP `TaskDuration`), in seconds.
fn task_secs(cdp: &mut Cdp) -> Result<f64, String> {
    let v = cdp.call("Performance.getMetrics", json!({}))?;
    v["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|x| x["name"] == "TaskDuration"))
        .and_then(|x| x["value"].as_f64())
        .ok_or_else(|| "no TaskDuration in Performance.getMetrics".to_owned())
}

/// Polls `f` every 50 ms until it says true, at most `limit`.
fn wait_for(limit: Duration, mut f: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
    let until = Instant::now() + limit;
    let mut last_err = String::new();
    while Instant::now() < until {
        match f() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(if last_err.is_empty() {
        format!("not within {limit:?}")
    } else {
        format!("not within {limit:?} ({last_err})")
    })
}

/// A headless Chromium pinned to the load core at niceness -10, with its DevTools port
/// open; killed and its profile removed on drop.
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Browser {
    fn start(chrome: &Path, i: usize) -> Result<Browser, String> {
        let profile =
            std::env::temp_dir().join(format!("wirelab-bench-chromium-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        // Pinned and at the suite's niceness, but never under `--rt`'s SCHED_FIFO: Chromium's
        // threads on one core then wait on each other forever, and the FIFO ones starve the
        // whole machine (seen: a load average of 113 and a run that never finished).
        let child = Command::new("nice")
            .args(["-n", "-10", "taskset", "-c", LOAD_CORE])
            .arg(chrome)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                "--window-size=1280,800",
            ])
            .arg(format!("--remote-debugging-port={CDP_PORT}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", chrome.display()))?;
        let browser = Browser { child, profile };
        wait_for(Duration::from_secs(15), || {
            Ok(TcpStream::connect(("127.0.0.1", CDP_PORT)).is_ok())
        })
        .map_err(|e| format!("Chromium's DevTools port {CDP_PORT}: {e}"))?;
        Ok(browser)
    }

    /// The DevTools session of the page Chromium opened.
    fn page(&self) -> Result<Cdp, String> {
        let mut url = None;
        wait_for(Duration::from_secs(10), || {
            let body = devtools_get("/json/list")?;
            let list: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            url = list.as_array().and_then(|l| {
                l.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                    .map(str::to_owned)
            });
            Ok(url.is_some())
        })
        .map_err(|e| format!("no page target in Chromium: {e}"))?;
        Cdp::connect(&url.unwrap_or_default())
    }

    /// Asks Chromium to quit (it is killed on drop anyway).
    fn close(&self, cdp: &mut Cdp) {
        let _ = cdp.send_only("Browser.close");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `GET path` from Chromium's DevTools HTTP server (HTTP/1.1: it ignores HTTP/1.0), the
/// body read up to its `Content-Length`.
fn devtools_get(path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", CDP_PORT)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{CDP_PORT}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if n == 0 || len.is_some_and(|len| body.len() >= len) {
                return Ok(body.to_owned());
            }
        }
        if n == 0 {
            return Err(format!("DevTools {path}: the connection closed early"));
        }
    }
}

/// A DevTools protocol session over a WebSocket: one call at a time, events ignored.
struct Cdp {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Cdp {
    fn connect(url: &str) -> Result<Cdp, String> {
        let (ws, _) = tungstenite::connect(url).map_err(|e| format!("CDP {url}: {e}"))?;
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
        }
        Ok(Cdp { ws, next_id: 0 })
    }

    fn send_only(&mut self, method: &str) -> Result<u64, String> {
        self.next_id += 1;
        let msg = json!({ "id": self.next_id, "method": method, "params": {} });
        self.ws
            .send(Message::text(msg.to_string()))
            .map_err(|e| format!("CDP {method}: {e}"))?;
        Ok(self.next_id)
    }

    /// Calls `method` and returns its `result`.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(msg.to_string()))
            .map_err(|e| format!("CDP {method}: {e}"))?;
        // Events come in between; a bounded number of them.
        for _ in 0..100_000 {
            let reply = self.ws.read().map_err(|e| format!("CDP {method}: {e}"))?;
            let Message::Text(text) = reply else { continue };
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if v["id"] == id {
                if let Some(err) = v.get("error") {
                    return Err(format!("CDP {method}: {err}"));
                }
                return Ok(v["result"].clone());
            }
        }
        Err(format!("CDP {method}: no reply among 100,000 messages"))
    }

    /// Evaluates `expr` in the page and returns its value.
    fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("script failed: {ex}"));
        }
        Ok(r["result"]["value"].clone())
    }
}
