//! The file datastore's memory of what each manifest file last said.
//!
//! A file that cannot be used right now is treated like a failed list, never like "delete
//! everything it held": its last good content stays in force and a problem naming it is
//! reported, until it reads again. That covers a configured path that is missing, unreadable or
//! of the wrong type (a file replaced by a directory), a file gone from a watched directory, a
//! file that no longer parses, and a file that is empty (how a truncated or half-done write
//! looks). Resources are deleted only by editing them out of a file that still parses, or by an
//! explicit reload ([`FileState::load`] with `explicit`), which takes the files as they are:
//! files gone from a directory and empty files then count as holding nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::load::manifest_files_at;
use crate::model::{Cluster, load_documents};

/// One configured path and what it was when the datastore started.
#[derive(Debug, Clone)]
struct Root {
    path: PathBuf,
    is_dir: bool,
}

/// What one load found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The resources in force: every usable file's current content, and the last good content
    /// of every file that cannot be used now.
    pub cluster: Cluster,
    /// One line per file or path that could not be used, saying what is kept instead.
    pub problems: Vec<String>,
}

/// Last good content per manifest file, under the configured paths.
#[derive(Debug)]
pub struct FileState {
    roots: Vec<Root>,
    secret_namespace: String,
    /// The text of each file as last taken.
    good: BTreeMap<PathBuf, String>,
    /// The files in `good` whose text holds at least one resource that loads.
    useful: std::collections::BTreeSet<PathBuf>,
    /// The resources in force after the last load.
    last: Cluster,
}

/// Whether a YAML stream holds no document with content (empty, whitespace, comments, `---`).
fn holds_nothing(text: &str) -> bool {
    serde_yaml_ng::Deserializer::from_str(text)
        .all(|document| serde_yaml_ng::Value::deserialize(document).is_ok_and(|v| v.is_null()))
}

impl FileState {
    /// A state for `paths`, each taken as a directory or a file as it is now (a path that does
    /// not exist is taken as a file).
    pub fn new(paths: &[PathBuf], secret_namespace: &str) -> FileState {
        FileState {
            roots: paths
                .iter()
                .map(|p| Root {
                    path: p.clone(),
                    is_dir: p.is_dir(),
                })
                .collect(),
            secret_namespace: secret_namespace.to_owned(),
            good: BTreeMap::new(),
            useful: Default::default(),
            last: Cluster::default(),
        }
    }

    /// The configured paths, with whether each is a directory.
    pub fn roots(&self) -> impl Iterator<Item = (&Path, bool)> {
        self.roots.iter().map(|r| (r.path.as_path(), r.is_dir))
    }

    /// Reads every file again. Files that cannot be used keep their last good content (see the
    /// module docs); with `explicit` (a reload asked for by the operator) files gone from a
    /// directory and empty files are taken as they are.
    pub fn load(&mut self, explicit: bool) -> Loaded {
        let mut problems = Vec::new();
        let mut in_force: Vec<PathBuf> = Vec::new();
        let roots = self.roots.clone();
        for root in &roots {
            let kept_under = |good: &BTreeMap<PathBuf, String>| -> Vec<PathBuf> {
                good.keys()
                    .filter(|f| {
                        if root.is_dir {
                            f.parent() == Some(root.path.as_path())
                        } else {
                            **f == root.path
                        }
                    })
                    .cloned()
                    .collect()
            };
            let usable = match std::fs::metadata(&root.path) {
                Err(e) => Err(format!("cannot read it ({e})")),
                Ok(m) if root.is_dir && !m.is_dir() => Err("it is no longer a directory".into()),
                Ok(m) if !root.is_dir && !m.is_file() => Err("it is not a regular file".into()),
                Ok(_) => Ok(()),
            };
            if let Err(why) = usable {
                let kept = kept_under(&self.good);
                problems.push(format!(
                    "{}: {why}; the last good resources of its {} file(s) stay in force until it reads again",
                    root.path.display(),
                    kept.len()
                ));
                in_force.extend(kept);
                continue;
            }
            if !root.is_dir {
                if self.read_file(&root.path, explicit, &mut problems) {
                    in_force.push(root.path.clone());
                }
                continue;
            }
            let listed = match manifest_files_at(&root.path) {
                Ok(files) => files,
                Err(e) => {
                    let kept = kept_under(&self.good);
                    problems.push(format!(
                        "{}: cannot list it ({e}); the last good resources of its {} file(s) stay in force",
                        root.path.display(),
                        kept.len()
                    ));
                    in_force.extend(kept);
                    continue;
                }
            };
            for gone in kept_under(&self.good) {
                if listed.contains(&gone) {
                    continue;
                }
                if explicit {
                    self.good.remove(&gone);
                } else {
                    problems.push(format!(
                        "{}: the file is gone (or is no longer a regular file); its last good resources stay in force until it is back or `tern reload` is run",
                        gone.display()
                    ));
                    in_force.push(gone);
                }
            }
            for file in listed {
                if self.read_file(&file, explicit, &mut problems) {
                    in_force.push(file);
                }
            }
        }
        let mut cluster = Cluster::default();
        for file in &in_force {
            if let Some(text) = self.good.get(file) {
                load_documents(&mut cluster, file, text, &self.secret_namespace);
            }
        }
        // A resource that no longer loads (its problem is in the plan's warnings) keeps its
        // last good version instead of disappearing: an edit gone wrong never deletes.
        if !explicit {
            for problem in &cluster.problems.clone() {
                if carry_over(&mut cluster, &self.last, &problem.kind, &problem.name) {
                    problems.push(format!(
                        "{} {:?}: its last good version stays in force",
                        problem.kind, problem.name
                    ));
                }
            }
        }
        // Files gone for good (after an explicit reload) are forgotten.
        self.good.retain(|f, _| in_force.contains(f));
        self.useful.retain(|f| in_force.contains(f));
        self.last = cluster.clone();
        Loaded { cluster, problems }
    }

