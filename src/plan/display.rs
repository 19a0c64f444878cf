//! Human-readable rendering of a [`Plan`] (`tern plan` without `--json`). Passwords show as
//! references only.

use std::fmt::{self, Display, Formatter};

use super::{Plan, TtlMode};
use crate::model::NextHopMode;

impl Display for Plan {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "node        {}", self.node)?;
        writeln!(f, "router id   {}", self.router_id)?;
        writeln!(f, "local AS    {}", self.local_as)?;
        if let Some(a) = self.ipv4_address {
            writeln!(f, "IPv4        {a}")?;
        }
        if let Some(a) = self.ipv6_address {
            writeln!(f, "IPv6        {a}")?;
        }
        if let Some(c) = self.route_reflector_cluster_id {
            writeln!(f, "RR cluster  {c}")?;
        }
        let bind = if self.listen.addresses.is_empty() {
            "all addresses".to_string()
        } else {
            self.listen
                .addresses
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(f, "listen      port {} on {bind}", self.listen.port)?;

        writeln!(f, "\npeerings ({}):", self.peerings.len())?;
        for p in &self.peerings {
            write!(
                f,
                "  {:<32} {:>6} {} port {} AS {} (local AS {})",
                p.name,
                format!("{:?}", p.kind).to_lowercase(),
                p.address,
                p.port,
                p.peer_as,
                p.local_as
            )?;
            write!(f, " {}", if p.passive { "passive" } else { "active" })?;
            if let Some(s) = p.source_address {
                write!(f, " source {s}")?;
            }
            match p.ttl {
                TtlMode::Security { hops } => write!(f, " ttl-security {hops}")?,
                TtlMode::Multihop { ttl } => write!(f, " multihop {ttl}")?,
            }
            if p.route_reflector_client {
                write!(
                    f,
                    " rr-client cluster {}",
                    p.cluster_id.map(|c| c.to_string()).unwrap_or_default()
                )?;
            }
            match p.next_hop {
                NextHopMode::SelfMode => write!(f, " next-hop self")?,
                NextHopMode::Keep => write!(f, " next-hop keep")?,
                NextHopMode::Auto => {}
            }
            if let Some(n) = p.allow_local_as {
                write!(f, " allow-local-as {n}")?;
            }
            if let Some(t) = p.graceful_restart_time {
                write!(f, " gr-time {t}s")?;
            }
            if let Some(t) = p.keepalive_time {
                write!(f, " keepalive {t}s")?;
            }
            if let Some(pw) = &p.password {
                write!(f, " password {pw}")?;
            }
            if !p.import_filters.is_empty() {
                write!(f, " import-filters {}", p.import_filters.join(","))?;
            }
            if !p.export_filters.is_empty() {
                write!(f, " export-filters {}", p.export_filters.join(","))?;
            }
            if let Some(gw) = p.reachable_by {
                write!(f, " reachable-by {gw}")?;
            }
            writeln!(f)?;
        }

        writeln!(f, "\noriginated routes ({}):", self.originated.len())?;
        for r in &self.originated {
            let how = if r.blackhole {
                "blackhole + advertise"
            } else {
                "advertise only"
            };
            writeln!(f, "  {:<24} {:?} ({how})", r.prefix.to_string(), r.kind)?;
        }
        if !self.static_routes.is_empty() {
            writeln!(f, "\nstatic routes:")?;
            for r in &self.static_routes {
                writeln!(f, "  {} via {}", r.prefix, r.via)?;
            }
        }
        writeln!(f, "\npool kernel rules ({}):", self.pool_kernel_rules.len())?;
        for r in &self.pool_kernel_rules {
            let owner = if r.programmed_by_tern {
                "tern"
            } else {
                "Felix"
            };
            write!(
                f,
                "  {:<24} {:?} programmed by {owner}",
                r.cidr.to_string(),
                r.encapsulation
            )?;
            match self.implicit_pools.iter().find(|p| p.cidr == r.cidr) {
                Some(p) => writeln!(f, " (implicit: {}, {})", p.name, p.source)?,
                None => writeln!(f)?,
            }
        }
        let pol = &self.policy;
        writeln!(f, "\npolicy:")?;
        let list = |v: &[ipnet::IpNet]| {
            v.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "  disableBGPExport pools  {}",
            list(
                &pol.pools
                    .iter()
                    .filter(|p| p.disable_bgp_export)
                    .map(|p| p.cidr)
                    .collect::<Vec<_>>()
            )
        )?;
        writeln!(
            f,
            "  service cluster IPs     {}",
            list(&pol.service_cluster_ips)
        )?;
        writeln!(
            f,
            "  service external IPs    {}",
            list(&pol.service_external_ips)
        )?;
        writeln!(
            f,
            "  service LB IPs          {}",
            list(&pol.service_load_balancer_ips)
        )?;
        writeln!(
            f,
            "  normal priority         v4 {} v6 {}",
            pol.ipv4_normal_route_priority, pol.ipv6_normal_route_priority
        )?;
        writeln!(
            f,
            "  ignored interfaces      {}",
            pol.ignored_interfaces.join(", ")
        )?;
        writeln!(
            f,
            "  iBGP reject interfaces  {}",
            pol.ibgp_reject_interfaces.join(", ")
        )?;
        writeln!(f, "  own subnets             {}", list(&pol.own_subnets))?;
        for pc in &pol.prefix_advertisements {
            let c: Vec<String> = pc.communities.iter().map(|c| c.to_string()).collect();
            writeln!(f, "  communities {} -> {}", pc.cidr, c.join(" "))?;
        }
        for (name, filter) in &self.filters {
            writeln!(
                f,
                "  filter {name}: importV4 {} exportV4 {} importV6 {} exportV6 {} rules",
                filter.import_v4.len(),
                filter.export_v4.len(),
                filter.import_v6.len(),
                filter.export_v6.len()
            )?;
        }
        if !self.warnings.is_empty() {
            writeln!(f, "\nwarnings:")?;
            for w in &self.warnings {
                writeln!(f, "  - {w}")?;
            }
        }
        Ok(())
    }
}
