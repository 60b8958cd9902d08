//! Formatting for people: times to the millisecond, sizes, durations, counts. Pure
//! functions; the browser's time-zone offset is passed in, so tests need no browser. (The
//! calendar, and HAR's ISO 8601, are `wirelab_shared::time`'s.)

use wirelab_shared::time::civil_from_days;

/// The parts of a timestamp shifted by `offset_min` minutes (local = UTC + offset).
struct Parts {
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    ms: u32,
}

fn parts(ts_us: u64, offset_min: i32) -> Parts {
    let ms_total = (ts_us / 1000) as i64 + i64::from(offset_min) * 60_000;
    let days = ms_total.div_euclid(86_400_000);
    let in_day = ms_total.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    Parts {
        y,
        mo,
        d,
        h: (in_day / 3_600_000) as u32,
        mi: (in_day / 60_000 % 60) as u32,
        s: (in_day / 1000 % 60) as u32,
        ms: (in_day % 1000) as u32,
    }
}

/// `HH:MM:SS.mmm`, the timeline's time column.
pub fn clock(ts_us: u64, offset_min: i32) -> String {
    let p = parts(ts_us, offset_min);
    format!("{:02}:{:02}:{:02}.{:03}", p.h, p.mi, p.s, p.ms)
}

/// `YYYY-MM-DD HH:MM:SS.mmm`, for tooltips and the detail pane.
pub fn date_time(ts_us: u64, offset_min: i32) -> String {
    let p = parts(ts_us, offset_min);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        p.y, p.mo, p.d, p.h, p.mi, p.s, p.ms
    )
}

/// `v` with `decimals` digits after the point, rounded half away from zero: `fixed(2.25, 1)`
/// is `2.3`. Every non-integer on the page goes through here (or [`short`]) rather than
/// `{:.1}` and `{}`: core's float formatting (Grisu, Dragon4 and their tables) was 16 KB of
/// the wasm. Not finite: `0`.
pub fn fixed(v: f64, decimals: u32) -> String {
    let mut out = String::new();
    fixed_into(&mut out, v, decimals);
    out
}

/// [`fixed`], appended to `out`.
pub fn fixed_into(out: &mut String, v: f64, decimals: u32) {
    use std::fmt::Write;
    let scale = 10u64.pow(decimals.min(9));
    // `as` saturates and takes NaN to 0.
    let n = (v.abs() * scale as f64).round() as u64;
    if v < 0.0 && n > 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", n / scale);
    if scale > 1 {
        let width = decimals.min(9) as usize;
        let _ = write!(out, ".{:0width$}", n % scale);
    }
}

/// [`fixed`] without trailing zeros (and without the point when nothing follows it):
/// `short(2.5, 2)` is `2.5`, `short(640.0, 1)` is `640`.
pub fn short(v: f64, decimals: u32) -> String {
    let mut out = fixed(v, decimals);
    if out.contains('.') {
        let keep = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(keep);
    }
    out
}

/// A byte count: `0 B`, `999 B`, `1.5 KiB`, `12.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let decimals = if v >= 100.0 { 0 } else { 1 };
    format!("{} {}", fixed(v, decimals), UNITS[unit])
}

/// A rate or other non-negative figure in few characters: `0`, `12`, `1.2k`, `34k`, `1.5M`.
pub fn compact(v: f64) -> String {
    let v = v.max(0.0);
    if v < 10.0 && v.fract() != 0.0 {
        fixed(v, 1)
    } else if v < 1000.0 {
        fixed(v, 0)
    } else if v < 10_000.0 {
        fixed(v / 1000.0, 1) + "k"
    } else if v < 1_000_000.0 {
        fixed(v / 1000.0, 0) + "k"
    } else {
        fixed(v / 1_000_000.0, 1) + "M"
    }
}

/// A duration: `850 µs`, `1.24 ms`, `312 ms`, `3.2 s`, `4m 03s`, `2h 05m`.
pub fn duration_us(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else if us < 10_000 {
        fixed(us as f64 / 1000.0, 2) + " ms"
    } else if us < 1_000_000 {
        format!("{} ms", us / 1000)
    } else if us < 60_000_000 {
        fixed(us as f64 / 1e6, 1) + " s"
    } else if us < 3_600_000_000 {
        let s = us / 1_000_000;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let m = us / 60_000_000;
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

/// A connection's, client's, run's or event's number as the page writes it: `#12`.
pub fn id(n: u64) -> String {
    format!("#{n}")
}

/// Two byte counts as the tables pair them (in / out, read / written): `1.5 KiB / 20 B`.
pub fn sizes(a: u64, b: u64) -> String {
    format!("{} / {}", size(a), size(b))
}

/// Two counts as the tables pair them, with thousands separators: `12,345 / 6`.
pub fn counts(a: u64, b: u64) -> String {
    format!("{} / {}", count(a), count(b))
}

/// An integer with thousands separators: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How long ago `since_us` was at `now_us` (`—` when unknown).
pub fn age(now_us: u64, since_us: u64) -> String {
    if since_us == 0 || now_us < since_us {
        "—".to_owned()
    } else {
        duration_us(now_us - since_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-24T21:18:03.123456Z
    const TS: u64 = 1_795_555_083_123_456;

    #[test]
    fn clock_and_dates_to_the_millisecond() {
        assert_eq!(clock(TS, 0), "21:18:03.123");
        assert_eq!(clock(TS, 60), "22:18:03.123");
        assert_eq!(clock(TS, 180), "00:18:03.123");
        assert_eq!(date_time(TS, 180), "2026-11-25 00:18:03.123");
        assert_eq!(date_time(TS, -22 * 60), "2026-11-23 23:18:03.123");
        assert_eq!(date_time(951_782_400_000_000, 0), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn sizes_and_counts() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(200 * 1024 * 1024), "200 MiB");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(id(12), "#12");
        assert_eq!(sizes(1536, 20), "1.5 KiB / 20 B");
        assert_eq!(counts(12_345, 6), "12,345 / 6");
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(compact(999.0), "999");
        assert_eq!(compact(1234.0), "1.2k");
        assert_eq!(compact(56_000.0), "56k");
        assert_eq!(compact(2_500_000.0), "2.5M");
    }

    #[test]
    fn fixed_and_short_numbers() {
        assert_eq!(fixed(2.25, 1), "2.3");
        assert_eq!(fixed(0.04, 1), "0.0");
        assert_eq!(fixed(-1.26, 1), "-1.3");
        assert_eq!(fixed(-0.01, 1), "0.0");
        assert_eq!(fixed(99.999, 2), "100.00");
        assert_eq!(fixed(1.005, 0), "1");
        assert_eq!(fixed(7.0, 3), "7.000");
        assert_eq!(fixed(f64::NAN, 1), "0.0");
        assert_eq!(
            fixed(1e30, 1),
            format!("{}.{}", u64::MAX / 10, u64::MAX % 10)
        );
        assert_eq!(short(2.5, 2), "2.5");
        assert_eq!(short(640.0, 1), "640");
        assert_eq!(short(0.5, 1), "0.5");
        assert_eq!(short(10.0, 0), "10");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_us(850), "850 µs");
        assert_eq!(duration_us(1240), "1.24 ms");
        assert_eq!(duration_us(312_400), "312 ms");
        assert_eq!(duration_us(3_200_000), "3.2 s");
        assert_eq!(duration_us(243_000_000), "4m 03s");
        assert_eq!(duration_us(7_500_000_000), "2h 05m");
        assert_eq!(age(10, 0), "—");
        assert_eq!(age(2_000_000, 1_000_000), "1.0 s");
    }
}
