//! Figure 7: how accurate the lab's faults (toxiproxy's toxics) are. One lab, with
//! toxiproxy's API on, and three proxies; each toxic is added through the API
//! (`POST /proxies/NAME/toxics`), measured, and taken off again (`POST /reset`).
//!
//! - Latency: `tcp-rtt` (64-byte messages at a fixed rate, each timed from its write to
//!   its echo) through a `tcp` proxy, without a toxic and with a 100 ms `latency` on
//!   `downstream`; what the toxic adds is the round trip with it, at p50 and at p99,
//!   minus the typical one (p50) without it: the tail with the toxic is the toxic's.
//! - Bandwidth: `tcp-drain` (an upstream writing all it can, read for 10 s from the
//!   first byte) through a `tcp` proxy with a 10,000 KB/s `bandwidth` on `downstream`.
//! - Datagrams: `udp-count` (numbered datagrams, paced, through a `udp` proxy to an
//!   upstream that counts what reaches it) with no toxic (nothing may go missing), then
//!   `loss`, `packet_loss`, `duplicate` and `reorder` each on `upstream`: the count of
//!   datagrams lost, duplicated or late must fall inside the 99.9% binomial bounds. The
//!   lab's own count of what each toxic did (`wirelab_toxic_acted_total`), and of the
//!   datagrams that reached it (`wirelab_toxic_bytes_total` / 64), are shown beside it.
//!
//! The lab on the server core, every load tool (each with its own upstream) on the load
//! core. The relay without a toxic is figures 5 and 5b.

use std::time::Duration;

use super::procs::{self, http_get, http_send};
use super::report::{Figure, Report, Stat};
use super::{Ctx, DASH, LabPorts};

/// Where toxiproxy's API listens (figure 6's ports end at 31102).
const API: u16 = 31103;
/// The `tcp` proxy of the latency runs.
const LATENCY_PROXY: u16 = 31104;
/// The `tcp` proxy of the bandwidth runs.
const BANDWIDTH_PROXY: u16 = 31105;
/// The `udp` proxy of the datagram runs.
const UDP_PROXY: u16 = 31106;
/// `tcp-rtt`'s echo upstream.
const ECHO: u16 = 31107;
/// `tcp-drain`'s upstream.
const SOURCE: u16 = 31108;
/// `udp-count`'s counting upstream.
const UDP_SINK: u16 = 31109;
/// The latency toxic's `latency`, in ms.
const LATENCY_MS: i64 = 100;
/// How far from [`LATENCY_MS`] the added p50 and p99 may be, in ms.
const LATENCY_P50_MS: f64 = 1.0;
/// See [`LATENCY_P50_MS`].
const LATENCY_P99_MS: f64 = 5.0;
/// `tcp-rtt`'s messages per second.
const RTT_RATE: u32 = 200;
/// The bandwidth toxic's `rate`, in KB/s (1 KB = 1,000 bytes).
const RATE_KB: u64 = 10_000;
/// How far from [`RATE_KB`] the measured rate may be, as a share of it.
const RATE_SHARE: f64 = 0.05;
/// `udp-count`'s datagrams per second.
const UDP_RATE: u64 = 10_000;
/// `udp-count`'s bytes per datagram.
const UDP_SIZE: u64 = 64;
/// The normal quantile of a two-sided 99.9% interval.
const Z: f64 = 3.29;

/// The datagram toxics measured: a label, the toxic's JSON, its name, its chance, and
/// which of `udp-count`'s counts it makes.
const DATAGRAM_TOXICS: [(&str, &str, &str, f64, &str); 4] = [
    (
        "`loss` rate 0.1",
        r#"{"name":"loss","type":"loss","stream":"upstream","attributes":{"rate":0.1}}"#,
        "loss",
        0.1,
        "lost",
    ),
    (
        "`packet_loss` loss_rate 0.1 (toxiproxy 2.12's)",
        r#"{"name":"packet_loss","type":"packet_loss","stream":"upstream","attributes":{"loss_rate":0.1}}"#,
        "packet_loss",
        0.1,
        "lost",
    ),
    (
        "`duplicate` rate 0.05",
        r#"{"name":"duplicate","type":"duplicate","stream":"upstream","attributes":{"rate":0.05}}"#,
        "duplicate",
        0.05,
        "duplicated",
    ),
    (
        "`reorder` rate 0.05, gap 3",
        r#"{"name":"reorder","type":"reorder","stream":"upstream","attributes":{"rate":0.05,"gap":3}}"#,
        "reorder",
        0.05,
        "late",
    ),
];

