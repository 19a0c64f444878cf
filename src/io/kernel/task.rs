//! The kernel task: state, event handling and reconciliation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
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
    Command, DesiredChange, DesiredUpdate, KernelConfig, KernelError, KernelStatus, LearnedRoute,
    LearnedRouteEvent,
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
    failed: BTreeMap<IpNet, String>,
    stale: StaleRoutes,
    status: KernelStatus,
    tunnel_missing_logged: bool,

    need_resync: bool,
    need_full: bool,
    need_reresolve: bool,
    dirty: HashSet<IpNet>,
    /// Prefixes whose desired route changed ([`DesiredChange`]), written at the next pass
    /// (duplicates allowed).
    changed: Vec<IpNet>,
}

/// Sets the socket's receive buffer (`SO_RCVBUFFORCE` when permitted, else `SO_RCVBUF`, which
/// the kernel caps at `net.core.rmem_max`) and returns the size the kernel reports.
fn force_receive_buffer(fd: i32, bytes: usize) -> usize {
    let value = i32::try_from(bytes).unwrap_or(i32::MAX);
    let size = std::mem::size_of::<i32>() as libc::socklen_t;
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt with a valid fd, a pointer to an i32 and its size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&value as *const i32).cast(),
                size,
            )
        };
        if rc == 0 {
            break;
        }
    }
    let mut actual: i32 = 0;
    let mut len = size;
    // SAFETY: getsockopt with a valid fd, a pointer to an i32 and its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut actual as *mut i32).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        usize::try_from(actual).unwrap_or(0)
    } else {
        0
    }
}

