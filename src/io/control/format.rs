//! Human-readable output of `tern show` and `tern health` (the `--json` form is the response
//! itself). Pure functions of a response and the current time.

use std::fmt::Write as _;

use crate::fib::KernelRouteKind;
use crate::status::time::format_age;
use crate::status::{
    AddPathDirection, CapabilitySet, DaemonStatus, FibStatus, Liveness, PeerStatus, Readiness,
    RibSummary, RouteSource, RouteStatus, Timestamp,
};

use super::protocol::Response;

/// What `tern show ...` / `tern health ...` print: with `--json` the response's body as pretty
/// JSON (a list of peers, a status object, `{"readiness":"ready"}`..., or `{"error": {...}}`),
/// else the human form of [`format_response`].
pub fn render(response: &Response, json: bool, now: Timestamp) -> String {
    if json {
        let value = match response {
            Response::Error(e) => serde_json::json!({ "error": e }),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|mut v| v.get_mut("body").map(serde_json::Value::take))
                .unwrap_or(serde_json::Value::Null),
        };
        let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
        s.push('\n');
        s
    } else {
        format_response(response, now)
    }
}

/// The exit status for a response: 0 success (ready, live, data, done), 1 not ready / not live,
/// 2 an error response.
pub fn exit_status(response: &Response) -> u8 {
    match response {
        Response::Ready(Readiness::NotReady { .. }) | Response::Live(Liveness::NotLive { .. }) => 1,
        Response::Error(_) => 2,
        _ => 0,
    }
}

/// Renders any response for a terminal. `Error` responses render as `error: <message>`.
pub fn format_response(response: &Response, now: Timestamp) -> String {
    match response {
        Response::Peers(peers) if peers.len() == 1 => format_peer_detail(&peers[0], now),
        Response::Peers(peers) => format_peers(peers, now),
        Response::Routes(routes) => format_routes(routes),
        Response::Rib(rib) => format_rib(rib),
        Response::Fib(fib) => format_fib(fib, now),
        Response::Status(daemon) => format_status(daemon, now),
        Response::Ready(r) => format_readiness(r),
        Response::Live(l) => format_liveness(l),
        Response::Done { message } => format!("{message}\n"),
        Response::Error(e) => format!("error: {}\n", e.message),
    }
}

/// A left-aligned table with two spaces between columns.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn ago(t: Timestamp, now: Timestamp) -> String {
    format!("{} ago", format_age(now.since(t)))
}

/// The peer list: one line per peer, with the last error of every peer that has one.
pub fn format_peers(peers: &[PeerStatus], now: Timestamp) -> String {
    if peers.is_empty() {
        return "No peers configured.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            let state = if p.enabled {
                p.state.to_string()
            } else {
                format!("{} (disabled)", p.state)
            };
            vec![
                p.name.clone(),
                p.address.to_string(),
                p.port.to_string(),
                p.remote_as.to_string(),
                p.kind.calico_display().to_owned(),
                state,
                format_age(now.since(p.since)),
                format!(
                    "{}/{}/{}",
                    p.prefixes.received, p.prefixes.accepted, p.prefixes.advertised
                ),
                if p.session.is_none() {
                    "-".to_owned()
                } else if p.output.export_pending && p.output.backlog_prefixes == 0 {
                    "pending".to_owned()
                } else {
                    p.output.backlog_prefixes.to_string()
                },
                p.last_error.as_ref().map_or("-".to_owned(), |e| {
                    format!("{} ({})", e.kind.describe(), ago(e.at, now))
                }),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "ADDRESS",
            "PORT",
            "AS",
            "TYPE",
            "STATE",
            "SINCE",
            "RCV/ACC/ADV",
            "BACKLOG",
            "LAST ERROR",
        ],
        &rows,
    )
}

