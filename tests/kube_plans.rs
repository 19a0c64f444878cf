//! One code path from resources to plan: every `fixtures/clusters/*` applied with kubectl to
//! the Kubernetes API server double (`interop/src/bin/kube-api`) gives, through
//! `tern plan --json` with `DATASTORE_TYPE=kubernetes` and tern's ServiceAccount token
//! (RBAC from `deploy/rbac.yaml`), exactly the plan the manifest files give (the golden
//! `plan-<node>.json`), in both Calico API groups, the group found by discovery (`auto`).
//! No root needed: the double listens on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use interop::kube::{KubeApi, KubeApiOptions, TERN_TOKEN, kubernetes_form};
use interop::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clusters")
}

fn manifests(dir: &Path) -> Result<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("manifests"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let mut text = String::new();
    for f in files {
        text.push_str(&std::fs::read_to_string(&f)?);
        text.push_str("\n---\n");
    }
    Ok(text)
}

fn tern_plan(kubeconfig: &Path, node: &str, env: &[(&str, &str)]) -> Result<String> {
    // Default settings (an empty file), the datastore type from the environment.
    let settings = kubeconfig.with_file_name("empty-tern.toml");
    std::fs::write(&settings, "")?;
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("--config")
        .arg(&settings)
        .args(["plan", "--json", "--node", node])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("DATASTORE_TYPE", "kubernetes")
        .envs(env.iter().copied())
        .env_remove("KUBECONFIG")
        .output()?;
    if !out.status.success() {
        bail!(
            "tern plan --node {node}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_group(artifacts: &Artifacts, group: &str) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(fixtures())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let dir = fixtures().join(&name);
        let api = KubeApi::start(
            None,
            artifacts,
            &format!("api-{}-{name}", group.split('/').next().unwrap_or("")),
            &KubeApiOptions {
                calico_groups: vec![group.to_string()],
                ..KubeApiOptions::default()
            },
        )?;
        let yaml = kubernetes_form(&manifests(&dir)?, group)?;
        let file = artifacts.write(&format!("{name}-{}.yaml", group.replace('/', "-")), &yaml)?;
        api.kubectl(&[
            "apply",
            "--validate=false",
            "-f",
            &file.display().to_string(),
        ])
        .with_context(|| format!("fixture {name}"))?;
        let kubeconfig = api.kubeconfig("tern", TERN_TOKEN)?;
        let nodes = std::fs::read_to_string(dir.join("nodes.txt"))?;
        for node in nodes.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let expected = std::fs::read_to_string(dir.join(format!("plan-{node}.json")))?;
            let actual = tern_plan(&kubeconfig, node, &[("CALICO_API_GROUP", "auto")])
                .with_context(|| format!("fixture {name} ({group})"))?;
            if actual != expected {
                failures.push(format!(
                    "{name} node {node} ({group}):\n--- from files\n{expected}\n+++ from Kubernetes\n{actual}"
                ));
            }
        }
    }
    Ok(failures)
}

#[test]
fn every_fixture_plans_the_same_from_kubernetes_as_from_files() {
    run_scenario("kube-plans", &[], |artifacts| {
        let mut failures = check_group(artifacts, "crd.projectcalico.org/v1")?;
        failures.extend(check_group(artifacts, "projectcalico.org/v3")?);
        if !failures.is_empty() {
            bail!("{}", failures.join("\n"));
        }
        Ok(())
    });
}

#[test]
fn an_unreachable_api_or_a_forbidden_kind_is_named() {
    run_scenario("kube-plans-errors", &[], |artifacts| {
        let mut api = KubeApi::start(None, artifacts, "api", &KubeApiOptions::default())?;
        let kubeconfig = api.kubeconfig("tern", TERN_TOKEN)?;
        // A ClusterRole without bgppeers: the list is forbidden and tern says which.
        let rbac = std::fs::read_to_string(interop::kube::deploy_dir().join("rbac.yaml"))?
            .replace("      - bgppeers\n", "");
        api.apply(&rbac)?;
        let err = tern_plan(&kubeconfig, "n1", &[]).unwrap_err().to_string();
        assert!(
            err.contains("cannot list bgppeers.crd.projectcalico.org") && err.contains("forbidden"),
            "{err}"
        );
        api.stop()?;
        let err = tern_plan(&kubeconfig, "n1", &[]).unwrap_err().to_string();
        assert!(err.contains("API discovery"), "{err}");
        Ok(())
    });
}
