//! `deploy/`: the calico-node DaemonSet patch applies to calico-node's DaemonSet with kubectl
//! (`kubectl patch --local`, a strategic merge as `kubectl patch` does it on a cluster), and
//! what it names exists: the volumes its mounts use, the token Secret of tern's ServiceAccount
//! in `deploy/rbac.yaml`, the environment tern reads, the `tern` commands of its probes, and
//! the BIRD-compatible sockets under the shared `/var/run/calico` that calico-node's
//! `--bird-ready` reads. Needs `kubectl` (installed by `scripts/setup.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tern::config::{DatastoreType, Settings};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The fixture DaemonSet with the patch applied, by kubectl.
fn patched() -> Value {
    let out = Command::new("kubectl")
        .args([
            "patch",
            "--local",
            "--type",
            "strategic",
            "-o",
            "json",
            "-f",
        ])
        .arg(repo("fixtures/calico/calico-node-daemonset.yaml"))
        .arg("--patch-file")
        .arg(repo("deploy/calico-node-tern.yaml"))
        .output()
        .expect("kubectl (installed by scripts/setup.sh) must be on PATH");
    assert!(
        out.status.success(),
        "kubectl patch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn command(probe: &Value) -> Vec<&str> {
    probe["exec"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn the_patch_is_yaml_and_applies_to_calico_node() {
    assert_eq!(
        yaml_documents(&repo("deploy/calico-node-tern.yaml")).len(),
        1
    );
    let ds = patched();
    let pod = &ds["spec"]["template"]["spec"];

    // calico-node: no BIRD, BIRD6 or confd (any backend but `bird`), no `--bird-live` (it asks
    // runit for services that no longer run); `--bird-ready` stays, answered by tern.
    let node = container(pod, "calico-node");
    let backend: Vec<&Value> = node["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "CALICO_NETWORKING_BACKEND")
        .collect();
    assert_eq!(backend.len(), 1);
    assert_eq!(backend[0]["value"], "vxlan");
    assert!(backend[0].get("valueFrom").is_none(), "{}", backend[0]);
    let live = command(&node["livenessProbe"]);
    assert!(
        live.contains(&"--felix-live") && !live.contains(&"--bird-live"),
        "{live:?}"
    );
    assert!(command(&node["readinessProbe"]).contains(&"--bird-ready"));
    // The init containers keep the ConfigMap's backend.
    let init = &pod["initContainers"][0]["env"][0];
    assert!(init["valueFrom"]["configMapKeyRef"].is_object(), "{init}");

    // Every volume a container mounts exists in the pod.
    let volumes: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let tern = container(pod, "tern");
    for mount in tern["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        assert!(
            volumes.contains(&name),
            "volume {name} missing: {volumes:?}"
        );
    }
    assert_eq!(
        container(pod, "calico-node")["volumeMounts"][0]["mountPath"],
        "/var/run/calico"
    );

    // tern's probes are `tern health` commands.
    assert_eq!(
        command(&tern["readinessProbe"]),
        ["tern", "health", "--ready"]
    );
    assert_eq!(
        command(&tern["livenessProbe"]),
        ["tern", "health", "--live"]
    );
    assert_eq!(tern["command"], serde_json::json!(["tern", "run"]));
    assert_eq!(
        tern["securityContext"]["capabilities"]["add"][0],
        "NET_ADMIN"
    );
}

#[test]
fn what_the_patch_names_exists() {
    let ds = patched();
    let pod = &ds["spec"]["template"]["spec"];
    let tern = container(pod, "tern");

    // The token Secret: of tern's ServiceAccount (deploy/rbac.yaml), in its namespace, and
    // mounted where in-cluster credentials are read.
    let token = &yaml_documents(&repo("deploy/tern-token.yaml"))[0];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tern-token")
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], token["metadata"]["name"]);
    assert_eq!(token["type"], "kubernetes.io/service-account-token");
    let rbac = yaml_documents(&repo("deploy/rbac.yaml"));
    let account = rbac.iter().find(|d| d["kind"] == "ServiceAccount").unwrap();
    assert_eq!(
        token["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        account["metadata"]["name"]
    );
    assert_eq!(
        token["metadata"]["namespace"],
        account["metadata"]["namespace"]
    );
    assert_eq!(token["metadata"]["namespace"], ds["metadata"]["namespace"]);
    let mounts = tern["volumeMounts"].as_array().unwrap();
    let mounted_at = |name: &str| {
        mounts
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["mountPath"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(
        mounted_at("tern-token"),
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );

    // The environment: what tern's settings read, giving the Kubernetes datastore and the
    // node's name.
    let env: Vec<(String, Value)> = tern["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect();
    let mut settings = Settings::default();
    settings
        .apply_env(|name| {
            env.iter().find(|(n, _)| n == name).map(|(_, e)| {
                e["value"]
                    .as_str()
                    .unwrap_or("node-from-fieldref")
                    .to_owned()
            })
        })
        .unwrap();
    assert_eq!(settings.datastore.kind, DatastoreType::Kubernetes);
    assert_eq!(settings.node_name.as_deref(), Some("node-from-fieldref"));
    let nodename = &env.iter().find(|(n, _)| n == "NODENAME").unwrap().1;
    assert_eq!(
        nodename["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );

    // The BIRD-compatible sockets (tern's defaults) are in the shared volume calico-node's
    // `--bird-ready` reads.
    let run = mounted_at("var-run-calico");
    for socket in [&settings.birdctl.socket, &settings.birdctl.socket6] {
        assert_eq!(socket.parent().unwrap(), Path::new(&run), "{socket:?}");
    }
    assert_eq!(
        settings.birdctl.socket,
        Path::new("/var/run/calico/bird.ctl")
    );

    // The probes' commands are tern's: with no daemon they fail as "cannot reach" (exit 2),
    // not as a usage error.
    for probe in ["readinessProbe", "livenessProbe"] {
        let args = command(&tern[probe]);
        let out = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(&args[1..])
            .args(["--socket", "/nonexistent/tern.ctl"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot reach tern"), "{args:?}: {stderr}");
    }
}
