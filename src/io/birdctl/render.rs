//! BIRD's reply lines for tern's status: pure functions of snapshots and the current time.
//!
//! Reply framing follows BIRD's `cli_printf`: every line starts with a four-digit code followed by
//! `-` when more lines follow or a space on the last line; a line continuing the previous line's
//! code starts with a single space instead.
//!
//! Formats follow what Calico's tools parse (calico-behaviour.md §5), which is the output of the
//! BIRD 1.6 fork calico-node ships where it differs from BIRD 2: the `show protocols` header is
//! lower case (`name proto table state since info`: calicoctl and calico-node compare it
//! exactly), and `show route` prints `via <gw> on <iface>` on the route's own line (calico-node's
//! route status populator matches that with one regular expression). Everything else matches
//! BIRD 2.0.12.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use super::command::{ProtocolSelection, RouteOptions, pattern_matches};
use crate::status::{
    AddPathDirection, CapabilitySet, DaemonStatus, FibStatus, PathStatus, PeerErrorKind,
    PeerStatus, RouteSource, RouteStatus, SessionState, Timestamp,
};

/// Which address family a BIRD socket serves (`bird.ctl` IPv4, `bird6.ctl` IPv6), as Calico runs
/// one BIRD per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketFamily {
    /// IPv4 peers and routes.
    V4,
    /// IPv6 peers and routes.
    V6,
}

impl SocketFamily {
    /// Whether an address belongs to this family.
    pub fn contains(self, addr: IpAddr) -> bool {
        matches!(
            (self, addr),
            (SocketFamily::V4, IpAddr::V4(_)) | (SocketFamily::V6, IpAddr::V6(_))
        )
    }

    fn table(self) -> &'static str {
        match self {
            SocketFamily::V4 => "master4",
            SocketFamily::V6 => "master6",
        }
    }

    fn channel(self) -> &'static str {
        match self {
            SocketFamily::V4 => "ipv4",
            SocketFamily::V6 => "ipv6",
        }
    }
}

/// Builds a reply with BIRD's line framing.
#[derive(Debug, Default)]
pub struct Reply {
    out: String,
    last: Option<u16>,
}

impl Reply {
    /// A new, empty reply.
    pub fn new() -> Self {
        Reply::default()
    }

    /// A line that more lines follow (BIRD: a negative code).
    pub fn more(&mut self, code: u16, text: &str) {
        if self.last == Some(code) {
            self.out.push(' ');
        } else {
            let _ = write!(self.out, "{code:04}-");
        }
        self.push_text(text);
        self.last = Some(code);
    }

    /// The final line of the reply.
    pub fn last(&mut self, code: u16, text: &str) {
        let _ = write!(self.out, "{code:04} ");
        self.push_text(text);
        self.last = None;
    }

    fn push_text(&mut self, text: &str) {
        // One line per call, whatever the text holds: a newline would forge a reply line.
        self.out.extend(
            text.chars()
                .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
        );
        self.out.push('\n');
    }

