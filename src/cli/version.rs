//! `tern version [--json]`.

use clap::Args;
use serde::Serialize;

/// Arguments of `tern version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print a JSON object: version, git commit, enabled features, target.
    #[arg(long)]
    pub json: bool,
}

/// Cargo features of the `tern` crate (`[features]` in Cargo.toml) and whether this binary
/// was built with each; a unit test keeps the list equal to Cargo.toml's.
const FEATURES: &[(&str, bool)] = &[("demo", cfg!(feature = "demo"))];

/// What `tern version --json` prints.
#[derive(Debug, Serialize)]
pub struct VersionInfo {
    /// The crate version.
    pub version: &'static str,
    /// The git commit, when the build set `TERN_GIT_COMMIT` (e.g.
    /// `TERN_GIT_COMMIT=$(git rev-parse HEAD) cargo build`).
    pub git_commit: Option<&'static str>,
    /// Enabled cargo features.
    pub features: Vec<&'static str>,
    /// `debug` or `release` (whether debug assertions are on).
    pub profile: &'static str,
    /// Operating system and architecture.
    pub target: String,
}

impl VersionInfo {
    /// This binary's version information.
    pub fn current() -> Self {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION"),
            git_commit: option_env!("TERN_GIT_COMMIT").filter(|c| !c.is_empty()),
            features: FEATURES
                .iter()
                .filter(|(_, on)| *on)
                .map(|(name, _)| *name)
                .collect(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        }
    }
}

/// Prints the version.
pub fn run(args: &VersionArgs) -> Result<(), String> {
    let info = VersionInfo::current();
    if args.json {
        let text = serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?;
        super::print_out(&format!("{text}\n"));
    } else {
        match info.git_commit {
            Some(commit) => super::print_out(&format!("tern {} ({commit})\n", info.version)),
            None => super::print_out(&format!("tern {}\n", info.version)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cargo_feature_is_listed_and_reported_when_built() {
        let manifest = include_str!("../../Cargo.toml");
        let table: toml::Table = manifest.parse().expect("Cargo.toml parses");
        let declared: Vec<&str> = table["features"]
            .as_table()
            .expect("[features]")
            .keys()
            .map(String::as_str)
            .filter(|name| *name != "default")
            .collect();
        let listed: Vec<&str> = FEATURES.iter().map(|(name, _)| *name).collect();
        assert_eq!(listed, declared);
        let info = VersionInfo::current();
        assert_eq!(info.features.contains(&"demo"), cfg!(feature = "demo"));
    }
}
