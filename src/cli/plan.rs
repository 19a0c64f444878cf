//! `tern plan`: load the datastore (manifest files, or with `datastore.type = "kubernetes"` one
//! full list of the API), compute one node's plan, print it.

use std::path::PathBuf;

use clap::Args;

use super::Cli;
use crate::config::{DatastoreType, Settings};
use crate::model::{Cluster, load_paths};
use crate::plan::compute;

/// Arguments of `tern plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Node name (default: settings `node_name` / `NODENAME`).
    #[arg(long)]
    pub node: Option<String>,
    /// Manifest file or directory; repeatable (default: settings `datastore.paths`). Given, it
    /// is read even when the settings say `datastore.type = "kubernetes"`.
    #[arg(long, value_name = "PATH")]
    pub datastore: Vec<PathBuf>,
    /// Kubeconfig for the Kubernetes datastore (beats `datastore.kubeconfig` and `KUBECONFIG`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tern plan`.
pub fn run(cli: &Cli, args: &PlanArgs) -> Result<(), String> {
    let mut settings = super::load_settings(cli)?;
    if args.kubeconfig.is_some() {
        settings.datastore.kubeconfig = args.kubeconfig.clone();
    }
    let node = args
        .node
        .clone()
        .or(settings.node_name.clone())
        .ok_or("no node name: pass --node, set node_name in the settings or NODENAME")?;
    let kubernetes =
        args.datastore.is_empty() && settings.datastore.kind == DatastoreType::Kubernetes;
    let cluster = if kubernetes {
        let (cluster, skipped) = kubernetes_snapshot(&settings, &node)?;
        for s in skipped {
            eprintln!("warning: {s}");
        }
        cluster
    } else {
        let paths = if args.datastore.is_empty() {
            settings.datastore.paths.clone()
        } else {
            args.datastore.clone()
        };
        load_paths(&paths, &settings.datastore.secret_namespace).map_err(|e| e.to_string())?
    };
    for note in &cluster.notes {
        eprintln!("note: {note}");
    }
    for problem in &cluster.problems {
        eprintln!("warning: {problem}");
    }
    let plan = compute(&cluster, &node, &settings.plan_options()).map_err(|e| e.to_string())?;
    if args.json {
        let text = serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())?;
        super::print_out(&format!("{text}\n"));
    } else {
        super::print_out(&plan.to_string());
    }
    Ok(())
}

/// One full list of the Kubernetes datastore (as the daemon's first sync), with the resources
/// that were skipped.
pub(crate) fn kubernetes_snapshot(
    settings: &Settings,
    node: &str,
) -> Result<(Cluster, Vec<String>), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let config = crate::io::daemon::kubernetes_config(settings, node);
    runtime.block_on(crate::io::datastore::kubernetes::snapshot(
        config,
        std::time::Duration::from_secs(60),
    ))
}
