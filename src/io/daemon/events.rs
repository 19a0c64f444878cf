//! Event handling: the speaker's peer events (sessions, UPDATEs, flow control), datastore
//! plans and kernel-learned routes.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use bgp_proto::Family;
use tracing::{debug, error, info, warn};

use crate::daemon as glue;
use crate::io::bgp::{PeerEvent, SpeakerEvent};
use crate::io::datastore::DatastoreEvent;
use crate::io::kernel::LearnedRouteEvent;
use crate::io::metrics::MalformedAction;
use crate::rib::peer::SessionFacts;
use crate::rib::{Families, LocalRoute, LocalRouteKind, PeerSession, PolicyContext};
use crate::session::{DownReason, State};
use crate::status;

use super::now_ts;
use super::supervisor::{EstablishedPeer, Supervisor};

impl Supervisor {
    pub(super) fn on_speaker(&mut self, event: SpeakerEvent) {
        let address = event.peer;
        let Some(runtime) = self.peers.get_mut(&address) else {
            debug!(peer = %address, "event of a removed peer");
            return;
        };
        let id = runtime.id;
        let name = runtime.name.clone();
        match event.event {
            PeerEvent::StateChanged { from, to } => {
                info!(peer = %name, from = from.name(), to = to.name(), "session state");
                let now = now_ts();
                if from == State::Established
                    && let Some(metrics) = &runtime.metrics
                {
                    metrics.session_flapped();
                }
                self.hub.update_peer(&name, |p| {
                    p.state = glue::session_state(to);
                    p.since = now;
                    if from == State::Established {
                        p.flaps += 1;
                    }
                });
            }
            PeerEvent::Established {
                session,
                info,
                local,
                remote: _,
                output,
            } => {
                let local_address = local
                    .map(|l| l.ip().to_canonical())
                    .or(self.plan.ipv4_address.map(|a| a.addr()))
                    .unwrap_or(IpAddr::V4(self.plan.router_id));
                let receive = !info.codec.receive.add_path.is_empty();
                let send = !info.codec.send.add_path.is_empty();
                let facts = SessionFacts {
                    router_id: info.peer_router_id,
                    local_address,
                    add_path_send: send,
                    add_path_receive: receive,
                    graceful_restart: info.graceful_restart_negotiated(),
                    families: Families::negotiated(&info.families),
                };
                let Some(peering) = self.plan.peerings.iter().find(|p| p.address == address) else {
                    return;
                };
                if !self.own_addresses.contains(&local_address) {
                    self.own_addresses = crate::io::addresses::interface_addresses();
                    self.own_addresses.push(local_address);
                }
                let peer_session = PeerSession::from_peering(peering, &self.plan, &facts);
                self.rib.peer_up(id, peer_session);
                if facts.graceful_restart {
                    self.rib
                        .bound_stale(id, Instant::now() + self.defaults.stale_routes_time);
                }
                let details = runtime
                    .config
                    .as_ref()
                    .map(|c| glue::established_session(c, &info, local_address));
                info!(peer = %name, router_id = %info.peer_router_id, "established");
                if self.recovery.established(
                    address,
                    &info.families,
                    info.graceful_restart_negotiated(),
                    info.peer_restarting(),
                    Instant::now(),
                ) {
                    self.converge_pending = true;
                }
                runtime.session = Some(EstablishedPeer {
                    session,
                    info,
                    facts,
                    backlog: VecDeque::new(),
                    blocked: false,
                    output,
                    prefixes_queued: 0,
                    bytes_queued: 0,
                });
                self.hub.update_peer(&name, |p| {
                    p.state = status::SessionState::Established;
                    p.session = details;
                    p.peer_graceful_restart_active = false;
                    p.output = status::OutputStatus::default();
                    p.prefixes.advertised = 0;
                });
                self.status_dirty = true;
            }
            PeerEvent::Update(update) => {
                if let Some(action) = update.action() {
                    runtime.malformed += 1;
                    if let Some(metrics) = &runtime.metrics {
                        metrics.malformed_update(malformed_action(action));
                    }
                    // Rate-limited: the 1st, 2nd, 4th, 8th... malformed UPDATE of a peer.
                    if runtime.malformed.is_power_of_two() {
                        warn!(peer = %name, ?action, issues = ?update.issues, count = runtime.malformed, "malformed UPDATE handled per RFC 7606");
                    }
                }
                if !self.recovery.is_done() {
                    self.recovery.update_received(address, Instant::now());
                }
                self.routes_since_trim +=
                    update.announced().count() + update.withdrawn_routes().count();
                let limit = self.defaults.max_prefix.for_peer(address);
                let outcome = glue::inbound::apply_update(
                    &mut self.rib,
                    id,
                    *update,
                    &self.own_addresses,
                    limit,
                    &mut runtime.over_limit,
                );
                if outcome.own_next_hop > 0 {
                    runtime.malformed += 1;
                }
                if outcome.own_next_hop > 0 && runtime.malformed.is_power_of_two() {
                    warn!(peer = %name, routes = outcome.own_next_hop, "next hop is an address of this node: routes treated as withdrawn (RFC 4271 §5.1.3)");
                }
                if let Some(full) = outcome.rib_full {
                    // Rate-limited like malformed UPDATEs (1st, 2nd, 4th, 8th...).
                    runtime.malformed += 1;
                    if runtime.malformed.is_power_of_two() {
                        error!(peer = %name, error = %full, count = runtime.malformed, "UPDATE rejected");
                    }
                }
                if let Some((family, limit)) = outcome.over_limit {
                    match limit.action {
                        glue::inbound::MaxPrefixAction::Warn => {
                            warn!(peer = %name, %family, limit = limit.limit, "peer is over its maximum prefix limit (warn only)");
                        }
                        glue::inbound::MaxPrefixAction::Restart => {
                            warn!(peer = %name, %family, limit = limit.limit, restart_after = ?limit.restart_after, "peer is over its maximum prefix limit: Cease/1, session restarts after the delay (RFC 4486)");
                            let stop = crate::session::StopReason::MaxPrefix {
                                family,
                                limit: limit.limit,
                                restart_after: limit.restart_after,
                            };
                            if let Err(e) = self.speaker.stop_peer(address, stop) {
                                error!(peer = %name, error = %e, "max-prefix stop not delivered");
                            }
                        }
                    }
                }
                self.status_dirty = true;
            }
            PeerEvent::FamilyDisabled(family) => {
                // RFC 7606 §7.11, RFC 4760 §7: delete the peer's routes of the family.
                warn!(peer = %name, %family, "malformed MP_REACH_NLRI/MP_UNREACH_NLRI: family disabled until the session resets, its routes withdrawn");
                if rib_family(family).is_some() {
                    self.rib
                        .remove_peer_family(id, family == Family::IPV6_UNICAST);
                }
                self.status_dirty = true;
            }
            PeerEvent::EndOfRib(family) => {
                debug!(peer = %name, ?family, "End-of-RIB received");
                if let Some(f) = rib_family(family) {
                    self.rib.end_of_rib(id, f);
                }
                if self.recovery.end_of_rib(address, family) {
                    self.converge_pending = true;
                }
            }
            PeerEvent::RouteRefresh(_) => self.rib.route_refresh(id),
            PeerEvent::Down(down) => {
                // A malformed UPDATE that reset the session (RFC 7606 session reset: we sent
                // an UPDATE Message Error).
                if let DownReason::NotificationSent(n) = &down.reason
                    && u8::from(n.code) == 3
                    && let Some(metrics) = &runtime.metrics
                {
                    metrics.malformed_update(MalformedAction::session_reset);
                }
                let retain = down.retain_routes_for;
                self.recovery.session_down(address);
                if down.was_established || runtime.session.is_some() {
                    info!(peer = %name, reason = %down.reason, keep_routes_for = ?retain, "session down");
                    runtime.session = None;
                    runtime.over_limit = [false; 2];
                    runtime.drained = false;
                    self.rib.peer_down(id, Instant::now(), retain);
                }
                let error = glue::peer_error(&down.reason, now_ts());
                self.hub.update_peer(&name, |p| {
                    p.session = None;
                    p.output = status::OutputStatus::default();
                    p.prefixes.advertised = 0;
                    p.peer_graceful_restart_active = retain.is_some() && down.was_established;
                    if error.is_some() {
                        p.last_error = error;
                    }
                });
                self.status_dirty = true;
            }
            PeerEvent::OutputReady => {
                if let Some(est) = runtime.session.as_mut() {
                    est.blocked = false;
                }
            }
        }
    }

