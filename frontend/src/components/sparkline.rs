//! A sparkline of the last minute (inline SVG): a line, and an optional faint area.

use yew::prelude::*;

use crate::charts::{nice_max, spark_path};
use crate::fmt;

#[derive(Properties, PartialEq)]
pub struct SparkProps {
    pub values: Vec<f64>,
    /// A second series drawn as a faint area behind the line, on its own scale.
    #[prop_or_default]
    pub area: Option<Vec<f64>>,
    /// CSS class giving the colour (`tcp`, `udp`, ...).
    pub class: &'static str,
    #[prop_or(160.0)]
    pub width: f64,
    #[prop_or(32.0)]
    pub height: f64,
    pub label: String,
}

#[function_component]
pub fn Sparkline(props: &SparkProps) -> Html {
    let (w, h) = (props.width, props.height);
    let max = nice_max(props.values.iter().copied().fold(0.0, f64::max));
    let line = spark_path(&props.values, w, h - 1.0, max, false);
    let area = props.area.as_ref().map(|a| {
        let amax = nice_max(a.iter().copied().fold(0.0, f64::max));
        spark_path(a, w, h - 1.0, amax, true)
    });
    html! {
        <svg class={classes!("spark", props.class)} viewBox={format!("0 0 {} {}", fmt::short(w, 1), fmt::short(h, 1))}
            preserveAspectRatio="none" role="img" aria-label={props.label.clone()}>
            if let Some(d) = area {
                <path class="area" d={d} />
            }
            <path class="line" d={line} />
        </svg>
    }
}