fn capability_lines(out: &mut String, caps: &CapabilitySet) {
    let fams: Vec<String> = caps.families.iter().map(|f| f.bird_name()).collect();
    let _ = writeln!(out, "      families:        {}", fams.join(" "));
    let mut flags = Vec::new();
    if caps.four_octet_as {
        flags.push("4-octet-AS");
    }
    if caps.route_refresh {
        flags.push("route-refresh");
    }
    if caps.enhanced_route_refresh {
        flags.push("enhanced-route-refresh");
    }
    if caps.extended_message {
        flags.push("extended-message");
    }
    let _ = writeln!(out, "      features:        {}", flags.join(" "));
    for a in &caps.add_path {
        let dir = match a.direction {
            AddPathDirection::None => continue,
            AddPathDirection::Receive => "receive",
            AddPathDirection::Send => "send",
            AddPathDirection::Both => "send+receive",
        };
        let _ = writeln!(out, "      ADD-PATH:        {} {dir}", a.family.bird_name());
    }
    if let Some(gr) = &caps.graceful_restart {
        let fams: Vec<String> = gr
            .families
            .iter()
            .map(|f| {
                format!(
                    "{}{}",
                    f.family.bird_name(),
                    if f.forwarding_preserved { "(F)" } else { "" }
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "      graceful restart: time {}s{}, families {}",
            gr.restart_time_secs,
            if gr.restarting { ", restarting" } else { "" },
            fams.join(" ")
        );
    }
}

/// One peer in detail: state, last error, negotiated capabilities, counters.
pub fn format_peer_detail(p: &PeerStatus, now: Timestamp) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", p.name, p.kind.calico_display());
    let _ = writeln!(
        out,
        "  neighbor:          {} port {} AS {}",
        p.address, p.port, p.remote_as
    );
    let _ = writeln!(out, "  local AS:          {}", p.local_as);
    let _ = writeln!(
        out,
        "  state:             {}{} since {} ({})",
        p.state,
        if p.enabled { "" } else { " (disabled)" },
        p.since.rfc3339(),
        ago(p.since, now)
    );
    let mut roles = Vec::new();
    if p.passive {
        roles.push("passive");
    }
    if p.route_reflector_client {
        roles.push("route-reflector client");
    }
    if p.peer_graceful_restart_active {
        roles.push("peer restarting (routes kept stale)");
    }
    if !roles.is_empty() {
        let _ = writeln!(out, "  notes:             {}", roles.join(", "));
    }
    match &p.last_error {
        Some(e) => {
            let _ = writeln!(
                out,
                "  last error:        {} at {} ({})",
                e.kind.describe(),
                e.at.rfc3339(),
                ago(e.at, now)
            );
        }
        None => out.push_str("  last error:        none\n"),
    }
    if let Some(s) = &p.session {
        let n = s.negotiated();
        let _ = writeln!(out, "  neighbor id:       {}", s.remote_router_id);
        let _ = writeln!(out, "  source address:    {}", s.local_address);
        let _ = writeln!(
            out,
            "  hold time:         {}s (keepalive {}s)",
            s.hold_time_secs, s.keepalive_secs
        );
        let fams: Vec<String> = n.families.iter().map(|f| f.bird_name()).collect();
        let _ = writeln!(out, "  negotiated:        families {}", fams.join(" "));
        let mut flags = Vec::new();
        if n.four_octet_as {
            flags.push("4-octet-AS".to_owned());
        }
        if n.route_refresh {
            flags.push("route-refresh".to_owned());
        }
        if n.enhanced_route_refresh {
            flags.push("enhanced-route-refresh".to_owned());
        }
        for a in &n.add_path {
            flags.push(format!(
                "ADD-PATH {} {}",
                a.family.bird_name(),
                match a.direction {
                    AddPathDirection::None => "none",
                    AddPathDirection::Receive => "receive",
                    AddPathDirection::Send => "send",
                    AddPathDirection::Both => "send+receive",
                }
            ));
        }
        if let Some(gr) = &n.peer_graceful_restart {
            flags.push(format!("graceful-restart {}s", gr.restart_time_secs));
        }
        let _ = writeln!(out, "                     {}", flags.join(", "));
        out.push_str("    local capabilities:\n");
        capability_lines(&mut out, &s.local_capabilities);
        out.push_str("    neighbor capabilities:\n");
        capability_lines(&mut out, &s.remote_capabilities);
    }
    let _ = writeln!(
        out,
        "  prefixes:          {} received, {} accepted, {} advertised",
        p.prefixes.received, p.prefixes.accepted, p.prefixes.advertised
    );
    if p.session.is_some() {
        let o = &p.output;
        let _ = writeln!(
            out,
            "  output:            {} prefixes written ({} bytes), backlog {} prefixes ({} bytes){}",
            o.prefixes_written,
            o.bytes_written,
            o.backlog_prefixes,
            o.backlog_bytes,
            if o.export_pending {
                ", more changes waiting in the RIB"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  all written:       {}",
            o.drained_at.map_or("not yet".to_owned(), |t| format!(
                "{} ({})",
                t.rfc3339(),
                ago(t, now)
            ))
        );
    }
    for (label, m) in [
        ("received", &p.messages_received),
        ("sent", &p.messages_sent),
    ] {
        let _ = writeln!(
            out,
            "  messages {label:<9} {} total: {} open, {} update, {} keepalive, {} notification, {} route-refresh",
            m.total(),
            m.open,
            m.update,
            m.keepalive,
            m.notification,
            m.route_refresh
        );
    }
    let _ = writeln!(out, "  flaps:             {}", p.flaps);
    out
}

/// Routes: one line per path, best path marked.
pub fn format_routes(routes: &[RouteStatus]) -> String {
    if routes.is_empty() {
        return "No routes.\n".to_owned();
    }
    let mut rows = Vec::new();
    for r in routes {
        for (i, path) in r.paths.iter().enumerate() {
            let hops: Vec<String> = path
                .next_hops
                .iter()
                .map(|h| match &h.interface {
                    Some(dev) => format!("{} dev {dev}", h.address),
                    None => h.address.to_string(),
                })
                .collect();
            let mut flags = Vec::new();
            if path.best {
                flags.push("best");
            }
            if path.multipath {
                flags.push("multipath");
            }
            if path.stale {
                flags.push("stale");
            }
            rows.push(vec![
                if i == 0 {
                    r.prefix.to_string()
                } else {
                    String::new()
                },
                if hops.is_empty() {
                    "-".to_owned()
                } else {
                    hops.join(", ")
                },
                match path.as_path_text() {
                    t if t.is_empty() => "-".to_owned(),
                    t => t,
                },
                path.origin.letter().to_string(),
                path.local_pref.map_or("-".to_owned(), |l| l.to_string()),
                match path.communities_text() {
                    t if t.is_empty() => "-".to_owned(),
                    t => t,
                },
                match &path.source {
                    RouteSource::Peer { name, .. } => name.clone(),
                    RouteSource::Local { reason } => format!("local ({reason})"),
                },
                flags.join(","),
            ]);
        }
    }
    table(
        &[
            "PREFIX",
            "NEXT HOPS",
            "AS PATH",
            "ORIGIN",
            "LOCPRF",
            "COMMUNITIES",
            "FROM",
            "FLAGS",
        ],
        &rows,
    )
}

/// RIB sizes.
pub fn format_rib(rib: &RibSummary) -> String {
    format!(
        "prefixes:        {}\npaths:           {}\nattribute sets:  {}\nstale paths:     {}\n",
        rib.prefixes, rib.paths, rib.attribute_sets, rib.stale_paths
    )
}

/// Kernel routes, counts by kind and the last error.
pub fn format_fib(fib: &FibStatus, now: Timestamp) -> String {
    let mut out = String::new();
    let counts: Vec<String> = fib
        .counts()
        .by_kind()
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let _ = writeln!(
        out,
        "kernel routes: {} ({})",
        fib.counts().total(),
        counts.join(", ")
    );
    if fib.installed.is_some() {
        // The kernel task's counters: what it wants there and what is not there now.
        let _ = writeln!(
            out,
            "desired:       {} ({} not installed)",
            fib.desired, fib.failing
        );
    }
    match fib.last_sync {
        Some(t) => {
            let _ = writeln!(out, "last in sync:  {} ({})", t.rfc3339(), ago(t, now));
        }
        None => out.push_str("last in sync:  never\n"),
    }
    let _ = writeln!(out, "errors:        {}", fib.errors_total);
    if let Some(e) = &fib.last_error {
        let _ = writeln!(out, "last error:    {} ({})", e.message, ago(e.at, now));
    }
    if !fib.routes.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = fib
            .routes
            .iter()
            .map(|r| {
                let what = match &r.kind {
                    KernelRouteKind::Blackhole => "blackhole".to_owned(),
                    KernelRouteKind::Unicast(hops) => {
                        let hops: Vec<String> = hops
                            .iter()
                            .map(|h| {
                                if h.via_tunnel {
                                    format!(
                                        "via {} dev {} onlink",
                                        h.gateway,
                                        fib.tunnel_device.as_deref().unwrap_or("tunl0")
                                    )
                                } else {
                                    format!("via {}", h.gateway)
                                }
                            })
                            .collect();
                        hops.join(" ")
                    }
                };
                vec![r.prefix.to_string(), what, r.metric.to_string()]
            })
            .collect();
        out.push_str(&table(&["PREFIX", "ROUTE", "METRIC"], &rows));
    }
    out
}

/// The daemon.
pub fn format_status(d: &DaemonStatus, now: Timestamp) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "tern {}", d.version);
    let _ = writeln!(out, "router id:        {}", d.router_id);
    let _ = writeln!(out, "local AS:         {}", d.local_as);
    if let Some(h) = &d.hostname {
        let _ = writeln!(out, "hostname:         {h}");
    }
    let _ = writeln!(
        out,
        "started:          {} ({})",
        d.started_at.rfc3339(),
        ago(d.started_at, now)
    );
    let _ = writeln!(
        out,
        "reconfigured:     {} ({})",
        d.last_reconfigured.rfc3339(),
        ago(d.last_reconfigured, now)
    );
    match &d.graceful_restart {
        Some(gr) => {
            let _ = writeln!(
                out,
                "graceful restart: in progress, waiting for {} peers, until {}",
                gr.waiting_for_peers,
                gr.deadline.rfc3339()
            );
        }
        None => out.push_str("graceful restart: not in progress\n"),
    }
    for warning in &d.warnings {
        let _ = writeln!(out, "warning:          {warning}");
    }
    out
}

/// `ready` or `not ready: <reason>`.
pub fn format_readiness(r: &Readiness) -> String {
    match r {
        Readiness::Ready => "ready\n".to_owned(),
        Readiness::NotReady { reason } => format!("not ready: {reason}\n"),
    }
}

/// `live` or `not live: <reason>`.
pub fn format_liveness(l: &Liveness) -> String {
    match l {
        Liveness::Live => "live\n".to_owned(),
        Liveness::NotLive { reason } => format!("not live: {reason}\n"),
    }
}
