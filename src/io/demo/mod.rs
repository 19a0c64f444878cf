//! `tern demo`'s I/O: builds the [`DemoCluster`] in network namespaces (with the `interop`
//! harness primitives), runs `tern run` in each node namespace, waits for convergence, prints
//! peers and kernel routes, pings between two pods and tears everything down: at the end, on
//! any error (drop guards) and on SIGINT / SIGTERM (a flag checked by every wait).

mod lab;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use interop::process::Process;

use crate::demo::{DemoCluster, NodeFiles, RouteShape, Topology, node_settings, plans};
use crate::io::control::{Request, Response, request};
use crate::status::SessionState;
use lab::Lab;

/// What `tern demo` was asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Mesh or route reflector.
    pub topology: Topology,
    /// Keep the cluster running after the ping until Ctrl-C.
    pub keep: bool,
    /// How long convergence may take.
    pub timeout: Duration,
    /// The `tern` binary the nodes run (`std::env::current_exe()`).
    pub tern_binary: PathBuf,
}

/// How a demo run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoOutcome {
    /// Converged and the ping got its replies.
    Success,
    /// Stopped by this signal (SIGINT or SIGTERM) before finishing; everything was torn down.
    Interrupted(i32),
}

/// The signal that interrupted the run (0 = none), set by the signal handlers.
#[derive(Debug, Clone)]
struct Interrupt(Arc<AtomicUsize>);

impl Interrupt {
    /// Registers SIGINT and SIGTERM handlers that record the signal.
    fn install() -> Result<Interrupt> {
        let flag = Arc::new(AtomicUsize::new(0));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_usize(signal, Arc::clone(&flag), signal as usize)
                .with_context(|| format!("installing the handler of signal {signal}"))?;
        }
        Ok(Interrupt(flag))
    }

    fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }

    /// Fails with [`Interrupted`] once a signal arrived.
    fn check(&self) -> Result<()> {
        match self.signal() {
            Some(signal) => Err(Interrupted(signal).into()),
            None => Ok(()),
        }
    }

    /// Sleeps `duration` in short steps, returning early with [`Interrupted`].
    fn sleep(&self, duration: Duration) -> Result<()> {
        let end = Instant::now() + duration;
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

/// The run was stopped by a signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by signal {0}")]
struct Interrupted(i32);

/// Why `tern demo` cannot run here at all (checked before anything is created).
pub fn preflight() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "tern demo needs root: it creates network namespaces, veth pairs and \
                    bridges (run `sudo scripts/demo.sh` or `sudo tern demo`)"
                .to_owned(),
        );
    }
    for (program, package) in [("ip", "iproute2"), ("ping", "iputils-ping")] {
        let found = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
            .unwrap_or(false);
        if !found {
            return Err(format!(
                "tern demo needs `{program}` (Debian package {package}; scripts/demo.sh installs it)"
            ));
        }
    }
    Ok(())
}

/// Runs the demo, printing its progress on stdout. Returns the outcome; an error means the
/// cluster did not converge, the ping failed or the cluster could not be built (everything
/// created has been removed either way).
pub fn run(options: &DemoOptions) -> Result<DemoOutcome, String> {
    let interrupt = Interrupt::install().map_err(|e| format!("{e:#}"))?;
    let run_dir = RunDir::create().map_err(|e| format!("{e:#}"))?;
    let result = run_in(options, &interrupt, &run_dir);
    let outcome = match result {
        Ok(()) => Ok(DemoOutcome::Success),
        // A Ctrl-C in a terminal also stops the `ip` or `ping` command running at that moment:
        // once a signal arrived, whatever failed failed because of it.
        Err(error) => match interrupt.signal() {
            Some(signal) => Ok(DemoOutcome::Interrupted(signal)),
            None => {
                run_dir.keep();
                Err(format!("{error:#}"))
            }
        },
    };
    // Teardown happened when `run_in` returned (its guards); say so last.
    match &outcome {
        Ok(DemoOutcome::Interrupted(signal)) => {
            println!("interrupted by signal {signal}: everything was torn down")
        }
        Err(_) => eprintln!(
            "torn down (tern processes stopped, namespaces deleted); the nodes' settings, \
             manifests and logs are kept in {}",
            run_dir.path.display()
        ),
        Ok(DemoOutcome::Success) => {}
    }
    outcome
}

