//! The daemon's admin actions (`tern peer restart|disable|enable NAME`, `tern reload`, and
//! `disable`/`enable`/`restart` on the BIRD-compatible socket).
//!
//! The servers turn a request into an [`AdminRequest`] for the supervisor (which knows the
//! peers by name) and wait for its reply; a reload asks the datastore to re-read its manifests
//! at once and reports the outcome. The servers log every mutating request with the caller's
//! credentials (`SO_PEERCRED`).

use std::net::IpAddr;

use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::io::control::{AdminActions, SourceError};
use crate::io::datastore::Reloader;
use crate::session::StopReason;

use super::Supervisor;

/// Shutdown communication (RFC 9003) sent with a disable.
const DISABLE_TEXT: &str = "administratively disabled";
/// Shutdown communication (RFC 9003) sent with a restart.
const RESTART_TEXT: &str = "administrative reset";

/// What an operator asked of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AdminCommand {
    /// Cease/4 (Administrative Reset), then the session comes back.
    Restart,
    /// Cease/2 (Administrative Shutdown); stays down until enabled.
    Disable,
    /// Start a disabled peer.
    Enable,
}

/// A request for the supervisor.
#[derive(Debug)]
pub(super) struct AdminRequest {
    pub(super) name: String,
    pub(super) command: AdminCommand,
    pub(super) reply: oneshot::Sender<Result<String, SourceError>>,
}

/// The admin actions of a running daemon, for the admin socket and the BIRD-compatible
/// sockets.
#[derive(Debug, Clone)]
pub struct DaemonAdmin {
    requests: mpsc::Sender<AdminRequest>,
    /// The datastore's reload handle (the file datastore; the Kubernetes one follows its
    /// watches and has none).
    reloader: Option<Reloader>,
}

impl DaemonAdmin {
    pub(super) fn new(requests: mpsc::Sender<AdminRequest>, reloader: Option<Reloader>) -> Self {
        DaemonAdmin { requests, reloader }
    }

    async fn ask(&self, name: &str, command: AdminCommand) -> Result<String, SourceError> {
        let unavailable = |reason: &str| SourceError::Unavailable {
            component: "supervisor".into(),
            reason: reason.into(),
        };
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(AdminRequest {
                name: name.to_owned(),
                command,
                reply,
            })
            .await
            .map_err(|_| unavailable("it has stopped"))?;
        answer
            .await
            .map_err(|_| unavailable("it dropped the request"))?
    }
}

impl AdminActions for DaemonAdmin {
    async fn reset_peer(&self, name: &str) -> Result<String, SourceError> {
        self.ask(name, AdminCommand::Restart).await
    }

    async fn set_peer_enabled(&self, name: &str, enabled: bool) -> Result<String, SourceError> {
        let command = if enabled {
            AdminCommand::Enable
        } else {
            AdminCommand::Disable
        };
        self.ask(name, command).await
    }

    async fn reload(&self) -> Result<String, SourceError> {
        let Some(reloader) = &self.reloader else {
            return Err(SourceError::Refused(
                "the Kubernetes datastore follows its watches: there is nothing to reload".into(),
            ));
        };
        let outcome = reloader
            .reload()
            .map_err(|reason| SourceError::Unavailable {
                component: "datastore".into(),
                reason,
            })?;
        match outcome.await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(error)) => Err(SourceError::Refused(format!(
                "configuration rejected, the running one stays: {error}"
            ))),
            Err(_) => Err(SourceError::Unavailable {
                component: "datastore".into(),
                reason: "it dropped the request".into(),
            }),
        }
    }
}

impl Supervisor {
    /// Carries out an operator's request on one peer and replies.
    pub(super) fn on_admin(&mut self, request: AdminRequest) {
        let result = self.admin(&request.name, request.command);
        let _ = request.reply.send(result);
    }

    fn admin(&mut self, name: &str, command: AdminCommand) -> Result<String, SourceError> {
        let Some((address, has_config)) = self
            .peers
            .iter()
            .find(|(_, p)| p.name == name)
            .map(|(a, p)| (*a, p.config.is_some()))
        else {
            return Err(SourceError::NoSuchPeer(name.to_owned()));
        };
        if !has_config {
            return Err(SourceError::Refused(format!(
                "{name} has no session (see its last error in `tern show peers {name}`)"
            )));
        }
        let held_down = self.speaker.is_held_down(address).unwrap_or(false);
        let unknown = |_| SourceError::NoSuchPeer(name.to_owned());
        match command {
            AdminCommand::Disable if held_down => Ok(format!("{name}: already disabled")),
            AdminCommand::Enable if !held_down => Ok(format!("{name}: already enabled")),
            AdminCommand::Restart if held_down => Err(SourceError::Refused(format!(
                "{name} is disabled; enable it to start its session"
            ))),
            AdminCommand::Disable => {
                self.speaker
                    .stop_peer(
                        address,
                        StopReason::Shutdown {
                            text: DISABLE_TEXT.into(),
                        },
                    )
                    .map_err(unknown)?;
                self.set_enabled(name, address, false);
                Ok(format!("{name}: disabled"))
            }
            AdminCommand::Enable => {
                self.speaker.start_peer(address).map_err(unknown)?;
                self.set_enabled(name, address, true);
                Ok(format!("{name}: enabled"))
            }
            AdminCommand::Restart => {
                self.speaker
                    .stop_peer(
                        address,
                        StopReason::Reset {
                            text: RESTART_TEXT.into(),
                        },
                    )
                    .map_err(unknown)?;
                info!(peer = %name, "session restart requested");
                Ok(format!("{name}: restarted"))
            }
        }
    }

    fn set_enabled(&mut self, name: &str, address: IpAddr, enabled: bool) {
        info!(peer = %name, %address, enabled, "peer administratively {}", if enabled { "enabled" } else { "disabled" });
        self.hub.update_peer(name, |p| p.enabled = enabled);
        self.status_dirty = true;
    }
}