/// The two-sided 99.9% bounds of a binomial count of `n` draws of chance `p` (the normal
/// approximation).
fn binomial_bounds(n: u64, p: f64) -> (f64, f64) {
    let mean = n as f64 * p;
    let spread = Z * (mean * (1.0 - p)).sqrt();
    (mean - spread, mean + spread)
}

/// Adds the toxic `json` to proxy `proxy` through the API.
fn add_toxic(proxy: &str, json: &str) -> Result<(), String> {
    let path = format!("/proxies/{proxy}/toxics");
    match http_send(API, "POST", &path, json)? {
        (200, _) => Ok(()),
        (status, body) => Err(format!("POST {path} {json}: {status} {}", body.trim())),
    }
}

/// Takes every toxic off (toxiproxy's `POST /reset`).
fn reset() -> Result<(), String> {
    match http_send(API, "POST", "/reset", "")? {
        (200..=299, _) => Ok(()),
        (status, body) => Err(format!("POST /reset: {status} {}", body.trim())),
    }
}

/// The lab's counter `name` for toxic `toxic` on proxy `proxy`, from `/metrics`.
fn toxic_counter(name: &str, proxy: &str, toxic: &str) -> Option<u64> {
    let series = format!("{name}{{proxy=\"{proxy}\",toxic=\"{toxic}\"}}");
    procs::metric(DASH, &series).ok()
}

/// A load tool's `key`, as a number.
fn num(
    got: &std::collections::HashMap<String, String>,
    tool: &str,
    key: &str,
) -> Result<f64, String> {
    got.get(key)
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| format!("{tool}: no {key} in its result"))
}

/// One `tcp-rtt` run of `secs` through the latency proxy: (p50, p99) in ms.
fn rtt(ctx: &Ctx, secs: u64) -> Result<(f64, f64), String> {
    let (relay, echo) = (
        format!("127.0.0.1:{LATENCY_PROXY}"),
        format!("127.0.0.1:{ECHO}"),
    );
    let (rate, s) = (RTT_RATE.to_string(), secs.to_string());
    let args = [
        "tcp-rtt", "--relay", &relay, "--echo", &echo, "--rate", &rate, "--secs", &s,
    ];
    let limit = Duration::from_secs(secs + 30);
    let got = procs::load(&ctx.bench, &ctx.bench_args(&args), limit)?;
    let ms = |k: &str| num(&got, "tcp-rtt", k).map(|us| us / 1000.0);
    Ok((ms("p50_us")?, ms("p99_us")?))
}

/// One `tcp-drain` run of `secs` through the bandwidth proxy: (KB/s, slowest and fastest
/// whole second in KB).
fn drain(ctx: &Ctx, secs: u64) -> Result<(f64, f64, f64), String> {
    let (relay, source) = (
        format!("127.0.0.1:{BANDWIDTH_PROXY}"),
        format!("127.0.0.1:{SOURCE}"),
    );
    let s = secs.to_string();
    let args = [
        "tcp-drain",
        "--relay",
        &relay,
        "--source",
        &source,
        "--secs",
        &s,
    ];
    let limit = Duration::from_secs(secs + 30);
    let got = procs::load(&ctx.bench, &ctx.bench_args(&args), limit)?;
    let n = |k: &str| num(&got, "tcp-drain", k);
    Ok((n("kb_per_s")?, n("window_min")?, n("window_max")?))
}

/// What one `udp-count` run counted.
struct Counted {
    lost: u64,
    duplicated: u64,
    late: u64,
}

impl Counted {
    /// The count named `key` (`lost`, `duplicated` or `late`).
    fn get(&self, key: &str) -> u64 {
        match key {
            "lost" => self.lost,
            "duplicated" => self.duplicated,
            _ => self.late,
        }
    }
}

/// The kernel's count of datagrams dropped because a socket's receive buffer was full
/// (`RcvbufErrors` in /proc/net/snmp), on the whole machine.
fn rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// What the kernel dropped during the datagram runs, and the runs made again for it.
#[derive(Default)]
struct Kernel {
    /// Runs made again.
    again: Vec<String>,
    /// The last attempt of a run still saw the kernel drop datagrams.
    dirty: bool,
}

/// Runs made at most for one datagram figure: one that the kernel dropped datagrams
/// during (a full receive buffer: another program took the lab's core for a while) is made
/// again, as such a drop is no toxic's.
const ATTEMPTS: usize = 3;

