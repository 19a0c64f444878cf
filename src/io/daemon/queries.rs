//! Query answering: `show routes` from the Loc-RIB.

use ipnet::IpNet;

use crate::daemon as glue;
use crate::io::control::RouteRequest;
use crate::rib::loc_rib::LOCAL_PEER;
use crate::status;

use super::now_ts;
use super::supervisor::Supervisor;

impl Supervisor {
    /// `show routes`: the Loc-RIB with every path.
    pub(super) fn answer_routes(&self, request: RouteRequest) {
        let since = now_ts();
        let mut out = Vec::new();
        let prefixes: Vec<IpNet> = match (request.query.prefix, request.query.address) {
            (Some(p), _) => vec![p],
            // Longest-prefix lookup: the longest prefix holding the address that has paths.
            (None, Some(address)) => {
                let max = if address.is_ipv4() { 32 } else { 128 };
                (0..=max)
                    .rev()
                    .filter_map(|len| IpNet::new(address, len).ok().map(|n| n.trunc()))
                    .find(|p| !self.rib.paths(p).is_empty())
                    .into_iter()
                    .collect()
            }
            (None, None) => {
                // Ordered by prefix, as `show route` users expect.
                let mut all: Vec<IpNet> = self.rib.loc_rib().map(|(p, _)| p).collect();
                all.sort_unstable();
                all
            }
        };
        for prefix in prefixes {
            let selected = self.rib.selected(&prefix).len();
            let paths: Vec<status::PathStatus> = self
                .rib
                .paths(&prefix)
                .iter()
                .enumerate()
                .filter_map(|(i, path)| {
                    let attrs = path.accepted.as_ref()?;
                    let source = if path.peer == LOCAL_PEER {
                        status::RouteSource::Local {
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
                        since,
                    );
                    for hop in &mut status.next_hops {
                        hop.interface = glue::resolving_interface(&self.interfaces, hop.address);
                    }
                    Some(status)
                })
                .collect();
            if !paths.is_empty() {
                out.push(status::RouteStatus { prefix, paths });
            }
        }
        let _ = request.reply.send(out);
    }
}