    /// The reply text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// The greeting sent on connect: `0001 BIRD <version> ready.`
pub fn hello(version: &str) -> String {
    format!("0001 BIRD {version} ready.\n")
}

/// BIRD 2's `iso short ms` time: `HH:MM:SS.mmm` within 20 hours, else `YYYY-MM-DD`. One word, as
/// Calico's column parsing needs.
fn bird_since(t: Timestamp, now: Timestamp) -> String {
    if now.since(t) < Duration::from_secs(20 * 3600) {
        format!("{}.{:03}", t.time_of_day(), t.0 % 1000)
    } else {
        t.date()
    }
}

fn bird_datetime(t: Timestamp) -> String {
    format!("{}.{:03}", t.date_time(), t.0 % 1000)
}

/// `show status`.
pub fn show_status(d: &DaemonStatus, version: &str, now: Timestamp) -> String {
    let mut r = Reply::new();
    r.more(1000, &format!("BIRD {version}"));
    // Before the first plan there is no router id (the socket is bound only after it).
    if let Some(id) = d.router_id {
        r.more(1011, &format!("Router ID is {id}"));
    }
    if let Some(h) = &d.hostname {
        r.more(1011, &format!("Hostname is {h}"));
    }
    r.more(
        1011,
        &format!("Current server time is {}", bird_datetime(now)),
    );
    r.more(
        1011,
        &format!("Last reboot on {}", bird_datetime(d.started_at)),
    );
    if let Some(at) = d.last_reconfigured {
        r.more(
            1011,
            &format!("Last reconfiguration on {}", bird_datetime(at)),
        );
    }
    if let Some(gr) = &d.graceful_restart {
        // nest/proto.c graceful_restart_show_status(); calico-node looks for the 0024 code.
        let left = gr.deadline.since(now);
        r.more(24, "Graceful restart recovery in progress");
        r.more(
            24,
            &format!("  Waiting for {} channels to recover", gr.waiting_for_peers),
        );
        r.more(
            24,
            &format!(
                "  Wait timer is {}.{:03}/{}",
                left.as_secs(),
                left.subsec_millis(),
                gr.wait_secs
            ),
        );
    }
    r.last(13, "Daemon is up and running");
    r.finish()
}

/// A row of `show protocols`: name, proto, table, state, since, info.
struct ProtoRow {
    name: String,
    proto: &'static str,
    table: String,
    state: &'static str,
    since: String,
    info: String,
    peer: Option<usize>,
}

/// BGP state as BIRD's `bgp_state_dsc` names it.
fn bgp_state(p: &PeerStatus) -> &'static str {
    if !p.enabled {
        "Down"
    } else if p.passive && matches!(p.state, SessionState::Idle | SessionState::Active) {
        "Passive"
    } else {
        p.state.as_str()
    }
}

/// The last error as BIRD prints it: a class prefix and the message.
fn bgp_error(p: &PeerStatus) -> String {
    match &p.last_error {
        None => String::new(),
        Some(e) => match &e.kind {
            PeerErrorKind::NotificationReceived { notification: n } => match &n.shutdown_message {
                Some(m) => format!("Received: {} \"{m}\"", n.meaning),
                None => format!("Received: {}", n.meaning),
            },
            PeerErrorKind::NotificationSent { notification: n } => {
                format!("BGP Error: {}", n.meaning)
            }
            PeerErrorKind::Socket { message } => format!("Socket: {message}"),
            PeerErrorKind::Other { message } => format!("Error: {message}"),
        },
    }
}

fn rows(
    d: &DaemonStatus,
    peers: &[PeerStatus],
    fib: &FibStatus,
    family: SocketFamily,
    now: Timestamp,
) -> Vec<ProtoRow> {
    let start = bird_since(d.started_at, now);
    let mut rows = vec![
        // Stand-ins for BIRD's device and kernel protocols: tern's link tracking and kernel
        // programming. They also keep the list non-empty with no peers (calico-node treats
        // `8003 No protocols match` as an error).
        ProtoRow {
            name: "device1".into(),
            proto: "Device",
            table: "---".into(),
            state: "up",
            since: start.clone(),
            info: String::new(),
            peer: None,
        },
        ProtoRow {
            name: "kernel1".into(),
            proto: "Kernel",
            table: family.table().into(),
            state: "up",
            since: bird_since(fib.last_sync.unwrap_or(d.started_at), now),
            info: String::new(),
            peer: None,
        },
    ];
    for (i, p) in peers.iter().enumerate() {
        if !family.contains(p.address) {
            continue;
        }
        let (state, info) = if !p.enabled {
            ("down", String::new())
        } else {
            let state = if p.state == SessionState::Established {
                "up"
            } else {
                "start"
            };
            (state, format!("{:<14}{}", bgp_state(p), bgp_error(p)))
        };
        rows.push(ProtoRow {
            name: p.name.clone(),
            proto: "BGP",
            table: "---".into(),
            state,
            since: bird_since(p.since, now),
            info,
            peer: Some(i),
        });
    }
    rows
}

