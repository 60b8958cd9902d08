//! The figures of a suite run, and BENCHMARKS.md.

use std::fmt::Write;

/// The median, min and max of several runs.
#[derive(Clone, Copy, Default)]
pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) n: usize,
}

impl Stat {
    pub(crate) fn of(values: &[f64]) -> Stat {
        if values.is_empty() {
            return Stat::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Stat {
            median,
            min: v[0],
            max: v[v.len() - 1],
            n: v.len(),
        }
    }

    /// `median (min–max)`, with `digits` decimals.
    pub(crate) fn show(&self, digits: usize) -> String {
        if self.n == 0 {
            return "—".to_owned();
        }
        if self.n == 1 {
            return format!("{:.*}", digits, self.median);
        }
        format!(
            "{:.*} ({:.*}–{:.*})",
            digits, self.median, digits, self.min, digits, self.max
        )
    }
}

/// One line of a figure's table.
pub(crate) struct Row {
    pub(crate) cells: Vec<String>,
}

/// One figure: a heading, a table, notes.
pub(crate) struct Figure {
    pub(crate) title: String,
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
}

impl Figure {
    pub(crate) fn new(title: &str, header: &[&str]) -> Figure {
        Figure {
            title: title.to_owned(),
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(Row { cells });
    }
}

/// One bar of issue 8.
pub(crate) struct Bar {
    pub(crate) what: String,
    pub(crate) met: Option<bool>,
    pub(crate) detail: String,
}

/// Everything BENCHMARKS.md says.
#[derive(Default)]
pub(crate) struct Report {
    pub(crate) machine: Vec<(String, String)>,
    pub(crate) figures: Vec<Figure>,
    pub(crate) bars: Vec<Bar>,
    /// Runs whose delivery checks failed: each is a reason a figure can't be trusted.
    pub(crate) failures: Vec<String>,
}

impl Report {
    pub(crate) fn bar(&mut self, what: &str, met: Option<bool>, detail: String) {
        self.bars.push(Bar {
            what: what.to_owned(),
            met,
            detail,
        });
    }

    pub(crate) fn markdown(&self, command: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Written by `{command}` (issue 8). Each figure is the median of its runs, with \
             min–max in brackets; ratios compare medians. Servers run pinned to core 0, load \
             generators to core 1 (`taskset`), at raised priority (see *scheduling*), over 127.0.0.1. Every run checks that what \
             was sent was delivered (or, for wirelab's fan-out, reported as `lagged`); a run \
             that fails its check is listed under *Failed checks*.\n"
        );
        let _ = writeln!(s, "## Machine\n");
        let _ = writeln!(s, "| | |\n| --- | --- |");
        for (k, v) in &self.machine {
            let _ = writeln!(s, "| {k} | {v} |");
        }
        let _ = writeln!(s, "\n## Bars (issue 8)\n");
        let _ = writeln!(s, "| bar | met | measured |\n| --- | --- | --- |");
        for b in &self.bars {
            let met = match b.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let _ = writeln!(s, "| {} | {met} | {} |", b.what, b.detail);
        }
        for f in &self.figures {
            let _ = writeln!(s, "\n## {}\n", f.title);
            let _ = writeln!(s, "| {} |", f.header.join(" | "));
            let _ = writeln!(s, "|{}", " --- |".repeat(f.header.len()));
            for r in &f.rows {
                let _ = writeln!(s, "| {} |", r.cells.join(" | "));
            }
            if !f.notes.is_empty() {
                let _ = writeln!(s);
                for n in &f.notes {
                    let _ = writeln!(s, "- {n}");
                }
            }
        }
        let _ = writeln!(s, "\n## Failed checks\n");
        if self.failures.is_empty() {
            let _ = writeln!(s, "None: every run delivered what it sent.");
        }
        for f in &self.failures {
            let _ = writeln!(s, "- {f}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Stat::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stat::of(&[1.0, 2.0]).median, 1.5);
        assert_eq!(s.show(0), "2 (1–3)");
    }
}
