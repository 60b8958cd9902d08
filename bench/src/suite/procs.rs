//! Processes for the suite: servers pinned to core 0, load generators pinned to core 1,
//! plain HTTP/1.0 GETs, and reading wrk's output.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::parse_result;

/// The core servers run on.
pub(crate) const SERVER_CORE: &str = "0";
/// The core load generators run on.
pub(crate) const LOAD_CORE: &str = "1";
/// Everything the suite starts runs at this niceness, so that a compile or a test started
/// by someone else on the same machine takes the cores only when the benchmark leaves them
/// idle. (Lowering niceness needs root or CAP_SYS_NICE; without it `nice` says so and runs
/// the program at the usual priority.)
const NICENESS: &str = "-10";

/// `--rt`: run under SCHED_FIFO instead (see [`scheduled`]).
static REALTIME: AtomicBool = AtomicBool::new(false);

/// Makes [`scheduled`] use SCHED_FIFO priority 1 (`chrt -f 1`).
pub(crate) fn set_realtime(on: bool) {
    REALTIME.store(on, Ordering::Relaxed);
}

/// How the suite's processes are scheduled, for the report.
pub(crate) fn scheduling() -> String {
    if REALTIME.load(Ordering::Relaxed) {
        "`chrt -f 1` (SCHED_FIFO; `--rt`)".into()
    } else {
        format!("`nice -n {NICENESS}`")
    }
}

/// `nice -n -10 taskset -c <core>`: for programs that must never run real-time, whatever
/// `--rt` says (a browser: its renderer can keep a core busy for minutes, and under
/// SCHED_FIFO the kernel's throttling would leave everything else on that core 5%).
pub(crate) fn pinned(core: &str) -> Command {
    let mut c = Command::new("nice");
    c.args(["-n", NICENESS, "taskset", "-c", core]);
    c
}

/// The start of the suite's servers and load generators: [`pinned`], or with `--rt`
/// `chrt -f 1 taskset -c <core>`. Niceness does not hold off work in other cgroups (on the
/// shared machine this was written on, compiles elsewhere still took ~40% of the server's
/// core and tripled the fan-out's latency); SCHED_FIFO does. Under it, threads a server
/// lowers with nice (wirelab's recorder) still run at the same real-time priority.
pub(crate) fn scheduled(core: &str) -> Command {
    if REALTIME.load(Ordering::Relaxed) {
        let mut c = Command::new("chrt");
        c.args(["-f", "1", "taskset", "-c", core]);
        c
    } else {
        pinned(core)
    }
}

/// A server under test; killed when dropped.
pub(crate) struct Server {
    child: Child,
}

impl Server {
    /// Starts `cmd` pinned to [`SERVER_CORE`] and waits until `port` accepts connections.
    pub(crate) fn start(
        cmd: &[&str],
        env: &[(&str, String)],
        cwd: &Path,
        port: u16,
    ) -> Result<Server, String> {
        Server::start_on(SERVER_CORE, cmd, env, cwd, port)
    }