/// `show protocols [all] [name | "pattern"]`.
pub fn show_protocols(
    d: &DaemonStatus,
    peers: &[PeerStatus],
    fib: &FibStatus,
    family: SocketFamily,
    all: bool,
    which: &ProtocolSelection,
    now: Timestamp,
) -> String {
    let rows = rows(d, peers, fib, family, now);
    let selected: Vec<&ProtoRow> = rows
        .iter()
        .filter(|r| match which {
            ProtocolSelection::All => true,
            ProtocolSelection::Name(n) => r.name == *n,
            ProtocolSelection::Pattern(p) => pattern_matches(p, &r.name),
        })
        .collect();
    let mut r = Reply::new();
    if selected.is_empty() {
        match which {
            // BIRD parses a bare name as a symbol; an unknown one is a syntax error.
            ProtocolSelection::Name(_) => r.last(
                9001,
                "syntax error, unexpected CF_SYM_UNDEFINED, expecting END or CF_SYM_KNOWN or TEXT",
            ),
            _ => r.last(8003, "No protocols match"),
        }
        return r.finish();
    }
    r.more(
        2002,
        &format!(
            "{:<10} {:<10} {:<10} {:<6} {:<12}  {}",
            "name", "proto", "table", "state", "since", "info"
        ),
    );
    for row in selected {
        r.more(
            1002,
            &format!(
                "{:<10} {:<10} {:<10} {:<6} {:<12}  {}",
                row.name, row.proto, row.table, row.state, row.since, row.info
            ),
        );
        if all {
            match row.peer {
                Some(i) => bgp_details(&mut r, &peers[i], family),
                None => r.more(1006, ""),
            }
        }
    }
    r.last(0, "");
    r.finish()
}

fn show_afis(r: &mut Reply, label: &str, fams: impl Iterator<Item = String>) {
    let mut line = label.to_owned();
    for f in fams {
        line.push(' ');
        line.push_str(&f);
    }
    r.more(1006, &line);
}

/// proto/bgp/bgp.c `bgp_show_capabilities()`.
fn capabilities(r: &mut Reply, caps: &CapabilitySet) {
    if !caps.families.is_empty() {
        r.more(1006, "      Multiprotocol");
        show_afis(
            r,
            "        AF announced:",
            caps.families.iter().map(|f| f.bird_name()),
        );
    }
    if caps.route_refresh {
        r.more(1006, "      Route refresh");
    }
    if caps.extended_message {
        r.more(1006, "      Extended message");
    }
    if let Some(gr) = &caps.graceful_restart {
        r.more(1006, "      Graceful restart");
        if !gr.families.is_empty() {
            r.more(
                1006,
                &format!("        Restart time: {}", gr.restart_time_secs),
            );
            if gr.restarting {
                r.more(1006, "        Restart recovery");
            }
            show_afis(
                r,
                "        AF supported:",
                gr.families.iter().map(|f| f.family.bird_name()),
            );
            show_afis(
                r,
                "        AF preserved:",
                gr.families
                    .iter()
                    .filter(|f| f.forwarding_preserved)
                    .map(|f| f.family.bird_name()),
            );
        }
    }
    if caps.four_octet_as {
        r.more(1006, "      4-octet AS numbers");
    }
    let add_path: Vec<_> = caps
        .add_path
        .iter()
        .filter(|a| a.direction != AddPathDirection::None)
        .collect();
    if !add_path.is_empty() {
        r.more(1006, "      ADD-PATH");
        show_afis(
            r,
            "        RX:",
            add_path
                .iter()
                .filter(|a| a.direction.may_receive())
                .map(|a| a.family.bird_name()),
        );
        show_afis(
            r,
            "        TX:",
            add_path
                .iter()
                .filter(|a| a.direction.may_send())
                .map(|a| a.family.bird_name()),
        );
    }
    if caps.enhanced_route_refresh {
        r.more(1006, "      Enhanced refresh");
    }
}

