//! Learning routes other agents installed (input for export).

use super::*;

impl KernelTask {
    pub(super) fn learnable(&self, parsed: &ParsedRoute) -> Option<LearnedRoute> {
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

    pub(super) fn ignored_interface(&self, name: &str) -> bool {
        const CALICO_IGNORED: [&str; 2] = ["cali*", "kube-ipvs*"];
        CALICO_IGNORED
            .iter()
            .copied()
            .chain(self.config.ignored_interfaces.iter().map(String::as_str))
            .any(|pattern| interface_matches(pattern, name))
    }

    pub(super) fn learn(&mut self, parsed: &ParsedRoute, added: bool) {
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
}

/// Whether an interface name matches a pattern; a trailing `*` matches any suffix.
pub(super) fn interface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(stem) => name.starts_with(stem),
        None => name == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::interface_matches;

    #[test]
    pub(super) fn interface_patterns_match_prefix_globs() {
        assert!(interface_matches("cali*", "cali12345"));
        assert!(interface_matches("kube-ipvs*", "kube-ipvs0"));
        assert!(!interface_matches("cali*", "eth0"));
        assert!(interface_matches("eth1", "eth1"));
        assert!(!interface_matches("eth1", "eth10"));
    }
}
