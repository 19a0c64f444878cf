//! Route, link and address notifications: what each one changes and what it calls for.

use super::*;

impl KernelTask {
    pub(super) fn on_event(&mut self, message: NetlinkMessage<RouteNetlinkMessage>) {
        let flags = message.header.flags;
        match message.payload {
            NetlinkPayload::Overrun(_) => {
                self.status.overruns += 1;
                tracing::warn!("netlink event socket overrun (ENOBUFS): full resynchronisation");
                self.request_resync();
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
                    self.request_resync();
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_route(&mut self, parsed: ParsedRoute, added: bool, replaced: bool) {
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

    pub(super) fn on_link(&mut self, link: ParsedLink, exists: bool) {
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
                self.request_resync();
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
                self.request_resync();
            } else if changed_state {
                self.need_full |= !self.failed.is_empty();
            }
        } else {
            self.links.remove(&link.index);
            if !self.ignored_interface(&link.name) {
                self.request_resync();
            }
        }
    }
}
