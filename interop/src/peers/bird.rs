//! BIRD 2: config writer (plain and Calico-style sessions), launcher and `birdc` queries.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::{Family, START_TIMEOUT};
use crate::artifacts::Artifacts;
use crate::netns::{Netns, run_host};
use crate::process::Process;
use crate::wait::wait_until;

/// A static route BIRD originates, with optional attribute statements
/// (`bgp_community.add((65001,1));`).
#[derive(Debug, Clone)]
pub struct BirdRoute {
    /// The prefix.
    pub prefix: String,
    /// BIRD filter statements applied to the route (may be empty).
    pub attributes: Vec<String>,
}

/// A group of static routes in one `protocol static` (disabling it withdraws them all).
#[derive(Debug, Clone)]
pub struct BirdStatic {
    /// Protocol name.
    pub name: String,
    /// Family of its channel.
    pub family: Family,
    /// Its routes (blackholes).
    pub routes: Vec<BirdRoute>,
}

/// One `protocol bgp`.
#[derive(Debug, Clone)]
pub struct BirdPeer {
    /// Protocol name (Calico uses `Mesh_10_0_0_2`, `Global_...`, `Node_...`).
    pub name: String,
    /// Source address of the session.
    pub local_address: String,
    /// Local AS of this session.
    pub local_as: u32,
    /// Neighbor address.
    pub neighbor_address: String,
    /// Neighbor AS.
    pub neighbor_as: u32,
    /// Channels (families) of the session.
    pub families: Vec<Family>,
    /// Session options the way Calico's `bird.cfg` template sets them: `multihop`,
    /// `ttl security off`, `graceful restart`, `add paths on`, `gateway recursive`,
    /// connect delay 2 s / retry 5 s, error wait 5-30 s, hold 240 s / keepalive 80 s.
    pub calico_style: bool,
    /// Passive session (Calico makes the node with the greater IP string passive).
    pub passive: bool,
    /// Extra lines inside the protocol block (`long lived graceful restart on;`, ...).
    pub extra: Vec<String>,
    /// Extra lines inside each channel block.
    pub channel_extra: Vec<String>,
}

impl BirdPeer {
    /// A plain session with import all, export of this node's static routes.
    pub fn new(
        name: &str,
        local_address: &str,
        local_as: u32,
        neighbor_address: &str,
        neighbor_as: u32,
        families: &[Family],
    ) -> BirdPeer {
        BirdPeer {
            name: name.to_owned(),
            local_address: local_address.to_owned(),
            local_as,
            neighbor_address: neighbor_address.to_owned(),
            neighbor_as,
            families: families.to_vec(),
            calico_style: false,
            passive: false,
            extra: Vec::new(),
            channel_extra: Vec::new(),
        }
    }

    /// A node-to-node mesh session written the way Calico's `bird.cfg` template writes it:
    /// named `Mesh_<peer ip>`, iBGP in `asn`, Calico options, and passive when the peer's IP
    /// *as a string* sorts after this node's (`"10.0.0.10" < "10.0.0.9"`): the peer then
    /// connects to us.
    pub fn calico_mesh(node_ip: &str, peer_ip: &str, asn: u32, families: &[Family]) -> BirdPeer {
        let mut peer = BirdPeer::new(
            &calico_protocol_name("Mesh", peer_ip, None),
            node_ip,
            asn,
            peer_ip,
            asn,
            families,
        )
        .calico();
        peer.passive = peer_ip > node_ip;
        peer
    }

    /// The same session with Calico's template options.
    pub fn calico(mut self) -> BirdPeer {
        self.calico_style = true;
        self
    }
}

/// Calico's BIRD protocol name for a peer: `<kind>_<ip>[_port_<n>]` with the dots or colons
/// of the IP replaced by `_` (`Mesh_10_0_0_2`, `Global_fd00__1_port_1790`); `kind` is `Mesh`,
/// `Global` or `Node`. calico-node's status tooling matches these names.
pub fn calico_protocol_name(kind: &str, ip: &str, port: Option<u16>) -> String {
    let mut name = format!("{kind}_{}", ip.replace(['.', ':'], "_"));
    if let Some(port) = port {
        name.push_str(&format!("_port_{port}"));
    }
    name
}

/// A whole BIRD configuration.
#[derive(Debug, Clone)]
pub struct BirdConfig {
    /// Router id.
    pub router_id: String,
    /// Static route groups originated (and exported to every peer).
    pub statics: Vec<BirdStatic>,
    /// BGP sessions.
    pub peers: Vec<BirdPeer>,
    /// Install BGP routes and the static (own, blackhole) routes into the kernel (protocol
    /// `bird`, number 12), as Calico does for its blocks.
    pub kernel: bool,
}

