//! The file datastore: loads manifests, watches their files and directories, and on every
//! change (debounced) recomputes the node's plan and emits it with its diff.
//!
//! ```text
//!  notify (inotify thread) ──raw events──▶ worker thread ──DatastoreEvent──▶ tokio mpsc ──▶ daemon
//!                                          (debounce, load, plan, diff)
//! ```
//!
//! Event driven: the worker blocks on the event channel; there is no polling loop. An invalid
//! edit (bad YAML, bad field, unreadable file) is reported as [`DatastoreEvent::Rejected`] and
//! the previous plan stays current: the next diff is computed against the last good plan.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::model::{LoadError, load_paths};
use crate::plan::{Plan, PlanDiff, PlanError, PlanOptions, compute};

/// What the file datastore needs.
#[derive(Debug, Clone)]
pub struct FileDatastoreConfig {
    /// Files or directories of manifests.
    pub paths: Vec<PathBuf>,
    /// The local node.
    pub node: String,
    /// Plan options (router id source, secret namespace).
    pub options: PlanOptions,
    /// Quiet time after the last file event before reloading.
    pub debounce: Duration,
}

/// A change reported by the datastore.
#[derive(Debug, Clone)]
pub enum DatastoreEvent {
    /// A new plan and its difference from the previous good plan.
    Plan {
        /// The new plan.
        plan: Arc<Plan>,
        /// What changed.
        diff: PlanDiff,
        /// Loader notes (skipped kinds, ignored fields) worth logging.
        notes: Vec<String>,
    },
    /// An edit was rejected; the previous plan stays.
    Rejected {
        /// One line naming the file, resource and field.
        error: String,
    },
}

/// Why the datastore could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The manifests do not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// No plan can be computed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The watcher could not be set up.
    #[error("cannot watch {path}: {message}")]
    Watch {
        /// The path.
        path: PathBuf,
        /// The error.
        message: String,
    },
}

/// What the worker thread waits for: file events, reload requests, the end.
enum Raw {
    Fs(notify::Result<notify::Event>),
    /// Re-read the manifests now (`tern reload`); the outcome goes to the sender.
    Reload(tokio::sync::oneshot::Sender<ReloadOutcome>),
    Stop,
}

/// The outcome of a requested reload: `Ok` with what happened (a new plan, or nothing
/// changed), `Err` with why the manifests were rejected (the running plan stays).
pub type ReloadOutcome = Result<String, String>;

/// Asks a running file datastore to re-read its manifests now. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader {
    raw: std_mpsc::Sender<Raw>,
}

impl Reloader {
    /// Requests a reload; the receiver gets the outcome once the manifests were read and any
    /// new plan was handed to the daemon. Fails when the datastore has stopped.
    pub fn reload(&self) -> Result<tokio::sync::oneshot::Receiver<ReloadOutcome>, String> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.raw
            .send(Raw::Reload(reply))
            .map_err(|_| "the datastore has stopped".to_string())?;
        Ok(outcome)
    }
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Raw::Fs(_) => "Fs",
            Raw::Reload(_) => "Reload",
            Raw::Stop => "Stop",
        })
    }
}

/// A running file datastore. Dropping it stops the watcher and its worker thread.
pub struct FileDatastore {
    initial_notes: Vec<String>,
    watcher: Option<notify::RecommendedWatcher>,
    worker: Option<JoinHandle<()>>,
    raw: std_mpsc::Sender<Raw>,
}

impl std::fmt::Debug for FileDatastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDatastore").finish_non_exhaustive()
    }
}

fn load_plan(config: &FileDatastoreConfig) -> Result<(Plan, Vec<String>), String> {
    let cluster =
        load_paths(&config.paths, &config.options.secret_namespace).map_err(|e| e.to_string())?;
    let plan = compute(&cluster, &config.node, &config.options).map_err(|e| e.to_string())?;
    Ok((plan, cluster.notes))
}

/// Whether a file event concerns the manifests.
fn relevant(event: &notify::Event, files: &[PathBuf], dirs: &[PathBuf]) -> bool {
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    event.paths.iter().any(|p| {
        let in_dir = |dirs: &[PathBuf]| {
            p.parent()
                .is_some_and(|parent| dirs.iter().any(|d| d == parent))
        };
        // Kubernetes ConfigMap/Secret volumes update by swapping the `..data` symlink.
        let swapped = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".."));
        let manifest = matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        let file_dirs: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        files.iter().any(|f| f == p)
            || (swapped && in_dir(&file_dirs))
            || ((swapped || manifest) && in_dir(dirs))
    })
}