/// One clean `udp-count` run of `n` datagrams through the udp proxy, with `toxic` (its
/// JSON and name) on for it: what it counted, and the lab's own counts for the toxic (what
/// it did, datagrams that reached it).
fn count_clean(
    ctx: &Ctx,
    n: u64,
    toxic: Option<(&str, &str)>,
    kernel: &mut Kernel,
) -> Result<(Counted, Option<u64>, Option<u64>), String> {
    let label = toxic.map_or("no toxic", |(_, name)| name);
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        reset()?;
        if let Some((json, _)) = toxic {
            add_toxic("dg", json)?;
        }
        let before = rcvbuf_errors();
        let c = count(ctx, n)?;
        let dropped = rcvbuf_errors()
            .zip(before)
            .map_or(0, |(a, b)| a.saturating_sub(b));
        // The lab's counters are read at each scrape.
        std::thread::sleep(Duration::from_millis(200));
        let (acted, seen) = match toxic {
            Some((_, name)) => (
                toxic_counter("wirelab_toxic_acted_total", "dg", name),
                toxic_counter("wirelab_toxic_bytes_total", "dg", name).map(|b| b / UDP_SIZE),
            ),
            None => (None, None),
        };
        reset()?;
        if dropped == 0 {
            return Ok((c, acted, seen));
        }
        last = Some((c, acted, seen));
        kernel.again.push(format!(
            "{label}: attempt {attempt}, the kernel dropped {dropped} datagrams (full \
             receive buffer)"
        ));
    }
    kernel.dirty = true;
    last.ok_or_else(|| "no run".to_owned())
}

/// One `udp-count` run of `n` datagrams through the udp proxy.
fn count(ctx: &Ctx, n: u64) -> Result<Counted, String> {
    let (relay, sink) = (
        format!("127.0.0.1:{UDP_PROXY}"),
        format!("127.0.0.1:{UDP_SINK}"),
    );
    let (c, rate, size) = (n.to_string(), UDP_RATE.to_string(), UDP_SIZE.to_string());
    let args = [
        "udp-count",
        "--relay",
        &relay,
        "--sink",
        &sink,
        "--count",
        &c,
        "--rate",
        &rate,
        "--size",
        &size,
    ];
    let limit = Duration::from_secs(n / UDP_RATE + 30);
    let got = procs::load(&ctx.bench, &ctx.bench_args(&args), limit)?;
    let k = |key: &str| num(&got, "udp-count", key).map(|v| v as u64);
    Ok(Counted {
        lost: k("lost")?,
        duplicated: k("duplicated")?,
        late: k("late")?,
    })
}

