//! Geometry for the small SVG charts: sparklines of the last minute and the pool run's
//! in-use and waiting lines. Pure numbers in, SVG path data out.

use crate::fmt::fixed_into;

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `v`.
pub fn nice_max(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    // The largest power of ten not above `v`, by multiplying (exact up to 1e22): `log10`
    // and `powf` would bring libm's code into the wasm.
    let mut mag = 1.0;
    while mag * 10.0 <= v && mag < 1e300 {
        mag *= 10.0;
    }
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

/// SVG path data for equally spaced `values` in a `w` by `h` box scaled to `max`
/// (0 at the bottom); with `area`, closed down to the baseline for a fill.
pub fn spark_path(values: &[f64], w: f64, h: f64, max: f64, area: bool) -> String {
    if values.is_empty() {
        return String::new();
    }
    let max = if max > 0.0 { max } else { 1.0 };
    let step = if values.len() > 1 {
        w / (values.len() - 1) as f64
    } else {
        0.0
    };
    let mut d = String::with_capacity(values.len() * 12);
    for (i, v) in values.iter().enumerate() {
        let x = i as f64 * step;
        let y = h - (v / max).clamp(0.0, 1.0) * h;
        point(&mut d, if i == 0 { 'M' } else { 'L' }, x, y);
    }
    if area {
        point(&mut d, 'L', (values.len() - 1) as f64 * step, h);
        d.push_str("L0,");
        fixed_into(&mut d, h, 1);
        d.push('Z');
    }
    d
}

/// SVG path data for points `(x, y)` with `x` in `0..=x_max` and `y` in `0..=y_max`,
/// drawn as steps (a count holds until it changes).
pub fn step_path(points: &[(f64, f64)], w: f64, h: f64, x_max: f64, y_max: f64) -> String {
    let (x_max, y_max) = (x_max.max(1e-9), y_max.max(1e-9));
    let mut d = String::new();
    let mut last_y = None;
    for (i, (x, y)) in points.iter().enumerate() {
        let px = (x / x_max).clamp(0.0, 1.0) * w;
        let py = h - (y / y_max).clamp(0.0, 1.0) * h;
        if i == 0 {
            point(&mut d, 'M', px, py);
        } else {
            if let Some(ly) = last_y {
                point(&mut d, 'L', px, ly);
            }
            point(&mut d, 'L', px, py);
        }
        last_y = Some(py);
    }
    d
}

/// One path command: `M12.0,3.5`.
fn point(d: &mut String, command: char, x: f64, y: f64) {
    d.push(command);
    fixed_into(d, x, 1);
    d.push(',');
    fixed_into(d, y, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(5.0), 5.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(4100.0), 5000.0);
        assert_eq!(nice_max(10.0), 10.0);
        assert_eq!(nice_max(1000.0), 1000.0);
        assert_eq!(nice_max(1001.0), 2000.0);
    }

    #[test]
    fn paths() {
        assert_eq!(
            spark_path(&[0.0, 5.0, 10.0], 100.0, 10.0, 10.0, false),
            "M0.0,10.0L50.0,5.0L100.0,0.0"
        );
        assert_eq!(
            spark_path(&[1.0], 10.0, 10.0, 0.0, true),
            "M0.0,0.0L0.0,10.0L0,10.0Z"
        );
        assert_eq!(spark_path(&[], 10.0, 10.0, 1.0, false), "");
        assert_eq!(
            step_path(
                &[(0.0, 0.0), (5.0, 2.0), (10.0, 1.0)],
                100.0,
                20.0,
                10.0,
                2.0
            ),
            "M0.0,20.0L50.0,20.0L50.0,0.0L100.0,0.0L100.0,10.0"
        );
    }
}
