//! Scale driver for the Kubernetes datastore (issue 13, docs/benchmarks.md "Kubernetes
//! datastore at scale"); ignored, not a CI test. The API server double holds 1,000 Nodes,
//! 5,000 BlockAffinities (5 per node), 2,000 Services and their EndpointSlices (3 endpoints
//! each, on 3 consecutive nodes; every other Service `externalTrafficPolicy: Local`); tern runs
//! as `node-0000` (mesh off, one FRR ToR). Per run it measures: time from start until
//! `tern show peers` lists the ToR (the first plan applied) and until the ToR has every route;
//! RSS and peak RSS once idle; then the CPU time tern spends on a change of another Node (the
//! plan does not change), and the CPU time and the time until the ToR sees it of a change of
//! its own Node (labelled out of load balancers: every Service route withdrawn). Run:
//!
//! ```text
//! cargo build --release -p tern --bin tern && cargo build -p interop --bin kube-api
//! TERN_BIN=target/release/tern SCALE_RUNS=3 cargo nextest run -p tern --test kube_scale \
//!     --run-ignored only --no-capture
//! ```

mod daemon_common;

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use daemon_common::*;
use interop::kube::{KubeApi, KubeApiOptions, TERN_TOKEN, kubernetes_form};
use interop::prelude::*;

const NODES: usize = 1000;
const BLOCKS_PER_NODE: usize = 5;
const SERVICES: usize = 2000;
const NODE_IP: &str = "10.0.0.1";
const TOR_IP: &str = "10.0.0.254";
const API_IP: &str = "10.0.0.100";
const TIMEOUT: Duration = Duration::from_secs(300);

fn node_name(i: usize) -> String {
    format!("node-{i:04}")
}

fn block(i: usize) -> String {
    let base = u32::from(Ipv4Addr::new(10, 128, 0, 0)) + (i as u32) * 64;
    format!("{}/26", Ipv4Addr::from(base))
}

fn cluster_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + 10 + i as u32)
}

/// Every object, as YAML documents (Calico ones in the v3 form, for `kubernetes_form`).
fn objects() -> String {
    let mut y = String::from(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {asNumber: 64512, nodeToNodeMeshEnabled: false, serviceClusterIPs: [{cidr: 10.96.0.0/12}]}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {peerIP: 10.0.0.254, asNumber: 65000}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pods}\n\
         spec: {cidr: 10.128.0.0/9, blockSize: 26, ipipMode: Never}\n",
    );
    for n in 0..NODES {
        let ip = if n == 0 {
            format!("{NODE_IP}/24")
        } else {
            format!("10.1.{}.{}/16", n / 250, n % 250 + 1)
        };
        let _ = write!(
            y,
            "---\napiVersion: projectcalico.org/v3\nkind: Node\n\
             metadata: {{name: {}, labels: {{rack: r{}, kubernetes.io/os: linux}}}}\n\
             spec: {{bgp: {{ipv4Address: {ip}}}}}\n",
            node_name(n),
            n / 40
        );
        for b in 0..BLOCKS_PER_NODE {
            let i = n * BLOCKS_PER_NODE + b;
            let _ = write!(
                y,
                "---\napiVersion: projectcalico.org/v3\nkind: BlockAffinity\n\
                 metadata: {{name: {}-{b}}}\nspec: {{state: confirmed, node: {}, cidr: {}}}\n",
                node_name(n),
                node_name(n),
                block(i)
            );
        }
    }
    for s in 0..SERVICES {
        let policy = if s % 2 == 0 { "Local" } else { "Cluster" };
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{s}, namespace: default, labels: {{app: svc-{s}}}}}\n\
             spec: {{type: LoadBalancer, clusterIP: {ip}, clusterIPs: [{ip}], ipFamilies: [IPv4], \
             externalTrafficPolicy: {policy}, selector: {{app: svc-{s}}}, ports: [{{port: 80, targetPort: 8080}}]}}\n",
            ip = cluster_ip(s)
        );
        let endpoints: Vec<String> = (0..3)
            .map(|k| {
                let n = (s + k) % NODES;
                format!(
                    "{{addresses: [10.128.{}.{}], nodeName: {}, conditions: {{ready: true, serving: true}}}}",
                    n / 4,
                    (n % 4) * 64 + 2,
                    node_name(n)
                )
            })
            .collect();
        let _ = write!(
            y,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: svc-{s}-x1, namespace: default, labels: {{kubernetes.io/service-name: svc-{s}, endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io}}}}\n\
             addressType: IPv4\nports: [{{port: 8080}}]\nendpoints: [{}]\n",
            endpoints.join(", ")
        );
    }
    y
}

