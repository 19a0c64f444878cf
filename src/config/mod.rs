//! tern's own settings (TOML, `/etc/tern/tern.toml` by default), with environment overrides for
//! the Calico variables that matter. Every key is documented in `docs/configuration.md`.
//! Unknown keys are rejected by name.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{PlanOptions, RouterIdSource};

/// Default location of the settings file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tern/tern.toml";

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        message: String,
    },
    /// Invalid TOML, an unknown key or a bad value.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the key).
        message: String,
    },
    /// An environment variable has a bad value.
    #[error("environment variable {name}: {message}")]
    Env {
        /// Variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines when standard error is a terminal, JSON lines otherwise.
    #[default]
    Auto,
    /// Human-readable lines (`text` is accepted as a synonym).
    #[serde(alias = "text")]
    #[value(alias = "text")]
    Human,
    /// One JSON object per line.
    Json,
}

/// Which datastore holds the Calico resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatastoreType {
    /// YAML manifests on disk, watched for changes.
    #[default]
    File,
    /// The Kubernetes API (Calico's CRDs, core Nodes and Secrets), watched.
    Kubernetes,
}

/// `[datastore]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatastoreSettings {
    /// `file` or `kubernetes`.
    #[serde(rename = "type")]
    pub kind: DatastoreType,
    /// Files or directories of manifests (file datastore).
    pub paths: Vec<PathBuf>,
    /// Namespace of the Secrets that BGP passwords reference.
    pub secret_namespace: String,
    /// CRD group: `auto`, `crd.projectcalico.org/v1` or `projectcalico.org/v3` (Kubernetes).
    pub api_group: String,
    /// Quiet time after a change (file or Kubernetes) before the plan is recomputed, in
    /// milliseconds.
    pub debounce_ms: u64,
    /// Kubeconfig file (Kubernetes datastore); unset: `KUBECONFIG`, `~/.kube/config`, else the
    /// in-cluster ServiceAccount.
    pub kubeconfig: Option<PathBuf>,
    /// Objects per list page (Kubernetes datastore).
    pub page_size: u32,
}

impl Default for DatastoreSettings {
    fn default() -> Self {
        Self {
            kind: DatastoreType::File,
            paths: vec![PathBuf::from("/etc/tern/resources")],
            secret_namespace: "kube-system".into(),
            api_group: "auto".into(),
            debounce_ms: 200,
            kubeconfig: None,
            page_size: 500,
        }
    }
}

/// `[bgp]`: session defaults and overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BgpSettings {
    /// Router id: empty (node IPv4), `hash`, or an IPv4 address.
    pub router_id: String,
    /// Listen port override (otherwise from BGPConfiguration, default 179).
    pub listen_port: Option<u16>,
    /// Listen address override (otherwise all, or the node IP with `bindMode: NodeIP`).
    pub listen_addresses: Vec<IpAddr>,
    /// Hold time offered in OPEN, seconds (0 or ≥ 3).
    pub hold_time: u16,
    /// Keepalive interval, seconds (when a BGPPeer does not set `keepaliveTime`).
    pub keepalive_time: u16,
    /// Delay before the first outgoing connection, seconds.
    pub connect_delay_time: u16,
    /// ConnectRetry timer, seconds.
    pub connect_retry_time: u16,
    /// Graceful-restart time advertised (when the resources do not set one), seconds.
    pub graceful_restart_time: u16,
    /// Longest time stale routes are kept after a peer restarts, seconds.
    pub stale_routes_time: u16,
    /// Maximum prefixes per peer (RFC 4486): `[bgp.max_prefix]` and its per-peer overrides.
    pub max_prefix: MaxPrefixSettings,
}

/// What happens when a peer sends more prefixes than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaxPrefixActionSetting {
    /// Cease/1 (RFC 4486 §4), then a new session after `restart_time`.
    #[default]
    Restart,
    /// Log a warning and keep the session.
    Warn,
}

