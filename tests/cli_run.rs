//! `tern run` start-up errors: an unknown node exits non-zero with one line, naming the resources
//! the loader skipped (file, resource and field), before touching the network.

use std::process::Command;

fn tern() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tern"))
}

#[test]
fn skipped_resources_are_named_when_no_plan_can_be_made() {
    let dir = std::env::temp_dir().join(format!("tern-cli-run-{}", std::process::id()));
    let res = dir.join("res");
    std::fs::create_dir_all(&res).unwrap();
    std::fs::write(
        res.join("a.yaml"),
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: not-an-ip, asNumber: 1}\n",
    )
    .unwrap();
    let settings = dir.join("tern.toml");
    std::fs::write(
        &settings,
        format!(
            "node_name = \"n1\"\nlog_format = \"human\"\n[datastore]\npaths = [\"{}\"]\n",
            res.display()
        ),
    )
    .unwrap();
    let out = tern()
        .arg("--config")
        .arg(&settings)
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: datastore: Node \"n1\" not found"),
        "{stderr}"
    );
    assert!(
        last.contains("a.yaml") && last.contains("BGPPeer \"bad\"") && last.contains("spec.peerIP"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_node_is_a_clear_error() {
    let manifests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/clusters/mesh-ipip-crosssubnet/manifests"
    );
    let out = tern()
        .args([
            "--log-format",
            "human",
            "run",
            "--node",
            "nope",
            "--datastore",
            manifests,
        ])
        .env("TERN_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: datastore: Node \"nope\" not found"),
        "{stderr}"
    );
}