/// Attaches a classic BPF filter to the event socket that drops `RTM_NEWROUTE` notifications of
/// tern's own protocol in the kernel: each of tern's writes would otherwise come back as a
/// notification to copy, wake up for and parse (it halves the install rate of large tables).
/// Deletions of tern's routes and every route of other protocols still arrive. The cost: a route
/// of tern's protocol written by another process is only seen at the next resynchronisation.
fn drop_own_route_notifications(fd: i32, protocol: u8) -> std::io::Result<()> {
    const RTM_NEWROUTE: u32 = 24;
    // nlmsghdr.nlmsg_type is a host-order u16 at offset 4; rtmsg.rtm_protocol is at 16 + 5.
    let (type_low, type_high) = if cfg!(target_endian = "little") {
        (4, 5)
    } else {
        (5, 4)
    };
    let load_byte = |offset: u32| libc::sock_filter {
        code: 0x30,
        jt: 0,
        jf: 0,
        k: offset,
    }; // ld b [k]
    let jump_unless = |value: u32, skip: u8| libc::sock_filter {
        code: 0x15,
        jt: 0,
        jf: skip,
        k: value,
    }; // jeq
    let ret = |value: u32| libc::sock_filter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: value,
    };
    let mut program = [
        load_byte(type_low),
        jump_unless(RTM_NEWROUTE, 5),
        load_byte(type_high),
        jump_unless(0, 3),
        load_byte(16 + 5),
        jump_unless(u32::from(protocol), 1),
        ret(0),
        ret(u32::MAX),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: a valid fd and a filter program that outlives the call (the kernel copies it).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
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
            failed: BTreeMap::new(),
            status,
            tunnel_missing_logged: false,
            need_resync: false,
            need_full: false,
            need_reresolve: false,
            dirty: HashSet::new(),
            changed: Vec::new(),
        };
        task.resync()
            .await
            .map_err(|error| KernelError::Dump(error.to_string()))?;
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
                if !(self.config.program && (self.need_full || !self.changed.is_empty())) {
                    break;
                }
            }
            let deadline = self.stale.deadline();
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

    // ---- events ----------------------------------------------------------------------------

    fn on_event(&mut self, message: NetlinkMessage<RouteNetlinkMessage>) {
        let flags = message.header.flags;
        match message.payload {
            NetlinkPayload::Overrun(_) => {
                self.status.overruns += 1;
                tracing::warn!("netlink event socket overrun (ENOBUFS): full resynchronisation");
                self.need_resync = true;
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => {
                if let Some(parsed) = parse_route(&route) {
                    self.on_route(parsed, true, flags & NLM_F_REPLACE != 0);
                }
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(route)) => {
                if let Some(parsed) = parse_route(&route) {
                    self.on_route(parsed, false, false);
                }
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                if let Some(link) = parse_link(&link) {
                    self.on_link(link, true);
                }
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                if let Some(link) = parse_link(&link) {
                    self.on_link(link, false);
                }
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(_)) => {
                // A new address may make a gateway reachable.
                self.need_full |= !self.failed.is_empty();
                self.need_reresolve |= !self.recursive.is_empty();
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(address)) => {
                // The kernel drops IPv4 routes through a removed address without notifying.
                let ignored = self
                    .links
                    .get(&address.header.index)
                    .is_some_and(|link| self.ignored_interface(&link.name));
                if !ignored {
                    self.need_resync = true;
                }
            }
            _ => {}
        }
    }

    fn on_route(&mut self, parsed: ParsedRoute, added: bool, replaced: bool) {
        if parsed.table != MAIN_TABLE {
            return;
        }
        let key = RouteKey {
            prefix: parsed.prefix,
            metric: parsed.metric,
        };
        if parsed.protocol == self.config.protocol {
            // Our own writes come back as notifications that change nothing; only a change made
            // by someone else makes the prefix dirty.
            let changed = if added {
                match parsed.to_kernel_route(self.tunnel_ifindex) {
                    Some(route) if !self.fib.is_installed(&route) => {
                        self.fib.insert_installed(route);
                        true
                    }
                    _ => false,
                }
            } else {
                self.fib.remove_installed(&key)
            };
            if changed {
                self.dirty.insert(parsed.prefix);
            }
            return;
        }
        if added && replaced && self.fib.has_installed(&key) {
            // Another agent replaced our route (same prefix and metric).
            self.fib.remove_installed(&key);
            self.dirty.insert(parsed.prefix);
        }
        self.learn(&parsed, added);
        // Workload routes (`cali*`, ...) come and go with pods and never carry tern's next hops.
        let workload = parsed
            .first_oif()
            .and_then(|index| self.links.get(&index))
            .is_some_and(|link| self.ignored_interface(&link.name));
        if workload {
            return;
        }
        if !self.recursive.is_empty() {
            self.need_reresolve = true;
        }
        if added && !self.failed.is_empty() {
            self.need_full = true;
        }
    }

    fn on_link(&mut self, link: ParsedLink, exists: bool) {
        let before = self.links.get(&link.index).cloned();
        if link.name == self.config.tunnel_device {
            let index = exists.then_some(link.index);
            if index != self.tunnel_ifindex {
                match index {
                    Some(index) => {
                        tracing::info!(device = %link.name, index, "tunnel device appeared")
                    }
                    None => tracing::error!(device = %link.name, "tunnel device removed"),
                }
                self.tunnel_ifindex = index;
                self.tunnel_missing_logged = false;
                self.need_resync = true;
            }
        }
        if exists {
            let changed_state = before.as_ref().is_none_or(|before| before.up != link.up);
            // Workload interfaces (`cali*`, ...) come and go with pods; tern's routes never use
            // them, so their changes need no resynchronisation.
            let relevant = !self.ignored_interface(&link.name);
            self.links.insert(link.index, link);
            if changed_state && before.is_some() && relevant {
                // The kernel drops (or revives) routes over a link without notifying.
                self.need_resync = true;
            } else if changed_state {
                self.need_full |= !self.failed.is_empty();
            }
        } else {
            self.links.remove(&link.index);
            if !self.ignored_interface(&link.name) {
                self.need_resync = true;
            }
        }
    }

    // ---- learning --------------------------------------------------------------------------

    fn learnable(&self, parsed: &ParsedRoute) -> Option<LearnedRoute> {
        if parsed.table != MAIN_TABLE
            || parsed.kind != RouteType::Unicast
            || parsed.protocol == self.config.protocol
        {
            return None;
        }
        if !parsed.installed_by_agent() && !parsed.is_interface_route() {
            return None;
        }
        if let IpNet::V6(v6) = parsed.prefix
            && v6.addr().segments()[0] & 0xffc0 == 0xfe80
        {
            return None;
        }
        let interface = parsed
            .first_oif()
            .and_then(|index| self.links.get(&index))
            .map(|link| link.name.clone());
        if let Some(name) = &interface
            && self.ignored_interface(name)
        {
            return None;
        }
        Some(LearnedRoute {
            prefix: parsed.prefix,
            interface,
            protocol: parsed.protocol,
            metric: parsed.metric,
        })
    }

    fn ignored_interface(&self, name: &str) -> bool {
        const CALICO_IGNORED: [&str; 2] = ["cali*", "kube-ipvs*"];
        CALICO_IGNORED
            .iter()
            .copied()
            .chain(self.config.ignored_interfaces.iter().map(String::as_str))
            .any(|pattern| interface_matches(pattern, name))
    }

    fn learn(&mut self, parsed: &ParsedRoute, added: bool) {
        let key = RouteKey {
            prefix: parsed.prefix,
            metric: parsed.metric,
        };
        if added {
            if let Some(route) = self.learnable(parsed)
                && self.learned.get(&key) != Some(&route)
            {
                self.learned.insert(key, route.clone());
                let _ = self.learned_tx.send(LearnedRouteEvent::Added(route));
            }
        } else if let Some(route) = self.learned.remove(&key) {
            let _ = self.learned_tx.send(LearnedRouteEvent::Removed(route));
        }
    }

    // ---- state -----------------------------------------------------------------------------

    fn publish(&mut self) {
        self.status.applied_generation = self.applied_generation;
        self.status.desired = self.fib.desired_len();
        self.status.installed = self.fib.installed_counts().clone();
        self.status.stale = self.stale.stale_count();
        self.status.stale_swept = self.stale.is_swept();
        self.status.failed = self.failed.clone();
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

    // ---- dumps -----------------------------------------------------------------------------

    /// Starts a dump; its messages are read as a stream (a table of 500k routes is never held
    /// as parsed messages all at once).
    fn dump(
        &self,
        request: NetlinkMessage<RouteNetlinkMessage>,
    ) -> Result<impl futures::Stream<Item = NetlinkMessage<RouteNetlinkMessage>> + use<>, String>
    {
        self.writer
            .handle()
            .request(request, SocketAddr::new(0, 0))
            .map_err(|e| e.to_string())
    }

    /// Reads links and routes from the kernel and rebuilds the view of tern's routes and the
    /// learned routes.
    async fn resync(&mut self) -> Result<(), String> {
        self.status.resyncs += 1;
        let mut links = self.dump(dump_links_message())?;
        self.links.clear();
        while let Some(message) = links.next().await {
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    if let Some(link) = parse_link(&link) {
                        self.links.insert(link.index, link);
                    }
                }
                NetlinkPayload::Error(error) if error.code.is_some() => {
                    return Err(error.to_string());
                }
                _ => {}
            }
        }
        let tunnel = self
            .links
            .values()
            .find(|link| link.name == self.config.tunnel_device)
            .map(|link| link.index);
        if tunnel != self.tunnel_ifindex {
            self.tunnel_missing_logged = false;
        }
        self.tunnel_ifindex = tunnel;
        let mut routes = self.dump(dump_routes_message())?;
        self.fib.clear_installed();
        let mut learned = HashMap::new();
        while let Some(message) = routes.next().await {
            let route = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => route,
                NetlinkPayload::Error(error) if error.code.is_some() => {
                    return Err(error.to_string());
                }
                _ => continue,
            };
            let Some(parsed) = parse_route(&route) else {
                continue;
            };
            if parsed.table != MAIN_TABLE {
                continue;
            }
            if parsed.protocol == self.config.protocol {
                if let Some(route) = parsed.to_kernel_route(self.tunnel_ifindex) {
                    self.fib.insert_installed(route);
                }
            } else if let Some(route) = self.learnable(&parsed) {
                learned.insert(
                    RouteKey {
                        prefix: parsed.prefix,
                        metric: parsed.metric,
                    },
                    route,
                );
            }
        }
        for (key, route) in &self.learned {
            if !learned.contains_key(key) {
                let _ = self
                    .learned_tx
                    .send(LearnedRouteEvent::Removed(route.clone()));
            }
        }
        for (key, route) in &learned {
            if self.learned.get(key) != Some(route) {
                let _ = self
                    .learned_tx
                    .send(LearnedRouteEvent::Added(route.clone()));
            }
        }
        self.learned = learned;
        Ok(())
    }

    // ---- reconciliation --------------------------------------------------------------------

    async fn process_pending(&mut self) -> Result<(), WriterClosed> {
        if self.need_resync {
            self.need_resync = false;
            if let Err(error) = self.resync().await {
                tracing::error!(%error, "netlink dump failed; retrying on the next event");
                self.need_resync = true;
                return Ok(());
            }
            self.need_full = true;
            self.need_reresolve |= !self.recursive.is_empty();
        }
        if !self.config.program {
            // Read-only: nothing is written, so every desired generation counts as applied.
            self.need_full = false;
            self.need_reresolve = false;
            self.dirty.clear();
            self.changed.clear();
            self.applied_generation = self.generation;
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

    /// The form a next-hop set must be written in now: plain gateways the kernel does not reach
    /// directly are replaced by the kernel's next hop for them; tunnel hops need the tunnel
    /// device.
    fn form(&self, hops: &[NextHop]) -> Formed {
        if self.tunnel_ifindex.is_none() && hops.iter().any(|hop| hop.via_tunnel) {
            return Formed::Unavailable;
        }
        let resolved = |hop: &NextHop| {
            if hop.via_tunnel {
                None
            } else {
                self.recursive.get(&hop.gateway).copied().flatten()
            }
        };
        if self.recursive.is_empty() || !hops.iter().any(|hop| resolved(hop).is_some()) {
            return Formed::AsDesired;
        }
        Formed::Rewritten(
            hops.iter()
                .map(|hop| NextHop {
                    gateway: resolved(hop).unwrap_or(hop.gateway),
                    via_tunnel: hop.via_tunnel,
                })
                .collect(),
        )
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
                self.failed.clear();
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
            if !self.failed.is_empty() {
                for prefix in prefixes {
                    self.failed.remove(prefix);
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
                self.failed.extend(
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
            self.need_resync |= outcome.incomplete;
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
                        self.failed.insert(route.prefix, error.to_string());
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
        self.need_resync |= outcome.incomplete;
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

    /// Looks the gateways up in the kernel's table (`ip route get`); returns whether any
    /// resolution changed.
    async fn resolve(&mut self, gateways: &[IpAddr]) -> Result<bool, WriterClosed> {
        let mut changed = false;
        let lookups: Vec<_> = gateways
            .iter()
            .map(|&gateway| {
                let responses = self
                    .writer
                    .handle()
                    .request(lookup_message(gateway), SocketAddr::new(0, 0));
                (gateway, responses)
            })
            .collect();
        for (gateway, responses) in lookups {
            let mut responses = responses.map_err(|_| WriterClosed)?;
            let mut via = None;
            while let Some(message) = responses.next().await {
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) =
                    message.payload
                    && let Some(parsed) = parse_route(&route)
                {
                    via = parsed
                        .hops
                        .iter()
                        .find_map(|hop| hop.gateway)
                        .filter(|via| *via != gateway);
                }
            }
            let old = self.recursive.insert(gateway, via);
            if old != Some(via) {
                changed = true;
                match via {
                    Some(via) => {
                        tracing::info!(%gateway, %via, "gateway not directly reachable: resolved through the kernel's table")
                    }
                    None => {
                        tracing::info!(%gateway, "gateway has no resolving route (or is direct)")
                    }
                }
            }
        }
        Ok(changed)
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}

/// Whether an interface name matches a pattern; a trailing `*` matches any suffix.
fn interface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(stem) => name.starts_with(stem),
        None => name == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::interface_matches;

    #[test]
    fn interface_patterns_match_prefix_globs() {
        assert!(interface_matches("cali*", "cali12345"));
        assert!(interface_matches("kube-ipvs*", "kube-ipvs0"));
        assert!(!interface_matches("cali*", "eth0"));
        assert!(interface_matches("eth1", "eth1"));
        assert!(!interface_matches("eth1", "eth10"));
    }
}