/// proto/bgp/bgp.c `bgp_show_proto_info()` and nest/proto.c `channel_show_info()`.
fn bgp_details(r: &mut Reply, p: &PeerStatus, family: SocketFamily) {
    // BIRD prints a configured description first. It also keeps "BGP state:" off the first
    // 1006 line: calico-node's populator reads that line without stripping the reply code.
    r.more(
        1006,
        &format!("  Description:    {}", p.kind.calico_display()),
    );
    r.more(1006, &format!("  BGP state:          {}", bgp_state(p)));
    r.more(1006, &format!("    Neighbor address: {}", p.address));
    if p.port != 179 {
        r.more(1006, &format!("    Neighbor port:    {}", p.port));
    }
    r.more(1006, &format!("    Neighbor AS:      {}", p.remote_as));
    r.more(1006, &format!("    Local AS:         {}", p.local_as));
    if p.peer_graceful_restart_active {
        r.more(1006, "    Neighbor graceful restart active");
    }
    if let (Some(s), SessionState::Established) = (&p.session, p.state) {
        let n = s.negotiated();
        r.more(
            1006,
            &format!("    Neighbor ID:      {}", s.remote_router_id),
        );
        r.more(1006, "    Local capabilities");
        capabilities(r, &s.local_capabilities);
        r.more(1006, "    Neighbor capabilities");
        capabilities(r, &s.remote_capabilities);
        r.more(
            1006,
            &format!(
                "    Session:          {} multihop{}{}",
                if p.remote_as == p.local_as {
                    "internal"
                } else {
                    "external"
                },
                if p.route_reflector_client {
                    " route-reflector"
                } else {
                    ""
                },
                if n.four_octet_as { " AS4" } else { "" }
            ),
        );
        r.more(1006, &format!("    Source address:   {}", s.local_address));
        r.more(
            1006,
            &format!("    Hold timer:       -/{}", s.hold_time_secs),
        );
        r.more(
            1006,
            &format!("    Keepalive timer:  -/{}", s.keepalive_secs),
        );
    }
    if p.enabled {
        let err = bgp_error(p);
        if !err.is_empty() {
            r.more(1006, &format!("    Last error:       {err}"));
        }
    }
    let up = p.state == SessionState::Established && p.enabled;
    r.more(1006, &format!("  Channel {}", family.channel()));
    r.more(
        1006,
        &format!("    State:          {}", if up { "UP" } else { "DOWN" }),
    );
    r.more(1006, &format!("    Table:          {}", family.table()));
    r.more(1006, "    Preference:     100");
    r.more(1006, "    Input filter:   (tern import policy)");
    r.more(1006, "    Output filter:  (tern export policy)");
    if up {
        r.more(
            1006,
            &format!(
                "    Routes:         {} imported, {} filtered, {} exported, {} preferred",
                p.prefixes.accepted,
                p.prefixes.received.saturating_sub(p.prefixes.accepted),
                p.prefixes.advertised,
                p.prefixes.accepted
            ),
        );
        if let Some(s) = &p.session {
            r.more(1006, &format!("    BGP Next hop:   {}", s.local_address));
        }
    }
    r.more(1006, "");
}

fn route_selected(route: &RouteStatus, family: SocketFamily, opts: &RouteOptions) -> bool {
    family.contains(route.prefix.addr()) && opts.prefix.is_none_or(|p| p == route.prefix)
}

fn path_selected(path: &PathStatus, opts: &RouteOptions) -> bool {
    match (&opts.protocol, &path.source) {
        (None, _) => true,
        (Some(want), RouteSource::Peer { name, .. }) => want == name,
        (Some(want), RouteSource::Local { reason, .. }) => *want == local_protocol(reason),
    }
}

/// The BIRD protocol a local path stands for: `kernel1` for routes learned from the kernel's
/// table (BIRD's kernel protocol with `learn`), `static1` for what tern originates.
fn local_protocol(reason: &str) -> &'static str {
    if reason == "kernel" {
        "kernel1"
    } else {
        "static1"
    }
}

/// `show route [all] [<prefix> | for <addr>] [protocol <p>] [count]`.
pub fn show_route(
    routes: &[RouteStatus],
    family: SocketFamily,
    opts: &RouteOptions,
    now: Timestamp,
) -> String {
    let selected = routes.iter().filter(|r| route_selected(r, family, opts));
    let chosen: Vec<&RouteStatus> = match &opts.for_net {
        // The longest prefix that contains the address or prefix.
        Some(net) => selected
            .filter(|r| r.prefix.contains(net))
            .max_by_key(|r| r.prefix.prefix_len())
            .into_iter()
            .collect(),
        None => selected.collect(),
    };
    let mut r = Reply::new();
    if opts.count {
        let nets = chosen
            .iter()
            .filter(|rt| rt.paths.iter().any(|p| path_selected(p, opts)))
            .count();
        let paths: usize = chosen
            .iter()
            .map(|rt| rt.paths.iter().filter(|p| path_selected(p, opts)).count())
            .sum();
        r.last(
            14,
            &format!(
                "{paths} of {paths} routes for {nets} networks in table {}",
                family.table()
            ),
        );
        return r.finish();
    }
    let mut any = false;
    for route in chosen {
        let mut first = true;
        for path in route.paths.iter().filter(|p| path_selected(p, opts)) {
            any = true;
            route_lines(&mut r, route, path, first, opts.all, now);
            first = false;
        }
    }
    if !any && (opts.prefix.is_some() || opts.for_net.is_some()) {
        r.last(8001, "Network not found");
        return r.finish();
    }
    r.last(0, "");
    r.finish()
}

