//! Creating a Unix listening socket with its permissions set before anyone can connect.
//!
//! The socket is bound inside a fresh directory of mode 0700 next to the final path, given its
//! mode (and group), then renamed into place. So there is no window in which the socket exists at
//! its final path with the process umask's permissions.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::UnixListener;

/// A Unix socket could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The path has no parent directory or file name.
    #[error("socket path {0} is not a file path")]
    BadPath(PathBuf),
    /// The path exists and is not a socket: it is never replaced.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// Another process answers on the path.
    #[error("{0} is in use by a running process")]
    InUse(PathBuf),
    /// An OS call failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SocketError + 'a {
    move |source| SocketError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A bound listening socket; its file is removed when this is dropped.
#[derive(Debug)]
pub struct BoundSocket {
    /// The listener.
    pub listener: UnixListener,
    path: PathBuf,
}

impl BoundSocket {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Binds a listening Unix socket at `path` with `mode` (e.g. `0o660`) and, when given, group
/// `gid`. Creates the parent directory (mode 0755) when missing. A stale socket nobody answers on
/// is replaced; a live one or a non-socket file is an error. Must be called inside a tokio
/// runtime.
pub fn bind_unix_socket(
    path: &Path,
    mode: u32,
    gid: Option<u32>,
) -> Result<BoundSocket, SocketError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let (Some(parent), Some(file_name)) = (path.parent(), path.file_name()) else {
        return Err(SocketError::BadPath(path.to_owned()));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(parent)
        .map_err(io_err("creating directory", parent))?;
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse(path.to_owned()));
            }
        }
        Ok(_) => return Err(SocketError::NotASocket(path.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspecting", path)(e)),
    }
    // Short on purpose: the socket is bound at `<staging>/s` first, and that path must fit
    // in `sun_path` (108 bytes) wherever the final one does.
    let _ = file_name;
    let staging = parent.join(format!(
        ".{:x}.{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(io_err("creating staging directory", &staging))?;
    let result = bind_in(&staging, path, mode, gid);
    let _ = fs::remove_dir_all(&staging);
    result
}

fn bind_in(
    staging: &Path,
    path: &Path,
    mode: u32,
    gid: Option<u32>,
) -> Result<BoundSocket, SocketError> {
    let tmp = staging.join("s");
    let listener = UnixListener::bind(&tmp).map_err(io_err("binding", &tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
        .map_err(io_err("setting mode of", &tmp))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(&tmp, None, Some(gid))
            .map_err(io_err("setting group of", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err("moving socket into place at", path))?;
    Ok(BoundSocket {
        listener,
        path: path.to_owned(),
    })
}
