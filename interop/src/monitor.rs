//! `ip -timestamp monitor route` in a namespace, recorded to a log: which routes a daemon
//! deleted (even for a moment) while a scenario ran.

use anyhow::Result;

use crate::artifacts::Artifacts;
use crate::netns::Netns;
use crate::process::Process;
use crate::wait::wait_until;

/// A running route monitor.
pub struct RouteMonitor {
    process: Process,
}

impl RouteMonitor {
    /// Starts the monitor (log `<name>.monitor.log`) and waits until it records (a marker
    /// route added and deleted).
    pub fn start(ns: &Netns, artifacts: &Artifacts, name: &str) -> Result<RouteMonitor> {
        let process = Process::spawn(
            Some(ns),
            &format!("ip monitor {name}"),
            "ip",
            ["-timestamp", "monitor", "route"],
            &artifacts.path(&format!("{name}.monitor.log")),
        )?;
        let marker = "unreachable 198.51.100.0/24";
        wait_until(
            &format!("{name}: ip monitor recording"),
            std::time::Duration::from_secs(60),
            || {
                let _ = ns.ip(["route", "del", "unreachable", "198.51.100.0/24"]);
                ns.add_route(marker)?;
                Ok(process.log().contains("198.51.100.0/24"))
            },
        )?;
        ns.ip(["route", "del", "unreachable", "198.51.100.0/24"])?;
        Ok(RouteMonitor { process })
    }

    /// The `Deleted` lines recorded so far whose prefix is one of `prefixes` (a host route
    /// `a.b.c.d/32` is printed without its length).
    pub fn deletions(&self, prefixes: &[&str]) -> Vec<String> {
        let wanted: std::collections::HashSet<&str> = prefixes
            .iter()
            .flat_map(|p| [*p, p.strip_suffix("/32").unwrap_or(p)])
            .collect();
        self.process
            .log()
            .lines()
            .filter(|l| l.contains("Deleted"))
            .filter(|l| l.split_whitespace().any(|word| wanted.contains(word)))
            .map(str::to_owned)
            .collect()
    }

    /// Stops it and returns the lines that deleted a route for exactly one of `prefixes`.
    pub fn stop_and_deletions(mut self, prefixes: &[&str]) -> Result<Vec<String>> {
        self.process.stop()?;
        Ok(self.deletions(prefixes))
    }
}