impl BirdConfig {
    /// An empty configuration with kernel programming on.
    pub fn new(router_id: &str) -> BirdConfig {
        BirdConfig {
            router_id: router_id.to_owned(),
            statics: Vec::new(),
            peers: Vec::new(),
            kernel: true,
        }
    }

    /// Adds a static group of plain blackhole routes.
    pub fn with_static(mut self, name: &str, prefixes: &[&str]) -> BirdConfig {
        let family = Family::of(prefixes.first().copied().unwrap_or("0.0.0.0/0"));
        self.statics.push(BirdStatic {
            name: name.to_owned(),
            family,
            routes: prefixes
                .iter()
                .map(|p| BirdRoute {
                    prefix: (*p).to_owned(),
                    attributes: Vec::new(),
                })
                .collect(),
        });
        self
    }

    /// Adds a session.
    pub fn with_peer(mut self, peer: BirdPeer) -> BirdConfig {
        self.peers.push(peer);
        self
    }

    /// Renders `bird.conf`.
    pub fn render(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "# written by the tern interop harness");
        let _ = writeln!(c, "router id {};", self.router_id);
        let _ = writeln!(c, "log stderr all;");
        let _ = writeln!(c, "protocol device {{ scan time 2; }}");
        // Directly connected networks, so that recursive next hops (multihop) resolve.
        let _ = writeln!(c, "protocol direct {{ ipv4; ipv6; interface \"*\"; }}");
        if self.kernel {
            for family in ["ipv4", "ipv6"] {
                let _ = writeln!(
                    c,
                    "protocol kernel kernel_{family} {{ {family} {{ import none; \
                     export filter {{ if source ~ [RTS_BGP, RTS_STATIC] then accept; reject; }}; }}; \
                     merge paths on; graceful restart on; }}"
                );
            }
        }
        let own: Vec<String> = self
            .statics
            .iter()
            .map(|s| format!("proto = \"{}\"", s.name))
            .collect();
        let own = if own.is_empty() {
            "false".to_owned()
        } else {
            own.join(" || ")
        };
        let _ = writeln!(c, "filter tern_export {{ if {own} then accept; reject; }}");
        for group in &self.statics {
            let _ = writeln!(c, "protocol static {} {{", group.name);
            let _ = writeln!(c, "  {};", group.family.short());
            for route in &group.routes {
                if route.attributes.is_empty() {
                    let _ = writeln!(c, "  route {} blackhole;", route.prefix);
                } else {
                    let _ = writeln!(
                        c,
                        "  route {} blackhole {{ {} }};",
                        route.prefix,
                        route.attributes.join(" ")
                    );
                }
            }
            let _ = writeln!(c, "}}");
        }
        for peer in &self.peers {
            let _ = writeln!(c, "protocol bgp {} {{", peer.name);
            let _ = writeln!(
                c,
                "  local {} as {};\n  neighbor {} as {};",
                peer.local_address, peer.local_as, peer.neighbor_address, peer.neighbor_as
            );
            if peer.passive {
                let _ = writeln!(c, "  passive on;");
            }
            if peer.calico_style {
                let _ = writeln!(
                    c,
                    "  multihop;\n  ttl security off;\n  graceful restart;\n  \
                     connect delay time 2;\n  connect retry time 5;\n  error wait time 5,30;\n  \
                     hold time 240;\n  keepalive time 80;"
                );
            }
            for line in &peer.extra {
                let _ = writeln!(c, "  {line}");
            }
            for family in &peer.families {
                let _ = write!(
                    c,
                    "  {} {{ import all; export filter tern_export; ",
                    family.short()
                );
                if peer.calico_style {
                    let _ = write!(c, "add paths on; gateway recursive; ");
                }
                for line in &peer.channel_extra {
                    let _ = write!(c, "{line} ");
                }
                let _ = writeln!(c, "}};");
            }
            let _ = writeln!(c, "}}");
        }
        c
    }
}

/// A running BIRD with its control socket.
#[derive(Debug)]
pub struct Bird {
    /// The daemon (`bird -f`).
    pub process: Process,
    ctl: PathBuf,
    config: PathBuf,
}