    pub(super) fn on_datastore(&mut self, event: DatastoreEvent) {
        match event {
            DatastoreEvent::Problem { message } => {
                warn!(problem = %message, "datastore");
            }
            DatastoreEvent::Rejected { error } => {
                error!(error = %error, "configuration edit rejected; the running configuration stays");
            }
            DatastoreEvent::Plan { plan, diff, notes } => {
                for note in notes {
                    info!(note = %note, "datastore");
                }
                for warning in &plan.warnings {
                    warn!(warning = %warning, "plan");
                }
                if let Some((old, new)) = diff.router_id {
                    warn!(%old, %new, "router id changed: every session is reset with the new one");
                }
                if let Some((old, new)) = diff.local_as {
                    warn!(
                        old,
                        new, "AS changed: every session is reset with the new one"
                    );
                }
                if diff.listen_changed {
                    warn!("listen port or addresses changed: takes effect when tern restarts");
                }
                info!(
                    added = diff.peers_added.len(),
                    removed = diff.peers_removed.len(),
                    reset = diff.peers_reset.len(),
                    updated = diff.peers_updated.len(),
                    routes_added = diff.routes_added.len(),
                    routes_removed = diff.routes_removed.len(),
                    "new plan"
                );
                self.plan = plan;
                self.subnets = glue::node_subnets(&self.plan);
                // The identity in use: the sessions are reset with it (their configurations
                // carry it) and the RIB's loop checks and reflection follow.
                self.rib.set_identity(
                    self.plan.router_id,
                    self.plan.local_as,
                    self.plan.route_reflector_cluster_id,
                );
                let (router_id, local_as) = (self.plan.router_id, self.plan.local_as);
                self.hub.update_daemon(|d| {
                    d.router_id = router_id;
                    d.local_as = local_as;
                });
                if diff.policy_changed {
                    self.rib.set_policy(PolicyContext::from(&self.plan.policy));
                }
                if !diff.routes_added.is_empty() || !diff.routes_removed.is_empty() {
                    self.rib.sync_originated(&self.plan.originated);
                }
                self.apply_peers(&diff, false);
                if diff.pool_rules_changed || diff.policy_changed {
                    self.recompute_fib();
                }
                self.hub.update_daemon(|d| d.last_reconfigured = now_ts());
                self.refresh_warnings();
            }
        }
    }

