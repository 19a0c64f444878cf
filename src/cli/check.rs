//! `tern check`: validates tern's settings and the Calico resources without touching the
//! network, and reports every problem found, one line each.
//!
//! Every manifest document and resource is loaded on its own (as the daemon does), so one run
//! reports every bad one: each is an error. Then the plan of the node (`--node`,
//! the settings' `node_name` / `NODENAME`), or of every BGP node in the datastore, is computed:
//! its errors are problems, its warnings (e.g. a peering that will not start because a Secret is
//! missing) are printed but do not make the check fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::{Cli, one_line, print_out};
use crate::config::{DatastoreType, Settings};
use crate::model::{Cluster, load_documents};
use crate::plan::compute;

/// Arguments of `tern check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifest file or directory to check; repeatable (default: settings datastore.paths).
    #[arg(long, value_name = "PATH")]
    pub datastore: Vec<PathBuf>,
    /// Check this node's plan only (default: settings node_name / NODENAME, else every node).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Kubeconfig for the Kubernetes datastore (beats `datastore.kubeconfig` and `KUBECONFIG`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Findings of a check, in the order found.
#[derive(Debug, Default)]
struct Report {
    errors: Vec<String>,
    warnings: Vec<String>,
    notes: Vec<String>,
}

impl Report {
    fn error(&mut self, message: impl AsRef<str>) {
        self.errors.push(one_line(message.as_ref()));
    }
    fn warning(&mut self, message: impl AsRef<str>) {
        self.warnings.push(one_line(message.as_ref()));
    }
    fn note(&mut self, message: impl AsRef<str>) {
        self.notes.push(one_line(message.as_ref()));
    }
}

