//! Median, min and max per daemon, ratios, and the markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::dut::DutKind;
use super::run::RunResult;

/// Median, min and max of some values.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of `values` (None when empty).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    fn show(&self, scale: f64, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}-{:.d$})",
            self.median / scale,
            self.min / scale,
            self.max / scale,
            d = decimals
        )
    }
}

/// The summary of one daemon's repetitions.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Repetitions counted.
    pub runs: usize,
    /// Seconds.
    pub seconds: Spread,
    /// Peak RSS, bytes.
    pub peak_rss: Spread,
    /// Settled RSS, bytes.
    pub settled_rss: Spread,
    /// (Settled - idle) / prefixes, bytes.
    pub bytes_per_route: Spread,
    /// CPU seconds.
    pub cpu_seconds: Spread,
    /// Most IPv4 kernel routes seen in the daemon's namespace at the end of a run.
    pub kernel_routes: usize,
}

/// Summarises the results per daemon.
pub fn summarise(results: &[RunResult]) -> BTreeMap<DutKind, Summary> {
    let mut by: BTreeMap<DutKind, Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        by.entry(r.kind).or_default().push(r);
    }
    by.into_iter()
        .filter_map(|(kind, rs)| {
            let f = |g: fn(&RunResult) -> f64| Spread::of(rs.iter().map(|r| g(r)));
            Some((
                kind,
                Summary {
                    runs: rs.len(),
                    seconds: f(|r| r.seconds)?,
                    peak_rss: f(|r| r.peak_rss as f64)?,
                    settled_rss: f(|r| r.settled_rss as f64)?,
                    bytes_per_route: f(RunResult::bytes_per_route)?,
                    cpu_seconds: f(|r| r.cpu_seconds)?,
                    kernel_routes: rs.iter().map(|r| r.kernel_routes).max().unwrap_or(0),
                },
            ))
        })
        .collect()
}

const MIB: f64 = 1024.0 * 1024.0;

/// The markdown table (median (min-max)) and, when tern and the others are present, the
/// ratios against the goals.
pub fn markdown(
    summaries: &BTreeMap<DutKind, Summary>,
    notes: &BTreeMap<DutKind, String>,
) -> String {
    let mut out = String::new();
    out.push_str(
        "| daemon | runs | time s | peak RSS MiB | settled RSS MiB | bytes/route | CPU s | kernel routes |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for (kind, s) in summaries {
        let note = notes
            .get(kind)
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {kind}{note} | {} | {} | {} | {} | {} | {} | {} |",
            s.runs,
            s.seconds.show(1.0, 2),
            s.peak_rss.show(MIB, 0),
            s.settled_rss.show(MIB, 0),
            s.bytes_per_route.show(1.0, 0),
            s.cpu_seconds.show(1.0, 2),
            s.kernel_routes,
        );
    }
    for (kind, note) in notes {
        if !summaries.contains_key(kind) {
            let _ = writeln!(out, "| {kind} | 0 | not measured: {note} | | | | | |");
        }
    }
    let fastest = summaries
        .iter()
        .filter(|(k, _)| !matches!(**k, DutKind::Tern | DutKind::TernKernel))
        .min_by(|a, b| a.1.seconds.median.total_cmp(&b.1.seconds.median));
    if let (Some(tern), Some((fastest_kind, fastest))) = (summaries.get(&DutKind::Tern), fastest) {
        let _ = writeln!(
            out,
            "\ntern time / fastest ({fastest_kind}): {:.2} (goal <= 0.8)",
            tern.seconds.median / fastest.seconds.median
        );
        if let Some(bird) = summaries.get(&DutKind::Bird) {
            let _ = writeln!(
                out,
                "tern bytes per route / BIRD's: {:.2} (goal <= 1.25)\n\
                 tern CPU s / BIRD's: {:.2} (goal <= 1.0)",
                tern.bytes_per_route.median / bird.bytes_per_route.median,
                tern.cpu_seconds.median / bird.cpu_seconds.median
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Spread::of([]).is_none());
    }
}