fn run_in(options: &DemoOptions, interrupt: &Interrupt, run_dir: &RunDir) -> Result<()> {
    let cluster = DemoCluster::new(options.topology);
    let plans = plans(&cluster).map_err(|e| anyhow!(e))?;
    println!(
        "tern demo: {} nodes on {} subnets joined by a router, IP-in-IP CrossSubnet pool {}, {}",
        cluster.nodes.len(),
        cluster.subnets.len(),
        cluster.pool,
        cluster.topology
    );
    println!(
        "note: this kernel has no ipip module, so each node's `tunl0` is a veth end carrying the \
         node's tunnel address: tern installs the same `dev tunl0 onlink` routes as on a real \
         node, but that device cannot encapsulate."
    );
    let manifests_dir = run_dir.path.join("manifests");
    std::fs::create_dir_all(&manifests_dir)?;
    std::fs::write(manifests_dir.join("cluster.yaml"), cluster.manifests())?;
    println!(
        "manifests: {}",
        manifests_dir.join("cluster.yaml").display()
    );
    interrupt.check()?;

    let lab = Lab::build(&cluster, interrupt)?;
    println!("namespaces: {}", lab.namespace_names().join(" "));

    // Processes are declared after the lab, so they are stopped before its namespaces go.
    let mut daemons = Daemons::default();
    for (node, node_ns) in cluster.nodes.iter().zip(&lab.nodes) {
        interrupt.check()?;
        let files = NodeFiles::under(&run_dir.path, node.name);
        std::fs::create_dir_all(files.settings.parent().expect("node files are in a dir"))?;
        std::fs::write(&files.settings, node_settings(node, &manifests_dir, &files))?;
        let process = Process::spawn(
            Some(node_ns),
            &format!("tern on {}", node.name),
            &options.tern_binary.display().to_string(),
            [
                "--config",
                &files.settings.display().to_string(),
                "--log-format",
                "human",
                "--log-level",
                "info",
                "run",
            ],
            &files.log,
        )?;
        println!(
            "started `tern run` on {} ({}, pid {}, log {})",
            node.name,
            node.address.addr(),
            process.pid(),
            files.log.display()
        );
        daemons.nodes.push((node.name, files, process));
    }

    let started = Instant::now();
    println!(
        "waiting for convergence (every peer Established with routes both ways, every block in \
         every kernel; at most {} s)...",
        options.timeout.as_secs()
    );
    let expected_peers: Vec<Vec<String>> = plans
        .iter()
        .map(|p| p.peerings.iter().map(|x| x.name.clone()).collect())
        .collect();
    let deadline = started + options.timeout;
    loop {
        interrupt.check()?;
        let missing = convergence_gaps(&cluster, &lab, &mut daemons, &expected_peers)?;
        if missing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "the cluster did not converge within {} s; still missing: {}",
                options.timeout.as_secs(),
                missing.join("; ")
            );
        }
        interrupt.sleep(Duration::from_millis(250))?;
    }
    println!("converged in {:.1} s", started.elapsed().as_secs_f64());

    for ((node, node_ns), (_, files, _)) in cluster.nodes.iter().zip(&lab.nodes).zip(&daemons.nodes)
    {
        interrupt.check()?;
        println!();
        println!(
            "== {} ({}, namespace {}{})",
            node.name,
            node.address,
            node_ns.name(),
            if node.route_reflector {
                ", route reflector"
            } else {
                ""
            }
        );
        println!(
            "$ tern show peers --socket {}",
            files.control_socket.display()
        );
        print!(
            "{}",
            tern_show_peers(&options.tern_binary, &files.control_socket)?
        );
        println!("$ ip route show proto bird");
        print!("{}", node_ns.ip(["-4", "route", "show", "proto", "bird"])?);
    }

    println!();
    let (a, b) = cluster.ping_pair();
    println!(
        "ping: pod {} (on {}) -> pod {} (on {}). {} and {} share subnet {}, where CrossSubnet \
         routes are plain `via` routes over eth0 that these veths carry; routes across the router \
         go through the tunl0 stand-in, which cannot encapsulate.",
        a.pod_address,
        a.name,
        b.pod_address,
        b.name,
        a.name,
        b.name,
        cluster.subnet_of(a).cidr
    );
    let a_index = cluster
        .nodes
        .iter()
        .position(|n| n.name == a.name)
        .expect("a is a node");
    let a_ns = &lab.nodes[a_index];
    println!(
        "$ ip route get {} (on {})\n{}",
        b.pod_address,
        a.name,
        a_ns.ip(["-4", "route", "get", &b.pod_address.to_string()])?
            .trim_end()
    );
    let pod_a = lab.pod_of(a.name).context("the ping pair has pods")?;
    let ping = pod_a
        .command("ping")
        .args([
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            &b.pod_address.to_string(),
        ])
        .output()
        .context("running ping")?;
    interrupt.check()?;
    let ping_out = String::from_utf8_lossy(&ping.stdout);
    let summary: Vec<&str> = ping_out
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .collect();
    println!("$ ping -c 3 {} (in pod {})", b.pod_address, a.pod_address);
    for line in &summary {
        println!("{line}");
    }
    if !ping.status.success() {
        bail!(
            "ping from pod {} to pod {} failed ({}): {}{}",
            a.pod_address,
            b.pod_address,
            ping.status,
            ping_out.trim(),
            String::from_utf8_lossy(&ping.stderr).trim()
        );
    }
    println!(
        "ping succeeded: pod {} reached pod {} over the routes tern installed",
        a.pod_address, b.pod_address
    );

    if options.keep {
        println!();
        println!("--keep: the cluster keeps running. Try, for example:");
        for (_, files, _) in &daemons.nodes {
            println!(
                "  {} show peers --socket {}",
                options.tern_binary.display(),
                files.control_socket.display()
            );
        }
        println!("  ip netns exec {} ping {}", pod_a.name(), b.pod_address);
        println!("Press Ctrl-C to tear it down.");
        while interrupt.signal().is_none() {
            daemons.check_running()?;
            interrupt.sleep(Duration::from_millis(500)).ok();
        }
    }

    println!();
    daemons.stop_all();
    drop(lab);
    println!("torn down: tern processes stopped, namespaces deleted");
    Ok(())
}