/// The /32s node-0000 advertises: Local Services with an endpoint on it.
fn expected_service_routes() -> Vec<String> {
    (0..SERVICES)
        .filter(|s| s % 2 == 0 && (0..3).any(|k| (s + k) % NODES == 0))
        .map(|s| format!("{}/32", cluster_ip(s)))
        .collect()
}

/// utime + stime of `pid`, in clock ticks (10 ms).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// `VmRSS` and `VmHWM` of `pid`, KiB.
fn rss(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let get = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Ok((get("VmRSS:"), get("VmHWM:")))
}

/// Waits until `pid` used less than 2 ticks of CPU over one second; returns its ticks then.
fn idle(pid: u32) -> Result<u64> {
    let mut last = cpu_ticks(pid)?;
    wait_until("tern idle", TIMEOUT, || {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_ticks(pid)?;
        let quiet = now - last < 2;
        last = now;
        Ok(quiet)
    })?;
    Ok(last)
}

fn tor_routes(frr: &Frr) -> Result<Vec<String>> {
    let out = frr.vtysh(&["show bgp ipv4 unicast json"])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["routes"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default())
}

#[derive(Debug)]
struct Run {
    first_plan: Duration,
    routes_at_tor: Duration,
    rss_kib: u64,
    peak_kib: u64,
    start_cpu_ms: u64,
    other_node_cpu_ms: u64,
    own_node_cpu_ms: u64,
    own_node_applied: Duration,
    /// `plan from Kubernetes took=` of tern's log: the first plan, the own-Node change.
    first_compute_ms: f64,
    change_compute_ms: f64,
}

/// The durations tern logged for its plans (`plan from Kubernetes took=...`), in ms.
fn computed(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("plan from Kubernetes"))
        .filter_map(|l| {
            l.split("took=")
                .nth(1)?
                .split_whitespace()
                .next()
                .map(str::to_owned)
        })
        .filter_map(|t| {
            let (value, scale) = if let Some(v) = t.strip_suffix("ms") {
                (v, 1.0)
            } else if let Some(v) = t.strip_suffix("µs") {
                (v, 0.001)
            } else if let Some(v) = t.strip_suffix('s') {
                (v, 1000.0)
            } else {
                return None;
            };
            value.parse::<f64>().ok().map(|v| v * scale)
        })
        .collect()
}

