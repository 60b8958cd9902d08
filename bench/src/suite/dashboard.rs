//! Figure 5: the dashboard. The wasm sizes from `dist/`.

use std::path::Path;
use std::process::Command;

use super::Ctx;
use super::report::{Figure, Report};
use crate::util::Flags;

/// Figure 5: what `cargo xtask dist` reported (the browser measurements are not automated
/// yet).
pub(super) fn dashboard(_ctx: &Ctx, flags: &Flags, report: &mut Report) {
    let mut fig = Figure::new("5. The dashboard", &["figure", "value"]);
    let dist = Path::new(flags.opt("root").unwrap_or(".")).join("dist");
    let wasm = std::fs::read_dir(&dist).ok().and_then(|d| {
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
    fig.notes.push("Time to first render and long tasks during a 5,000 events/s flood (headless Chromium over CDP) are not automated yet.".into());
    report.bar(
        "Dashboard: main thread never blocked > 50 ms during a 5,000 events/s flood",
        None,
        "not automated yet".into(),
    );
    report.figures.push(fig);
}
