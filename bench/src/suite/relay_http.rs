//! Figure 6: relay mode's HTTP relay. nginx answers `GET /` with a short body; it is asked
//! straight, through a wirelab `http` proxy with a dashboard connected, and through
//! `mitmdump --mode reverse:` (mitmproxy, the closest tool that shows HTTP exchanges as
//! they pass). Each path gets `wrk -t1 -c64` (req/s, p50, p99), then `http-rate` at a
//! fixed 1,000 req/s (latency from when each request was due), whose p99 minus the
//! straight row's is what the relay adds.
//!
//! Same pinning for every row: the relay on the server core, nginx, wrk and `http-rate` on
//! the load core. mitmdump comes from `target/mitm` (a venv with PyPI's mitmproxy:
//! `cargo xtask bench` makes it) or PATH; without it its row is left out, and said.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::procs::{self, Server};
use super::relay::through_lab;
use super::report::{Figure, Report, Stat};
use super::{Ctx, procs_has};

/// Where nginx listens (figure 5's ports end at 31099).
const NGINX: u16 = 31100;
/// Where the wirelab proxy listens.
const PROXY: u16 = 31101;
/// Where mitmdump listens.
const MITM: u16 = 31102;
/// The fixed rate of the latency runs.
const RATE: u32 = 1000;

/// One path's figures over the runs.
#[derive(Default)]
struct Path3 {
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    /// `http-rate`'s p99 at [`RATE`], in ms.
    rate_p99: Vec<f64>,
    errors: u64,
}

impl Path3 {
    /// Measures the server on `port` once.
    fn measure(&mut self, ctx: &Ctx, port: u16, secs: u32) -> Result<(), String> {
        let w = procs::wrk(port, secs)?;
        self.rps.push(w.rps);
        self.p50.push(w.p50_ms);
        self.p99.push(w.p99_ms);
        self.errors += w.errors;
        let addr = format!("127.0.0.1:{port}");
        let args = ctx.bench_args(&[
            "http-rate",
            "--addr",
            &addr,
            "--rate",
            &RATE.to_string(),
            "--secs",
            &secs.to_string(),
        ]);
        let r = procs::load(&ctx.bench, &args, Duration::from_secs(u64::from(secs) + 20))?;
        let get = |k: &str| r.get(k).and_then(|v| v.parse::<f64>().ok());
        self.rate_p99
            .push(get("p99_us").ok_or("http-rate: no p99")? / 1000.0);
        self.errors += get("errors").unwrap_or(0.0) as u64;
        Ok(())
    }
}