fn median_range<T: Copy + PartialOrd>(values: &mut [T]) -> (T, T, T) {
    values.sort_by(|a, b| a.partial_cmp(b).expect("ordered"));
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

#[test]
#[ignore = "scale benchmark: run by hand (see the module documentation)"]
fn ns_kube_scale() {
    run_scenario("kube-scale", &[BASE, FRR], |artifacts| {
        let runs: usize = std::env::var("SCALE_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(3);
        let lan = Switch::new("lan")?;
        let mut nss = Vec::new();
        for (label, ip) in [("n0", NODE_IP), ("tor", TOR_IP), ("api", API_IP)] {
            let ns = Netns::new(label)?;
            lan.attach(&ns, "eth0", &[&format!("{ip}/24")])?;
            nss.push(ns);
        }
        let api = KubeApi::start(
            Some(&nss[2]),
            artifacts,
            "kube-api",
            &KubeApiOptions {
                listen: format!("{API_IP}:6443"),
                ..KubeApiOptions::default()
            },
        )?;
        let generated = Instant::now();
        let yaml = kubernetes_form(&objects(), "crd.projectcalico.org/v1")?;
        let loaded = api.control("/load", &yaml)?;
        println!(
            "loaded {} objects ({} bytes) in {:?}",
            loaded["loaded"],
            yaml.len(),
            generated.elapsed()
        );
        let frr = Frr::start(
            &nss[1],
            artifacts,
            "tor",
            &FrrConfig::new("tor", 65000, TOR_IP).with_neighbor(FrrNeighbor::new(
                NODE_IP,
                64512,
                &[Family::Ipv4Unicast],
            )),
        )?;
        let kubeconfig = api.kubeconfig("tern", TERN_TOKEN)?;
        let services = expected_service_routes();
        let mut expected: Vec<String> = (0..BLOCKS_PER_NODE).map(block).collect();
        expected.push("10.96.0.0/12".into());
        expected.extend(services.iter().cloned());
        let node = TernNode::write(artifacts, "node-0000", "", "")?;
        let mut results = Vec::new();
        for run in 0..runs {
            let mut command = nss[0].command(&tern_bin());
            command
                .arg("--config")
                .arg(&node.settings)
                .arg("run")
                .arg("--flush-on-exit")
                .env("DATASTORE_TYPE", "kubernetes")
                .env("KUBECONFIG", &kubeconfig);
            let started = Instant::now();
            let mut tern = Process::spawn_command(
                "tern node-0000",
                command,
                &artifacts.path(&format!("tern-{run}.log")),
            )?;
            let pid = tern.pid();
            wait_until("tern lists the ToR peer", TIMEOUT, || {
                Ok(node.peer_state(TOR_IP).is_ok())
            })?;
            let first_plan = started.elapsed();
            wait_until("the ToR has every route of node-0000", TIMEOUT, || {
                let have = tor_routes(&frr)?;
                Ok(expected.iter().all(|p| have.contains(p)))
            })?;
            let routes_at_tor = started.elapsed();
            let start_ticks = idle(pid)?;
            let (rss_kib, peak_kib) = rss(pid)?;

            // Another Node changes (a label): the plan is recomputed and unchanged.
            api.kubectl(&[
                "label",
                "node",
                "node-0500",
                &format!("bench=r{run}"),
                "--overwrite",
            ])?;
            let other_ticks = idle(pid)?;

            // Its own Node is excluded from load balancers: every Service route goes.
            let before = cpu_ticks(pid)?;
            api.kubectl(&[
                "label",
                "node",
                "node-0000",
                "node.kubernetes.io/exclude-from-external-load-balancers=true",
            ])?;
            let at = Instant::now();
            wait_until("the ToR loses the Service routes", TIMEOUT, || {
                let have = tor_routes(&frr)?;
                Ok(!have.iter().any(|p| p.starts_with("10.96.")))
            })?;
            let own_node_applied = at.elapsed();
            let own_ticks = idle(pid)?;
            api.kubectl(&[
                "label",
                "node",
                "node-0000",
                "node.kubernetes.io/exclude-from-external-load-balancers-",
            ])?;
            wait_until("the Service routes are back", TIMEOUT, || {
                let have = tor_routes(&frr)?;
                Ok(services.iter().all(|p| have.contains(p)))
            })?;
            ensure!(tern.is_running(), "tern exited: {}", tern.log());
            tern.stop()?;
            let took = computed(&tern.log());
            ensure!(took.len() >= 3, "tern logged {} plans", took.len());
            let r = Run {
                first_plan,
                routes_at_tor,
                rss_kib,
                peak_kib,
                start_cpu_ms: start_ticks * 10,
                other_node_cpu_ms: (other_ticks - start_ticks) * 10,
                own_node_cpu_ms: (own_ticks - before) * 10,
                own_node_applied,
                first_compute_ms: took[0],
                change_compute_ms: took[1],
            };
            println!("run {run}: {r:?}");
            results.push(r);
        }
        let mut report = String::new();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut line = |what: &str, mut v: Vec<f64>, unit: &str| {
            let (m, lo, hi) = median_range(&mut v);
            let _ = writeln!(report, "| {what} | {m:.0} {unit} | {lo:.0}-{hi:.0} |");
        };
        line(
            "time to first plan (start → ToR peer listed)",
            results.iter().map(|r| ms(r.first_plan)).collect(),
            "ms",
        );
        line(
            "start → ToR has every route",
            results.iter().map(|r| ms(r.routes_at_tor)).collect(),
            "ms",
        );
        line(
            "CPU time to idle after start",
            results.iter().map(|r| r.start_cpu_ms as f64).collect(),
            "ms",
        );
        line(
            "first plan: build the model and compute (tern's log)",
            results.iter().map(|r| r.first_compute_ms).collect(),
            "ms",
        );
        line(
            "RSS once idle",
            results.iter().map(|r| r.rss_kib as f64 / 1024.0).collect(),
            "MiB",
        );
        line(
            "peak RSS (VmHWM)",
            results.iter().map(|r| r.peak_kib as f64 / 1024.0).collect(),
            "MiB",
        );
        line(
            "another Node labelled: CPU time",
            results.iter().map(|r| r.other_node_cpu_ms as f64).collect(),
            "ms",
        );
        line(
            "own Node excluded: CPU time",
            results.iter().map(|r| r.own_node_cpu_ms as f64).collect(),
            "ms",
        );
        line(
            "own Node excluded: build the model and compute (tern's log)",
            results.iter().map(|r| r.change_compute_ms).collect(),
            "ms",
        );
        line(
            "own Node excluded: kubectl → ToR lost the /32s and range",
            results.iter().map(|r| ms(r.own_node_applied)).collect(),
            "ms",
        );
        println!("{report}");
        artifacts.write("scale.md", &report)?;
        Ok(())
    });
}
