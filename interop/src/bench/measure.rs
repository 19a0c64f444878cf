//! What is measured of the daemon's processes, from `/proc`.

use anyhow::{Context as _, Result};

/// Memory and CPU of a set of processes at one moment (summed over the processes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// Peak resident set size so far (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Resident set size now (`VmRSS`), bytes.
    pub rss: u64,
    /// User + system CPU time of every thread (and waited-for children), seconds.
    pub cpu_seconds: f64,
}

/// Samples `/proc/<pid>/status` and `/proc/<pid>/stat` of each pid.
pub fn sample(pids: &[u32]) -> Result<ProcSample> {
    let ticks = clock_ticks();
    let mut total = ProcSample::default();
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        total.peak_rss += status_kib(&status, "VmHWM:")? * 1024;
        total.rss += status_kib(&status, "VmRSS:")? * 1024;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        total.cpu_seconds += stat_ticks(&stat)? as f64 / ticks;
    }
    Ok(total)
}

fn status_kib(status: &str, key: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .with_context(|| format!("no {key} in status"))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("bad {line:?}"))
}

/// utime + stime + cutime + cstime (fields 14-17 of `stat`; the command name, field 2, may
/// contain spaces, so fields are counted after its closing parenthesis).
fn stat_ticks(stat: &str) -> Result<u64> {
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .context("stat without command")?;
    // After ")": field 3 (state) is index 0, so field n is index n - 3.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let mut sum = 0;
    for n in 14..=17 {
        let value: i64 = fields
            .get(n - 3)
            .with_context(|| format!("stat field {n} missing"))?
            .parse()
            .with_context(|| format!("stat field {n}"))?;
        sum += value.max(0) as u64;
    }
    Ok(sum)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100);
    ticks as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 5 1000 10";
        assert_eq!(stat_ticks(stat).unwrap(), 150 + 50 + 7 + 3);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(&[std::process::id()]).unwrap();
        assert!(s.peak_rss >= s.rss && s.rss > 0);
    }
}
