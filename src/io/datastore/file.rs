//! The file datastore: loads manifests, watches their files and directories, and on every
//! change (debounced) recomputes the node's plan and emits it with its diff.
//!
//! ```text
//!  notify (inotify thread) ──raw events──▶ worker thread ──DatastoreEvent──▶ tokio mpsc ──▶ daemon
//!                                          (debounce, load, plan, diff)
//! ```
//!
//! Event driven: the worker blocks on the event channel; it looks again every
//! [`REWATCH_INTERVAL`] only while a watched directory is missing. A file that cannot be used
//! (missing, unreadable, not a regular file, empty, not parsing) is reported as
//! [`DatastoreEvent::Problem`] and its last good content stays in force (see
//! [`super::file_state`]); a plan that cannot be computed is [`DatastoreEvent::Rejected`] and
//! the previous plan stays current. The worker owns the watcher and sets up the watch of a
//! directory again when it is removed and created again.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::file_state::FileState;
use crate::model::{LoadError, load_paths};
use crate::plan::{Plan, PlanDiff, PlanError, PlanOptions, compute};
use crate::status::{DatastoreError, DatastoreKind, DatastoreStatus, SyncState, Timestamp};

fn now_ts() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

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
    /// A file or path that cannot be used now (missing, unreadable, not a regular file, empty,
    /// not parsing): its last good content stays in force. Logged as a warning.
    Problem {
        /// One line naming the path and saying what is kept.
        message: String,
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
    /// No plan can be computed; the resources the loader skipped are named, as they may be
    /// the cause (e.g. the node's own Node resource).
    #[error("{error}{}", skipped_suffix(.skipped))]
    Plan {
        /// Why.
        error: PlanError,
        /// Resources the loader skipped, one line each.
        skipped: Vec<String>,
    },
    /// The watcher could not be set up.
    #[error("cannot watch {path}: {message}")]
    Watch {
        /// The path.
        path: PathBuf,
        /// The error.
        message: String,
    },
}

fn skipped_suffix(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" (skipped: {})", skipped.join("; "))
    }
}

/// A running file datastore. Dropping it stops the watcher and its worker thread.
pub struct FileDatastore {
    initial_notes: Vec<String>,
    /// Last load, its problems, the last rejected plan (updated by the worker).
    status: Arc<Mutex<DatastoreStatus>>,
    /// To the worker thread (which owns the watcher).
    control: std_mpsc::Sender<Message>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FileDatastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDatastore").finish_non_exhaustive()
    }
}

/// What the worker thread is told.
enum Message {
    /// A file system event (or a watcher error).
    Fs(notify::Result<notify::Event>),
    /// Re-read everything now and take the files as they are ([`Reloader::reload`]); the
    /// outcome goes to the sender, when there is one.
    Reload(Option<tokio::sync::oneshot::Sender<ReloadOutcome>>),
    /// The datastore is dropped.
    Stop,
}

/// While a configured path (or the directory holding it) cannot be watched, the worker looks
/// again this often; otherwise it only waits for events.
const REWATCH_INTERVAL: Duration = Duration::from_secs(2);

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
            // A watched directory itself removed, recreated or replaced.
            || dirs.iter().any(|d| d == p)
            || (swapped && in_dir(&file_dirs))
            || ((swapped || manifest) && in_dir(dirs))
    })
}

/// The watches of the configured paths. Each path is watched together with the directory that
/// holds it, so that the path being removed and created again (`rm -rf` and a new copy, a file
/// replaced by a directory) is seen and its watch set up again.
struct Watches {
    watcher: notify::RecommendedWatcher,
    /// Directories to watch: each configured directory, and the parent of every configured path.
    wanted: Vec<PathBuf>,
    /// Of `wanted`, those watched now.
    active: Vec<PathBuf>,
}

impl Watches {
    /// Watches what exists of `wanted`; true when all of it is watched.
    fn refresh(&mut self) -> bool {
        let mut all = true;
        for dir in &self.wanted {
            let exists = dir.is_dir();
            let active = self.active.contains(dir);
            if exists {
                // inotify drops a watch whose directory was removed: add it again (adding an
                // existing watch again is harmless).
                if self.watcher.watch(dir, RecursiveMode::NonRecursive).is_ok() {
                    if !active {
                        self.active.push(dir.clone());
                    }
                } else {
                    all = false;
                }
            } else {
                if active {
                    self.active.retain(|d| d != dir);
                }
                all = false;
            }
        }
        all
    }
}

