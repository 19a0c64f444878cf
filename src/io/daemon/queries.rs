//! Query answering: `show routes` from the Loc-RIB, in slices between event batches.
//!
//! A request first selects its prefixes in one pass over the table (a range and a limit keep
//! only the first `limit` in prefix order, in a bounded heap: no copy of the whole table for a
//! page). The answer is then built [`ROUTE_SLICE`] prefixes at a time, one slice per pass of
//! the event loop, so a dump of a large table never holds up sessions; a request whose client
//! has gone (its reply channel closed) is dropped at the next slice.

use std::collections::BinaryHeap;

use ipnet::IpNet;
use tracing::debug;

use crate::daemon as glue;
use crate::io::control::{RouteQuery, RouteRequest};
use crate::rib::loc_rib::LOCAL_PEER;
use crate::status::{self, RouteStatus};

use super::supervisor::Supervisor;

/// Prefixes whose paths are built per pass of the event loop.
pub(super) const ROUTE_SLICE: usize = 1024;

/// A `show routes` answer being built.
#[derive(Debug)]
pub(super) struct RouteAnswer {
    request: RouteRequest,
    /// The selected prefixes, in order.
    prefixes: Vec<IpNet>,
    /// The next one to build.
    next: usize,
    out: Vec<RouteStatus>,
}

impl Supervisor {
    /// `show routes`: selects the prefixes, then answers in slices (see the module doc).
    pub(super) fn answer_routes(&mut self, request: RouteRequest) {
        let prefixes = self.select_prefixes(&request.query);
        self.route_answers.push_back(RouteAnswer {
            request,
            prefixes,
            next: 0,
            out: Vec::new(),
        });
        self.continue_answers();
    }

    /// Builds the next slice of the oldest answer; sends it once complete.
    pub(super) fn continue_answers(&mut self) {
        let Some(mut answer) = self.route_answers.pop_front() else {
            return;
        };
        if answer.request.reply.is_closed() {
            debug!(
                built = answer.out.len(),
                "show routes: the client has gone, request dropped"
            );
            return;
        }
        let end = (answer.next + ROUTE_SLICE).min(answer.prefixes.len());
        for i in answer.next..end {
            let prefix = answer.prefixes[i];
            if let Some(route) = self.route_status(prefix) {
                answer.out.push(route);
            }
        }
        answer.next = end;
        if answer.next < answer.prefixes.len() {
            self.route_answers.push_front(answer);
        } else {
            let _ = answer.request.reply.send(answer.out);
        }
    }

    /// The prefixes a query selects, in prefix order.
    fn select_prefixes(&self, query: &RouteQuery) -> Vec<IpNet> {
        if let Some(prefix) = query.prefix {
            return vec![prefix];
        }
        if let Some(address) = query.address {
            // Longest-prefix lookup: the longest prefix holding the address that has paths.
            let max = if address.is_ipv4() { 32 } else { 128 };
            return (0..=max)
                .rev()
                .filter_map(|len| IpNet::new(address, len).ok().map(|n| n.trunc()))
                .find(|p| !self.rib.paths(p).is_empty())
                .into_iter()
                .collect();
        }
        let selected = self
            .rib
            .loc_rib()
            .map(|(p, _)| p)
            .filter(|p| query.matches(p));
        let mut out: Vec<IpNet> = match query.limit {
            // The first `limit` in order: a max-heap of that size, the largest evicted.
            Some(limit) => {
                let mut heap = BinaryHeap::with_capacity(limit.min(ROUTE_SLICE * 16) + 1);
                for prefix in selected {
                    if heap.len() < limit {
                        heap.push(prefix);
                    } else if heap.peek().is_some_and(|top| prefix < *top) {
                        heap.pop();
                        heap.push(prefix);
                    }
                }
                heap.into_vec()
            }
            None => selected.collect(),
        };
        // Ordered by prefix, as `show route` users expect.
        out.sort_unstable();
        out
    }

    /// One prefix with every accepted path, best first; `None` when it has none (now).
    fn route_status(&self, prefix: IpNet) -> Option<RouteStatus> {
        let selected = self.rib.selected(&prefix).len();
        let paths: Vec<status::PathStatus> =
            self.rib
                .paths(&prefix)
                .iter()
                .enumerate()
                .filter_map(|(i, path)| {
                    let attrs = path.accepted.as_ref()?;
                    let source = if path.peer == LOCAL_PEER {
                        status::RouteSource::Local {
                            interface: self
                                .rib
                                .local_route(&prefix)
                                .and_then(|l| l.interface())
                                .map(str::to_owned),
                            reason: if self.learned.contains(&prefix) {
                                "kernel".into()
                            } else if self.plan.originated.iter().any(|o| {
                                o.prefix == prefix && o.kind == crate::plan::OriginKind::Block
                            }) {
                                "ipam-block".into()
                            } else {
                                "service".into()
                            },
                        }
                    } else {
                        let address = self.addresses.get(&path.peer).copied()?;
                        status::RouteSource::Peer {
                            name: self
                                .peers
                                .get(&address)
                                .map(|r| r.name.clone())
                                .unwrap_or_default(),
                            address,
                        }
                    };
                    let mut status = glue::path_status(
                        attrs,
                        source,
                        i == 0 && selected > 0,
                        i < selected,
                        path.stale,
                        // When the path arrived (the RIB's clock counts seconds from the
                        // supervisor's start), not the time of the query.
                        self.rib_epoch
                            .1
                            .plus(std::time::Duration::from_secs(path.since.secs().into())),
                    );
                    for hop in &mut status.next_hops {
                        hop.interface = glue::resolving_interface(&self.interfaces, hop.address);
                    }
                    Some(status)
                })
                .collect();
        (!paths.is_empty()).then_some(RouteStatus { prefix, paths })
    }
}
