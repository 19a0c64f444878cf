//! `tern run`: the daemon. Loads the settings (TOML, then environment, then these flags), sets
//! up logging and runs [`crate::io::daemon::run`] on a tokio runtime until SIGTERM/SIGINT.
//! Start-up errors (bad settings, invalid resources, sockets that cannot be bound) exit non-zero
//! with one line naming what is wrong.

use std::path::PathBuf;

use clap::Args;

use super::Cli;
use crate::config::Settings;
use crate::io::daemon::{RunOptions, datastore_paths};

/// Arguments of `tern run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// This node's name (the Calico Node resource); beats node_name and NODENAME.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Manifest file or directory of Calico resources; repeatable (default: datastore.paths).
    #[arg(long, value_name = "PATH")]
    pub datastore: Vec<PathBuf>,
    /// Kubeconfig for the Kubernetes datastore (beats `datastore.kubeconfig` and `KUBECONFIG`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Delete tern's kernel routes on exit (default: leave them for the next run).
    #[arg(long)]
    pub flush_on_exit: bool,
    /// Worker threads of the runtime (default: 2).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub threads: usize,
}

/// Runs the daemon.
pub fn run(cli: &Cli, args: &RunArgs) -> Result<(), String> {
    let mut settings = Settings::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    settings
        .apply_env(|k| std::env::var(k).ok())
        .map_err(|e| e.to_string())?;
    if let Some(node) = &args.node {
        settings.node_name = Some(node.clone());
    }
    datastore_paths(&mut settings, args.datastore.clone());
    if args.kubeconfig.is_some() {
        settings.datastore.kubeconfig = args.kubeconfig.clone();
    }
    let log = cli.log_settings(&settings)?;
    let _log_handle = crate::logging::init(&log).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .thread_name("tern")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let options = RunOptions {
        flush_on_exit: args.flush_on_exit,
    };
    let result = runtime.block_on(crate::io::daemon::run(settings, options));
    if let Err(e) = &result {
        tracing::error!(error = %e, "tern run failed");
    }
    result
}