/// One limit: `limit` paths per family (0 = none), the action and the restart delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaxPrefixLimit {
    /// Most paths (prefixes, one per ADD-PATH id) accepted per family; 0 = no limit.
    pub limit: u32,
    /// `restart` or `warn`.
    pub action: MaxPrefixActionSetting,
    /// Seconds the session stays down after a max-prefix stop before it is tried again.
    pub restart_time: u32,
}

impl Default for MaxPrefixLimit {
    fn default() -> Self {
        Self {
            limit: 0,
            action: MaxPrefixActionSetting::Restart,
            restart_time: 60,
        }
    }
}

/// `[bgp.max_prefix]`: the default limit of every peer, and `[bgp.max_prefix.peers."ADDRESS"]`
/// overrides (keys are peer IP addresses, as in a BGPPeer's `peerIP`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaxPrefixSettings {
    /// Paths per family; 0 = no limit (the default, like Calico's BIRD).
    pub limit: u32,
    /// `restart` (default) or `warn`.
    pub action: MaxPrefixActionSetting,
    /// Seconds before a stopped session is tried again (default 60).
    pub restart_time: Option<u32>,
    /// Per-peer overrides, by peer address.
    pub peers: std::collections::BTreeMap<IpAddr, MaxPrefixLimit>,
}

impl MaxPrefixSettings {
    /// The limits as the daemon applies them.
    pub fn limits(&self) -> crate::daemon::inbound::MaxPrefixLimits {
        use crate::daemon::inbound::{MaxPrefix, MaxPrefixAction, MaxPrefixLimits};
        let make = |l: &MaxPrefixLimit| {
            (l.limit != 0).then_some(MaxPrefix {
                limit: l.limit,
                action: match l.action {
                    MaxPrefixActionSetting::Restart => MaxPrefixAction::Restart,
                    MaxPrefixActionSetting::Warn => MaxPrefixAction::Warn,
                },
                restart_after: std::time::Duration::from_secs(l.restart_time.into()),
            })
        };
        MaxPrefixLimits {
            default: make(&MaxPrefixLimit {
                limit: self.limit,
                action: self.action,
                restart_time: self.restart_time.unwrap_or(60),
            }),
            peers: self.peers.iter().map(|(a, l)| (*a, make(l))).collect(),
        }
    }
}

impl Default for BgpSettings {
    fn default() -> Self {
        Self {
            router_id: String::new(),
            listen_port: None,
            listen_addresses: Vec::new(),
            hold_time: 90,
            keepalive_time: 30,
            connect_delay_time: 0,
            connect_retry_time: 5,
            graceful_restart_time: 120,
            stale_routes_time: 360,
            max_prefix: MaxPrefixSettings::default(),
        }
    }
}

/// `[kernel]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KernelSettings {
    /// Write routes into the kernel at all. `false` makes tern a pure BGP speaker (a route
    /// server, or a like-for-like benchmark against daemons that program nothing): it still
    /// reads the kernel (borrowed addresses are exported) but never adds or deletes a route.
    pub program: bool,
    /// Route protocol number of the routes tern installs (12 = `bird`, known to Felix).
    pub route_protocol: u8,
    /// After a restart, how long routes left in the kernel by the previous run are kept while
    /// waiting for End-of-RIB from every graceful-restart peer, seconds.
    pub restart_wait: u16,
    /// Delete tern's routes from the kernel on exit (`tern run --flush-on-exit` also sets it).
    pub flush_on_exit: bool,
}

impl Default for KernelSettings {
    fn default() -> Self {
        Self {
            program: true,
            route_protocol: 12,
            restart_wait: 120,
            flush_on_exit: false,
        }
    }
}

/// `[birdctl]`: BIRD-compatible control sockets for Calico's probes and `calicoctl node status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BirdCtlSettings {
    /// Serve the BIRD-compatible sockets at all.
    pub enabled: bool,
    /// The IPv4 socket (BIRD's `bird.ctl`).
    pub socket: PathBuf,
    /// The IPv6 socket (BIRD's `bird6.ctl`).
    pub socket6: PathBuf,
}

