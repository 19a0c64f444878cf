//! The API server double speaks Kubernetes: a real client (kubectl, Debian's
//! `kubernetes-client`, installed by scripts/setup.sh) applies, gets, pages, watches and
//! deletes through it; RBAC from `deploy/rbac.yaml` decides what tern's ServiceAccount may do;
//! the fault controls make it fail as an API server does. No root needed: the double listens
//! on 127.0.0.1.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use interop::kube::{KubeApi, KubeApiOptions, TERN_TOKEN};
use interop::prelude::*;
use serde_json::Value;

const PEERS: &str = r#"
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata: {name: tor-a}
spec: {peerIP: 10.0.0.254, asNumber: 65000}
---
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata: {name: tor-b}
spec: {peerIP: 10.0.0.253, asNumber: 65000}
---
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata: {name: tor-c}
spec: {peerIP: 10.0.0.252, asNumber: 65000}
---
apiVersion: v1
kind: Secret
metadata: {name: bgp-passwords, namespace: kube-system}
stringData: {tor: s3cret}
---
apiVersion: v1
kind: Node
metadata:
  name: n1
  labels: {rack: a}
  annotations: {projectcalico.org/IPv4Address: 10.0.0.1/24}
"#;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn events(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .or(e["object"]["code"].as_u64().map(|_| "status"))
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn kubectl_applies_gets_watches_and_deletes_through_the_double() {
    run_scenario("kube-api-kubectl", &[], body);
}

