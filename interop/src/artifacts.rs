//! Per-scenario artifact directories (logs, configs, packet captures), kept when the scenario
//! fails and deleted when it passes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

use crate::netns::Netns;
use crate::process::Process;

/// Root of all artifact directories: `<workspace>/target/interop-artifacts` (or
/// `$CARGO_TARGET_DIR/interop-artifacts`).
pub fn artifacts_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("interop-artifacts")
}

/// The artifact directory of one scenario run: `target/interop-artifacts/<scenario>-<pid>/`.
///
/// Dropped while the thread is panicking, or after [`Artifacts::mark_failed`], it is kept
/// and its path printed; otherwise it is deleted.
#[derive(Debug)]
pub struct Artifacts {
    dir: PathBuf,
    failed: AtomicBool,
}

impl Artifacts {
    /// Creates (after emptying any leftover of the same name) the directory for `scenario`.
    pub fn new(scenario: &str) -> Result<Artifacts> {
        let dir = artifacts_root().join(format!("{scenario}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        Ok(Artifacts {
            dir,
            failed: AtomicBool::new(false),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates a subdirectory (for a daemon's runtime files) and returns its path.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::create_dir_all(&path)?;
        Ok(path)
    }

    /// Writes `contents` to a file in the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Keeps the directory when dropped, whatever happens.
    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Starts `tcpdump -w <name>` on `iface` inside `netns`, packet-buffered. The capture is
    /// stopped (and flushed) when the returned guard is stopped or dropped.
    pub fn capture(&self, netns: &Netns, iface: &str, name: &str) -> Result<Capture> {
        let pcap = self.path(name);
        let ready = self.path(&format!("{name}.log"));
        let process = Process::spawn(
            Some(netns),
            &format!("tcpdump {name}"),
            "tcpdump",
            [
                "-i",
                iface,
                "-U",
                "-n",
                "-s",
                "0",
                "-w",
                pcap.to_str().context("artifact path is not UTF-8")?,
            ],
            &ready,
        )?;
        let capture = Capture { process, pcap };
        crate::wait::wait_until(
            &format!("tcpdump listening on {iface} in {}", netns.name()),
            std::time::Duration::from_secs(30),
            || Ok(std::fs::read_to_string(&ready)?.contains("listening on")),
        )?;
        Ok(capture)
    }
}

impl Drop for Artifacts {
    fn drop(&mut self) {
        if std::thread::panicking() || self.failed.load(Ordering::Relaxed) {
            eprintln!("interop: artifacts kept in {}", self.dir.display());
        } else if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("interop: removing {}: {error}", self.dir.display());
        }
    }
}

/// A running packet capture (`tcpdump -w`).
#[derive(Debug)]
pub struct Capture {
    process: Process,
    pcap: PathBuf,
}

impl Capture {
    /// The pcap file being written.
    pub fn path(&self) -> &Path {
        &self.pcap
    }

    /// Stops tcpdump (which flushes the file) and returns the pcap path.
    pub fn stop(&mut self) -> Result<PathBuf> {
        self.process.stop()?;
        Ok(self.pcap.clone())
    }
}
