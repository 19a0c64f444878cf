//! Datastores that feed the plan: the file datastore (YAML manifests on disk, watched with
//! inotify through `notify`); the Kubernetes datastore arrives in a later issue.

mod file;
mod file_state;

pub use file::{DatastoreEvent, FileDatastore, FileDatastoreConfig, Reloader, StartError};
pub use file_state::{FileState, Loaded};
