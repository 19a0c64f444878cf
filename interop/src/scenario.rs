//! Running a scenario: requirements (root, binaries), an artifact directory, and failure
//! reporting that keeps the artifacts.
//!
//! A missing requirement FAILS the test, naming what is missing, unless the developer opted
//! in to skipping with `TERN_ALLOW_SKIP=1` (then it prints `SKIP:` and returns). CI and
//! `scripts/test.sh` never set it.

use std::path::Path;

use anyhow::Result;

use crate::artifacts::Artifacts;

/// Something a scenario needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Running as root (namespaces, veth, nft).
    Root,
    /// An executable, found on `PATH` or given as an absolute path.
    Binary(&'static str),
}

/// Binaries every namespace scenario uses.
pub const BASE: &[Requirement] = &[
    Requirement::Root,
    Requirement::Binary("ip"),
    Requirement::Binary("tcpdump"),
];
/// BIRD 2 and its CLI.
pub const BIRD: &[Requirement] = &[Requirement::Binary("bird"), Requirement::Binary("birdc")];
/// GoBGP daemon and CLI.
pub const GOBGP: &[Requirement] = &[Requirement::Binary("gobgpd"), Requirement::Binary("gobgp")];
/// FRR's bgpd, zebra and vtysh.
pub const FRR: &[Requirement] = &[
    Requirement::Binary("/usr/lib/frr/bgpd"),
    Requirement::Binary("/usr/lib/frr/zebra"),
    Requirement::Binary("vtysh"),
];
/// ExaBGP.
pub const EXABGP: &[Requirement] = &[Requirement::Binary("exabgp")];
/// tshark (to split captures into BGP messages).
pub const TSHARK: &[Requirement] = &[Requirement::Binary("tshark")];

/// Whether `program` is an executable on `PATH` (or an existing absolute path).
pub fn binary_exists(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// The first unmet requirement, described.
pub fn unmet(requirements: &[Requirement]) -> Option<String> {
    for requirement in requirements {
        match requirement {
            Requirement::Root => {
                if !nix::unistd::Uid::effective().is_root() {
                    return Some("needs root (network namespaces)".to_owned());
                }
            }
            Requirement::Binary(program) => {
                if !binary_exists(program) {
                    return Some(format!(
                        "`{program}` is not installed (scripts/setup.sh installs it)"
                    ));
                }
            }
        }
    }
    None
}

/// The environment variable with which a developer without root or a peer binary lets tests
/// skip instead of failing (`TERN_ALLOW_SKIP=1`).
pub const ALLOW_SKIP: &str = "TERN_ALLOW_SKIP";

/// Whether the developer opted in to skipping tests whose prerequisites are missing.
pub fn skipping_allowed() -> bool {
    std::env::var_os(ALLOW_SKIP).is_some_and(|v| v == "1")
}

/// A test's prerequisite is missing: with `TERN_ALLOW_SKIP=1`, prints `SKIP: <test>: <why>`
/// and returns (the caller returns without running); otherwise panics, which fails the test.
pub fn missing_prerequisite(test: &str, why: &str) {
    if skipping_allowed() {
        println!("SKIP: {test}: {why}");
        eprintln!("SKIP: {test}: {why}");
        return;
    }
    panic!(
        "{test}: missing prerequisite: {why}; run scripts/setup.sh as root, \
         or set {ALLOW_SKIP}=1 to skip such tests on a developer machine"
    );
}

/// Checks `requirements` for `test`: `true` when all are met. When one is missing, fails the
/// test (panics), or with `TERN_ALLOW_SKIP=1` prints `SKIP:` and returns `false`. Also removes
/// the namespaces of this harness's dead runs ([`crate::netns::remove_dead_runs`]).
pub fn require(test: &str, requirements: &[Requirement]) -> bool {
    if let Some(why) = unmet(requirements) {
        missing_prerequisite(test, &why);
        return false;
    }
    if requirements.contains(&Requirement::Root) {
        crate::netns::remove_dead_runs();
    }
    true
}

/// Runs one scenario.
///
/// A missing requirement fails the test ([`require`]; with `TERN_ALLOW_SKIP=1` it prints
/// `SKIP: <scenario>: <why>` and returns). Otherwise
/// creates the artifact directory and runs `body`; everything `body` creates (namespaces,
/// processes, captures) is dropped when it returns. An `Err` from `body`, or a panic, fails
/// the test and keeps the artifacts (logs, configs, pcap) for inspection.
pub fn run_scenario<F>(scenario: &str, requirements: &[&[Requirement]], body: F)
where
    F: FnOnce(&Artifacts) -> Result<()>,
{
    let all: Vec<Requirement> = requirements
        .iter()
        .flat_map(|r| r.iter().copied())
        .collect();
    if !require(scenario, &all) {
        return;
    }
    let artifacts = match Artifacts::new(scenario) {
        Ok(artifacts) => artifacts,
        Err(error) => panic!("{scenario}: creating artifacts: {error:#}"),
    };
    if let Err(error) = body(&artifacts) {
        artifacts.mark_failed();
        panic!(
            "scenario {scenario} failed: {error:#}\nartifacts kept in {}",
            artifacts.dir().display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_named() {
        let why = unmet(&[Requirement::Binary("tern-no-such-program")]).unwrap();
        assert!(why.contains("tern-no-such-program"), "{why}");
        assert_eq!(unmet(&[Requirement::Binary("sh")]), None);
    }

    #[test]
    fn a_missing_prerequisite_fails_the_scenario_without_running_its_body() {
        if skipping_allowed() {
            return; // the developer opted in: this test checks the default
        }
        let mut ran = false;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_scenario(
                "skip-check",
                &[&[Requirement::Binary("tern-no-such-program")]],
                |_| {
                    ran = true;
                    Ok(())
                },
            )
        }));
        let message = outcome.expect_err("a missing binary must fail the test");
        let message = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("tern-no-such-program"), "{message}");
        assert!(message.contains(ALLOW_SKIP), "{message}");
        assert!(!ran);
    }

    #[test]
    fn artifacts_are_deleted_on_success_and_kept_on_failure() {
        let passed = Artifacts::new("unit-passed").unwrap();
        let passed_dir = passed.dir().to_owned();
        passed.write("log", "x").unwrap();
        drop(passed);
        assert!(!passed_dir.exists() || std::env::var_os("INTEROP_KEEP_ARTIFACTS").is_some());

        let failed = Artifacts::new("unit-failed").unwrap();
        let failed_dir = failed.dir().to_owned();
        failed.mark_failed();
        drop(failed);
        assert!(failed_dir.exists());
        std::fs::remove_dir_all(failed_dir).unwrap();
    }

    #[test]
    fn runtime_dirs_stay_short_enough_for_unix_sockets() {
        let artifacts = Artifacts::new(&"long-scenario-name-".repeat(5)).unwrap();
        let run = artifacts.runtime_dir("bird").unwrap();
        assert!(run.as_os_str().len() + 20 <= 100, "{}", run.display());
        assert!(run.is_dir());
        drop(artifacts);
        assert!(!run.exists() || std::env::var_os("INTEROP_KEEP_ARTIFACTS").is_some());
    }
}
