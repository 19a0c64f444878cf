//! Runs the built `tern` binary: `tern plan` on an example cluster, and on a broken manifest.

use std::path::Path;
use std::process::Command;

fn tern() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    // Keep the host's environment and settings out of the test.
    for var in [
        "NODENAME",
        "CALICO_ROUTER_ID",
        "CALICO_API_GROUP",
        "DATASTORE_TYPE",
        "TERN_DATASTORE_PATHS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/clusters")
        .join(name)
        .join("manifests")
        .display()
        .to_string()
}

#[test]
fn plan_prints_text_and_json() {
    let out = tern()
        .args([
            "plan",
            "--node",
            "n9",
            "--datastore",
            &fixture("mesh-ipip-crosssubnet"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("router id   10.0.0.9"), "{text}");
    assert!(
        text.contains("Mesh_10_0_1_3") && text.contains("passive"),
        "{text}"
    );

    let out = tern()
        .args([
            "plan",
            "--json",
            "--node",
            "n9",
            "--datastore",
            &fixture("mesh-ipip-crosssubnet"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/clusters/mesh-ipip-crosssubnet/plan-n9.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json, expected);
}

#[test]
fn plan_prints_every_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clusters");
    let mut runs = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        for node in std::fs::read_to_string(dir.join("nodes.txt"))
            .unwrap()
            .split_whitespace()
        {
            let out = tern()
                .args(["plan", "--node", node, "--datastore", &fixture(&name)])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}/{node}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8(out.stdout)
                    .unwrap()
                    .starts_with(&format!("node        {node}\n"))
            );
            let out = tern()
                .args([
                    "plan",
                    "--json",
                    "--node",
                    node,
                    "--datastore",
                    &fixture(&name),
                ])
                .output()
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let golden = std::fs::read_to_string(dir.join(format!("plan-{node}.json"))).unwrap();
            assert_eq!(
                json,
                serde_json::from_str::<serde_json::Value>(&golden).unwrap(),
                "{name}/{node}"
            );
            runs += 1;
        }
    }
    assert!(runs >= 9);
}

#[test]
fn plan_shows_password_references_only() {
    let out = tern()
        .args(["plan", "--node", "n1", "--datastore", &fixture("passwords")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("<secret kube-system/bgp-secrets:tor>"),
        "{text}"
    );
    assert!(
        !text.contains("tor-password") && !text.contains("mesh-password"),
        "{text}"
    );
}

#[test]
fn plan_uses_the_settings_file_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tern.toml");
    std::fs::write(
        &config,
        format!(
            "node_name = \"n3\"\n[datastore]\npaths = [{:?}]\n",
            fixture("mesh-ipip-crosssubnet")
        ),
    )
    .unwrap();
    let out = tern()
        .args(["plan", "--config", config.to_str().unwrap()])
        .env("CALICO_ROUTER_ID", "hash")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("node        n3"), "{text}");
    // `printf n3 | sha256sum` starts 8721d664 → 135.33.214.100.
    assert!(text.contains("router id   135.33.214.100"), "{text}");

    std::fs::write(&config, "[bgp]\nhold_tim = 3\n").unwrap();
    let out = tern()
        .args(["plan", "--node", "n3", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("hold_tim"), "{err}");
}

#[test]
fn a_broken_resource_is_named_and_skipped_by_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster.yaml"),
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec:\n  peerIP: 10.0.0.1\n  asNumber: 65000\n  ttlSecurity: 300\n",
    )
    .unwrap();
    let out = tern()
        .args([
            "plan",
            "--node",
            "n1",
            "--datastore",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    // The rest of the datastore still gives a plan; the skipped resource is named once on
    // stderr and among the plan's warnings.
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("warning: ")
            && err.contains("cluster.yaml: BGPPeer \"tor\": field spec.ttlSecurity")
            && err.trim_end().ends_with("skipped"),
        "{err}"
    );
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(
        plan.contains("peerings (0)") && plan.contains("BGPPeer \"tor\""),
        "{plan}"
    );

    let out = tern()
        .args([
            "plan",
            "--node",
            "nope",
            "--datastore",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn version_prints_the_crate_version() {
    let out = tern().arg("version").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("tern {}", env!("CARGO_PKG_VERSION"))
    );
}

/// calico-node creates default pools at install when the datastore has none of a family
/// (`CALICO_IPV4POOL_*`, `CALICO_IPV6POOL_*`, `NO_DEFAULT_POOLS`): `tern plan` uses them and
/// marks them implicit.
#[test]
fn plan_without_ippools_shows_the_default_pools_from_the_variables() {
    let dir = tempfile::tempdir().unwrap();
    let node = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\nspec: {bgp: {ipv4Address: 10.0.0.1/24, ipv6Address: 'fd00::1/64'}}\n";
    std::fs::write(dir.path().join("node.yaml"), node).unwrap();
    let plan = |vars: &[(&str, &str)], json: bool| {
        let mut cmd = tern();
        cmd.args([
            "plan",
            "--node",
            "n1",
            "--datastore",
            dir.path().to_str().unwrap(),
        ]);
        if json {
            cmd.arg("--json");
        }
        for name in tern::plan::default_pools::VARIABLES {
            cmd.env_remove(name);
        }
        cmd.envs(vars.iter().copied());
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let vars = [
        ("CALICO_IPV4POOL_CIDR", "10.244.0.0/16"),
        ("CALICO_IPV4POOL_IPIP", "CrossSubnet"),
        ("CALICO_IPV4POOL_BLOCK_SIZE", "24"),
        ("CALICO_IPV6POOL_CIDR", "fd00:244::/48"),
    ];
    let text = plan(&vars, false);
    assert!(
        text.contains("10.244.0.0/16            IpIpCrossSubnet programmed by Felix (implicit: default-ipv4-ippool"),
        "{text}"
    );
    assert!(
        text.contains(
            "fd00:244::/48            None programmed by tern (implicit: default-ipv6-ippool"
        ),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&plan(&vars, true)).unwrap();
    let implicit: Vec<&str> = json["implicitPools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["cidr"].as_str().unwrap())
        .collect();
    assert_eq!(implicit, ["10.244.0.0/16", "fd00:244::/48"]);
    // Unset: calico-node's defaults (192.168.0.0/16, no encapsulation); no IPv6 pool, said.
    let text = plan(&[], false);
    assert!(
        text.contains(
            "192.168.0.0/16           None programmed by tern (implicit: default-ipv4-ippool"
        ),
        "{text}"
    );
    assert!(text.contains("random ULA /48"), "{text}");
    // NO_DEFAULT_POOLS: none.
    let text = plan(&[("NO_DEFAULT_POOLS", "true")], false);
    assert!(text.contains("pool kernel rules (0):"), "{text}");
    // A pool of the family in the datastore: no default pool of that family.
    std::fs::write(
        dir.path().join("pool.yaml"),
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: mine}\nspec: {cidr: 10.9.0.0/16}\n",
    )
    .unwrap();
    let text = plan(&vars, false);
    assert!(
        !text.contains("default-ipv4-ippool") && text.contains("default-ipv6-ippool"),
        "{text}"
    );
}
