//! tern's own control socket: newline-delimited JSON over a Unix socket, read-only requests on
//! `tern.ctl` (mode 0660) and mutating ones only on `tern-admin.ctl` (mode 0600). No TCP API.
//!
//! The daemon plugs its live state in through a [`StatusHub`] (its tasks publish peers, RIB sizes
//! and kernel status; the RIB task answers [`RouteRequest`]s) or its own [`StatusSource`], plus
//! [`AdminActions`] for the admin socket. The command line calls [`client::request`] and renders
//! with [`format::render`].

pub mod client;
pub mod format;
pub mod hub;
pub mod protocol;
pub mod server;
pub mod socket;
pub mod source;

pub use client::{ClientError, request, request_async};
pub use hub::{DatastoreStatusFn, FibRequest, RouteRequest, StatusHub};
pub use protocol::{ErrorKind, ErrorResponse, Request, Response};
pub use server::{
    Caller, ControlServer, DEFAULT_ADMIN_SOCKET_PATH, DEFAULT_SOCKET_PATH, ServeOptions,
    SocketRole, caller_text,
};
pub use socket::{BoundSocket, SocketError, bind_unix_socket};
pub use source::{AdminActions, NoAdmin, RouteQuery, SourceError, StatusSource};