fn body(artifacts: &Artifacts) -> Result<()> {
    let api = KubeApi::start(None, artifacts, "kube-api", &KubeApiOptions::default())?;

    // Create: kubectl apply (GET, then POST) of CRDs and core kinds.
    let out = api.apply(PEERS)?;
    assert!(
        out.contains("bgppeer.crd.projectcalico.org/tor-a created"),
        "{out}"
    );
    assert!(out.contains("secret/bgp-passwords created"), "{out}");
    assert!(out.contains("node/n1 created"), "{out}");

    // Get, as JSON and as the default table.
    let list = json(&api.kubectl(&["get", "bgppeers.crd.projectcalico.org", "-o", "json"])?);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tor-a", "tor-b", "tor-c"]);
    let raw = json(&api.kubectl(&["get", "--raw", "/apis/crd.projectcalico.org/v1/bgppeers"])?);
    let rv: u64 = raw["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()?;
    let table = api.kubectl(&["get", "nodes"])?;
    assert!(table.contains("n1"), "{table}");
    let secret = json(&api.kubectl(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        "bgp-passwords",
        "-o",
        "json",
    ])?);
    // Stored as the real server does: stringData merged into data, base64.
    assert_eq!(secret["data"]["tor"], "czNjcmV0");

    // Paged list: kubectl asks 1 at a time and follows the continue tokens.
    let before = api.requests("list", "bgppeers")?;
    let paged = api.kubectl(&[
        "get",
        "bgppeers.crd.projectcalico.org",
        "--chunk-size=1",
        "-o",
        "name",
    ])?;
    assert_eq!(paged.lines().count(), 3, "{paged}");
    assert_eq!(api.requests("list", "bgppeers")? - before, 3);

    // Update: apply again with a change (kubectl sends a merge patch), and a label selector.
    let out = api.apply(&PEERS.replace("peerIP: 10.0.0.254,", "peerIP: 10.0.0.250,"))?;
    assert!(
        out.contains("bgppeer.crd.projectcalico.org/tor-a configured"),
        "{out}"
    );
    assert!(
        out.contains("bgppeer.crd.projectcalico.org/tor-b unchanged"),
        "{out}"
    );
    let peer = json(&api.kubectl(&["get", "bgppeer", "tor-a", "-o", "json"])?);
    assert_eq!(peer["spec"]["peerIP"], "10.0.0.250");
    api.kubectl(&["label", "node", "n1", "rack=b", "--overwrite"])?;
    assert!(
        api.kubectl(&["get", "nodes", "-l", "rack=a", "-o", "name"])?
            .trim()
            .is_empty()
    );
    assert_eq!(
        api.kubectl(&["get", "nodes", "-l", "rack in (b,c)", "-o", "name"])?
            .trim(),
        "node/n1"
    );

    // Delete (kubectl waits for the object to be gone).
    let out = api.kubectl(&["delete", "bgppeer", "tor-c"])?;
    assert!(out.contains("deleted"), "{out}");

    // Watch from the first list's version: every change since, then the stream ends at its
    // timeout.
    let path = format!(
        "/apis/crd.projectcalico.org/v1/bgppeers?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    );
    let seen = events(&api.kubectl(&["get", "--raw", &path])?);
    assert_eq!(
        seen,
        [
            ("MODIFIED".to_string(), "tor-a".to_string()),
            ("DELETED".into(), "tor-c".into())
        ]
    );
    // A live watch with bookmarks (kubectl get --watch), seeing a change made meanwhile.
    let watch = api
        .kubectl_command(&api.admin)
        .args(["get", "--raw"])
        .arg("/apis/crd.projectcalico.org/v1/bgppeers?watch=true&allowWatchBookmarks=true&timeoutSeconds=4")
        .stdout(Stdio::piped())
        .spawn()?;
    wait_until("the watch is open", Duration::from_secs(30), || {
        Ok(api.stats()?["openWatches"].as_u64() == Some(1))
    })?;
    api.apply(&PEERS.replace(
        "tor-b}\nspec: {peerIP: 10.0.0.253",
        "tor-b}\nspec: {peerIP: 10.0.0.251",
    ))?;
    let out = watch.wait_with_output()?;
    let seen = events(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(seen[0], ("ADDED".into(), "tor-a".into()), "{seen:?}");
    assert!(
        seen.contains(&("MODIFIED".into(), "tor-b".into())),
        "{seen:?}"
    );
    assert!(seen.iter().any(|(t, _)| t == "BOOKMARK"), "{seen:?}");

    // Compaction: a watch from an old version gets 410 Gone as an ERROR event.
    api.control("/compact", "")?;
    let seen = api.kubectl(&["get", "--raw", &path])?;
    let error = json(seen.lines().next().unwrap_or(""));
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["code"], 410, "{seen}");

    // RBAC: tern's ServiceAccount may list and watch what deploy/rbac.yaml grants, nothing
    // else.
    let tern = api.kubeconfig("tern", TERN_TOKEN)?;
    let out = api.kubectl_as(
        &tern,
        &["get", "bgppeers.crd.projectcalico.org", "-o", "name"],
    )?;
    assert_eq!(out.lines().count(), 3, "{out}");
    let err = api
        .kubectl_as(&tern, &["delete", "bgppeer", "tor-a"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("forbidden: User \"system:serviceaccount:kube-system:tern\" cannot delete resource \"bgppeers\" in API group \"crd.projectcalico.org\""),
        "{err}"
    );
    // Services and EndpointSlices (service advertisement): listed across namespaces, never
    // read one by one.
    api.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: [10.244.1.5], nodeName: n1}]\n",
    )?;
    for resource in ["services", "endpointslices.discovery.k8s.io"] {
        let out = api.kubectl_as(&tern, &["get", resource, "-A", "-o", "name"])?;
        assert_eq!(out.lines().count(), 1, "{resource}: {out}");
    }
    let err = api
        .kubectl_as(&tern, &["get", "service", "-n", "default", "web"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot get resource \"services\""), "{err}");
    let err = api
        .kubectl_as(&tern, &["get", "secrets", "-n", "default"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot list resource \"secrets\""), "{err}");
    let err = api
        .kubectl_as(
            &tern,
            &["get", "secret", "-n", "kube-system", "bgp-passwords"],
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot get resource \"secrets\""), "{err}");
    let out = api.kubectl_as(
        &tern,
        &[
            "get",
            "secrets",
            "-n",
            "kube-system",
            "--field-selector",
            "metadata.name=bgp-passwords",
            "-o",
            "name",
        ],
    )?;
    assert_eq!(out.trim(), "secret/bgp-passwords");
    let bad = api.kubeconfig("bad", "no-such-token")?;
    let err = api
        .kubectl_as(&bad, &["get", "nodes"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("Unauthorized"), "{err}");

    // Faults: 429 is retried by the client; a 500 in the middle of a paged list fails it;
    // down means connection refused until up.
    api.control("/fail?code=429&count=1&verb=list", "")?;
    assert_eq!(
        api.kubectl(&["get", "nodes", "-o", "name"])?.trim(),
        "node/n1"
    );
    api.control("/fail?code=500&count=1&verb=list&continue=1", "")?;
    let err = api
        .kubectl(&[
            "get",
            "bgppeers.crd.projectcalico.org",
            "--chunk-size=1",
            "-o",
            "name",
        ])
        .unwrap_err()
        .to_string();
    assert!(err.contains("injected fault: 500"), "{err}");
    api.control("/down", "")?;
    let err = api
        .kubectl(&["get", "nodes", "--request-timeout=5s"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("refused"), "{err}");
    api.control("/up", "")?;
    wait_until("the double answers again", Duration::from_secs(30), || {
        Ok(api.kubectl(&["get", "nodes", "-o", "name"]).is_ok())
    })?;

    // Delete through a manifest.
    let out = api.delete(PEERS)?;
    assert!(out.contains("node \"n1\" deleted"), "{out}");
    assert!(
        api.kubectl(&["get", "bgppeers.crd.projectcalico.org", "-o", "name"])?
            .trim()
            .is_empty()
    );
    Ok(())
}