    /// [`Server::start`] on `core` (a server that stands for the load side's peer, such as
    /// the relay figure's iperf3 upstream).
    pub(crate) fn start_on(
        core: &str,
        cmd: &[&str],
        env: &[(&str, String)],
        cwd: &Path,
        port: u16,
    ) -> Result<Server, String> {
        // Another suite (or a server left over) on the port would answer for this one.
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Err(format!(
                "127.0.0.1:{port} is already taken before {} started: another benchmark \
                 running, or a server left over? Run one suite at a time.",
                cmd[0]
            ));
        }
        let server = Server::spawn_on(core, cmd, env, cwd)?;
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > until {
                return Err(format!("{cmd:?} did not open port {port} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // A moment for whatever binds after the probed port (the relay's UDP socket).
        std::thread::sleep(Duration::from_millis(300));
        Ok(server)
    }

    /// Starts `cmd` pinned to `core`, without waiting for a port (a server that listens
    /// on UDP only: give it a moment before sending).
    pub(crate) fn spawn_on(
        core: &str,
        cmd: &[&str],
        env: &[(&str, String)],
        cwd: &Path,
    ) -> Result<Server, String> {
        let mut c = scheduled(core);
        c.args(cmd).current_dir(cwd);
        for (k, v) in env {
            c.env(k, v);
        }
        // Its output goes to target/bench-logs/<program>.log, for when it will not start.
        let log = std::fs::create_dir_all(cwd.join("target/bench-logs"))
            .ok()
            .and_then(|()| {
                let name = Path::new(cmd[0])
                    .file_name()?
                    .to_string_lossy()
                    .into_owned();
                std::fs::File::create(cwd.join("target/bench-logs").join(name + ".log")).ok()
            });
        let (out, err) = match log.and_then(|f| Some((f.try_clone().ok()?, f))) {
            Some((a, b)) => (Stdio::from(a), Stdio::from(b)),
            None => (Stdio::null(), Stdio::null()),
        };
        c.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = c.spawn().map_err(|e| format!("starting {cmd:?}: {e}"))?;
        Ok(Server { child })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a load generator pinned to [`LOAD_CORE`] and returns its `RESULT` line.
pub(crate) fn load(
    bench: &Path,
    args: &[String],
    limit: Duration,
) -> Result<HashMap<String, String>, String> {
    let mut child = scheduled(LOAD_CORE)
        .arg(bench)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the load generator: {e}"))?;
    let until = Instant::now() + limit;
    loop {
        if let Some(_status) = child.try_wait().map_err(|e| e.to_string())? {
            break;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("load generator {args:?} ran past {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    out.lines()
        .find_map(parse_result)
        .ok_or_else(|| format!("load generator {args:?} gave no result: {}", err.trim()))
}

/// A load generator that runs until its stdin closes (`dash`, `ws-idle`), pinned to
/// [`LOAD_CORE`]. Its stdout lines arrive through a thread, so a hung client cannot hang
/// the suite.
pub(crate) struct Held {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Held {
    /// Starts it and waits (at most `limit`) for its `READY` line, which it returns.
    pub(crate) fn start(
        bench: &Path,
        args: &[String],
        limit: Duration,
    ) -> Result<(Held, String), String> {
        let mut child = scheduled(LOAD_CORE)
            .arg(bench)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {args:?}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let held = Held {
            child,
            stdin,
            lines,
        };
        let line = held
            .lines
            .recv_timeout(limit)
            .map_err(|_| format!("{args:?} not ready within {limit:?}"))?;
        if !line.starts_with("READY") {
            return Err(format!("{args:?} did not start: {line:?}"));
        }
        Ok((held, line))
    }

    /// Closes its stdin and reads its `RESULT` (waiting at most 30 s).
    pub(crate) fn finish(mut self) -> Result<HashMap<String, String>, String> {
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_secs(30);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(r) = parse_result(&line) {
                        return Ok(r);
                    }
                }
                Err(_) => break,
            }
        }
        Err("no result".to_owned())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.0: (status, body).
pub(crate) fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    http_call(port, &format!("GET {path}"), &request)
}

/// `method path` with a JSON `body` over HTTP/1.0 (toxiproxy's API): (status, body).
pub(crate) fn http_send(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http_call(port, &format!("{method} {path}"), &request)
}

/// Sends `request` (`what`, for errors) to `port` and reads the answer to its end:
/// (status, body).
fn http_call(port: u16, what: &str, request: &str) -> Result<(u16, String), String> {
    let fail = |e: std::io::Error| format!("{what} on port {port}: {e}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(fail)?;
    s.write_all(request.as_bytes()).map_err(fail)?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(fail)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{what} on port {port}: no status line"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// A counter from wirelab's `/metrics`: the line starting with `series `.
pub(crate) fn metric(port: u16, series: &str) -> Result<u64, String> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| format!("no {series} in /metrics"))
}

/// What one wrk run measured.
pub(crate) struct Wrk {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) requests: u64,
    /// Socket errors plus non-2xx/3xx answers.
    pub(crate) errors: u64,
}

/// Runs `wrk -t1 -c64 --latency` pinned to [`LOAD_CORE`].
pub(crate) fn wrk(port: u16, secs: u32) -> Result<Wrk, String> {
    wrk_url(&format!("http://127.0.0.1:{port}/"), secs, &[])
}

/// [`wrk`] against `url` (`https://` too: wrk's OpenSSL, which verifies no certificate),
/// with `headers` (`"Connection: close"`), each passed as `-H`.
pub(crate) fn wrk_url(url: &str, secs: u32, headers: &[&str]) -> Result<Wrk, String> {
    let mut cmd = scheduled(LOAD_CORE);
    cmd.args(["wrk", "-t1", "-c64", "--latency"])
        .arg(format!("-d{secs}s"));
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| format!("could not read wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Wrk> {
    let mut w = Wrk {
        rps: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        requests: 0,
        errors: 0,
    };
    for line in text.lines().map(str::trim) {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["50%", v] => w.p50_ms = duration_ms(v)?,
            ["99%", v] => w.p99_ms = duration_ms(v)?,
            ["Requests/sec:", v] => w.rps = v.parse().ok()?,
            [n, "requests", "in", ..] => w.requests = n.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => w.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                w.errors += rest
                    .iter()
                    .filter_map(|x| x.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    (w.rps > 0.0).then_some(w)
}

fn duration_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_parses() {
        let text = "  Latency Distribution\n     50%  512.00us\n     99%    2.10ms\n  \
                    300000 requests in 5.00s, 30 MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n\
                    Requests/sec:  60000.12\n";
        let w = parse_wrk(text).unwrap();
        assert_eq!((w.requests, w.errors), (300000, 3));
        assert!((w.p50_ms - 0.512).abs() < 1e-9 && (w.p99_ms - 2.1).abs() < 1e-9);
    }
}