impl FileDatastore {
    /// Loads the manifests, computes the first plan and starts watching. Events go to the
    /// returned receiver (capacity 16; the worker waits when it is full, so nothing is lost).
    pub fn start(
        config: FileDatastoreConfig,
    ) -> Result<(FileDatastore, Plan, mpsc::Receiver<DatastoreEvent>), StartError> {
        let cluster = load_paths(&config.paths, &config.options.secret_namespace)?;
        let first = compute(&cluster, &config.node, &config.options)?;

        let (raw_tx, raw_rx) = std_mpsc::channel::<Raw>();
        let fs_tx = raw_tx.clone();
        let mut watcher = notify::recommended_watcher(move |res| {
            let _ = fs_tx.send(Raw::Fs(res));
        })
        .map_err(|e| StartError::Watch {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        for path in &config.paths {
            // Absolute but not canonical: symlinks (ConfigMap volumes) stay as the user named them.
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            // Watch the directory of a single file, so that editors that replace the file
            // (write + rename) are seen too.
            let (watched, is_dir) = if absolute.is_dir() {
                (absolute.clone(), true)
            } else {
                (
                    absolute
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| PathBuf::from("/")),
                    false,
                )
            };
            watcher
                .watch(&watched, RecursiveMode::NonRecursive)
                .map_err(|e| StartError::Watch {
                    path: watched.clone(),
                    message: e.to_string(),
                })?;
            if is_dir {
                dirs.push(absolute);
            } else {
                files.push(absolute);
            }
        }

        let (tx, rx) = mpsc::channel(16);
        let mut current = first.clone();
        let worker = std::thread::Builder::new()
            .name("tern-file-datastore".into())
            .spawn(move || {
                let is_relevant = |ev: &notify::Result<notify::Event>| {
                    ev.as_ref().map_or(true, |e| relevant(e, &files, &dirs))
                };
                // Blocks until an event arrives; ends on `Raw::Stop` (the datastore dropped).
                while let Ok(first_event) = raw_rx.recv() {
                    let mut replies = Vec::new();
                    let mut changed = match first_event {
                        Raw::Fs(ev) => is_relevant(&ev),
                        Raw::Reload(reply) => {
                            replies.push(reply);
                            true
                        }
                        Raw::Stop => return,
                    };
                    // Debounce: keep draining until the files have been quiet for a while (a
                    // requested reload reads at once).
                    while replies.is_empty() {
                        match raw_rx.recv_timeout(config.debounce) {
                            Ok(Raw::Fs(ev)) => changed |= is_relevant(&ev),
                            Ok(Raw::Reload(reply)) => {
                                replies.push(reply);
                                changed = true;
                            }
                            Ok(Raw::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                                return;
                            }
                            Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                        }
                    }
                    if !changed {
                        continue;
                    }
                    let (event, outcome) = match load_plan(&config) {
                        Ok((plan, notes)) => {
                            let diff = PlanDiff::between(&current, &plan);
                            if diff.is_empty() && plan == current {
                                for reply in replies {
                                    let _ = reply.send(Ok("configuration unchanged".into()));
                                }
                                continue;
                            }
                            current = plan.clone();
                            let outcome = format!(
                                "new plan: {} peers added, {} removed, {} reset, {} updated",
                                diff.peers_added.len(),
                                diff.peers_removed.len(),
                                diff.peers_reset.len(),
                                diff.peers_updated.len()
                            );
                            let event = DatastoreEvent::Plan {
                                plan: Arc::new(plan),
                                diff,
                                notes,
                            };
                            (event, Ok(outcome))
                        }
                        Err(error) => (
                            DatastoreEvent::Rejected {
                                error: error.clone(),
                            },
                            Err(error),
                        ),
                    };
                    if tx.blocking_send(event).is_err() {
                        return;
                    }
                    for reply in replies {
                        let _ = reply.send(outcome.clone());
                    }
                }
            })
            .map_err(|e| StartError::Watch {
                path: PathBuf::new(),
                message: e.to_string(),
            })?;
        Ok((
            FileDatastore {
                initial_notes: cluster.notes,
                watcher: Some(watcher),
                worker: Some(worker),
                raw: raw_tx,
            },
            first,
            rx,
        ))
    }
}

impl FileDatastore {
    /// Loader notes from the first load (skipped kinds, ignored fields).
    pub fn initial_notes(&self) -> &[String] {
        &self.initial_notes
    }

    /// A handle that asks for a reload now (`tern reload`).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            raw: self.raw.clone(),
        }
    }
}

impl Drop for FileDatastore {
    fn drop(&mut self) {
        // Stop the watcher, then the worker (reloaders may still hold the raw channel).
        drop(self.watcher.take());
        let _ = self.raw.send(Raw::Stop);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n2}\nspec: {bgp: {ipv4Address: 10.0.0.2/24}}\n";