/// The tern processes of the run, stopped by PID (in order) when dropped.
#[derive(Debug, Default)]
struct Daemons {
    nodes: Vec<(&'static str, NodeFiles, Process)>,
}

impl Daemons {
    /// Fails (with the end of its log) when a daemon has exited.
    fn check_running(&mut self) -> Result<()> {
        for (name, files, process) in &mut self.nodes {
            if !process.is_running() {
                bail!(
                    "tern on {name} exited ({}); end of its log {}:\n{}",
                    process
                        .exit_status()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    files.log.display(),
                    log_tail(&process.log(), 15)
                );
            }
        }
        Ok(())
    }

    /// Stops every daemon, reporting each.
    fn stop_all(&mut self) {
        for (name, _, mut process) in self.nodes.drain(..) {
            let pid = process.pid();
            match process.stop() {
                Ok(status) => println!("stopped tern on {name} (pid {pid}, {status})"),
                Err(error) => eprintln!("stopping tern on {name} (pid {pid}): {error:#}"),
            }
        }
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        if !self.nodes.is_empty() {
            eprintln!("tearing down: stopping {} tern processes", self.nodes.len());
        }
        // Each `Process` is stopped (SIGTERM, bounded wait, SIGKILL) as it drops.
        self.nodes.clear();
    }
}

/// What is still missing for convergence, one line per gap (empty = converged).
fn convergence_gaps(
    cluster: &DemoCluster,
    lab: &Lab,
    daemons: &mut Daemons,
    expected_peers: &[Vec<String>],
) -> Result<Vec<String>> {
    daemons.check_running()?;
    let mut gaps = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let (_, files, _) = &daemons.nodes[i];
        match request(
            &files.control_socket,
            &Request::ShowPeers { name: None },
            Duration::from_secs(2),
        ) {
            Ok(Response::Peers(peers)) => {
                for name in &expected_peers[i] {
                    match peers.iter().find(|p| &p.name == name) {
                        None => gaps.push(format!("{}: peer {name} not configured", node.name)),
                        Some(p) if p.state != SessionState::Established => {
                            let error = p
                                .last_error
                                .as_ref()
                                .map(|e| format!(", last error: {}", e.kind.describe()))
                                .unwrap_or_default();
                            gaps.push(format!(
                                "{}: peer {name} is {}{error}",
                                node.name,
                                p.state.as_str()
                            ));
                        }
                        // Every node originates a block, so every session carries at least
                        // one route each way once both sides have sent their tables.
                        Some(p) if p.prefixes.accepted == 0 || p.prefixes.advertised == 0 => gaps
                            .push(format!(
                                "{}: peer {name} is Established but has accepted {} and \
                                 advertised {} prefixes",
                                node.name, p.prefixes.accepted, p.prefixes.advertised
                            )),
                        Some(_) => {}
                    }
                }
            }
            Ok(other) => gaps.push(format!(
                "{}: unexpected answer to show peers: {other:?}",
                node.name
            )),
            Err(error) => gaps.push(format!(
                "{}: control socket {} not answering: {error}",
                node.name,
                files.control_socket.display()
            )),
        }
        let routes = lab.nodes[i].ip(["-4", "route", "show", "proto", "bird"])?;
        for (block, via, shape) in cluster.remote_blocks(node) {
            let line = routes
                .lines()
                .find(|l| l.split_whitespace().next() == Some(&block.to_string()));
            let device = match shape {
                RouteShape::Direct => "dev eth0",
                RouteShape::Tunnel => "dev tunl0",
            };
            let want = format!("via {via} {device}");
            match line {
                None => gaps.push(format!("{}: no kernel route for {block}", node.name)),
                Some(l) if !l.contains(&want) => gaps.push(format!(
                    "{}: kernel route `{l}` is not `{block} {want}`",
                    node.name
                )),
                Some(_) => {}
            }
        }
    }
    Ok(gaps)
}

