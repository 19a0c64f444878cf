//! Processes started by a scenario: spawned inside a namespace, logged to a file, stopped by
//! PID when dropped.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::netns::Netns;

/// How long a process gets to exit after SIGTERM before it is sent SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running program started by a scenario.
///
/// The program runs in its own process group (so that helpers it forks are signalled with
/// it), with stdout and stderr appended to a log file. Dropping the guard stops it: SIGTERM,
/// then SIGKILL if it has not exited within [`STOP_GRACE`].
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Process {
    /// Starts `program` with `args` inside `netns` (through `ip netns exec`, which keeps the
    /// PID), or in the current namespace when `netns` is `None`. Output goes to `log`.
    pub fn spawn<I, S>(
        netns: Option<&Netns>,
        name: &str,
        program: &str,
        args: I,
        log: &Path,
    ) -> Result<Process>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = match netns {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns.name(), program]);
                command
            }
            None => Command::new(program),
        };
        command.args(args);
        Self::spawn_command(name, command, log)
    }

    /// Starts a prepared command (environment, working directory already set). The command
    /// must exec the program directly (e.g. `ip netns exec ns prog`) so that the PID is the
    /// program's.
    pub fn spawn_command(name: &str, mut command: Command, log: &Path) -> Result<Process> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log {}", log.display()))?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Process {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            exit: None,
        })
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn time, used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file receiving stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log file's content so far (empty when unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exit = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.is_running();
        self.exit
    }

    /// Sends `signal` to the process group.
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        if !self.is_running() {
            anyhow::bail!("{} (pid {}) is not running", self.name, self.pid());
        }
        killpg(Pid::from_raw(self.pid() as i32), signal)
            .with_context(|| format!("sending {signal} to {}", self.name))
    }

    /// Freezes the process (`SIGSTOP`): its sockets stay open but nothing is sent.
    pub fn sigstop(&mut self) -> Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    /// Resumes a process frozen by [`Process::sigstop`].
    pub fn sigcont(&mut self) -> Result<()> {
        self.signal(Signal::SIGCONT)
    }

    /// Stops the process: SIGCONT (in case it is frozen) and SIGTERM, a bounded wait for its
    /// exit, then SIGKILL. Returns its exit status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.stop_within(STOP_GRACE)
    }

    /// Like [`Process::stop`] with an explicit grace period before SIGKILL.
    pub fn stop_within(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exit_status() {
            return Ok(status);
        }
        let group = Pid::from_raw(self.pid() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let _ = killpg(group, Signal::SIGCONT);
        let deadline = Instant::now() + grace;
        let mut delay = Duration::from_millis(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                self.exit = Some(status);
                // Helpers left in the group (e.g. forked children) get no second chance.
                let _ = killpg(group, Signal::SIGKILL);
                return Ok(status);
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(200));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let status = self.child.wait()?;
        self.exit = Some(status);
        Ok(status)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("interop: stopping {}: {error:#}", self.name);
        }
    }
}
