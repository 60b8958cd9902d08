//! A sparkline of the last minute (inline SVG): a line, and an optional faint area.
//!
//! A function, not a component: its chart card renders it whenever its figures change,
//! which is whenever a sparkline's would.

use yew::prelude::*;

use crate::charts::{nice_max, spark_path};
use crate::fmt;

/// Width and height of the drawing, in SVG units.
const W: f64 = 160.0;
const H: f64 = 32.0;

/// `values` as a line, and `area` (a second series, on its own scale) as a faint area behind
/// it; `class` gives the colour (`tcp`, `udp`, ...), `label` says it for screen readers.
pub fn sparkline(values: &[f64], area: Option<&[f64]>, class: &'static str, label: String) -> Html {
    let max = nice_max(values.iter().copied().fold(0.0, f64::max));
    let line = spark_path(values, W, H - 1.0, max, false);
    let area = area.map(|a| {
        let amax = nice_max(a.iter().copied().fold(0.0, f64::max));
        spark_path(a, W, H - 1.0, amax, true)
    });
    html! {
        <svg class={classes!("spark", class)} viewBox={format!("0 0 {} {}", fmt::short(W, 1), fmt::short(H, 1))}
            preserveAspectRatio="none" role="img" aria-label={label}>
            if let Some(d) = area {
                <path class="area" d={d} />
            }
            <path class="line" d={line} />
        </svg>
    }
}