/// A plan with the loader's notes, or why none could be computed.
type PlanResult = Result<(Plan, Vec<String>), String>;

/// Loads the files and computes the plan; the problems are the files that could not be used,
/// the skipped the resources the loader could not use.
fn load_plan(
    state: &mut FileState,
    config: &FileDatastoreConfig,
    explicit: bool,
) -> (PlanResult, Vec<String>, Vec<String>) {
    let loaded = state.load(explicit);
    let plan = compute(&loaded.cluster, &config.node, &config.options)
        .map(|plan| (plan, loaded.cluster.notes.clone()))
        .map_err(|e| e.to_string());
    let skipped = loaded.cluster.problems.iter().map(ToString::to_string);
    (plan, loaded.problems, skipped.collect())
}

impl FileDatastore {
    /// Loads the manifests, computes the first plan and starts watching. Events go to the
    /// returned receiver (capacity 16; the worker waits when it is full, so nothing is lost).
    pub fn start(
        config: FileDatastoreConfig,
    ) -> Result<(FileDatastore, Plan, mpsc::Receiver<DatastoreEvent>), StartError> {
        // The first load must succeed whole (a clear error names what is wrong).
        let cluster = load_paths(&config.paths, &config.options.secret_namespace)?;
        let first =
            compute(&cluster, &config.node, &config.options).map_err(|error| StartError::Plan {
                error,
                skipped: cluster.problems.iter().map(ToString::to_string).collect(),
            })?;
        // Absolute but not canonical: symlinks (ConfigMap volumes) stay as the user named them.
        let absolute: Vec<PathBuf> = config
            .paths
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect();
        let mut state = FileState::new(&absolute, &config.options.secret_namespace);
        let _ = state.load(true);
        let loaded_at = now_ts();
        let mut first_status = DatastoreStatus::syncing(DatastoreKind::File, loaded_at);
        first_status.enter(SyncState::InSync, loaded_at);
        first_status.first_synced = Some(loaded_at);
        first_status.last_update = Some(loaded_at);
        first_status.updates = 1;
        first_status.problems = cluster.problems.iter().map(ToString::to_string).collect();
        let status = Arc::new(Mutex::new(first_status));
        let worker_status = Arc::clone(&status);

        let (raw_tx, raw_rx) = std_mpsc::channel::<Message>();
        let fs_tx = raw_tx.clone();
        let watcher = notify::recommended_watcher(move |res| {
            let _ = fs_tx.send(Message::Fs(res));
        })
        .map_err(|e| StartError::Watch {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let (mut files, mut dirs, mut wanted) = (Vec::new(), Vec::new(), Vec::new());
        for (path, is_dir) in state.roots() {
            let parent = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"));
            if is_dir {
                dirs.push(path.to_path_buf());
                wanted.push(path.to_path_buf());
            } else {
                files.push(path.to_path_buf());
            }
            // The parent too: editors replace a file by rename, and a removed directory comes
            // back in its parent.
            if !wanted.contains(&parent) {
                wanted.push(parent);
            }
        }
        let mut watches = Watches {
            watcher,
            wanted,
            active: Vec::new(),
        };
        if !watches.refresh() {
            let missing = watches
                .wanted
                .iter()
                .find(|d| !watches.active.contains(d))
                .cloned()
                .unwrap_or_default();
            return Err(StartError::Watch {
                message: "cannot watch the directory".into(),
                path: missing,
            });
        }

        let (tx, rx) = mpsc::channel(16);
        let mut current = first.clone();
        let worker = std::thread::Builder::new()
            .name("tern-file-datastore".into())
            .spawn(move || {
                let mut all_watched = true;
                loop {
                    // Blocks until an event arrives; while a watch is missing, looks again
                    // every REWATCH_INTERVAL.
                    let first_message = if all_watched {
                        match raw_rx.recv() {
                            Ok(m) => Some(m),
                            Err(_) => return,
                        }
                    } else {
                        match raw_rx.recv_timeout(REWATCH_INTERVAL) {
                            Ok(m) => Some(m),
                            Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    };
                    let relevant_to = |ev: &notify::Result<notify::Event>| {
                        ev.as_ref().map_or(true, |e| relevant(e, &files, &dirs))
                    };
                    let mut replies = Vec::new();
                    let (mut changed, mut explicit) = match first_message {
                        Some(Message::Stop) => return,
                        Some(Message::Reload(reply)) => {
                            replies.extend(reply);
                            (true, true)
                        }
                        Some(Message::Fs(ev)) => (relevant_to(&ev), false),
                        // A periodic look while a watch is missing.
                        None => (true, false),
                    };
                    // Debounce: keep draining until the files have been quiet for a while (a
                    // requested reload reads at once).
                    while !explicit {
                        match raw_rx.recv_timeout(config.debounce) {
                            Ok(Message::Stop) => return,
                            Ok(Message::Reload(reply)) => {
                                replies.extend(reply);
                                changed = true;
                                explicit = true;
                            }
                            Ok(Message::Fs(ev)) => changed |= relevant_to(&ev),
                            Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    all_watched = watches.refresh();
                    if !changed {
                        continue;
                    }
                    let (result, problems, skipped) = load_plan(&mut state, &config, explicit);
                    if let Ok(mut s) = worker_status.lock() {
                        let at = now_ts();
                        s.last_update = Some(at);
                        s.updates += 1;
                        s.problems = problems.iter().chain(&skipped).cloned().collect();
                        s.rejected = result.as_ref().err().map(|message| DatastoreError {
                            at,
                            message: message.clone(),
                        });
                    }
                    let problem_note = if problems.is_empty() {
                        String::new()
                    } else {
                        format!("; problems: {}", problems.join("; "))
                    };
                    let mut events: Vec<DatastoreEvent> = problems
                        .into_iter()
                        .map(|message| DatastoreEvent::Problem { message })
                        .collect();
                    let outcome = match result {
                        Ok((plan, notes)) => {
                            let diff = PlanDiff::between(&current, &plan);
                            if diff.is_empty() && plan == current {
                                Ok(format!("configuration unchanged{problem_note}"))
                            } else {
                                let outcome = format!(
                                    "new plan: {} peers added, {} removed, {} reset, {} updated{problem_note}",
                                    diff.peers_added.len(),
                                    diff.peers_removed.len(),
                                    diff.peers_reset.len(),
                                    diff.peers_updated.len()
                                );
                                current = plan.clone();
                                events.push(DatastoreEvent::Plan {
                                    plan: Arc::new(plan),
                                    diff,
                                    notes,
                                });
                                Ok(outcome)
                            }
                        }
                        Err(error) => {
                            events.push(DatastoreEvent::Rejected {
                                error: error.clone(),
                            });
                            Err(error)
                        }
                    };
                    for event in events {
                        if tx.blocking_send(event).is_err() {
                            return;
                        }
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
                status,
                control: raw_tx,
                worker: Some(worker),
            },
            first,
            rx,
        ))
    }

    /// Re-reads every manifest now and takes the files as they are (`tern reload`, SIGHUP):
    /// files gone from a directory and empty files then hold nothing, so their resources are
    /// deleted. The result arrives as events like any edit.
    pub fn reload(&self) {
        let _ = self.control.send(Message::Reload(None));
    }

    /// A handle that can ask for a reload from elsewhere (the daemon's signal handler, the
    /// admin socket).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            control: self.control.clone(),
        }
    }
}

/// Asks a [`FileDatastore`] for a reload (see [`FileDatastore::reload`]).
#[derive(Clone)]
pub struct Reloader {
    control: std_mpsc::Sender<Message>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// Re-reads every manifest now and takes the files as they are (see
    /// [`FileDatastore::reload`]); the receiver gets the outcome once the manifests were read
    /// and any new plan was handed to the daemon. Fails when the datastore has stopped.
    pub fn reload(&self) -> Result<tokio::sync::oneshot::Receiver<ReloadOutcome>, String> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.control
            .send(Message::Reload(Some(reply)))
            .map_err(|_| "the datastore has stopped".to_string())?;
        Ok(outcome)
    }
}

/// The outcome of a requested reload: `Ok` with what happened (a new plan, or nothing
/// changed, and the files that could not be used), `Err` with why the plan was rejected (the
/// running plan stays).
pub type ReloadOutcome = Result<String, String>;

impl FileDatastore {
    /// Loader notes from the first load (skipped kinds, ignored fields).
    pub fn initial_notes(&self) -> &[String] {
        &self.initial_notes
    }

    /// The datastore's status: in sync since start (the first load must succeed), the last
    /// load and what it could not use, the last plan that could not be computed.
    pub fn status(&self) -> DatastoreStatus {
        self.status_handle()()
    }

    /// A function reading the status, for the status hub.
    pub fn status_handle(&self) -> impl Fn() -> DatastoreStatus + Send + Sync + 'static {
        let status = Arc::clone(&self.status);
        move || match status.lock() {
            Ok(s) => s.clone(),
            Err(e) => e.into_inner().clone(),
        }
    }
}

impl Drop for FileDatastore {
    fn drop(&mut self) {
        let _ = self.control.send(Message::Stop);
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
        let (ds, first, mut rx) = start(dir.path());
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

        // A resource tern cannot use is named (file, resource, field) and skipped; the rest of
        // the datastore still loads.
        write(
            dir.path().join("peer.yaml"),
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: nonsense, asNumber: 1}\n",
        );
        let DatastoreEvent::Plan { plan, diff, .. } = next(&mut rx).await else {
            panic!("expected a plan")
        };
        assert!(diff.is_empty(), "{diff:?}");
        assert_eq!(plan.peerings.len(), 2, "the rest loads");
        assert!(
            plan.warnings.iter().any(|w| w.contains("peer.yaml")
                && w.contains("BGPPeer \"bad\"")
                && w.contains("spec.peerIP")
                && w.ends_with("skipped")),
            "{:?}",
            plan.warnings
        );

        // A plan that cannot be computed is rejected and the last good plan stays.
        write(
            dir.path().join("filter.yaml"),
            "apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV4:\n  - {action: Accept, cidr: 10.0.0.0/8, matchOperator: In, prefixLength: {min: 40}}\n",
        );
        let event = next(&mut rx).await;
        let DatastoreEvent::Rejected { error } = event else {
            panic!("expected a rejection, got {event:?}")
        };
        assert!(error.contains("BGPFilter"), "{error}");
        // The status has it, with the load and the resource the loader skipped.
        let status = ds.status();
        assert_eq!(status.state, crate::status::SyncState::InSync);
        assert!(
            status.first_synced.is_some() && status.updates >= 4,
            "{status:?}"
        );
        assert!(
            status.rejected.as_ref().is_some_and(|r| r.message == error),
            "{status:?}"
        );
        assert!(
            status
                .problems
                .iter()
                .any(|p| p.contains("BGPPeer \"bad\"")),
            "{status:?}"
        );
        // Removing it and reloading gives back the running plan: no event. (A file that is only
        // removed keeps its resources in force; see `super::file_state`.)
        std::fs::remove_file(dir.path().join("filter.yaml")).unwrap();
        ds.reload();

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

        // Removing the file is not taken as deleting its resources: it is reported and its
        // node stays...
        std::fs::remove_file(dir.path().join("n3.yaml")).unwrap();
        let DatastoreEvent::Problem { message } = next(&mut rx).await else {
            panic!("expected a problem")
        };
        assert!(
            message.contains("n3.yaml") && message.contains("gone"),
            "{message}"
        );
        // ... until an explicit reload takes the files as they are.
        ds.reload();
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
    fn a_bad_document_at_start_is_skipped_and_the_rest_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.yaml"), "a: [").unwrap();
        let config = || FileDatastoreConfig {
            paths: vec![dir.path().to_path_buf()],
            node: "n1".into(),
            options: PlanOptions::default(),
            debounce: Duration::from_millis(50),
        };
        // Without the node there is no plan.
        let err = FileDatastore::start(config()).unwrap_err();
        assert!(err.to_string().contains("Node \"n1\" not found"), "{err}");
        std::fs::write(dir.path().join("nodes.yaml"), BASE).unwrap();
        let (_ds, plan, _rx) = FileDatastore::start(config()).unwrap();
        assert_eq!(plan.peerings.len(), 1);
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains("x.yaml: document: invalid YAML")),
            "{:?}",
            plan.warnings
        );
    }

    /// `rm -rf` of the manifest directory keeps the last good state, and once the directory is
    /// created again its edits are picked up (the watch is set up again).
    #[tokio::test]
    async fn a_removed_and_recreated_directory_is_watched_again() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("nodes.yaml"), BASE).unwrap();
        let (_ds, first, mut rx) = start(&dir);
        assert_eq!(first.peerings.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
        let DatastoreEvent::Problem { message } = next(&mut rx).await else {
            panic!("expected a problem")
        };
        assert!(message.contains("manifests"), "{message}");
        std::fs::create_dir(&dir).unwrap();
        write(
            dir.join("nodes.yaml"),
            &BASE.replace("10.0.0.2/24", "10.0.0.9/24"),
        );
        let diff = loop {
            match next(&mut rx).await {
                DatastoreEvent::Plan { diff, .. } => break diff,
                DatastoreEvent::Problem { .. } => continue,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(diff.peers_added[0].name, "Mesh_10_0_0_9");
        assert_eq!(diff.peers_removed[0].name, "Mesh_10_0_0_2");
    }
}
