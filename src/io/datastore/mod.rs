//! Datastores that feed the plan: the file datastore (YAML manifests on disk, watched with
//! inotify through `notify`) and the Kubernetes datastore (the API server, watched with
//! `kube-runtime`). Both build the same model and emit the same [`DatastoreEvent`]s.

mod file;
mod file_state;
pub mod kubernetes;

pub use file::{
    DatastoreEvent, FileDatastore, FileDatastoreConfig, ReloadOutcome, Reloader, StartError,
};
pub use file_state::{FileState, Loaded};
pub use kubernetes::{KubernetesConfig, KubernetesDatastore, KubernetesStatus};
