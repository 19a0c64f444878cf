//! The whole receive path as the daemon runs it, with an arbitrary negotiated context (internal
//! or external peer, 4-octet AS or not, extended messages, ADD-PATH per family, families): bytes
//! → `Session::handle` (framing, decoding, RFC 7606, AFI/SAFI disable) → `daemon::inbound::
//! apply_update` (own-address next hops, Adj-RIB-In, import policy, best path, max-prefix) →
//! `Rib::take_fib_changes` → `fib::kernel_route_for` → `FibTable` desired set and diff, plus the
//! export to a second peer (`Rib::pull`, `OutboundUpdate::encode`).
//!
//! Checked: nothing panics; the kernel never gets a route via a loopback address or an address
//! of the node; after the diff is applied the kernel equals the desired set; every export
//! encodes; the RIB's received count matches its Adj-RIB-In.
#![no_main]

#[path = "common.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use arbitrary::Arbitrary;
use bgp_proto::Context;
use libfuzzer_sys::fuzz_target;
use tern::daemon::inbound::{MaxPrefix, MaxPrefixAction, apply_update};
use tern::fib::{
    BestRoute, Encapsulation, FibChange, FibTable, Formed, KernelRouteKind, NodeKernelContext,
    PoolKernelRule, RouteOrigin, kernel_route_for,
};
use tern::rib::{PeerId, PeerSession, PolicyContext, Rib, RibConfig};
use tern::session::{Action, ConnId, Direction, Input as SessionInput, Instant, Session};

const PEER: PeerId = PeerId(1);
const MONITOR: PeerId = PeerId(2);

#[derive(Debug, Arbitrary)]
enum Chunk {
    Raw(Vec<u8>),
    /// An UPDATE with a valid header around this body.
    Update(Vec<u8>),
    /// The session drops (routes withdrawn, or kept stale under graceful restart).
    Drop { graceful: bool },
}

#[derive(Debug, Arbitrary)]
struct Input {
    peer: common::FuzzPeer,
    /// Max-prefix limit (0 = none).
    limit: u8,
    chunks: Vec<Chunk>,
}

fn own() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(common::LOCAL_ADDRESS),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "fe80::1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ]
}

fn pools() -> Vec<PoolKernelRule> {
    let pool = |cidr: &str, encapsulation| PoolKernelRule {
        cidr: cidr.parse().unwrap_or_else(|_| "10.0.0.0/8".parse().unwrap()),
        encapsulation,
        programmed_by_tern: true,
    };
    vec![
        pool("10.244.0.0/16", Encapsulation::IpIpAlways),
        pool("10.245.0.0/16", Encapsulation::IpIpCrossSubnet),
        pool("10.246.0.0/16", Encapsulation::Vxlan),
        pool("fd00::/48", Encapsulation::None),
    ]
}

struct Path {
    session: Session,
    rib: Rib,
    fib: FibTable,
    now: Instant,
    up: bool,
    over: [bool; 2],
    limit: Option<MaxPrefix>,
    send: Context,
    peer_open: Vec<u8>,
    internal: bool,
}

impl Path {
    fn handle(&mut self, input: SessionInput<'_>) {
        let actions = self.session.handle(input, self.now);
        for action in actions {
            match action {
                Action::Established { negotiated, .. } => {
                    self.send = negotiated.codec.send;
                    let mut s = PeerSession::new(
                        IpAddr::V4(common::PEER_ADDRESS),
                        IpAddr::V4(common::LOCAL_ADDRESS),
                        negotiated.peer_router_id,
                        common::LOCAL_AS,
                        negotiated.peer_as,
                    );
                    s.add_path_receive = !negotiated.codec.receive.add_path.is_empty();
                    s.add_path_send = !negotiated.codec.send.add_path.is_empty();
                    s.graceful_restart = negotiated.graceful_restart_negotiated();
                    self.rib.peer_up(PEER, s);
                    self.up = true;
                }
                Action::Update(update) => {
                    let _ = apply_update(
                        &mut self.rib,
                        PEER,
                        *update,
                        &own(),
                        self.limit,
                        &mut self.over,
                    );
                }
                Action::FamilyDisabled(family) => {
                    self.rib
                        .remove_peer_family(PEER, family == bgp_proto::Family::IPV6_UNICAST);
                }
                Action::EndOfRib(_) => {}
                Action::Down(down) => {
                    if self.up {
                        self.rib.peer_down(
                            PEER,
                            std::time::Instant::now(),
                            down.retain_routes_for,
                        );
                    }
                    self.up = false;
                    self.over = [false; 2];
                }
                _ => {}
            }
        }
    }

    fn establish(&mut self) {
        let steps = common::establish(&self.peer_open);
        for step in steps {
            match step {
                None => self.handle(SessionInput::Start),
                Some(None) => self.handle(SessionInput::Connected {
                    conn: ConnId(1),
                    direction: Direction::Inbound,
                }),
                Some(Some(bytes)) => self.handle(SessionInput::Received {
                    conn: ConnId(1),
                    bytes: &bytes,
                }),
            }
        }
    }

