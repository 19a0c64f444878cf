//! `tern check` run as the built binary: every example cluster is valid; broken copies in a
//! temporary directory (bad settings key, bad field, bad selector, missing secret, bad YAML) are
//! reported one line per problem, naming the file, resource and field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clusters")
}

fn manifests(example: &str) -> PathBuf {
    root().join(example).join("manifests")
}

/// The binary with an empty settings file, and without the host's environment overrides.
struct Check {
    dir: tempfile::TempDir,
}

impl Check {
    fn new() -> Check {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.toml"), "").unwrap();
        Check { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tern check --config <config>`.
    fn with_config(&self, config: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
        for var in [
            "NODENAME",
            "CALICO_ROUTER_ID",
            "CALICO_API_GROUP",
            "DATASTORE_TYPE",
            "TERN_DATASTORE_PATHS",
            "TERN_LOG",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd.arg("check").arg("--config").arg(config);
        cmd
    }

    /// `tern check --config <empty file> <args>`.
    fn run(&self, args: &[&str]) -> Output {
        self.with_config(&self.path("empty.toml"))
            .args(args)
            .output()
            .unwrap()
    }

    /// A copy of an example's manifests, to break.
    fn copy(&self, example: &str) -> PathBuf {
        let to = self.path(example);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(manifests(example)).unwrap() {
            let from = entry.unwrap().path();
            std::fs::copy(&from, to.join(from.file_name().unwrap())).unwrap();
        }
        to
    }
}

fn text(out: &Output) -> String {
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    // Every line is one finding or the verdict.
    for line in text.lines() {
        assert!(
            ["error: ", "warning: ", "note: ", "valid: ", "invalid: "]
                .iter()
                .any(|p| line.starts_with(p)),
            "unexpected line {line:?} in\n{text}"
        );
    }
    text
}

fn errors(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("error: ")).collect()
}

#[test]
fn cli_check_every_example_is_valid() {
    let check = Check::new();
    let mut runs = 0;
    for entry in std::fs::read_dir(root()).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let nodes = std::fs::read_to_string(dir.join("nodes.txt")).unwrap();
        let nodes: Vec<&str> = nodes.split_whitespace().collect();
        // Every node of the datastore at once.
        let out = check.run(&["--datastore", manifests(&name).to_str().unwrap()]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{name}:\n{t}");
        assert!(errors(&t).is_empty(), "{name}:\n{t}");
        let verdict = t.lines().last().unwrap();
        assert!(verdict.starts_with("valid: "), "{name}: {verdict}");
        let planned: usize = verdict
            .split([',', ';'])
            .map(str::trim)
            .find_map(|part| {
                part.strip_suffix(" node plans")
                    .or(part.strip_suffix(" node plan"))
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(planned >= nodes.len(), "{name}: {verdict}");
        // Each node on its own.
        for node in nodes {
            let out = check.run(&[
                "--node",
                node,
                "--datastore",
                manifests(&name).to_str().unwrap(),
            ]);
            let t = text(&out);
            assert_eq!(out.status.code(), Some(0), "{name}/{node}:\n{t}");
            assert!(t.contains(", 1 node plan;"), "{name}/{node}:\n{t}");
            runs += 1;
        }
    }
    assert!(runs >= 9);
}

#[test]
fn cli_check_missing_secrets_are_warnings_naming_the_peering() {
    let check = Check::new();
    let out = check.run(&["--datastore", manifests("passwords").to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(
            "warning: nodes n1, n2: peering Global_10_0_0_253 will not start: TCP-MD5 password unavailable: \
             Secret kube-system/missing not found (wanted key \"tor\"), referenced by spec.password of BGPPeer \"no-secret\"; \
             tern keeps the session down rather than peer without it (confd would drop the password and peer)"
        ),
        "{t}"
    );
    assert!(
        t.contains("peering Global_10_0_0_252 will not start")
            && t.contains("has no key \"absent\""),
        "{t}"
    );
    assert!(t.trim_end().ends_with("0 errors, 2 warnings"), "{t}");
    // Secrets are named, never shown.
    assert!(
        !t.contains("tor-password") && !t.contains("mesh-password"),
        "{t}"
    );

    // A mesh password whose Secret is gone: every mesh session of the node stays down.
    let dir = check.copy("mesh-ipip-crosssubnet");
    let cluster = dir.join("cluster.yaml");
    let original = std::fs::read_to_string(&cluster).unwrap();
    let edited = original.replace(
        "  asNumber: 64512\n",
        "  asNumber: 64512\n  nodeMeshPassword: {secretKeyRef: {name: gone, key: mesh}}\n",
    );
    assert_ne!(original, edited, "fixture changed: update this test");
    std::fs::write(&cluster, edited).unwrap();
    let out = check.run(&["--node", "n9", "--datastore", dir.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("warning: node n9: peering Mesh_10_0_0_1 will not start: TCP-MD5 password unavailable: \
                    Secret kube-system/gone not found (wanted key \"mesh\"), referenced by spec.nodeMeshPassword of BGPConfiguration \"default\""),
        "{t}"
    );
    assert!(t.trim_end().ends_with("0 errors, 3 warnings"), "{t}");
}

#[test]
fn cli_check_reports_every_broken_document_in_one_run() {
    let check = Check::new();
    let dir = check.copy("mesh-ipip-crosssubnet");
    std::fs::write(
        dir.join("broken.yaml"),
        "# A bad field, a bad selector, a bad filter rule, an unknown field, an unknown kind.\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec:\n  peerIP: 10.0.0.254\n  asNumber: 65000\n  ttlSecurity: 300\n\
         ---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: rack-a}\nspec:\n  nodeSelector: \"rack == 'a' &&\"\n  peerIP: 10.0.0.253\n  asNumber: 65000\n\
         ---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV4:\n  - {action: Accept, matchOperator: In, cidr: 10.0.0.0/33}\n\
         ---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: fine}\nspec: {peerIP: 10.0.0.252, asNumber: 65000, nodeSelektor: all()}\n\
         ---\n\
         apiVersion: projectcalico.org/v3\nkind: BgpPeer\nmetadata: {name: wrong-case}\nspec: {peerIP: 10.0.0.251, asNumber: 65000}\n",
    )
    .unwrap();
    let out = check.run(&["--datastore", dir.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let errs = errors(&t);
    assert_eq!(errs.len(), 5, "{t}");
    let file = dir.join("broken.yaml").display().to_string();
    assert!(
        errs[0].starts_with(&format!(
            "error: {file}: BGPPeer \"tor\": field spec.ttlSecurity = '300' (expected a TTL security hop count, 0 to 255)"
        )),
        "{t}"
    );
    assert!(
        errs[1].starts_with(&format!(
            "error: {file}: BGPPeer \"rack-a\": field spec.nodeSelector: invalid selector"
        )),
        "{t}"
    );
    assert!(
        errs[2].starts_with(&format!(
            "error: {file}: BGPFilter \"f\": field spec.exportV4[0].cidr = '10.0.0.0/33' (invalid CIDR"
        )),
        "{t}"
    );
    // calicoctl refuses unknown fields and kinds: the check fails on them, naming them.
    assert!(
        errs[3].starts_with(&format!(
            "error: {file}: BGPPeer \"fine\": unknown field spec.nodeSelektor: calicoctl refuses"
        )),
        "{t}"
    );
    assert!(
        errs[4].starts_with(&format!(
            "error: {file}: BgpPeer \"wrong-case\": unknown resource type (BgpPeer) and/or version (projectcalico.org/v3)"
        )) && errs[4].contains("did you mean BGPPeer?"),
        "{t}"
    );
    // The good documents were kept: 12 resources of the example and the fine peer.
    let verdict = t.lines().last().unwrap();
    assert!(
        verdict.starts_with("invalid: ")
            && verdict.contains(", 13 resources, 4 node plans; 5 errors, 0 warnings"),
        "{t}"
    );

    // Invalid YAML names the file and the line of the whole file.
    std::fs::write(dir.join("broken.yaml"), "kind: Node\n---\nkind: [\n").unwrap();
    let out = check.run(&["--datastore", dir.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let errs = errors(&t);
    assert_eq!(errs.len(), 1, "{t}");
    assert!(
        errs[0].starts_with(&format!("error: {file}: document: invalid YAML: "))
            && errs[0].contains("line 4"),
        "{t}"
    );
}

#[test]
fn cli_check_reports_bad_settings_and_environment() {
    let check = Check::new();
    let config = check.path("tern.toml");
    std::fs::write(&config, "node_name = \"n3\"\n[bgp]\nhold_tim = 3\n").unwrap();
    let data = manifests("mesh-ipip-crosssubnet");
    let out = check
        .with_config(&config)
        .args(["--datastore", data.to_str().unwrap()])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let errs = errors(&t);
    assert_eq!(errs.len(), 1, "{t}");
    assert!(
        errs[0].starts_with(&format!(
            "error: {}: unknown field `hold_tim`",
            config.display()
        )) && errs[0].contains("(line 3)"),
        "{t}"
    );
    // The resources are still checked (with default settings): every node is planned.
    assert!(t.contains(", 4 node plans;"), "{t}");

    // Without --datastore, nothing more can be checked.
    let out = check.with_config(&config).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(t.contains("note: resources not checked"), "{t}");

    // Valid settings name the node and the manifests.
    std::fs::write(
        &config,
        format!(
            "node_name = \"n3\"\nlog_level = \"Warning\"\n[datastore]\npaths = [{:?}]\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let out = check.with_config(&config).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains(", 1 node plan;"), "{t}");

    // Environment: NODENAME picks the node, bad values are errors naming the variable.
    let out = check
        .with_config(&config)
        .env("NODENAME", "nope")
        .env("CALICO_ROUTER_ID", "not-an-ip")
        .env("TERN_LOG", "chatty")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let errs = errors(&t);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("error: environment variable CALICO_ROUTER_ID:")),
        "{t}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("error: TERN_LOG: \"chatty\" is not a log level")),
        "{t}"
    );
    assert!(
        errs.iter()
            .any(|e| e == &"error: node nope: Node \"nope\" not found in the datastore"),
        "{t}"
    );

    // A path that does not exist.
    let out = check.run(&["--datastore", "/nonexistent/tern-manifests"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        t.contains("error: /nonexistent/tern-manifests: cannot read: "),
        "{t}"
    );
}

#[test]
fn cli_check_skips_nodes_without_bgp_and_warns_on_an_empty_datastore() {
    let check = Check::new();
    let dir = check.path("nodes");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("nodes.yaml"),
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: bgp-node}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: plain}\nspec: {}\n",
    )
    .unwrap();
    let out = check.run(&["--datastore", dir.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("note: Node \"plain\" has no BGP addresses (spec.bgp)"),
        "{t}"
    );
    assert!(t.contains(", 1 node plan;"), "{t}");
    // Named explicitly, the same node is an error: it cannot have a router id.
    let out = check.run(&["--node", "plain", "--datastore", dir.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("error: node plain: Node \"plain\" has no IPv4 address"),
        "{t}"
    );

    let empty = check.path("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    let out = check.run(&["--datastore", empty.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("warning: no manifest files"), "{t}");
    assert!(t.contains("warning: no BGP Node in the datastore"), "{t}");
}
