//! `tern demo` end to end, as root: the built binary builds its cluster, converges, pings and
//! removes everything it made (namespaces `tern-<demo pid>-*`, tern processes whose settings
//! live in its run directory `tern-demo-<demo pid>-*`), also when stopped with SIGINT mid-run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// Whether the test can run here: a missing prerequisite fails it (skips with `TERN_ALLOW_SKIP=1`).
fn can_run(test: &str) -> bool {
    use interop::scenario::Requirement;
    interop::scenario::require(
        test,
        &[
            Requirement::Root,
            Requirement::Binary("ip"),
            Requirement::Binary("ping"),
        ],
    )
}

/// Namespaces and processes left behind by the demo run with process id `pid`.
fn leftovers(pid: u32) -> Vec<String> {
    let mut left = Vec::new();
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let prefix = format!("tern-{pid}-");
    for line in String::from_utf8_lossy(&namespaces.stdout).lines() {
        if line.starts_with(&prefix) {
            left.push(format!("namespace {line}"));
        }
    }
    let marker = format!("tern-demo-{pid}-");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(process) = entry.file_name().into_string() else {
            continue;
        };
        if !process.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&marker) {
            left.push(format!("process {process}: {cmdline}"));
        }
    }
    left
}

/// Waits for the child to exit, at most `timeout`; kills it (and fails) after that.
fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("tern demo did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `tern demo args` with stdout read line by line into a channel (and echoed).
fn spawn_demo(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(TERN)
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting tern demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("demo | {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn ns_demo_runs_and_cleans_up() {
    if !can_run("ns_demo_runs_and_cleans_up") {
        return;
    }
    let (mut child, lines) = spawn_demo(&["--timeout", "90"]);
    let pid = child.id();
    let status = wait_exit(&mut child, Duration::from_secs(240));
    let output: Vec<String> = lines.try_iter().collect();
    let text = output.join("\n");
    assert!(status.success(), "tern demo failed ({status}):\n{text}");
    let established = output
        .iter()
        .filter(|l| l.starts_with("Mesh_") && l.contains("Established"))
        .count();
    assert_eq!(
        established, 6,
        "each of 3 nodes shows 2 mesh peers Established:\n{text}"
    );
    for block in ["10.244.1.0/26", "10.244.2.0/26", "10.244.3.0/26"] {
        assert!(
            output
                .iter()
                .any(|l| l.starts_with(&format!("{block} via "))),
            "a learned kernel route for {block} is printed:\n{text}"
        );
    }
    assert!(
        output
            .iter()
            .any(|l| l.contains("dev tunl0") && l.contains("onlink")),
        "cross-subnet routes go through tunl0:\n{text}"
    );
    assert!(
        output.iter().any(|l| l.contains(" 0% packet loss")),
        "ping summary without loss:\n{text}"
    );
    assert!(
        output.iter().any(|l| l.starts_with("ping succeeded")),
        "{text}"
    );
    assert_eq!(leftovers(pid), Vec::<String>::new(), "left behind");
}

#[test]
fn ns_demo_interrupted_cleans_up() {
    if !can_run("ns_demo_interrupted_cleans_up") {
        return;
    }
    let (mut child, lines) = spawn_demo(&["--timeout", "90"]);
    let pid = child.id();
    // Mid-run: the namespaces exist and the first tern process has been started; the others
    // and convergence are still to come.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let started = line.starts_with("started `tern run` on node-1");
                seen.push(line);
                if started {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("tern demo never started its nodes:\n{}", seen.join("\n"));
            }
        }
    }
    assert!(
        !leftovers(pid).is_empty(),
        "the run has namespaces and processes before the signal"
    );
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(120));
    seen.extend(lines.try_iter());
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(130), "exit 128 + SIGINT:\n{text}");
    assert!(
        seen.iter()
            .any(|l| l.starts_with("interrupted by signal 2")),
        "{text}"
    );
    assert_eq!(leftovers(pid), Vec::<String>::new(), "left behind");
}

#[test]
fn ns_demo_route_reflector_runs_and_cleans_up() {
    if !can_run("ns_demo_route_reflector_runs_and_cleans_up") {
        return;
    }
    let (mut child, lines) = spawn_demo(&["--topology", "rr", "--timeout", "90"]);
    let pid = child.id();
    let status = wait_exit(&mut child, Duration::from_secs(240));
    let output: Vec<String> = lines.try_iter().collect();
    let text = output.join("\n");
    assert!(
        status.success(),
        "tern demo --topology rr failed ({status}):\n{text}"
    );
    // node-1 and node-2 each peer with node-3 only; node-3 with both.
    let established = output
        .iter()
        .filter(|l| l.starts_with("Node_") && l.contains("Established"))
        .count();
    assert_eq!(established, 4, "{text}");
    assert!(!output.iter().any(|l| l.starts_with("Mesh_")), "{text}");
    // Reflected between the clients with the original next hop: node-1 reaches node-2's block
    // directly on their shared subnet.
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("10.244.2.0/26 via 10.0.1.12 dev eth0")),
        "{text}"
    );
    assert!(
        output.iter().any(|l| l.starts_with("ping succeeded")),
        "{text}"
    );
    assert_eq!(leftovers(pid), Vec::<String>::new(), "left behind");
}
