//! Launcher for the `tern` daemon: a builder that scenarios will use once the daemon runs
//! sessions. It only describes a node and locates the binary; it does not imitate tern.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::artifacts::Artifacts;
use crate::netns::Netns;
use crate::process::Process;

/// Where the `tern` binary is: `$TERN_BIN`, else `<workspace>/target/debug/tern`.
pub fn tern_binary() -> PathBuf {
    std::env::var_os("TERN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/tern"))
}

/// A tern node to launch: the settings file and Calico resources are written by the scenario
/// (their format belongs to the daemon and is not fixed yet), the builder holds the paths and
/// extra arguments.
#[derive(Debug, Clone, Default)]
pub struct TernLaunch {
    /// Node name (the Calico `Node` this instance is).
    pub node_name: String,
    /// Settings file (TOML) contents.
    pub settings: String,
    /// Extra command-line arguments.
    pub args: Vec<String>,
}

impl TernLaunch {
    /// A launch for node `node_name` with the given settings file contents.
    pub fn new(node_name: &str, settings: &str) -> TernLaunch {
        TernLaunch {
            node_name: node_name.to_owned(),
            settings: settings.to_owned(),
            args: Vec::new(),
        }
    }

    /// Writes `<node>-tern.toml` and starts the binary in `netns` with `--config <file>`
    /// plus the extra arguments. Fails when the binary has not been built.
    pub fn start(&self, netns: &Netns, artifacts: &Artifacts) -> Result<Process> {
        let binary = tern_binary();
        if !binary.is_file() {
            bail!(
                "tern binary {} not built (cargo build -p tern)",
                binary.display()
            );
        }
        let config = artifacts.write(&format!("{}-tern.toml", self.node_name), &self.settings)?;
        let mut args = vec!["--config".to_owned(), config.display().to_string()];
        args.extend(self.args.iter().cloned());
        Process::spawn(
            Some(netns),
            &format!("tern {}", self.node_name),
            &binary.display().to_string(),
            args,
            &artifacts.path(&format!("{}-tern.log", self.node_name)),
        )
    }
}
