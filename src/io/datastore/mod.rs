//! Datastores that feed the plan: the file datastore (YAML manifests on disk, watched with
//! inotify through `notify`); the Kubernetes datastore arrives in a later issue.

mod file;

pub use file::{
    DatastoreEvent, FileDatastore, FileDatastoreConfig, ReloadOutcome, Reloader, StartError,
};
