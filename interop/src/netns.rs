//! Network namespaces, veth pairs, bridges, addresses, routes, sysctls and nft fault rules.

use std::ffi::OsStr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number unique within this test process (namespace names, API ports, interface names).
pub fn unique_number() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Runs a command to completion; fails with its stderr when it exits non-zero.
pub fn run_command(mut command: Command) -> Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(output)
}

/// Runs `program args` in the current namespace and returns its stdout.
pub fn run_host<I, S>(program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args);
    Ok(String::from_utf8_lossy(&run_command(command)?.stdout).into_owned())
}

/// A network namespace owned by a scenario.
///
/// Its name is `tern-<pid>-<counter>-<label>`, unique per run so that parallel tests and the
/// leftovers of a killed run cannot collide. Loopback is brought up and IPv6 duplicate
/// address detection is disabled (addresses are usable at once). Dropping the guard stops
/// every process still inside (SIGTERM, SIGKILL after a bounded wait) and deletes the
/// namespace, which also deletes its interfaces.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace; `label` (truncated to 12 characters) says what it stands for.
    pub fn new(label: &str) -> Result<Netns> {
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(12)
            .collect();
        let name = format!("tern-{}-{}-{label}", std::process::id(), unique_number());
        run_host("ip", ["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(["link", "set", "lo", "up"])?;
        for scope in ["all", "default"] {
            ns.sysctl(&format!("net.ipv6.conf.{scope}.accept_dad"), "0")?;
        }
        Ok(ns)
    }

    /// The namespace's name (as used by `ip netns`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (not started).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `program args` in the namespace; returns the full output, failing when it exits
    /// non-zero.
    pub fn exec<I, S>(&self, program: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(program);
        command.args(args);
        run_command(command)
    }

    /// Runs `program args` in the namespace and returns its stdout.
    pub fn run<I, S>(&self, program: &str, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Ok(String::from_utf8_lossy(&self.exec(program, args)?.stdout).into_owned())
    }

    /// Runs `ip -n <ns> args` and returns its stdout.
    pub fn ip<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new("ip");
        command.args(["-n", &self.name]).args(args);
        Ok(String::from_utf8_lossy(&run_command(command)?.stdout).into_owned())
    }

    /// Adds an address (`10.0.0.1/24`, `fd00::1/64`) to `dev`.
    pub fn add_address(&self, dev: &str, cidr: &str) -> Result<()> {
        let family = if cidr.contains(':') { "-6" } else { "-4" };
        self.ip([family, "addr", "add", cidr, "dev", dev])?;
        Ok(())
    }

    /// Brings `dev` up.
    pub fn link_up(&self, dev: &str) -> Result<()> {
        self.ip(["link", "set", dev, "up"])?;
        Ok(())
    }

    /// Brings `dev` down (a link fault).
    pub fn link_down(&self, dev: &str) -> Result<()> {
        self.ip(["link", "set", dev, "down"])?;
        Ok(())
    }

    /// Adds a route, e.g. `add_route("10.1.0.0/16 via 10.0.0.2")`.
    pub fn add_route(&self, spec: &str) -> Result<()> {
        let family = if spec.contains(':') { "-6" } else { "-4" };
        let mut args = vec![family, "route", "add"];
        args.extend(spec.split_whitespace());
        self.ip(args)?;
        Ok(())
    }

    /// The kernel's routes for `prefix` in the main table (`ip route show <prefix>`), one
    /// route per line; empty when there is none.
    pub fn routes_for(&self, prefix: &str) -> Result<String> {
        let family = if prefix.contains(':') { "-6" } else { "-4" };
        self.ip([family, "route", "show", prefix])
    }

    /// Whether the main table has a route for exactly `prefix`.
    pub fn has_route(&self, prefix: &str) -> Result<bool> {
        Ok(!self.routes_for(prefix)?.trim().is_empty())
    }

    /// Sets a sysctl inside the namespace (`net.ipv4.ip_forward`, ...).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec("sysctl", ["-q", "-w", &format!("{key}={value}")])?;
        Ok(())
    }

    /// Enables IPv4 and IPv6 forwarding.
    pub fn enable_forwarding(&self) -> Result<()> {
        self.sysctl("net.ipv4.ip_forward", "1")?;
        self.sysctl("net.ipv6.conf.all.forwarding", "1")
    }

    /// Applies an nft script inside the namespace (`nft -f -`).
    pub fn nft(&self, script: &str) -> Result<()> {
        use std::io::Write;
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("starting nft")?;
        child
            .stdin
            .take()
            .context("nft stdin")?
            .write_all(script.as_bytes())?;
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "nft in {} failed: {}\nscript:\n{script}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Drops every TCP segment to or from `port` (both directions) in this namespace: cuts
    /// BGP sessions without closing sockets. Undone by [`Netns::clear_faults`].
    pub fn drop_tcp_port(&self, port: u16) -> Result<()> {
        self.nft(&format!(
            "table inet tern_faults {{\n\
             chain input {{ type filter hook input priority -10; policy accept; tcp sport {port} drop; tcp dport {port} drop; }}\n\
             chain output {{ type filter hook output priority -10; policy accept; tcp sport {port} drop; tcp dport {port} drop; }}\n\
             }}\n"
        ))
    }

    /// Removes the fault rules added by [`Netns::drop_tcp_port`].
    pub fn clear_faults(&self) -> Result<()> {
        self.nft("delete table inet tern_faults\n")
    }

    /// PIDs of the processes running inside the namespace.
    pub fn pids(&self) -> Result<Vec<i32>> {
        namespace_pids(&self.name)
    }
}