impl Default for BirdCtlSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: PathBuf::from("/var/run/calico/bird.ctl"),
            socket6: PathBuf::from("/var/run/calico/bird6.ctl"),
        }
    }
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSettings {
    /// tern's control socket.
    pub socket: PathBuf,
    /// The admin socket (mutating requests, mode 0600); default `tern-admin.ctl` beside
    /// `socket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_socket: Option<PathBuf>,
}

impl Default for ControlSettings {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/var/run/tern/tern.ctl"),
            admin_socket: None,
        }
    }
}

impl ControlSettings {
    /// The admin socket's path: `admin_socket`, else `tern-admin.ctl` in the directory of
    /// `socket`.
    pub fn admin_socket_path(&self) -> PathBuf {
        self.admin_socket.clone().unwrap_or_else(|| {
            self.socket
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("tern-admin.ctl")
        })
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve metrics at all.
    pub enabled: bool,
    /// Prometheus endpoint (read-only).
    pub address: SocketAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            address: SocketAddr::from(([127, 0, 0, 1], 9179)),
        }
    }
}

/// All of tern's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// This node's name (Calico Node resource name); `NODENAME` overrides.
    pub node_name: Option<String>,
    /// `auto`, `human` or `json`.
    pub log_format: LogFormat,
    /// Log level or filter (`info`, `debug`, `warn,tern::session=trace`, or a Calico severity
    /// such as `Warning`); `None` = `info`. `TERN_LOG` / `RUST_LOG` override.
    pub log_level: Option<String>,
    /// Datastore.
    pub datastore: DatastoreSettings,
    /// BGP.
    pub bgp: BgpSettings,
    /// Kernel.
    pub kernel: KernelSettings,
    /// Control socket.
    pub control: ControlSettings,
    /// BIRD-compatible sockets.
    pub birdctl: BirdCtlSettings,
    /// Metrics.
    pub metrics: MetricsSettings,
    /// calico-node's default-pool variables, from the environment only (`CALICO_IPV4POOL_CIDR`...).
    #[serde(skip)]
    pub default_pools: crate::plan::default_pools::DefaultPoolEnv,
}