    /// Reads one file into `good` when it is usable; true when the file has content in force
    /// (its new content, or its last good one).
    fn read_file(&mut self, file: &Path, explicit: bool, problems: &mut Vec<String>) -> bool {
        let had = self.good.contains_key(file);
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!(
                    "{}: cannot read it ({e}){}",
                    file.display(),
                    if had {
                        "; its last good resources stay in force"
                    } else {
                        ""
                    }
                ));
                return had;
            }
        };
        if !explicit && had && holds_nothing(&text) {
            let previous = self.good.get(file).is_some_and(|t| !holds_nothing(t));
            if previous {
                problems.push(format!(
                    "{}: the file is empty, taken as a partial write; its last good resources stay in force until it has content again or `tern reload` is run",
                    file.display()
                ));
                return true;
            }
        }
        // A file of which nothing loads any more (not YAML, every resource bad) keeps its last
        // good content; one that still loads something is taken, its bad resources are named
        // among the plan's warnings (and keep their last good version, see `load`).
        let mut scratch = Cluster::default();
        load_documents(&mut scratch, file, &text, &self.secret_namespace);
        let loads_something = resource_count(&scratch) > 0;
        let had_resources = self.useful.contains(file);
        if had_resources && !scratch.problems.is_empty() && !loads_something {
            problems.push(format!(
                "{}: nothing in it loads ({}); its last good resources stay in force",
                file.display(),
                scratch.problems[0]
            ));
            return true;
        }
        self.good.insert(file.to_path_buf(), text);
        if loads_something {
            self.useful.insert(file.to_path_buf());
        } else {
            self.useful.remove(file);
        }
        true
    }
}

/// How many resources a cluster holds.
fn resource_count(c: &Cluster) -> usize {
    c.bgp_configurations.len()
        + c.bgp_peers.len()
        + c.bgp_filters.len()
        + c.nodes.len()
        + c.ip_pools.len()
        + c.block_affinities.len()
        + c.felix_configurations.len()
        + c.secrets.len()
}