/// nginx's configuration, under `dir` (absolute: nginx reads paths from its prefix).
fn nginx_conf(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = &std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\nerror_log stderr;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
           proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           keepalive_requests 1000000;\n\
           server {{\n    listen 127.0.0.1:{NGINX};\n\
             location / {{ return 200 \"Hello World\\n\"; }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// mitmdump's path: the suite's venv, else PATH.
fn mitmdump(ctx: &Ctx) -> Option<String> {
    let venv = ctx.root.join("target/mitm/bin/mitmdump");
    if venv.exists() {
        return Some(venv.to_string_lossy().into_owned());
    }
    procs_has("mitmdump").then(|| "mitmdump".to_owned())
}

pub(super) fn relay_http(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    const BAR: &str = "HTTP relay: ≥ 10x mitmdump req/s, ≤ 1 ms added at p99 at 1,000 req/s";
    if !procs_has("nginx") && !Path::new("/usr/sbin/nginx").exists() {
        report.bar(
            BAR,
            None,
            "not measured: nginx is needed (apt-get install -y nginx-light)".into(),
        );
        return Ok(());
    }
    let nginx_bin = if procs_has("nginx") {
        "nginx"
    } else {
        "/usr/sbin/nginx"
    };
    let secs = if ctx.quick { 2 } else { 4 };
    let dir = ctx.root.join("target/bench-nginx");
    let conf = nginx_conf(&dir)?;
    let prefix = conf.parent().unwrap_or(&dir).to_string_lossy().into_owned();
    let conf = conf.to_string_lossy();
    let mitm = mitmdump(ctx);
    let (mut straight, mut wirelab, mut mitm_runs) =
        (Path3::default(), Path3::default(), Path3::default());
    let mut notes = Vec::new();
    let upstream = format!("127.0.0.1:{NGINX}");
    for i in 0..ctx.runs {
        // One process: killing it leaves no worker behind holding the port.
        let g = "daemon off; master_process off;";
        let nginx_cmd = [nginx_bin, "-p", &prefix, "-c", &conf, "-g", g];
        let _nginx = Server::start_on(procs::LOAD_CORE, &nginx_cmd, &[], &ctx.root, NGINX)?;
        straight.measure(ctx, NGINX, secs)?;

        let proxy = format!("bench=http://127.0.0.1:{PROXY}->{upstream}");
        let ((), d) = through_lab(ctx, &proxy, || wirelab.measure(ctx, PROXY, secs))?;
        let g = |k: &str| d.get(k).map_or("?", String::as_str).to_owned();
        notes.push(format!(
            "run {i}: the dashboard got {} frames, {} missed",
            g("frames"),
            g("missed")
        ));

        if let Some(m) = &mitm {
            let mode = format!("reverse:http://{upstream}");
            let port = MITM.to_string();
            let cmd = [
                m.as_str(),
                "-q",
                "--mode",
                &mode,
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                &port,
            ];
            let _mitm = Server::start(&cmd, &[], &ctx.root, MITM)?;
            mitm_runs.measure(ctx, MITM, secs)?;
        }
    }
    let stat = |v: &[f64]| Stat::of(v);
    let base = stat(&straight.rate_p99).median;
    let mut fig = Figure::new(
        "6. HTTP relay: nginx asked straight and through a relay",
        &[
            "path",
            "req/s (wrk -c64)",
            "p50 ms",
            "p99 ms",
            "p99 ms at 1,000 req/s",
            "added at p99",
        ],
    );
    let mut row = |name: &str, p: &Path3| {
        let r99 = stat(&p.rate_p99);
        fig.row(vec![
            name.to_owned(),
            stat(&p.rps).show(0),
            stat(&p.p50).show(3),
            stat(&p.p99).show(3),
            r99.show(3),
            format!("{:+.3} ms", r99.median - base),
        ]);
    };
    row("straight to nginx", &straight);
    row("wirelab http proxy (1 dashboard connected)", &wirelab);
    if mitm.is_some() {
        row("mitmdump --mode reverse:", &mitm_runs);
    }
    fig.notes.push(format!(
        "wrk -t1 -c64 for {secs} s, then http-rate at {RATE} req/s over 4 kept-alive \
         connections for {secs} s (latency from when each request was due); the relay on \
         core {}, nginx and the clients on core {}.",
        procs::SERVER_CORE,
        procs::LOAD_CORE
    ));
    let errors = straight.errors + wirelab.errors + mitm_runs.errors;
    if errors > 0 {
        fig.notes.push(format!(
            "{errors} requests failed or were not 2xx (straight {}, wirelab {}, mitmdump {})",
            straight.errors, wirelab.errors, mitm_runs.errors
        ));
    }
    if mitm.is_none() {
        fig.notes.push(
            "mitmdump not measured: make target/mitm (python3 -m venv target/mitm && \
             target/mitm/bin/pip install mitmproxy; cargo xtask bench does)"
                .into(),
        );
    }
    fig.notes.extend(notes);
    let wl = stat(&wirelab.rps).median;
    let added = stat(&wirelab.rate_p99).median - base;
    let (ok, vs_mitm) = match mitm {
        Some(_) => {
            let m = stat(&mitm_runs.rps).median;
            (
                Some(wl >= 10.0 * m && added <= 1.0),
                format!("{:.1}x mitmdump", wl / m),
            )
        }
        None => (None, "mitmdump not measured".to_owned()),
    };
    report.bar(
        BAR,
        ok,
        format!("{wl:.0} req/s, {vs_mitm}; {added:+.3} ms at p99 at {RATE} req/s"),
    );
    report.figures.push(fig);
    Ok(())
}