/// `tern show peers --socket <socket>`, as a user would run it.
fn tern_show_peers(tern: &Path, socket: &Path) -> Result<String> {
    let output = Command::new(tern)
        .args(["show", "peers", "--socket"])
        .arg(socket)
        .output()
        .with_context(|| format!("running {} show peers", tern.display()))?;
    if !output.status.success() {
        bail!(
            "tern show peers --socket {} failed ({}): {}",
            socket.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The last `lines` lines of a log.
fn log_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The run's directory (`$TMPDIR/tern-demo-<pid>-<random>`, created atomically with mode 0700):
/// manifests, settings, sockets, logs. Removed when dropped unless [`RunDir::keep`] was called
/// (after a failure, for diagnosis).
#[derive(Debug)]
struct RunDir {
    path: PathBuf,
    dir: std::cell::RefCell<Option<tempfile::TempDir>>,
}

impl RunDir {
    fn create() -> Result<RunDir> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tern-demo-{}-", std::process::id()))
            .tempdir()
            .context("creating the run directory")?;
        Ok(RunDir {
            path: dir.path().to_owned(),
            dir: std::cell::RefCell::new(Some(dir)),
        })
    }

    /// Leaves the directory in place.
    fn keep(&self) {
        if let Some(dir) = self.dir.borrow_mut().take() {
            let _ = dir.keep();
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // A TempDir still held removes itself.
        let _ = std::io::stdout().flush();
    }
}