impl Bird {
    /// Writes the config as `<label>-bird.conf` and starts `bird -c conf -s ctl -P pid -f` in
    /// `netns`; returns once `birdc show status` answers.
    pub fn start(
        netns: &Netns,
        artifacts: &Artifacts,
        label: &str,
        config: &BirdConfig,
    ) -> Result<Bird> {
        let conf = artifacts.write(&format!("{label}-bird.conf"), &config.render())?;
        let run = artifacts.runtime_dir(&format!("{label}-bird"))?;
        let ctl = run.join("bird.ctl");
        let pid = run.join("bird.pid");
        let process = Process::spawn(
            Some(netns),
            &format!("bird {label}"),
            "bird",
            [
                "-c".as_ref(),
                conf.as_os_str(),
                "-s".as_ref(),
                ctl.as_os_str(),
                "-P".as_ref(),
                pid.as_os_str(),
                "-f".as_ref(),
            ],
            &artifacts.path(&format!("{label}-bird.log")),
        )?;
        let mut bird = Bird {
            process,
            ctl,
            config: conf,
        };
        wait_until(
            &format!("bird {label} answering birdc"),
            START_TIMEOUT,
            || {
                if !bird.process.is_running() {
                    bail!("bird exited: {}", bird.process.log());
                }
                Ok(bird.birdc(&["show", "status"]).is_ok())
            },
        )?;
        Ok(bird)
    }

    /// The config file path.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }

    /// Runs `birdc -s <ctl> args` and returns its output.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-s", self.ctl.to_str().context("ctl path")?];
        all.extend_from_slice(args);
        let out = run_host("birdc", all)?;
        Ok(out)
    }

    /// The `BGP state:` of protocol `name` from `show protocols all` (`Established`,
    /// `Active`, `Idle`...), or the protocol state when it is down.
    pub fn bgp_state(&self, name: &str) -> Result<String> {
        let out = self.birdc(&["show", "protocols", "all", name])?;
        if let Some(line) = out
            .lines()
            .find(|l| l.trim_start().starts_with("BGP state:"))
        {
            return Ok(line.split(':').nth(1).unwrap_or("").trim().to_owned());
        }
        out.lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().nth(3).unwrap_or("?").to_owned())
            .with_context(|| format!("no protocol {name} in: {out}"))
    }

    /// The `Last error:` line of protocol `name` (`Hold timer expired`, ...), if any.
    pub fn last_error(&self, name: &str) -> Result<Option<String>> {
        let out = self.birdc(&["show", "protocols", "all", name])?;
        Ok(out
            .lines()
            .find(|l| l.trim_start().starts_with("Last error:"))
            .map(|l| {
                l.split_once(':')
                    .map(|x| x.1)
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            }))
    }

    /// The number of routes in BIRD's IPv4 table (`show route count`: `N of M routes for K
    /// networks in table master4`; stale routes kept for a restarting peer count).
    pub fn route_count(&self) -> Result<usize> {
        let out = self.birdc(&["show", "route", "count"])?;
        out.lines()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                let n = words.next()?.parse().ok()?;
                (words.next() == Some("of")).then_some(n)
            })
            .with_context(|| format!("no route count in: {out}"))
    }

    /// Whether `show route <prefix>` lists the prefix (birdc exits non-zero with
    /// `Network not found` when it does not).
    pub fn has_route(&self, prefix: &str) -> Result<bool> {
        let output = std::process::Command::new("birdc")
            .arg("-s")
            .arg(&self.ctl)
            .args(["show", "route", prefix])
            .output()?;
        let out = String::from_utf8_lossy(&output.stdout);
        if out.contains("Network not found") {
            return Ok(false);
        }
        if !output.status.success() {
            bail!("birdc show route {prefix} failed: {out}");
        }
        Ok(out.lines().any(|l| l.starts_with(prefix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calico_names_and_passive_side() {
        assert_eq!(
            calico_protocol_name("Mesh", "10.0.0.2", None),
            "Mesh_10_0_0_2"
        );
        assert_eq!(
            calico_protocol_name("Global", "fd00::1", Some(1790)),
            "Global_fd00__1_port_1790"
        );
        let v4 = [Family::Ipv4Unicast];
        // String order, not numeric: "10.0.0.9" sorts after "10.0.0.10".
        assert!(BirdPeer::calico_mesh("10.0.0.10", "10.0.0.9", 64512, &v4).passive);
        assert!(!BirdPeer::calico_mesh("10.0.0.9", "10.0.0.10", 64512, &v4).passive);
        let rendered = BirdConfig::new("10.0.0.10")
            .with_peer(BirdPeer::calico_mesh("10.0.0.10", "10.0.0.9", 64512, &v4))
            .render();
        for line in [
            "protocol bgp Mesh_10_0_0_9 {",
            "passive on;",
            "multihop;",
            "ttl security off;",
            "graceful restart;",
            "add paths on;",
            "gateway recursive;",
        ] {
            assert!(rendered.contains(line), "{line} missing from:\n{rendered}");
        }
    }
}
