//! The control socket client the `tern show` and `tern health` commands use.

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::protocol::{Request, Response};

/// A request could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (or it is not accessible).
    #[error(
        "cannot connect to control socket {path}: {source} (is tern running, and may this user use the socket?)"
    )]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading or writing failed.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No answer in time.
    #[error("no response from control socket {path} within {timeout:?}")]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// The limit.
        timeout: Duration,
    },
    /// The daemon closed the connection without answering.
    #[error("control socket {0} closed the connection without a response")]
    Closed(PathBuf),
    /// The answer was not a valid response.
    #[error("malformed response from control socket {path}: {source}")]
    Malformed {
        /// The socket path.
        path: PathBuf,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

fn encode(request: &Request) -> Vec<u8> {
    // Serialising these plain types cannot fail.
    let mut line = serde_json::to_vec(request).unwrap_or_default();
    line.push(b'\n');
    line
}

fn decode(path: &Path, line: &str) -> Result<Response, ClientError> {
    if line.is_empty() {
        return Err(ClientError::Closed(path.to_owned()));
    }
    serde_json::from_str(line).map_err(|source| ClientError::Malformed {
        path: path.to_owned(),
        source,
    })
}

/// Sends one request and waits (blocking, at most `timeout` per read or write) for its response.
/// For the command line, which has no async runtime.
pub fn request(path: &Path, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let io_err = |source: io::Error| {
        if matches!(
            source.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            ClientError::Timeout {
                path: path.to_owned(),
                timeout,
            }
        } else {
            ClientError::Io {
                path: path.to_owned(),
                source,
            }
        }
    };
    let mut stream =
        std::os::unix::net::UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_owned(),
            source,
        })?;
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    stream.write_all(&encode(request)).map_err(io_err)?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(io_err)?;
    decode(path, line.trim_end())
}

/// Sends one request and waits for its response, at most `timeout` in all.
pub async fn request_async(
    path: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_owned(),
                source,
            })?;
        let io_err = |source| ClientError::Io {
            path: path.to_owned(),
            source,
        };
        // As in `request`: a failed write matters only when no response can be read.
        let written = stream.write_all(&encode(request)).await;
        let mut line = String::new();
        let read = tokio::io::BufReader::new(stream).read_line(&mut line).await;
        match (written, read) {
            (_, Ok(_)) if !line.is_empty() => decode(path, line.trim_end()),
            (Err(e), _) | (Ok(()), Err(e)) => Err(io_err(e)),
            (Ok(()), Ok(_)) => decode(path, ""),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout {
            path: path.to_owned(),
            timeout,
        })?
}