/// One path: a line per next hop, `<net> via <gw> on <iface> [<proto> <time> from <peer>] *
/// (<pref>/0) [AS<n><origin>]`, the network printed on the first line of the network only.
fn route_lines(
    r: &mut Reply,
    route: &RouteStatus,
    path: &PathStatus,
    first: bool,
    all: bool,
    now: Timestamp,
) {
    let net = if first {
        route.prefix.to_string()
    } else {
        String::new()
    };
    let time = bird_since(path.since, now);
    let primary = if path.best { " *" } else { "" };
    match &path.source {
        // Learned from the kernel's table, as BIRD's kernel protocol shows what it learns: the
        // route's device, preference 10.
        RouteSource::Local { reason, interface } if reason == "kernel" => {
            let dev = interface.as_deref().unwrap_or("-");
            r.more(
                1007,
                &format!("{net:<18} dev {dev} [kernel1 {time}]{primary} (10)"),
            );
        }
        RouteSource::Local { .. } => {
            r.more(
                1007,
                &format!("{net:<18} blackhole [static1 {time}]{primary} (200)"),
            );
        }
        RouteSource::Peer { name, address } => {
            let stale = if path.stale { "s" } else { "" };
            let info = format!(
                " (100{stale}/0) [{}{}]",
                path.origin_as()
                    .map(|a| format!("AS{a}"))
                    .unwrap_or_default(),
                path.origin.letter()
            );
            if path.next_hops.is_empty() {
                r.more(
                    1007,
                    &format!("{net:<18} unreachable [{name} {time} from {address}]{primary}{info}"),
                );
            }
            for (i, hop) in path.next_hops.iter().enumerate() {
                let from = if hop.address == *address {
                    String::new()
                } else {
                    format!(" from {address}")
                };
                let shown = if i == 0 { net.as_str() } else { "" };
                r.more(
                    1007,
                    &format!(
                        "{shown:<18} via {} on {} [{name} {time}{from}]{primary}{info}",
                        hop.address,
                        hop.interface.as_deref().unwrap_or("-")
                    ),
                );
            }
        }
    }
    if all {
        route_attributes(r, path);
    }
}

fn route_attributes(r: &mut Reply, path: &PathStatus) {
    match &path.source {
        RouteSource::Local { reason, .. } if reason == "kernel" => {
            r.more(1008, "\tType: inherit univ")
        }
        RouteSource::Local { .. } => r.more(1008, "\tType: static univ"),
        RouteSource::Peer { .. } => {
            r.more(1008, "\tType: BGP univ");
            let origin = match path.origin.letter() {
                'i' => "IGP",
                'e' => "EGP",
                _ => "Incomplete",
            };
            r.more(1012, &format!("\tBGP.origin: {origin}"));
            r.more(1012, &format!("\tBGP.as_path: {}", path.as_path_text()));
            if let Some(h) = path.next_hops.first() {
                r.more(1012, &format!("\tBGP.next_hop: {}", h.address));
            }
            if let Some(med) = path.med {
                r.more(1012, &format!("\tBGP.med: {med}"));
            }
            if let Some(lp) = path.local_pref {
                r.more(1012, &format!("\tBGP.local_pref: {lp}"));
            }
            if !path.communities.is_empty() {
                let c: Vec<String> = path
                    .communities
                    .iter()
                    .map(|c| format!("({},{})", c >> 16, c & 0xffff))
                    .collect();
                r.more(1012, &format!("\tBGP.community: {}", c.join(" ")));
            }
        }
    }
}