impl Settings {
    /// Parses TOML text (`path` only names the source in errors) and validates it.
    pub fn from_toml(path: &Path, text: &str) -> Result<Settings, ConfigError> {
        let settings: Settings = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.message().to_string() + &location(text, e.span()),
        })?;
        settings
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(settings)
    }

    /// Loads `path`, or the default path when `None` (a missing default file means defaults).
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Settings::from_toml(&path, &text),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Settings::default())
            }
            Err(e) => Err(ConfigError::Io {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// Applies the environment overrides: `NODENAME`, `CALICO_ROUTER_ID`, `CALICO_API_GROUP`,
    /// `DATASTORE_TYPE` (`kubernetes` / anything else = file), `KUBECONFIG`,
    /// `TERN_DATASTORE_PATHS` (colon-separated). `env` is a lookup so that tests need not touch the process environment.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("NODENAME").filter(|v| !v.is_empty()) {
            self.node_name = Some(v);
        }
        if let Some(v) = env("CALICO_ROUTER_ID") {
            v.parse::<RouterIdSource>()
                .map_err(|message| ConfigError::Env {
                    name: "CALICO_ROUTER_ID",
                    message,
                })?;
            self.bgp.router_id = v;
        }
        if let Some(v) = env("CALICO_API_GROUP").filter(|v| !v.is_empty()) {
            self.datastore.api_group = v;
        }
        if let Some(v) = env("DATASTORE_TYPE").filter(|v| !v.is_empty()) {
            self.datastore.kind = if v == "kubernetes" {
                DatastoreType::Kubernetes
            } else {
                DatastoreType::File
            };
        }
        if let Some(v) = env("KUBECONFIG").filter(|v| !v.is_empty()) {
            self.datastore.kubeconfig = Some(PathBuf::from(v));
        }
        let pools = crate::plan::default_pools::DefaultPoolEnv::from_env(&env);
        pools.validate().map_err(|message| ConfigError::Env {
            name: "NO_DEFAULT_POOLS / CALICO_IPV*POOL_*",
            message,
        })?;
        self.default_pools = pools;
        if let Some(v) = env("TERN_DATASTORE_PATHS").filter(|v| !v.is_empty()) {
            self.datastore.paths = v
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        self.validate().map_err(|message| ConfigError::Env {
            name: "(combined settings)",
            message,
        })
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(level) = &self.log_level {
            crate::logging::parse_filter(level).map_err(|e| format!("log_level: {e}"))?;
        }
        self.bgp
            .router_id
            .parse::<RouterIdSource>()
            .map_err(|e| format!("bgp.router_id: {e}"))?;
        let b = &self.bgp;
        if b.hold_time != 0 && b.hold_time < 3 {
            return Err(format!(
                "bgp.hold_time: {} must be 0 or at least 3 (RFC 4271 §4.2)",
                b.hold_time
            ));
        }
        if b.hold_time != 0 && b.keepalive_time >= b.hold_time {
            return Err(format!(
                "bgp.keepalive_time: {} must be below bgp.hold_time {}",
                b.keepalive_time, b.hold_time
            ));
        }
        if b.connect_retry_time == 0 {
            return Err("bgp.connect_retry_time: must be at least 1".into());
        }
        let restart_times = b
            .max_prefix
            .restart_time
            .map(|t| ("bgp.max_prefix.restart_time".to_string(), t))
            .into_iter()
            .chain(b.max_prefix.peers.iter().map(|(a, l)| {
                (
                    format!("bgp.max_prefix.peers.\"{a}\".restart_time"),
                    l.restart_time,
                )
            }));
        for (key, t) in restart_times {
            if t == 0 {
                return Err(format!(
                    "{key}: must be at least 1 (a peer over its limit would reconnect at once)"
                ));
            }
        }
        if !matches!(
            self.datastore.api_group.as_str(),
            "auto" | "crd.projectcalico.org/v1" | "projectcalico.org/v3"
        ) {
            return Err(format!(
                "datastore.api_group: {:?} must be auto, crd.projectcalico.org/v1 or projectcalico.org/v3",
                self.datastore.api_group
            ));
        }
        if self.datastore.page_size == 0 {
            return Err("datastore.page_size: must be at least 1".into());
        }
        if self.datastore.kind == DatastoreType::File && self.datastore.paths.is_empty() {
            return Err("datastore.paths: the file datastore needs at least one path".into());
        }
        Ok(())
    }

    /// The plan options these settings imply.
    pub fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            // Validated in `validate`.
            router_id: self.bgp.router_id.parse().unwrap_or_default(),
            secret_namespace: self.datastore.secret_namespace.clone(),
            listen_port: self.bgp.listen_port,
            listen_addresses: self.bgp.listen_addresses.clone(),
            default_pools: self.default_pools.clone(),
        }
    }
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, ConfigError> {
        Settings::from_toml(Path::new("tern.toml"), text)
    }

    #[test]
    fn max_prefix_default_and_per_peer_override() {
        use crate::daemon::inbound::MaxPrefixAction;
        let s = parse(
            r#"
[bgp.max_prefix]
limit = 5000
action = "warn"
[bgp.max_prefix.peers."10.0.0.2"]
limit = 1000
restart_time = 5
[bgp.max_prefix.peers."10.0.0.3"]
limit = 0
"#,
        )
        .unwrap();
        let limits = s.bgp.max_prefix.limits();
        let other = limits.for_peer("10.0.0.9".parse().unwrap()).unwrap();
        assert_eq!((other.limit, other.action), (5000, MaxPrefixAction::Warn));
        assert_eq!(other.restart_after, std::time::Duration::from_secs(60));
        let tor = limits.for_peer("10.0.0.2".parse().unwrap()).unwrap();
        assert_eq!((tor.limit, tor.action), (1000, MaxPrefixAction::Restart));
        assert_eq!(tor.restart_after, std::time::Duration::from_secs(5));
        assert_eq!(limits.for_peer("10.0.0.3".parse().unwrap()), None);
        // No limit by default.
        assert_eq!(parse("").unwrap().bgp.max_prefix.limits().default, None);
        let e = parse("[bgp.max_prefix.peers.\"10.0.0.2\"]\nrestart_time = 0\n").unwrap_err();
        assert!(e.to_string().contains("restart_time"), "{e}");
        let e = parse("[bgp.max_prefix]\nlimt = 3\n").unwrap_err();
        assert!(e.to_string().contains("limt"), "{e}");
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let s = parse("").unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.bgp.hold_time, 90);
        assert_eq!(s.kernel.route_protocol, 12);
        assert!(s.kernel.program);
        assert_eq!(s.datastore.secret_namespace, "kube-system");
    }

    #[test]
    fn full_file_parses() {
        let s = parse(
            r#"
node_name = "n1"
log_format = "json"
log_level = "debug,tern::session=trace"
[datastore]
type = "file"
paths = ["/a", "/b"]
secret_namespace = "calico-system"
debounce_ms = 50
[bgp]
router_id = "hash"
listen_port = 1179
listen_addresses = ["10.0.0.1"]
hold_time = 9
keepalive_time = 3
[kernel]
program = false
route_protocol = 12
[control]
socket = "/tmp/t.ctl"
[metrics]
enabled = false
address = "0.0.0.0:9000"
"#,
        )
        .unwrap();
        assert_eq!(s.node_name.as_deref(), Some("n1"));
        assert_eq!(s.plan_options().router_id, RouterIdSource::Hash);
        assert_eq!(s.datastore.paths.len(), 2);
        assert!(!s.kernel.program);
        assert_eq!(s.metrics.address.port(), 9000);
        assert!(!s.metrics.enabled);
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let e = parse("[bgp]\nhold_tim = 9\n").unwrap_err().to_string();
        assert!(e.contains("hold_tim") && e.contains("line 2"), "{e}");
        let e = parse("nodename = 'x'\n").unwrap_err().to_string();
        assert!(e.contains("nodename"), "{e}");
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(
            parse("[bgp]\nhold_time = 2\n")
                .unwrap_err()
                .to_string()
                .contains("bgp.hold_time")
        );
        assert!(
            parse("[bgp]\nhold_time = 9\nkeepalive_time = 9\n")
                .unwrap_err()
                .to_string()
                .contains("keepalive")
        );
        assert!(
            parse("[bgp]\nrouter_id = 'x'\n")
                .unwrap_err()
                .to_string()
                .contains("router_id")
        );
        assert!(parse("log_format = 'xml'\n").is_err());
        assert_eq!(
            parse("log_format = 'text'\n").unwrap().log_format,
            LogFormat::Human
        );
        let e = parse("log_level = 'loud'\n").unwrap_err().to_string();
        assert!(e.contains("log_level"), "{e}");
        assert!(parse("log_level = 'Warning'\n").is_ok());
        assert!(parse("[datastore]\napi_group = 'x'\n").is_err());
    }

    #[test]
    fn environment_overrides() {
        let mut s = Settings::default();
        let env = |k: &str| match k {
            "NODENAME" => Some("node-7".to_string()),
            "CALICO_ROUTER_ID" => Some("10.9.9.9".to_string()),
            "CALICO_API_GROUP" => Some("projectcalico.org/v3".to_string()),
            "TERN_DATASTORE_PATHS" => Some("/x:/y".to_string()),
            _ => None,
        };
        s.apply_env(env).unwrap();
        assert_eq!(s.node_name.as_deref(), Some("node-7"));
        assert_eq!(
            s.plan_options().router_id,
            RouterIdSource::Literal("10.9.9.9".parse().unwrap())
        );
        assert_eq!(s.datastore.api_group, "projectcalico.org/v3");
        assert_eq!(
            s.datastore.paths,
            vec![PathBuf::from("/x"), PathBuf::from("/y")]
        );
        let e = Settings::default()
            .apply_env(|k| (k == "CALICO_ROUTER_ID").then(|| "nope".to_string()));
        assert!(e.unwrap_err().to_string().contains("CALICO_ROUTER_ID"));
    }

    #[test]
    fn missing_default_file_means_defaults_but_explicit_file_must_exist() {
        let e = Settings::load(Some(Path::new("/nonexistent/tern.toml"))).unwrap_err();
        assert!(e.to_string().contains("cannot read"));
    }
}
