//! `tern plan`: load the datastore, compute one node's plan, print it.

use std::path::PathBuf;

use clap::Args;

use super::Cli;
use crate::model::load_paths;
use crate::plan::compute;

/// Arguments of `tern plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Node name (default: settings `node_name` / `NODENAME`).
    #[arg(long)]
    pub node: Option<String>,
    /// Manifest file or directory; repeatable (default: settings `datastore.paths`).
    #[arg(long, value_name = "PATH")]
    pub datastore: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tern plan`.
pub fn run(cli: &Cli, args: &PlanArgs) -> Result<(), String> {
    let settings = super::load_settings(cli)?;
    let node = args
        .node
        .clone()
        .or(settings.node_name.clone())
        .ok_or("no node name: pass --node, set node_name in the settings or NODENAME")?;
    let paths = if args.datastore.is_empty() {
        settings.datastore.paths.clone()
    } else {
        args.datastore.clone()
    };
    let cluster =
        load_paths(&paths, &settings.datastore.secret_namespace).map_err(|e| e.to_string())?;
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