    /// RIB → FIB as the supervisor and the kernel task do it, then the kernel "writes".
    fn sync_fib(&mut self) {
        let pools = pools();
        let subnets = vec!["10.0.0.0/24".parse().unwrap()];
        let node = NodeKernelContext {
            pools: &pools,
            node_subnets: &subnets,
        };
        let changes = self.rib.take_fib_changes();
        let mut scope = Vec::new();
        for change in changes {
            scope.push(change.prefix);
            let route = change.route.and_then(|r| {
                kernel_route_for(
                    &BestRoute {
                        prefix: change.prefix,
                        next_hops: &r.next_hops,
                        local_pref: r.local_pref,
                        origin: RouteOrigin::Peer {
                            service_range: false,
                        },
                    },
                    &node,
                )
            });
            match route {
                Some(route) => {
                    if let KernelRouteKind::Unicast(hops) = &route.kind {
                        for hop in hops {
                            assert!(
                                !hop.gateway.is_loopback() && !own().contains(&hop.gateway),
                                "kernel route {} via {} (loopback or own address)",
                                route.prefix,
                                hop.gateway
                            );
                        }
                    }
                    self.fib.set_desired(route);
                }
                None => {
                    self.fib.remove_desired(&change.prefix);
                }
            }
        }
        let diff = self.fib.diff(&scope, |_| Formed::AsDesired, |_| false);
        for change in diff.changes {
            match change {
                FibChange::Add(r) | FibChange::Replace(r) => self.fib.insert_installed(r),
                FibChange::Delete(r) => {
                    self.fib.remove_installed(&r.key());
                }
            }
        }
        let again = self.fib.diff(&scope, |_| Formed::AsDesired, |_| false);
        assert!(again.changes.is_empty(), "kernel differs after the diff was applied");
    }

    fn export(&mut self) {
        for _ in 0..4 {
            let out = self.rib.pull(MONITOR, std::time::Instant::now(), 64);
            for update in &out.updates {
                if let Err(e) = update.encode(&Context::default()) {
                    panic!("export does not encode: {e}");
                }
            }
            if !out.more {
                break;
            }
        }
    }

    fn check_counts(&self) {
        let held = self.rib.adj_rib_in(PEER).fold([0u32; 2], |mut c, (p, _)| {
            c[usize::from(p.addr().is_ipv6())] += 1;
            c
        });
        assert_eq!(self.rib.received_counts(PEER), held, "received counts");
        let _ = self.internal;
    }
}

fuzz_target!(|input: Input| {
    let config = input.peer.config();
    let peer_open = input.peer.peer_open_bytes(&config);
    let mut rib = Rib::new(
        RibConfig {
            router_id: common::LOCAL_ADDRESS,
            local_as: common::LOCAL_AS,
            cluster_id: None,
            min_advertisement_interval: Duration::ZERO,
        },
        PolicyContext::default(),
    );
    rib.set_fib_tracking(true);
    rib.peer_up(
        MONITOR,
        PeerSession::new(
            "10.0.0.3".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V4(common::LOCAL_ADDRESS),
            Ipv4Addr::new(10, 0, 0, 3),
            common::LOCAL_AS,
            65003,
        ),
    );
    let mut path = Path {
        session: Session::new(config),
        rib,
        fib: FibTable::new(),
        now: Instant::ZERO,
        up: false,
        over: [false; 2],
        limit: (input.limit != 0).then_some(MaxPrefix {
            limit: u32::from(input.limit),
            action: MaxPrefixAction::Warn,
            restart_after: Duration::from_secs(1),
        }),
        send: Context::default(),
        peer_open,
        internal: input.peer.internal,
    };
    path.establish();
    for chunk in input.chunks.iter().take(64) {
        path.now = path.now + Duration::from_millis(10);
        match chunk {
            Chunk::Raw(bytes) => path.handle(SessionInput::Received {
                conn: ConnId(1),
                bytes,
            }),
            Chunk::Update(body) => {
                let framed = common::frame(2, body);
                path.handle(SessionInput::Received {
                    conn: ConnId(1),
                    bytes: &framed,
                });
            }
            Chunk::Drop { graceful } => {
                if *graceful {
                    path.handle(SessionInput::Closed { conn: ConnId(1) });
                } else {
                    path.handle(SessionInput::Stop(&tern::session::StopReason::ConfigChange));
                }
                path.rib.advance(std::time::Instant::now() + Duration::from_secs(3600));
                path.session = Session::new(path.session.config().clone());
                path.establish();
            }
        }
        path.sync_fib();
        path.export();
        if path.up {
            path.check_counts();
        }
    }
    let _ = path.send;
});
