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
/// Dropped while the thread is panicking, or after [`Artifacts::mark_failed`], or when the
/// environment has `INTEROP_KEEP_ARTIFACTS=1`, it is kept and its path printed; otherwise it
/// is deleted.
#[derive(Debug)]
pub struct Artifacts {
    dir: PathBuf,
    failed: AtomicBool,
    /// Runtime directories placed outside `dir` because unix socket paths inside it would be
    /// too long; removed on drop.
    outside: std::sync::Mutex<Vec<PathBuf>>,
}

/// Longest unix socket path the harness creates (`sun_path` holds 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 100;

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
            outside: std::sync::Mutex::new(Vec::new()),
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

    /// A directory for a daemon's runtime files, unix sockets among them: a subdirectory when
    /// a socket path inside it (`<dir>/<name>/<up to 20 bytes>`) fits in `sun_path`,
    /// otherwise `/tmp/tern-<pid>-<counter>-<name>` (removed when the artifacts are dropped,
    /// unless kept).
    pub fn runtime_dir(&self, name: &str) -> Result<PathBuf> {
        let inside = self.dir.join(name);
        if inside.as_os_str().len() + 20 <= MAX_SOCKET_PATH {
            std::fs::create_dir_all(&inside)?;
            return Ok(inside);
        }
        let outside = std::env::temp_dir().join(format!(
            "tern-{}-{}-{name}",
            std::process::id(),
            crate::netns::unique_number()
        ));
        std::fs::create_dir_all(&outside)?;
        std::fs::write(
            self.dir.join(format!("{name}.location")),
            format!("{}\n", outside.display()),
        )?;
        if let Ok(mut list) = self.outside.lock() {
            list.push(outside.clone());
        }
        Ok(outside)
    }

    /// A runtime directory for a daemon that drops privileges to `user` (FRR's daemons run as
    /// `frr`): always `<tmp>/tern-<pid>-<counter>-<name>`, mode 0755 and owned by `user`, so
    /// that `user` reaches it wherever the checkout lives (a clone under a 0700 directory
    /// cannot be traversed by `frr`). `<tmp>` is the temporary directory when every directory
    /// above it is searchable by others, else `/tmp`. When the artifacts are kept, the
    /// directory's regular files are copied into `<artifacts>/<name>/`.
    pub fn runtime_dir_for_user(&self, name: &str, user: &str) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = shared_tmp().join(format!(
            "tern-{}-{}-{name}",
            std::process::id(),
            crate::netns::unique_number()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        crate::netns::run_host(
            "chown",
            [
                format!("{user}:{user}").as_str(),
                dir.to_str().context("runtime dir")?,
            ],
        )?;
        std::fs::write(
            self.dir.join(format!("{name}.location")),
            format!("{}\n", dir.display()),
        )?;
        if let Ok(mut list) = self.outside.lock() {
            list.push(dir.clone());
        }
        Ok(dir)
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
                "--immediate-mode",
                // A 32 MiB kernel buffer: a burst of a large table on a loaded machine must
                // not lose segments (a gap makes a stream unreadable).
                "-B",
                "32768",
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
        let keep = std::env::var_os("INTEROP_KEEP_ARTIFACTS").is_some_and(|v| v == "1");
        if keep || std::thread::panicking() || self.failed.load(Ordering::Relaxed) {
            // Keep the runtime files (configs, pid files) with the rest, in the checkout.
            for outside in self.outside.lock().map(|l| l.clone()).unwrap_or_default() {
                let Some(base) = outside.file_name() else {
                    continue;
                };
                copy_regular_files(&outside, &self.dir.join(base));
                let _ = std::fs::remove_dir_all(&outside);
            }
            eprintln!("interop: artifacts kept in {}", self.dir.display());
        } else {
            if let Err(error) = std::fs::remove_dir_all(&self.dir) {
                eprintln!("interop: removing {}: {error}", self.dir.display());
            }
            for dir in self.outside.lock().map(|l| l.clone()).unwrap_or_default() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// The temporary directory when others can reach it (every ancestor searchable by others),
/// else `/tmp`.
fn shared_tmp() -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = std::env::temp_dir();
    let reachable = tmp
        .ancestors()
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if reachable {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// Copies the regular files of `from` (not sockets, not subdirectories) into `to`.
fn copy_regular_files(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    let _ = std::fs::create_dir_all(to);
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
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

    /// How many packets written so far match a tshark display filter (`bgp.type == 3`).
    /// Reading a file still being written may fail on a cut packet: poll it with
    /// [`crate::wait::wait_until`].
    pub fn count(&self, display_filter: &str) -> Result<usize> {
        let out = crate::netns::run_host(
            "tshark",
            [
                "-r",
                self.pcap.to_str().context("pcap path")?,
                "-Y",
                display_filter,
                "-T",
                "fields",
                "-e",
                "frame.number",
            ],
        )?;
        Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
    }

    /// Stops tcpdump (which flushes the file) and returns the pcap path.
    pub fn stop(&mut self) -> Result<PathBuf> {
        self.process.stop()?;
        Ok(self.pcap.clone())
    }
}