    /// Writes a file the way careful tools do (temporary file + rename), so the watcher never
    /// sees it half written.
    fn write(path: PathBuf, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    async fn next(rx: &mut mpsc::Receiver<DatastoreEvent>) -> DatastoreEvent {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("no datastore event within 30 s")
            .expect("datastore channel closed")
    }

    fn start(dir: &Path) -> (FileDatastore, Plan, mpsc::Receiver<DatastoreEvent>) {
        FileDatastore::start(FileDatastoreConfig {
            paths: vec![dir.to_path_buf()],
            node: "n1".into(),
            options: PlanOptions::default(),
            debounce: Duration::from_millis(50),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_requested_reload_reads_at_once_and_reports_its_outcome() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nodes.yaml"), BASE).unwrap();
        let (ds, _first, mut rx) = start(dir.path());
        let reloader = ds.reloader();
        let outcome = tokio::time::timeout(Duration::from_secs(30), reloader.reload().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome, Ok("configuration unchanged".to_string()));
        assert!(rx.try_recv().is_err(), "no event for an unchanged plan");
        drop(ds);
        assert!(
            reloader.reload().is_err() || rx.recv().await.is_none(),
            "a stopped datastore answers no reload"
        );
    }

    #[tokio::test]
    async fn edits_produce_diffs_and_bad_edits_keep_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nodes.yaml"), BASE).unwrap();
        let (_ds, first, mut rx) = start(dir.path());
        assert_eq!(first.peerings.len(), 1);

        // A new node joins the mesh.
        write(
            dir.path().join("n3.yaml"),
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n3}\nspec: {bgp: {ipv4Address: 10.0.0.3/24}}\n",
        );
        let DatastoreEvent::Plan { plan, diff, .. } = next(&mut rx).await else {
            panic!("expected a plan")
        };
        assert_eq!(plan.peerings.len(), 2);
        assert_eq!(
            diff.peers_added
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["Mesh_10_0_0_3"]
        );
        assert!(diff.peers_removed.is_empty() && diff.peers_reset.is_empty());

        // An invalid edit is rejected with file, resource and field.
        write(
            dir.path().join("peer.yaml"),
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: nonsense, asNumber: 1}\n",
        );
        let DatastoreEvent::Rejected { error } = next(&mut rx).await else {
            panic!("expected a rejection")
        };
        assert!(
            error.contains("peer.yaml")
                && error.contains("BGPPeer \"bad\"")
                && error.contains("spec.peerIP"),
            "{error}"
        );

        // Fixing it yields a diff against the last good plan (n3 already known).
        write(
            dir.path().join("peer.yaml"),
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: 10.0.0.254, asNumber: 65000}\n",
        );
        let DatastoreEvent::Plan { diff, .. } = next(&mut rx).await else {
            panic!("expected a plan")
        };
        assert_eq!(
            diff.peers_added
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["Global_10_0_0_254"]
        );
        assert!(diff.peers_removed.is_empty());

        // Removing the node removes its mesh peering.
        std::fs::remove_file(dir.path().join("n3.yaml")).unwrap();
        let DatastoreEvent::Plan { diff, .. } = next(&mut rx).await else {
            panic!("expected a plan")
        };
        assert_eq!(
            diff.peers_removed
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["Mesh_10_0_0_3"]
        );
    }

    #[tokio::test]
    async fn a_watched_single_file_replaced_by_rename_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.yaml");
        std::fs::write(&file, BASE).unwrap();
        let (_ds, _first, mut rx) = FileDatastore::start(FileDatastoreConfig {
            paths: vec![file.clone()],
            node: "n1".into(),
            options: PlanOptions::default(),
            debounce: Duration::from_millis(50),
        })
        .unwrap();
        let tmp = dir.path().join(".cluster.yaml.tmp");
        std::fs::write(&tmp, BASE.replace("10.0.0.2/24", "10.0.0.22/24")).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let DatastoreEvent::Plan { diff, .. } = next(&mut rx).await else {
            panic!("expected a plan")
        };
        assert_eq!(diff.peers_added[0].name, "Mesh_10_0_0_22");
        assert_eq!(diff.peers_removed[0].name, "Mesh_10_0_0_2");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_configmap_style_symlink_swap_is_seen() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..v1")).unwrap();
        std::fs::write(d.join("..v1/cluster.yaml"), BASE).unwrap();
        symlink("..v1", d.join("..data")).unwrap();
        symlink("..data/cluster.yaml", d.join("cluster.yaml")).unwrap();
        let (_ds, first, mut rx) = start(d);
        assert_eq!(first.peerings[0].name, "Mesh_10_0_0_2");
        std::fs::create_dir(d.join("..v2")).unwrap();
        std::fs::write(
            d.join("..v2/cluster.yaml"),
            BASE.replace("10.0.0.2/24", "10.0.0.7/24"),
        )
        .unwrap();
        symlink("..v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        let DatastoreEvent::Plan { diff, .. } = next(&mut rx).await else {
            panic!("expected a plan")
        };
        assert_eq!(diff.peers_added[0].name, "Mesh_10_0_0_7");
    }

    #[test]
    fn start_fails_on_a_bad_datastore() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.yaml"), "a: [").unwrap();
        let err = FileDatastore::start(FileDatastoreConfig {
            paths: vec![dir.path().to_path_buf()],
            node: "n1".into(),
            options: PlanOptions::default(),
            debounce: Duration::from_millis(50),
        })
        .unwrap_err();
        assert!(err.to_string().contains("x.yaml: invalid YAML"), "{err}");
    }
}
