//! Dates from the events' timestamps (microseconds since the Unix epoch), without a date
//! library: the civil date of a day number, and ISO 8601 in UTC as HAR writes it.

/// Days since 1970-01-01 to a civil date `(year, month, day)` in the proleptic Gregorian
/// calendar, after Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// ISO 8601 in UTC with milliseconds, `2026-11-24T21:18:03.123Z` (what JavaScript's
/// `Date.toISOString` and browsers' HAR exports write); the microseconds are dropped.
pub fn iso8601(ts_us: u64) -> String {
    let ms = ts_us / 1000;
    let (days, in_day) = (ms / 86_400_000, ms % 86_400_000);
    let (y, mo, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_cross_leap_days_and_centuries() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        // 2100 is not a leap year: 28 February is followed by 1 March.
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
    }

    #[test]
    fn iso8601_is_utc_to_the_millisecond() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601(999),
            "1970-01-01T00:00:00.000Z",
            "microseconds dropped"
        );
        assert_eq!(iso8601(951_782_400_001_000), "2000-02-29T00:00:00.001Z");
        assert_eq!(iso8601(1_795_555_083_123_456), "2026-11-24T21:18:03.123Z");
        assert_eq!(iso8601(1_700_000_000_999_999), "2023-11-14T22:13:20.999Z");
        // The last millisecond of a year.
        assert_eq!(iso8601(1_704_067_199_999_000), "2023-12-31T23:59:59.999Z");
    }
}