/// Runs `tern check`; exit 0 when valid (warnings allowed), 1 when anything is invalid.
pub fn run(cli: &Cli, args: &CheckArgs) -> ExitCode {
    let mut report = Report::default();
    let summary = check(cli, args, &mut report);
    for e in &report.errors {
        print_out(&format!("error: {e}\n"));
    }
    for w in &report.warnings {
        print_out(&format!("warning: {w}\n"));
    }
    for n in &report.notes {
        print_out(&format!("note: {n}\n"));
    }
    let counts = format!(
        "{} error{}, {} warning{}",
        report.errors.len(),
        plural(report.errors.len()),
        report.warnings.len(),
        plural(report.warnings.len())
    );
    if report.errors.is_empty() {
        print_out(&format!("valid: {summary}; {counts}\n"));
        ExitCode::SUCCESS
    } else {
        print_out(&format!("invalid: {summary}; {counts}\n"));
        ExitCode::FAILURE
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Checks everything and returns a summary of what was checked.
fn check(cli: &Cli, args: &CheckArgs, report: &mut Report) -> String {
    let env = |k: &str| std::env::var(k).ok();

    // Settings: the file, the environment, the logging flags and variables.
    let settings_name = match &cli.config {
        Some(p) => p.display().to_string(),
        None if Path::new(crate::config::DEFAULT_CONFIG_PATH).exists() => {
            crate::config::DEFAULT_CONFIG_PATH.to_owned()
        }
        None => "default settings".to_owned(),
    };
    let (mut settings, settings_ok) = match Settings::load(cli.config.as_deref()) {
        Ok(s) => (s, true),
        Err(e) => {
            report.error(e.to_string());
            (Settings::default(), false)
        }
    };
    if let Err(e) = settings.apply_env(env) {
        report.error(e.to_string());
    }
    if let Err(e) = cli.log_settings(&settings) {
        report.error(e);
    }

    if args.kubeconfig.is_some() {
        settings.datastore.kubeconfig = args.kubeconfig.clone();
    }

    // Resources.
    let kubernetes = args.datastore.is_empty()
        && settings_ok
        && settings.datastore.kind == DatastoreType::Kubernetes;
    let paths = if !args.datastore.is_empty() {
        args.datastore.clone()
    } else if !settings_ok {
        report.note("resources not checked: the settings are invalid and no --datastore was given");
        return settings_name;
    } else if kubernetes {
        Vec::new()
    } else {
        settings.datastore.paths.clone()
    };
    let files = manifest_files(&paths, report);
    let mut cluster = Cluster::default();
    if kubernetes {
        // One full list, as the daemon's first sync; the plans are of --node or every node.
        let node = args
            .node
            .clone()
            .or(settings.node_name.clone())
            .unwrap_or_default();
        match super::plan::kubernetes_snapshot(&settings, &node) {
            Ok((listed, skipped)) => {
                cluster = listed;
                for s in skipped {
                    report.error(s);
                }
            }
            Err(e) => {
                report.error(e);
                return format!("{settings_name}, Kubernetes");
            }
        }
    } else if files.is_empty() && report.errors.is_empty() {
        report.warning(format!(
            "no manifest files (*.yaml, *.yml, *.json) in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for file in &files {
        load_file(
            &mut cluster,
            file,
            &settings.datastore.secret_namespace,
            report,
        );
    }
    for note in std::mem::take(&mut cluster.notes) {
        report.note(note);
    }
    let resources = cluster.bgp_configurations.len()
        + cluster.bgp_peers.len()
        + cluster.bgp_filters.len()
        + cluster.nodes.len()
        + cluster.ip_pools.len()
        + cluster.block_affinities.len()
        + cluster.felix_configurations.len()
        + cluster.secrets.len();

    // Plans.
    let nodes: Vec<String> = match args.node.clone().or(settings.node_name.clone()) {
        Some(node) => vec![node],
        None => {
            let mut nodes = Vec::new();
            for (name, node) in &cluster.nodes {
                if node.spec.bgp.is_some() {
                    nodes.push(name.clone());
                } else {
                    report.note(format!(
                        "Node {name:?} has no BGP addresses (spec.bgp): not a BGP node, no plan checked"
                    ));
                }
            }
            if nodes.is_empty() {
                report.warning(
                    "no BGP Node in the datastore: no plan checked (pass --node NAME to name one)",
                );
            }
            nodes
        }
    };
    // The same finding for several nodes (a bad BGPFilter, a pool conflict) is printed once.
    let mut errors: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut warnings: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let options = settings.plan_options();
    let mut planned = 0;
    for node in &nodes {
        match compute(&cluster, node, &options) {
            Ok(plan) => {
                planned += 1;
                for w in plan.warnings {
                    warnings.entry(w).or_default().push(node);
                }
            }
            Err(e) => errors.entry(e.to_string()).or_default().push(node),
        }
    }
    let by_nodes = |nodes: &[&str], message: &str| match nodes {
        [one] => format!("node {one}: {message}"),
        many => format!("nodes {}: {message}", many.join(", ")),
    };
    for (message, nodes) in &errors {
        report.error(by_nodes(nodes, message));
    }
    for (message, nodes) in &warnings {
        report.warning(by_nodes(nodes, message));
    }

    let source = if kubernetes {
        "Kubernetes".to_string()
    } else {
        format!("{} manifest file{}", files.len(), plural(files.len()))
    };
    format!(
        "{settings_name}, {source}, {resources} resource{}, {planned} node plan{}",
        plural(resources),
        plural(planned)
    )
}

/// The manifest files under `paths` in load order (as the daemon reads them: files as named,
/// directories non-recursively, `*.yaml`, `*.yml`, `*.json` in name order). Unreadable paths
/// are reported.
fn manifest_files(paths: &[PathBuf], report: &mut Report) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        match crate::model::load::manifest_files_at(path) {
            Ok(entries) => files.extend(entries),
            Err(e) => report.error(format!("{}: cannot read: {e}", path.display())),
        }
    }
    files
}

/// Loads one file; the loader takes it document by document, so that every bad document or
/// resource is reported and the good ones are kept.
fn load_file(cluster: &mut Cluster, file: &Path, secret_namespace: &str, report: &mut Report) {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            report.error(format!("{}: cannot read: {e}", file.display()));
            return;
        }
    };
    load_documents(cluster, file, &text, secret_namespace);
    for problem in std::mem::take(&mut cluster.problems) {
        report.error(problem.to_string());
    }
    // calicoctl refuses unknown fields and kinds: so does the gate operators put in CI.
    for unknown in std::mem::take(&mut cluster.unknown) {
        report.error(unknown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_yaml_lines_are_those_of_the_file() {
        let mut cluster = Cluster::default();
        let mut report = Report::default();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}\n---\nkind: [\n",
        )
        .unwrap();
        load_file(&mut cluster, &file, "kube-system", &mut report);
        assert_eq!(cluster.ip_pools.len(), 1, "the good document is kept");
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(report.errors[0].contains("line 7"), "{:?}", report.errors);
    }
}
