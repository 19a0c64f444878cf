//! Next hops the kernel does not reach directly: resolved through the kernel's own table.

use super::resync::{KERNEL_WAIT, next_within};
use super::*;

impl KernelTask {
    /// The form a next-hop set must be written in now: plain gateways the kernel does not reach
    /// directly are replaced by the kernel's next hop for them; tunnel hops need the tunnel
    /// device.
    pub(super) fn form(&self, hops: &[NextHop]) -> Formed {
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

    /// Looks the gateways up in the kernel's table (`ip route get`); returns whether any
    /// resolution changed.
    pub(super) async fn resolve(&mut self, gateways: &[IpAddr]) -> Result<bool, WriterClosed> {
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
            let mut timed_out = false;
            loop {
                let message = match next_within(&mut responses, KERNEL_WAIT, "a route lookup").await
                {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(error) => {
                        timed_out = true;
                        tracing::error!(%gateway, %error, "route lookup unanswered; retried with the next resynchronisation");
                        self.record_error(format!("lookup of {gateway}: {error}"));
                        break;
                    }
                };
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
            if timed_out {
                // Keep what was known; a resynchronisation re-resolves every gateway.
                self.request_resync();
                continue;
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
