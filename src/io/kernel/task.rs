//! The kernel task: state, the event loop and reconciliation. Event handling, learning,
//! next-hop resolution, resynchronisation and the event socket's options are in `task/`.

mod events;
mod learn;
mod resolve;
mod resync;
mod socket;

use socket::{drop_own_route_notifications, force_receive_buffer};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use ipnet::IpNet;
use rtnetlink::packet_core::{NLM_F_REPLACE, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::sys::SocketAddr;
use rtnetlink::sys::protocols::NETLINK_ROUTE;
use rtnetlink::{MulticastGroup, new_multicast_connection};
use tokio::sync::{mpsc, watch};

use super::codec::{
    MAIN_TABLE, ParsedLink, ParsedRoute, dump_links_message, dump_routes_message, lookup_message,
    parse_link, parse_route,
};
use super::writer::{RouteWriter, WriterClosed};
use super::{
    Command, DesiredChange, DesiredUpdate, KernelConfig, KernelError, KernelRoutes, KernelStatus,
    LearnedRoute, LearnedRouteEvent, RouteDifference, RouteRange,
};
use crate::fib::{
    FibChange, FibTable, Formed, KernelRoute, KernelRouteKind, NextHop, RouteKey, StaleRoutes,
};

type Events = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// Errors after which a plain gateway is resolved through the kernel's table.
const ENETDOWN: i32 = 100;
const ENETUNREACH: i32 = 101;
const EHOSTUNREACH: i32 = 113;
const ESRCH: i32 = 3;

/// Prefixes per diff-and-write pass: a pass over a whole table of a million routes is done in
/// slices, so the changes in flight (and their memory) stay bounded.
const RECONCILE_CHUNK: usize = 65536;

pub(super) struct KernelTask {
    config: KernelConfig,
    writer: RouteWriter,
    events: Events,
    _monitor: rtnetlink::Handle,
    desired_rx: mpsc::UnboundedReceiver<DesiredUpdate>,
    commands: mpsc::UnboundedReceiver<Command>,
    status_tx: watch::Sender<KernelStatus>,
    learned_tx: mpsc::UnboundedSender<LearnedRouteEvent>,

    links: HashMap<u32, ParsedLink>,
    tunnel_ifindex: Option<u32>,
    /// The desired routes and tern's routes in the kernel.
    fib: FibTable,
    learned: HashMap<RouteKey, LearnedRoute>,
    generation: u64,
    /// The generation whose full reconciliation last completed.
    applied_generation: u64,
    /// Gateways the kernel did not accept directly, and the kernel's next hop for each (None:
    /// unreachable or directly connected after all).
    recursive: HashMap<IpAddr, Option<IpAddr>>,
    /// Shared with the published status (copied on the first change after a publish, never
    /// per publish).
    failed: Arc<BTreeMap<IpNet, String>>,
    stale: StaleRoutes,
    status: KernelStatus,
    tunnel_missing_logged: bool,

    /// A full resynchronisation is called for ([`KernelTask::request_resync`]), due at
    /// `resync_at`.
    need_resync: bool,
    resync_at: Instant,
    /// When the last resynchronisation started.
    last_resync: Option<Instant>,
    /// The last dump failed: the view of the kernel is partial, nothing is written.
    view_incomplete: bool,
    need_full: bool,
    need_reresolve: bool,
    dirty: HashSet<IpNet>,
    /// Prefixes whose desired route changed ([`DesiredChange`]), written at the next pass
    /// (duplicates allowed).
    changed: Vec<IpNet>,
}

impl KernelTask {
    pub async fn start(
        config: KernelConfig,
        desired_rx: mpsc::UnboundedReceiver<DesiredUpdate>,
        commands: mpsc::UnboundedReceiver<Command>,
        status_tx: watch::Sender<KernelStatus>,
        learned_tx: mpsc::UnboundedSender<LearnedRouteEvent>,
    ) -> Result<Self, KernelError> {
        // Subscribe first, then dump: events that race with the dump are applied after it.
        let (mut monitor_conn, monitor, events) = new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv6Route,
        ])?;
        force_receive_buffer(
            monitor_conn.socket_mut().as_raw_fd(),
            config.event_buffer_bytes,
        );
        if let Err(error) =
            drop_own_route_notifications(monitor_conn.socket_mut().as_raw_fd(), config.protocol)
        {
            tracing::warn!(%error, "cannot filter tern's own route notifications; continuing without");
        }
        tokio::spawn(monitor_conn);
        let (mut writer_conn, writer_handle, unsolicited) =
            rtnetlink::proto::new_connection::<RouteNetlinkMessage>(NETLINK_ROUTE)?;
        let writer_buffer = force_receive_buffer(writer_conn.socket_mut().as_raw_fd(), 4 << 20);
        tokio::spawn(writer_conn);
        let status = KernelStatus {
            tunnel_device: config.tunnel_device.clone(),
            ..KernelStatus::default()
        };
        let writer = RouteWriter::new(writer_handle, unsolicited, config.protocol, writer_buffer);
        let mut task = KernelTask {
            stale: StaleRoutes::none(Instant::now()),
            config,
            writer,
            events,
            _monitor: monitor,
            desired_rx,
            commands,
            status_tx,
            learned_tx,
            links: HashMap::new(),
            tunnel_ifindex: None,
            fib: FibTable::new(),
            learned: HashMap::new(),
            generation: 0,
            applied_generation: 0,
            recursive: HashMap::new(),
            failed: Arc::default(),
            status,
            tunnel_missing_logged: false,
            need_resync: false,
            resync_at: Instant::now(),
            last_resync: None,
            view_incomplete: false,
            need_full: false,
            need_reresolve: false,
            dirty: HashSet::new(),
            changed: Vec::new(),
        };
        task.initial_resync().await.map_err(KernelError::Dump)?;
        if !task.config.program {
            tracing::info!(
                "kernel programming is off ([kernel] program = false): routes are read, never written"
            );
            task.publish();
            return Ok(task);
        }
        task.stale = StaleRoutes::adopt(
            task.fib.installed_prefixes(),
            Instant::now(),
            task.config.stale_hold,
        );
        if task.stale.stale_count() > 0 {
            tracing::info!(
                routes = task.stale.stale_count(),
                hold = ?task.config.stale_hold,
                "adopted routes of tern's protocol found in the kernel; kept until convergence"
            );
        }
        task.publish();
        Ok(task)
    }

    /// Applies `first` (if any) and every desired-route update already queued behind it, in order.
    /// Coalesces: a whole set makes the changes queued before it moot.
    fn apply_queued_desired(&mut self, first: Option<DesiredUpdate>) {
        let mut updates: Vec<DesiredUpdate> = first.into_iter().collect();
        while let Ok(update) = self.desired_rx.try_recv() {
            if matches!(update, DesiredUpdate::Whole(..)) {
                updates.clear();
            }
            updates.push(update);
        }
        for update in updates {
            match update {
                DesiredUpdate::Whole(generation, routes) => self.set_desired(generation, routes),
                DesiredUpdate::Changes(generation, changes) => {
                    self.change_desired(generation, changes)
                }
            }
        }
    }

    pub async fn run(mut self) {
        loop {
            // Desired-route updates taken in during a pass are written by the next one at once.
            loop {
                if let Err(WriterClosed) = self.process_pending().await {
                    tracing::error!("netlink connection closed; kernel task stops (routes stay)");
                    return;
                }
                self.publish();
                let more = self.need_full || !self.changed.is_empty();
                if !(self.config.program && !self.view_incomplete && more) {
                    break;
                }
            }
            let deadline = self.stale.deadline();
            let resync_due = self.resync_due();
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(Command::Converged) => {
                        // The daemon sends the re-converged desired set just before this
                        // signal: take it first, or the sweep would remove adopted routes that
                        // set wants again (and put them back a moment later).
                        self.apply_queued_desired(None);
                        if self.stale.converged() {
                            tracing::info!("converged: sweeping stale routes");
                        }
                        self.need_full = true;
                    }
                    Some(Command::HoldStale(hold)) => {
                        self.stale.hold_for(Instant::now(), hold);
                    }
                    Some(Command::IgnoredInterfaces(interfaces)) => {
                        if interfaces != self.config.ignored_interfaces {
                            self.config.ignored_interfaces = interfaces;
                            self.need_resync = true;
                        }
                    }
                    Some(Command::Routes(range, reply)) => {
                        let _ = reply.send(self.routes_report(range));
                    }
                    Some(Command::Shutdown(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                update = self.desired_rx.recv() => {
                    let Some(update) = update else {
                        self.stop().await;
                        return;
                    };
                    self.apply_queued_desired(Some(update));
                }
                event = self.events.next() => {
                    let Some((message, _)) = event else {
                        tracing::error!("netlink event connection closed; kernel task stops (routes stay)");
                        return;
                    };
                    self.on_event(message);
                    // Coalesce: take every event already queued before acting.
                    while let Ok((message, _)) = self.events.try_recv() {
                        self.on_event(message);
                    }
                }
                () = sleep_until(resync_due), if resync_due.is_some() => {}
                () = sleep_until(deadline), if deadline.is_some() => {
                    if self.stale.on_tick(Instant::now()) {
                        tracing::info!("stale hold timer ran out: sweeping stale routes");
                    }
                    self.need_full = true;
                }
            }
        }
    }

    async fn stop(&mut self) {
        if !self.config.program || !self.config.flush_on_exit {
            tracing::info!(
                routes = self.fib.installed_len(),
                "kernel task stops; routes stay"
            );
            return;
        }
        let changes: Vec<FibChange> = self.fib.installed_routes().map(FibChange::Delete).collect();
        match self
            .writer
            .apply(&changes, self.tunnel_ifindex.unwrap_or(0))
            .await
        {
            Ok(outcome) => tracing::info!(
                routes = changes.len(),
                failed = outcome.failures.len(),
                "flush on exit: deleted tern's routes"
            ),
            Err(error) => tracing::error!(%error, "flush on exit failed"),
        }
    }

    fn change_desired(&mut self, generation: u64, changes: Vec<DesiredChange>) {
        for change in changes {
            // The daemon hands over what the RIB changed; a prefix whose desired route stayed
            // the same needs no write.
            let prefix = change.prefix();
            let changed = match change {
                DesiredChange::Set(route) => {
                    self.stale.redesired(&route.prefix.trunc());
                    self.fib.set_desired(route)
                }
                DesiredChange::Remove(prefix) => self.fib.remove_desired(&prefix.trunc()),
            };
            if changed {
                self.changed.push(prefix.trunc());
            }
        }
        self.generation = generation;
    }

    fn set_desired(&mut self, generation: u64, routes: Vec<KernelRoute>) {
        self.fib.replace_desired(routes);
        for prefix in self.fib.desired_prefixes() {
            self.stale.redesired(&prefix);
        }
        self.generation = generation;
        self.need_full = true;
    }

    // ---- state -----------------------------------------------------------------------------

    fn publish(&mut self) {
        self.status.applied_generation = self.applied_generation;
        self.status.desired = self.fib.desired_len();
        self.status.installed = self.fib.installed_counts().clone();
        self.status.stale = self.stale.stale_count();
        self.status.stale_swept = self.stale.is_swept();
        self.status.resync_pending = self.need_resync;
        self.status.failed = Arc::clone(&self.failed);
        self.status.tunnel_missing = self.tunnel_ifindex.is_none()
            && self
                .failed
                .values()
                .any(|reason| reason.starts_with("tunnel device"));
        let status = self.status.clone();
        self.status_tx.send_if_modified(|old| {
            if *old == status {
                false
            } else {
                *old = status;
                true
            }
        });
    }

    // ---- reconciliation --------------------------------------------------------------------

    async fn process_pending(&mut self) -> Result<(), WriterClosed> {
        self.resync_if_due().await;
        if !self.config.program {
            // Read-only: nothing is written, so every desired generation counts as applied.
            self.need_full = false;
            self.need_reresolve = false;
            self.dirty.clear();
            self.changed.clear();
            self.applied_generation = self.generation;
            return Ok(());
        }
        if self.view_incomplete {
            // Written against a partial view, a diff would re-add what the kernel holds.
            return Ok(());
        }
        if self.need_reresolve {
            self.need_reresolve = false;
            let gateways: Vec<IpAddr> = self.recursive.keys().copied().collect();
            if self.resolve(&gateways).await? {
                self.need_full = true;
            }
        }
        if self.need_full {
            self.need_full = false;
            self.dirty.clear();
            self.changed.clear();
            let generation = self.generation;
            self.reconcile(None, false).await?;
            self.applied_generation = generation;
        } else {
            if !self.changed.is_empty() {
                let generation = self.generation;
                let changed = std::mem::take(&mut self.changed);
                self.reconcile(Some(changed), false).await?;
                self.applied_generation = generation;
            }
            if !self.dirty.is_empty() {
                let dirty: Vec<IpNet> = self.dirty.drain().collect();
                self.reconcile(Some(dirty), true).await?;
            }
        }
        Ok(())
    }

    /// Makes the kernel match the desired set, everywhere (`scope` None) or for some prefixes
    /// (duplicates allowed); `restoring`: the prefixes were touched by someone else (counted and
    /// logged as restores). Large scopes are handled in slices of [`RECONCILE_CHUNK`] prefixes.
    async fn reconcile(
        &mut self,
        scope: Option<Vec<IpNet>>,
        restoring: bool,
    ) -> Result<(), WriterClosed> {
        let prefixes = match scope {
            None => {
                if !self.failed.is_empty() {
                    Arc::make_mut(&mut self.failed).clear();
                }
                self.fib.all_prefixes()
            }
            Some(mut prefixes) => {
                prefixes.sort_unstable();
                prefixes.dedup();
                prefixes
            }
        };
        for chunk in prefixes.chunks(RECONCILE_CHUNK) {
            self.reconcile_chunk(chunk, restoring).await?;
            // Take the desired-route updates queued meanwhile into the table (far smaller than
            // the queued messages); they are written at the next pass.
            self.apply_queued_desired(None);
        }
        if self.failed.is_empty() {
            self.status.last_sync = Some(std::time::SystemTime::now());
        }
        Ok(())
    }

    /// Every installed route, and each prefix where the kernel does not hold the desired route:
    /// the writes a full pass would make now (pending), with the reason of those that failed.
    fn routes_report(&self, range: RouteRange) -> KernelRoutes {
        let mut installed: Vec<KernelRoute> = self
            .fib
            .installed_routes()
            .filter(|route| range.contains(&route.prefix))
            .collect();
        installed.sort_unstable_by_key(|route| (route.prefix, route.metric));
        if let Some(limit) = range.limit {
            installed.truncate(limit);
        }
        if !self.config.program {
            return KernelRoutes {
                installed,
                differences: Vec::new(),
            };
        }
        let mut prefixes = self.fib.all_prefixes();
        prefixes.retain(|prefix| range.contains(prefix));
        let diff = self.fib.diff(
            &prefixes,
            |hops| self.form(hops),
            |prefix| self.stale.keeps(prefix),
        );
        let mut differences: Vec<RouteDifference> = diff
            .changes
            .iter()
            .map(|change| {
                let route = change.route();
                let installed = match change {
                    FibChange::Add(_) => None,
                    FibChange::Replace(route) | FibChange::Delete(route) => {
                        self.fib.installed(&route.key())
                    }
                };
                RouteDifference {
                    prefix: route.prefix,
                    desired: self.fib.desired(&route.prefix),
                    installed,
                    failed: self.failed.get(&route.prefix).cloned(),
                }
            })
            .chain(diff.unavailable.iter().map(|prefix| RouteDifference {
                prefix: *prefix,
                desired: self.fib.desired(prefix),
                installed: None,
                failed: self.failed.get(prefix).cloned(),
            }))
            .collect();
        differences.sort_by_key(|d| d.prefix);
        differences.dedup_by_key(|d| d.prefix);
        if let Some(limit) = range.limit {
            differences.truncate(limit);
        }
        KernelRoutes {
            installed,
            differences,
        }
    }

    /// Counts a kernel error event and keeps it as the last one, with the time it happened.
    fn record_error(&mut self, message: String) {
        self.status.errors_total += 1;
        self.status.last_error = Some((std::time::SystemTime::now(), message));
    }

    /// [`KernelTask::reconcile`] of some prefixes (sorted, distinct).
    async fn reconcile_chunk(
        &mut self,
        prefixes: &[IpNet],
        restoring: bool,
    ) -> Result<(), WriterClosed> {
        for attempt in 0..2 {
            if prefixes
                .iter()
                .any(|prefix| self.failed.contains_key(prefix))
            {
                let failed = Arc::make_mut(&mut self.failed);
                for prefix in prefixes {
                    failed.remove(prefix);
                }
            }
            let diff = self.fib.diff(
                prefixes,
                |hops| self.form(hops),
                |prefix| self.stale.keeps(prefix),
            );
            if !diff.unavailable.is_empty() {
                if !self.tunnel_missing_logged {
                    self.tunnel_missing_logged = true;
                    self.record_error(format!(
                        "tunnel device {} is missing; IP-in-IP routes wait for it",
                        self.config.tunnel_device
                    ));
                    tracing::error!(
                        device = %self.config.tunnel_device,
                        routes = diff.unavailable.len(),
                        "tunnel device {} is missing: IP-in-IP routes wait for it, the rest are installed",
                        self.config.tunnel_device
                    );
                }
                let reason = format!(
                    "tunnel device {} is missing (the node agent creates it); waiting for it",
                    self.config.tunnel_device
                );
                Arc::make_mut(&mut self.failed).extend(
                    diff.unavailable
                        .into_iter()
                        .map(|prefix| (prefix, reason.clone())),
                );
            }
            let changes = diff.changes;
            if changes.is_empty() {
                return Ok(());
            }
            if restoring {
                for change in &changes {
                    if !matches!(change, FibChange::Delete(_)) {
                        tracing::info!(prefix = %change.route().prefix, "restoring a route of ours deleted or replaced by someone else");
                        self.status.restored += 1;
                    }
                }
            }
            self.status.writes += changes.len() as u64;
            let outcome = self
                .writer
                .apply(&changes, self.tunnel_ifindex.unwrap_or(0))
                .await?;
            if outcome.incomplete {
                self.request_resync();
            }
            let mut failed_index = outcome
                .failures
                .iter()
                .map(|failure| (failure.index, failure.errno))
                .collect::<HashMap<_, _>>();
            let mut new_gateways = Vec::new();
            let mut unreachable_replaced = Vec::new();
            for (index, change) in changes.into_iter().enumerate() {
                let errno = failed_index.remove(&index);
                match (change, errno) {
                    (FibChange::Delete(route), None | Some(ESRCH)) => {
                        self.fib.remove_installed(&route.key());
                    }
                    (FibChange::Add(route) | FibChange::Replace(route), None) => {
                        self.fib.insert_installed(route)
                    }
                    (change, Some(errno)) => {
                        let route = change.route();
                        let error = std::io::Error::from_raw_os_error(errno);
                        let unreachable = matches!(errno, ENETUNREACH | EHOSTUNREACH | ENETDOWN);
                        if unreachable && matches!(change, FibChange::Replace(_)) {
                            unreachable_replaced.push(route.key());
                        }
                        if unreachable && let KernelRouteKind::Unicast(hops) = &route.kind {
                            for hop in hops.iter().filter(|hop| !hop.via_tunnel) {
                                if !self.recursive.contains_key(&hop.gateway) {
                                    new_gateways.push(hop.gateway);
                                }
                            }
                        }
                        tracing::debug!(prefix = %route.prefix, %error, "kernel refused a route write");
                        self.record_error(format!("{}: {error}", route.prefix));
                        Arc::make_mut(&mut self.failed).insert(route.prefix, error.to_string());
                    }
                }
            }
            new_gateways.sort();
            new_gateways.dedup();
            let retry =
                attempt == 0 && !new_gateways.is_empty() && self.resolve(&new_gateways).await?;
            if !retry {
                // A route whose next hop became unreachable must not keep forwarding to the old
                // one: the kernel's copy goes until the next hop is reachable again.
                self.withdraw(&unreachable_replaced).await?;
                return Ok(());
            }
        }
        Ok(())
    }

    async fn withdraw(&mut self, keys: &[RouteKey]) -> Result<(), WriterClosed> {
        let deletes: Vec<FibChange> = keys
            .iter()
            .filter_map(|key| self.fib.installed(key))
            .map(FibChange::Delete)
            .collect();
        if deletes.is_empty() {
            return Ok(());
        }
        tracing::info!(
            routes = deletes.len(),
            "withdrawing routes whose next hop became unreachable"
        );
        let outcome = self
            .writer
            .apply(&deletes, self.tunnel_ifindex.unwrap_or(0))
            .await?;
        if outcome.incomplete {
            self.request_resync();
        }
        let failed: HashMap<usize, i32> = outcome
            .failures
            .iter()
            .map(|failure| (failure.index, failure.errno))
            .collect();
        for (index, change) in deletes.iter().enumerate() {
            if matches!(failed.get(&index), None | Some(&ESRCH)) {
                self.fib.remove_installed(&change.route().key());
            }
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}