/// PIDs of the processes running inside namespace `name`.
fn namespace_pids(name: &str) -> Result<Vec<i32>> {
    let out = run_host("ip", ["netns", "pids", name])?;
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// SIGTERM to every process inside namespace `name`, SIGKILL to those left after 5 s.
fn kill_all_in(name: &str) {
    let Ok(pids) = namespace_pids(name) else {
        return;
    };
    if pids.is_empty() {
        return;
    }
    for pid in &pids {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match namespace_pids(name) {
            Ok(left) if !left.is_empty() => std::thread::sleep(Duration::from_millis(50)),
            _ => return,
        }
    }
    for pid in namespace_pids(name).unwrap_or_default() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_all_in(&self.name);
        if let Err(error) = run_host("ip", ["netns", "del", &self.name]) {
            eprintln!("interop: deleting namespace {}: {error:#}", self.name);
        }
    }
}

/// Prefixes of the namespace names that the project's tests make: `<prefix>-<pid>-...`,
/// `<pid>` being the test process that made it (`tern-`: this harness and `tern demo`;
/// `tk-`, `tko-`, `tkb-`: the kernel tests and benchmark).
pub const RUN_PREFIXES: &[&str] = &["tern", "tk", "tko", "tkb"];

/// The PID recorded in a namespace (or runtime directory) name of the project's naming
/// scheme, `<prefix>-<pid>-<rest>` with `<prefix>` one of [`RUN_PREFIXES`].
pub fn recorded_pid(name: &str) -> Option<i32> {
    let (prefix, rest) = name.split_once('-')?;
    if !RUN_PREFIXES.contains(&prefix) {
        return None;
    }
    let (pid, rest) = rest.split_once('-').unwrap_or((rest, ""));
    if prefix != "tern" && !rest.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|pid| *pid > 0)
}

fn process_alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes what dead runs of the project's tests left behind: namespaces named by the
/// harness's scheme whose recorded PID is no longer alive (a test killed by nextest's
/// timeout never runs its drop guards), after stopping the processes inside, and runtime
/// directories `/tmp/tern-<pid>-*` of such runs. Runs once per test process; never touches a
/// namespace of a live run.
pub fn remove_dead_runs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(list) = run_host("ip", ["netns", "list"]) else {
            return;
        };
        for line in list.lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            let Some(pid) = recorded_pid(name) else {
                continue;
            };
            if process_alive(pid) {
                continue;
            }
            eprintln!("interop: removing namespace {name} left by dead run {pid}");
            kill_all_in(name);
            if let Err(error) = run_host("ip", ["netns", "del", name]) {
                eprintln!("interop: deleting namespace {name}: {error:#}");
            }
        }
        let Ok(entries) = std::fs::read_dir("/tmp") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("tern-") {
                continue;
            }
            if let Some(pid) = recorded_pid(&name)
                && !process_alive(pid)
                && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// Creates a veth pair with one end (`a_if`) in `a` and the other (`b_if`) in `b`, both up.
/// The interfaces are created directly in their namespaces, so their names only need to be
/// unique there (at most 15 characters).
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    veth_down(a, a_if, b, b_if)?;
    a.link_up(a_if)?;
    b.link_up(b_if)
}

fn veth_down(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    run_host(
        "ip",
        [
            "link",
            "add",
            "name",
            a_if,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            b.name(),
        ],
    )?;
    Ok(())
}

/// A "switch": a namespace holding a Linux bridge, to which hosts are attached with veth
/// pairs, giving one subnet with several hosts.
#[derive(Debug)]
pub struct Switch {
    ns: Netns,
    ports: AtomicU32,
}

/// Name of the bridge device inside a [`Switch`] namespace.
pub const BRIDGE: &str = "br0";

impl Switch {
    /// Creates the switch namespace and its bridge.
    pub fn new(label: &str) -> Result<Switch> {
        let ns = Netns::new(label)?;
        ns.ip(["link", "add", BRIDGE, "type", "bridge"])?;
        ns.link_up(BRIDGE)?;
        Ok(Switch {
            ns,
            ports: AtomicU32::new(0),
        })
    }

    /// The switch's namespace (e.g. to capture on [`BRIDGE`]).
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// Plugs `host` into the switch: its end is named `host_if`, up, with `addresses`.
    pub fn attach(&self, host: &Netns, host_if: &str, addresses: &[&str]) -> Result<()> {
        self.attach_with_mac(host, host_if, None, addresses)
    }

    /// Like [`Switch::attach`], with a fixed MAC address on the host's end (so that its IPv6
    /// link-local address, derived from the MAC, is the same on every run).
    pub fn attach_with_mac(
        &self,
        host: &Netns,
        host_if: &str,
        mac: Option<&str>,
        addresses: &[&str],
    ) -> Result<()> {
        let port = format!("p{}", self.ports.fetch_add(1, Ordering::Relaxed));
        veth_down(host, host_if, &self.ns, &port)?;
        if let Some(mac) = mac {
            host.ip(["link", "set", host_if, "address", mac])?;
        }
        host.link_up(host_if)?;
        self.ns.link_up(&port)?;
        self.ns.ip(["link", "set", &port, "master", BRIDGE])?;
        for address in addresses {
            host.add_address(host_if, address)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_pid_is_read_from_the_naming_scheme_only() {
        assert_eq!(recorded_pid("tern-4242-3-node-a"), Some(4242));
        assert_eq!(recorded_pid("tern-4242-0-frr"), Some(4242));
        assert_eq!(recorded_pid("tk-77-1"), Some(77));
        assert_eq!(recorded_pid("tko-77-12"), Some(77));
        assert_eq!(recorded_pid("tern-demo-77-run"), None);
        assert_eq!(recorded_pid("calico-77-1"), None);
        assert_eq!(recorded_pid("tk-77-x"), None);
        assert_eq!(recorded_pid("tern"), None);
    }
}
