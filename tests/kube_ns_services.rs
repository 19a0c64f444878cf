//! Service IP advertisement with `DATASTORE_TYPE=kubernetes` (issue 13): two tern nodes
//! (`node-1`, `node-2`) read the API server double and peer eBGP with an FRR top-of-rack
//! router (mesh off, as in interop's top-of-rack scenario). A Service with
//! `externalTrafficPolicy: Local` and one ready endpoint on node-1: FRR has its /32s (cluster
//! IP and external IP) from node-1 only, and the service ranges from both; `kubectl apply`
//! moves the endpoint to node-2: FRR loses the /32s from node-1 and gets them from node-2;
//! the endpoint not ready: withdrawn from both. Needs root, FRR and kubectl.

mod daemon_common;

use std::time::Instant;

use anyhow::{Result, ensure};
use daemon_common::*;
use interop::kube::{KubeApi, KubeApiOptions, TERN_TOKEN, kubernetes_form};
use interop::prelude::*;
use serde_json::Value;

const NODE1_IP: &str = "10.0.0.1";
const NODE2_IP: &str = "10.0.0.2";
const TOR_IP: &str = "10.0.0.254";
const API_IP: &str = "10.0.0.100";
const TOR_AS: u32 = 65000;
const CLUSTER_RANGE: &str = "10.96.0.0/12";
const CLUSTER_IP: &str = "10.96.0.10/32";
const EXTERNAL_IP: &str = "192.0.2.10/32";

const CLUSTER: &str = r#"
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  asNumber: 64512
  nodeToNodeMeshEnabled: false
  serviceClusterIPs: [{cidr: 10.96.0.0/12}]
  serviceExternalIPs: [{cidr: 192.0.2.0/24}]
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node-1}
spec: {bgp: {ipv4Address: 10.0.0.1/24}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node-2}
spec: {bgp: {ipv4Address: 10.0.0.2/24}}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor}
spec: {peerIP: 10.0.0.254, asNumber: 65000}
"#;

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ipFamilies: [IPv4]
  externalTrafficPolicy: Local
  externalIPs: [192.0.2.10]
  ports: [{port: 80}]
"#;

/// The Service's EndpointSlice with one endpoint on `node`.
fn endpoints(node: &str, ready: bool) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-abcde, namespace: default, labels: {{kubernetes.io/service-name: web}}}}\n\
         addressType: IPv4\n\
         endpoints: [{{addresses: [10.244.1.5], nodeName: {node}, conditions: {{ready: {ready}}}}}]\n"
    )
}

/// The neighbors FRR has a path for `prefix` from, sorted.
fn sources(frr: &Frr, prefix: &str) -> Result<Vec<String>> {
    let out = frr.vtysh(&[&format!("show bgp ipv4 unicast {prefix} json")])?;
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    let mut peers: Vec<String> = v["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["prefix"].is_null() || p["prefix"] == prefix)
        .filter_map(|p| p["peer"]["peerId"].as_str().map(str::to_owned))
        .collect();
    // `show bgp <prefix>` answers with the longest match; only an exact one counts.
    if v["prefix"].as_str() != Some(prefix) {
        peers.clear();
    }
    peers.sort();
    Ok(peers)
}

#[test]
fn ns_kube_service_local_endpoint_moves() {
    run_scenario("kube-service-local", &[BASE, FRR], |artifacts| {
        let lan = Switch::new("lan")?;
        let mut nss = Vec::new();
        for (label, ip) in [
            ("n1", NODE1_IP),
            ("n2", NODE2_IP),
            ("tor", TOR_IP),
            ("api", API_IP),
        ] {
            let ns = Netns::new(label)?;
            lan.attach(&ns, "eth0", &[&format!("{ip}/24")])?;
            nss.push(ns);
        }
        let api = KubeApi::start(
            Some(&nss[3]),
            artifacts,
            "kube-api",
            &KubeApiOptions {
                listen: format!("{API_IP}:6443"),
                ..KubeApiOptions::default()
            },
        )?;
        let apply = |yaml: &str| -> Result<Instant> {
            api.apply(&kubernetes_form(yaml, "crd.projectcalico.org/v1")?)?;
            Ok(Instant::now())
        };
        apply(CLUSTER)?;
        apply(SERVICE)?;
        apply(&endpoints("node-1", true))?;

        let mut tor = FrrConfig::new("tor", TOR_AS, TOR_IP);
        for ip in [NODE1_IP, NODE2_IP] {
            tor = tor.with_neighbor(FrrNeighbor::new(ip, 64512, &[Family::Ipv4Unicast]));
        }
        let frr = Frr::start(&nss[2], artifacts, "tor", &tor)?;

        let kubeconfig = api.kubeconfig("tern", TERN_TOKEN)?;
        let mut terns = Vec::new();
        let mut nodes = Vec::new();
        for (i, name) in ["node-1", "node-2"].into_iter().enumerate() {
            let node = TernNode::write(artifacts, name, "", "")?;
            let mut command = nss[i].command(&tern_bin());
            command
                .arg("--config")
                .arg(&node.settings)
                .arg("run")
                .env("DATASTORE_TYPE", "kubernetes")
                .env("KUBECONFIG", &kubeconfig);
            terns.push(Process::spawn_command(
                &format!("tern {name}"),
                command,
                &artifacts.path(&format!("{name}-tern.log")),
            )?);
            nodes.push(node);
        }
        for (node, ip) in nodes.iter().zip([NODE1_IP, NODE2_IP]) {
            wait_until(
                &format!("{} Established with FRR", node.name),
                CONVERGE,
                || Ok(node.peer_state(TOR_IP)? == "Established"),
            )?;
            wait_until(&format!("FRR Established with {ip}"), CONVERGE, || {
                Ok(frr.session_state(ip)? == "Established")
            })?;
        }
        let both = vec![NODE1_IP.to_string(), NODE2_IP.to_string()];
        let only = |ip: &str| vec![ip.to_string()];

        // The range from every node; the Service's /32s from node-1 only.
        wait_until(
            "FRR has the cluster range from both nodes",
            CONVERGE,
            || Ok(sources(&frr, CLUSTER_RANGE)? == both),
        )?;
        for prefix in [CLUSTER_IP, EXTERNAL_IP] {
            wait_until(&format!("FRR has {prefix} from node-1"), CONVERGE, || {
                Ok(sources(&frr, prefix)? == only(NODE1_IP))
            })?;
        }

        // The endpoint moves to node-2.
        let at = apply(&endpoints("node-2", true))?;
        for prefix in [CLUSTER_IP, EXTERNAL_IP] {
            wait_until(
                &format!("FRR has {prefix} from node-2 only"),
                CONVERGE,
                || Ok(sources(&frr, prefix)? == only(NODE2_IP)),
            )?;
        }
        println!(
            "endpoint moved -> FRR has the /32s from node-2 only: {:?}",
            at.elapsed()
        );

        // Not ready: withdrawn from both; the range stays.
        apply(&endpoints("node-2", false))?;
        for prefix in [CLUSTER_IP, EXTERNAL_IP] {
            wait_until(&format!("FRR loses {prefix}"), CONVERGE, || {
                Ok(sources(&frr, prefix)?.is_empty())
            })?;
        }
        ensure!(
            sources(&frr, CLUSTER_RANGE)? == both,
            "the range went with the Service's /32"
        );
        drop(terns);
        Ok(())
    });
}