/// Figure 7: see the module docs.
pub(super) fn faults(ctx: &Ctx, report: &mut Report) -> Result<(), String> {
    const LATENCY_BAR: &str =
        "Faults: a 100 ms latency toxic adds 100 ± 1 ms at p50, ± 5 ms at p99";
    const BANDWIDTH_BAR: &str = "Faults: a bandwidth toxic holds its rate within 5%";
    const DATAGRAM_BAR: &str =
        "Faults: loss, duplication and reorder inside the 99.9% binomial bounds";
    let (rtt_secs, drain_secs, datagrams) = match ctx.quick {
        true => (3, 3, 20_000u64),
        false => (10, 10, 100_000u64),
    };
    let lat = format!("lat=tcp://127.0.0.1:{LATENCY_PROXY}->127.0.0.1:{ECHO}");
    let bw = format!("bw=tcp://127.0.0.1:{BANDWIDTH_PROXY}->127.0.0.1:{SOURCE}");
    let dg = format!("dg=udp://127.0.0.1:{UDP_PROXY}->127.0.0.1:{UDP_SINK}");
    let extra = ["--proxy", &lat, "--proxy", &bw, "--proxy", &dg];
    let lab = ctx.wirelab_api(LabPorts::suite(), Some(API), &extra)?;
    let mut kernel = Kernel::default();
    match http_get(API, "/version") {
        Ok((200, _)) => {}
        Ok((status, body)) => {
            return Err(format!(
                "toxiproxy's API answered /version with {status} {body}"
            ));
        }
        Err(e) => return Err(format!("toxiproxy's API on port {API}: {e}")),
    }

    // Latency: without, then with the toxic, in each run.
    let latency = format!(
        r#"{{"name":"latency","type":"latency","stream":"downstream","attributes":{{"latency":{LATENCY_MS}}}}}"#
    );
    let (mut base50, mut base99, mut add50, mut add99) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        reset()?;
        let (b50, b99) = rtt(ctx, rtt_secs)?;
        add_toxic("lat", &latency)?;
        let (t50, t99) = rtt(ctx, rtt_secs)?;
        reset()?;
        base50.push(b50);
        base99.push(b99);
        add50.push(t50 - b50);
        add99.push(t99 - b50);
    }

    // Bandwidth.
    let bandwidth = format!(
        r#"{{"name":"bandwidth","type":"bandwidth","stream":"downstream","attributes":{{"rate":{RATE_KB}}}}}"#
    );
    let (mut rates, mut slowest, mut fastest) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        add_toxic("bw", &bandwidth)?;
        let (kb, lo, hi) = drain(ctx, drain_secs)?;
        reset()?;
        rates.push(kb);
        slowest.push(lo);
        fastest.push(hi);
    }

    // Datagrams, once (the issue's sample is one of 100,000): without a toxic first
    // (nothing may go missing for other reasons), then each toxic on its own.
    let (clean, _, _) = count_clean(ctx, datagrams, None, &mut kernel)?;
    let mut counts = Vec::new();
    for (_, json, name, _, key) in DATAGRAM_TOXICS {
        let (c, acted, seen) = count_clean(ctx, datagrams, Some((json, name)), &mut kernel)?;
        counts.push((c.get(key), acted, seen));
    }
    drop(lab);

    let mut fig = Figure::new(
        "7. Fault accuracy: what the toxics do, measured",
        &[
            "fault (toxic, stream)",
            "measured",
            "bounds",
            "the lab's own count (`acted`)",
            "within",
        ],
    );
    let yes = |ok: bool| if ok { "yes" } else { "**no**" }.to_owned();
    let (a50, a99) = (Stat::of(&add50), Stat::of(&add99));
    let target = LATENCY_MS as f64;
    let ok50 = (a50.median - target).abs() <= LATENCY_P50_MS;
    let ok99 = (a99.median - target).abs() <= LATENCY_P99_MS;
    fig.row(vec![
        format!("`latency` {LATENCY_MS} ms, downstream: added at p50"),
        format!("{} ms", a50.show(3)),
        format!("{target:.0} ± {LATENCY_P50_MS:.0} ms"),
        String::new(),
        yes(ok50),
    ]);
    fig.row(vec![
        format!("`latency` {LATENCY_MS} ms, downstream: added at p99"),
        format!("{} ms", a99.show(3)),
        format!("{target:.0} ± {LATENCY_P99_MS:.0} ms"),
        String::new(),
        yes(ok99),
    ]);
    let rate = Stat::of(&rates);
    let set = RATE_KB as f64;
    let ok_rate = (rate.median - set).abs() <= RATE_SHARE * set;
    fig.row(vec![
        format!("`bandwidth` {RATE_KB} KB/s, downstream: over {drain_secs} s"),
        format!("{} KB/s", rate.show(0)),
        format!(
            "{:.0}–{:.0} KB/s (± {:.0}%)",
            set * (1.0 - RATE_SHARE),
            set * (1.0 + RATE_SHARE),
            RATE_SHARE * 100.0
        ),
        String::new(),
        yes(ok_rate),
    ]);
    let clean_ok = clean.lost == 0 && clean.duplicated == 0 && clean.late == 0;
    fig.row(vec![
        "no toxic (udp)".into(),
        format!(
            "{} lost, {} duplicated, {} late of {datagrams}",
            clean.lost, clean.duplicated, clean.late
        ),
        "0".into(),
        String::new(),
        yes(clean_ok),
    ]);
    if !clean_ok {
        report.failures.push(format!(
            "faults: datagrams went missing, doubled or late with no toxic on: the \
             datagram rows are not to be trusted ({UDP_RATE}/s may be too fast here)"
        ));
    }
    if kernel.dirty {
        report.failures.push(format!(
            "faults: the kernel dropped datagrams (full receive buffers) in every one of \
             {ATTEMPTS} attempts of a datagram run: its row counts them too"
        ));
    }
    let mut datagrams_ok = clean_ok;
    let mut detail = Vec::new();
    for ((label, _, _, p, key), (c, acted, seen)) in DATAGRAM_TOXICS.iter().zip(&counts) {
        let (lo, hi) = binomial_bounds(datagrams, *p);
        let inside = (lo..=hi).contains(&(*c as f64));
        datagrams_ok &= inside;
        let show = |v: &Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
        if seen.is_some_and(|s| s != datagrams) {
            report.failures.push(format!(
                "faults: {label}: {} datagrams reached the toxic, not the {datagrams} sent",
                show(seen)
            ));
        }
        fig.row(vec![
            format!("{label}, upstream: datagrams {key}"),
            format!("{c} of {datagrams}"),
            format!("{lo:.0}–{hi:.0}"),
            format!("{} of {} it saw", show(acted), show(seen)),
            yes(inside),
        ]);
        detail.push(format!("{key} {c} ({lo:.0}–{hi:.0})"));
    }

    fig.notes.push(format!(
        "{} run(s); one lab (`--toxiproxy-api 127.0.0.1:{API}`, proxies `lat` and `bw` \
         (tcp) and `dg` (udp)) on core {}, each load tool with its own upstream on core {}. \
         Toxics added with `POST /proxies/NAME/toxics` and taken off with `POST /reset`.",
        ctx.runs,
        procs::SERVER_CORE,
        procs::LOAD_CORE
    ));
    fig.notes.push(format!(
        "Latency: `tcp-rtt` writes a 64-byte message every {} ms for {rtt_secs} s (after \
         20 not counted) through `lat` to an echo; each is timed from its write to its echo. \
         Added = the run's p50 (p99) with the toxic minus the same run's p50 without it \
         (without: p50 {} ms, p99 {} ms; its p99 is not taken off, so the tail with the \
         toxic, the lab's own jitter included, counts whole).",
        1000 / RTT_RATE,
        Stat::of(&base50).show(3),
        Stat::of(&base99).show(3)
    ));
    fig.notes.push(format!(
        "Bandwidth: `tcp-drain`'s upstream writes 64 KiB at a time as fast as it can \
         through `bw`; the rate is the bytes read in the {drain_secs} s after the first \
         read (KB = 1,000 bytes){}. Its slowest whole second: {} KB, its fastest: {} KB.",
        if ctx.quick {
            " (10 s without --quick)"
        } else {
            ""
        },
        Stat::of(&slowest).show(0),
        Stat::of(&fastest).show(0)
    ));
    fig.notes.push(format!(
        "Datagrams: `udp-count` sends {datagrams} numbered {UDP_SIZE}-byte datagrams{} at \
         {UDP_RATE}/s through `dg`, the toxic on `upstream`, to an upstream of its own that \
         counts what reaches it, and waits 1.5 s for the last; once, not once per run. \
         Lost: never came. Duplicated: copies beyond the first. Late: its first copy came \
         after a higher-numbered datagram's, which is what `reorder` does to each datagram \
         it holds back (until `gap` later ones have gone; one held back at the very end \
         goes after 1 s with none after it, and is not counted). Bounds: n·p ± \
         3.29·√(n·p·(1−p)) (two-sided 99.9%, normal approximation). The lab's own count: \
         `wirelab_toxic_acted_total` (datagrams dropped, duplicated or held back) of \
         `wirelab_toxic_bytes_total` / {UDP_SIZE} (datagrams that reached the toxic; ? when \
         not read).",
        if ctx.quick {
            " (100,000 without --quick)"
        } else {
            ""
        }
    ));
    fig.notes.push(match kernel.again.is_empty() {
        true => format!(
            "The kernel dropped no datagram during the datagram runs (`RcvbufErrors` in \
             /proc/net/snmp; a run it did would have been made again, {ATTEMPTS} times at \
             most)."
        ),
        false => format!(
            "Made again (the kernel's `RcvbufErrors` in /proc/net/snmp rose during the run: \
             lost to a full receive buffer, not to a toxic; {ATTEMPTS} attempts at most): {}.",
            kernel.again.join("; ")
        ),
    });
    fig.notes.push(
        "The relay with no toxic (that it loses no speed against the relay issue's \
         figures) is figures 5 and 5b."
            .into(),
    );
    report.bar(
        LATENCY_BAR,
        Some(ok50 && ok99),
        format!(
            "added {:.3} ms at p50, {:.3} ms at p99",
            a50.median, a99.median
        ),
    );
    report.bar(
        BANDWIDTH_BAR,
        Some(ok_rate),
        format!(
            "{:.0} KB/s set {RATE_KB} ({:+.2}%) over {drain_secs} s",
            rate.median,
            (rate.median / set - 1.0) * 100.0
        ),
    );
    report.bar(
        DATAGRAM_BAR,
        Some(datagrams_ok),
        format!(
            "{} of {datagrams} datagrams{}",
            detail.join(", "),
            if clean_ok {
                ""
            } else {
                "; some went missing with no toxic"
            }
        ),
    );
    report.figures.push(fig);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issues_bounds() {
        // 100,000 datagrams at 10%: 10,000 ± 3.29 × √9,000 = ± 312.1.
        let (lo, hi) = binomial_bounds(100_000, 0.1);
        assert!(
            (lo - 9687.9).abs() < 0.1 && (hi - 10312.1).abs() < 0.1,
            "{lo} {hi}"
        );
    }
}