    pub(super) fn on_learned(&mut self, event: LearnedRouteEvent) {
        match event {
            LearnedRouteEvent::Added(route) => {
                let Some(interface) = route.interface.clone() else {
                    return;
                };
                self.interfaces.insert(route.prefix, interface.clone());
                // Interface (protocol kernel) routes and the node's own originated prefixes
                // are not borrowed addresses.
                if route.protocol == 2
                    || self
                        .plan
                        .originated
                        .iter()
                        .any(|o| o.prefix == route.prefix)
                {
                    return;
                }
                self.learned.insert(route.prefix);
                self.rib.originate(
                    route.prefix,
                    LocalRoute {
                        kind: LocalRouteKind::Kernel { interface },
                        metric: route.metric,
                    },
                );
            }
            LearnedRouteEvent::Removed(route) => {
                self.interfaces.remove(&route.prefix);
                if self.learned.remove(&route.prefix) {
                    self.rib.withdraw_local(route.prefix);
                }
            }
        }
    }
}

fn rib_family(family: Family) -> Option<crate::rib::graceful_restart::Family> {
    if family == Family::IPV4_UNICAST {
        Some(crate::rib::graceful_restart::Family::Ipv4)
    } else if family == Family::IPV6_UNICAST {
        Some(crate::rib::graceful_restart::Family::Ipv6)
    } else {
        None
    }
}

/// The metrics label of an RFC 7606 outcome tern handled without a reset.
fn malformed_action(action: bgp_proto::Rfc7606Action) -> MalformedAction {
    match action {
        bgp_proto::Rfc7606Action::AttributeDiscard => MalformedAction::attribute_discard,
        bgp_proto::Rfc7606Action::TreatAsWithdraw | bgp_proto::Rfc7606Action::AfiSafiDisable => {
            MalformedAction::treat_as_withdraw
        }
        bgp_proto::Rfc7606Action::SessionReset => MalformedAction::session_reset,
    }
}