/// Puts `previous`'s resource `kind`/`name` into `cluster` when `cluster` lacks it; true when
/// it did.
fn carry_over(cluster: &mut Cluster, previous: &Cluster, kind: &str, name: &str) -> bool {
    fn keep<T: Clone>(
        to: &mut BTreeMap<String, T>,
        from: &BTreeMap<String, T>,
        name: &str,
    ) -> bool {
        match from.get(name) {
            Some(r) if !to.contains_key(name) => {
                to.insert(name.to_owned(), r.clone());
                true
            }
            _ => false,
        }
    }
    match kind {
        "BGPConfiguration" => keep(
            &mut cluster.bgp_configurations,
            &previous.bgp_configurations,
            name,
        ),
        "BGPPeer" => keep(&mut cluster.bgp_peers, &previous.bgp_peers, name),
        "BGPFilter" => keep(&mut cluster.bgp_filters, &previous.bgp_filters, name),
        "Node" => keep(&mut cluster.nodes, &previous.nodes, name),
        "IPPool" => keep(&mut cluster.ip_pools, &previous.ip_pools, name),
        "BlockAffinity" => keep(
            &mut cluster.block_affinities,
            &previous.block_affinities,
            name,
        ),
        "FelixConfiguration" => keep(
            &mut cluster.felix_configurations,
            &previous.felix_configurations,
            name,
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.0.0.254, asNumber: 65000}\n";
    const BLOCK: &str = "apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: n1-a}\nspec: {state: confirmed, node: n1, cidr: 10.244.1.0/26}\n";

    fn dir_with(files: &[(&str, &str)]) -> (tempfile::TempDir, FileState) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let state = FileState::new(&[dir.path().to_path_buf()], "default");
        (dir, state)
    }

    #[test]
    fn a_deleted_file_keeps_its_resources_until_an_explicit_reload() {
        let (dir, mut state) = dir_with(&[("peers.yaml", PEER), ("blocks.yaml", BLOCK)]);
        let first = state.load(true);
        assert!(first.problems.is_empty(), "{:?}", first.problems);
        assert_eq!(first.cluster.block_affinities.len(), 1);
        std::fs::remove_file(dir.path().join("blocks.yaml")).unwrap();
        let after = state.load(false);
        assert_eq!(after.cluster.block_affinities.len(), 1);
        assert_eq!(after.cluster.bgp_peers.len(), 1);
        assert!(
            after.problems[0].contains("blocks.yaml") && after.problems[0].contains("gone"),
            "{:?}",
            after.problems
        );
        let reloaded = state.load(true);
        assert!(reloaded.cluster.block_affinities.is_empty());
        assert_eq!(reloaded.cluster.bgp_peers.len(), 1);
        assert!(reloaded.problems.is_empty());
    }

    #[test]
    fn an_emptied_file_is_a_partial_write() {
        let (dir, mut state) = dir_with(&[("blocks.yaml", BLOCK)]);
        state.load(true);
        std::fs::write(dir.path().join("blocks.yaml"), "").unwrap();
        let after = state.load(false);
        assert_eq!(after.cluster.block_affinities.len(), 1);
        assert!(after.problems[0].contains("empty"), "{:?}", after.problems);
        // Editing the resource out of a file that still parses deletes it.
        std::fs::write(dir.path().join("blocks.yaml"), PEER).unwrap();
        let edited = state.load(false);
        assert!(edited.cluster.block_affinities.is_empty());
        assert!(edited.problems.is_empty());
    }

    #[test]
    fn a_missing_directory_keeps_everything_and_recovers() {
        let (dir, mut state) = dir_with(&[("peers.yaml", PEER), ("blocks.yaml", BLOCK)]);
        state.load(true);
        std::fs::remove_dir_all(dir.path()).unwrap();
        let gone = state.load(false);
        assert_eq!(gone.cluster.bgp_peers.len(), 1);
        assert_eq!(gone.cluster.block_affinities.len(), 1);
        assert!(
            gone.problems[0].contains("2 file(s)"),
            "{:?}",
            gone.problems
        );
        // Even an explicit reload cannot list a missing directory: nothing is dropped.
        assert_eq!(state.load(true).cluster.block_affinities.len(), 1);
        std::fs::create_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("peers.yaml"), PEER).unwrap();
        let back = state.load(false);
        assert_eq!(back.cluster.bgp_peers.len(), 1);
        // blocks.yaml is not back yet: kept, and said so.
        assert_eq!(back.cluster.block_affinities.len(), 1);
        assert_eq!(back.problems.len(), 1);
    }

    #[test]
    fn a_file_replaced_by_a_directory_keeps_its_resources() {
        let (dir, mut state) = dir_with(&[("peers.yaml", PEER)]);
        state.load(true);
        std::fs::remove_file(dir.path().join("peers.yaml")).unwrap();
        std::fs::create_dir(dir.path().join("peers.yaml")).unwrap();
        let after = state.load(false);
        assert_eq!(after.cluster.bgp_peers.len(), 1);
        assert_eq!(after.problems.len(), 1);
    }

    #[test]
    fn a_bad_file_keeps_its_last_good_content_and_the_rest_loads() {
        let (dir, mut state) = dir_with(&[("peers.yaml", PEER), ("blocks.yaml", BLOCK)]);
        state.load(true);
        std::fs::write(dir.path().join("peers.yaml"), "a: [").unwrap();
        std::fs::write(
            dir.path().join("blocks.yaml"),
            BLOCK.replace("10.244.1.0/26", "10.244.1.64/26"),
        )
        .unwrap();
        let after = state.load(false);
        assert_eq!(after.cluster.bgp_peers.len(), 1);
        let block = after.cluster.block_affinities.values().next().unwrap();
        assert_eq!(block.spec.cidr.to_string(), "10.244.1.64/26");
        assert!(
            after.problems[0].contains("peers.yaml"),
            "{:?}",
            after.problems
        );
    }

    #[test]
    fn a_resource_edited_into_something_bad_keeps_its_last_good_version() {
        let (dir, mut state) = dir_with(&[("all.yaml", &format!("{PEER}---\n{BLOCK}"))]);
        state.load(true);
        let bad = PEER.replace("10.0.0.254", "10.0.0.300");
        std::fs::write(
            dir.path().join("all.yaml"),
            format!(
                "{bad}---\n{}",
                BLOCK.replace("10.244.1.0/26", "10.244.1.64/26")
            ),
        )
        .unwrap();
        let after = state.load(false);
        // The good edit is taken, the bad one keeps the peer as it was.
        let block = after.cluster.block_affinities.values().next().unwrap();
        assert_eq!(block.spec.cidr.to_string(), "10.244.1.64/26");
        assert!(after.cluster.bgp_peers.contains_key("tor"));
        assert!(
            after.problems.iter().any(|p| p.contains("BGPPeer \"tor\"")),
            "{:?}",
            after.problems
        );
        assert!(!after.cluster.problems.is_empty());
    }

    #[test]
    fn a_configured_file_that_goes_missing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.yaml");
        std::fs::write(&file, PEER).unwrap();
        let mut state = FileState::new(std::slice::from_ref(&file), "default");
        state.load(true);
        std::fs::remove_file(&file).unwrap();
        let after = state.load(false);
        assert_eq!(after.cluster.bgp_peers.len(), 1);
        assert!(after.problems[0].contains("cluster.yaml"));
    }
}
