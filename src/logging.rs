//! Logging setup (`tracing-subscriber`): human-readable or JSON lines on standard error, with a
//! level filter that can be changed while the daemon runs (e.g. when BGPConfiguration
//! `logSeverityScreen` changes).
//!
//! The daemon resolves its [`LogSettings`] once at start ([`LogSettings::resolve`]: command-line
//! flag, then `TERN_LOG`, then `RUST_LOG`, then the settings file, then `info`) and calls
//! [`init`]. The filter parsing and the Calico severity mapping are pure functions.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

pub use crate::config::LogFormat;
use crate::config::Settings;

/// The filter used when nothing sets one.
pub const DEFAULT_FILTER: &str = "info";

/// Environment variables that override the settings file's `log_level`, strongest first.
pub const FILTER_ENV_VARS: [&str; 2] = ["TERN_LOG", "RUST_LOG"];

/// Logging could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// A level or filter is not valid; `origin` names where it came from.
    #[error("{origin}: {message}")]
    BadFilter {
        /// `--log-level`, `TERN_LOG`, `RUST_LOG`, `log_level` (settings) or `filter`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A global subscriber was already installed in this process.
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(String),
    /// The running filter could not be replaced (the subscriber is gone).
    #[error("cannot change the log filter: {0}")]
    Reload(String),
}

/// Where the log filter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOrigin {
    /// Nothing set one: [`DEFAULT_FILTER`]. Only then should the daemon follow BGPConfiguration
    /// `logSeverityScreen` (see [`level_from_calico_severity`]).
    Default,
    /// The settings file's `log_level`.
    Settings,
    /// An environment variable (`TERN_LOG` or `RUST_LOG`).
    Env(&'static str),
    /// The `--log-level` flag.
    Flag,
}

/// How the daemon logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Output format (`auto` is decided at [`init`]).
    pub format: LogFormat,
    /// Filter directives in `tracing-subscriber`'s `EnvFilter` syntax, as normalised by
    /// [`parse_filter`] (e.g. `info` or `warn,tern::session=trace`).
    pub filter: String,
    /// Where `filter` came from.
    pub origin: FilterOrigin,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Auto,
            filter: DEFAULT_FILTER.to_owned(),
            origin: FilterOrigin::Default,
        }
    }
}

impl LogSettings {
    /// Combines the sources, strongest first: the command-line flags, then `TERN_LOG`, then
    /// `RUST_LOG` (level only), then the settings file, then the defaults. `env` looks up an
    /// environment variable (so that tests need not touch the process environment); an empty
    /// variable counts as unset.
    pub fn resolve(
        settings: &Settings,
        format_flag: Option<LogFormat>,
        level_flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<LogSettings, LogError> {
        let format = format_flag.unwrap_or(settings.log_format);
        let bad = |origin: &str| {
            let origin = origin.to_owned();
            move |message| LogError::BadFilter { origin, message }
        };
        if let Some(level) = level_flag {
            return Ok(LogSettings {
                format,
                filter: parse_filter(level).map_err(bad("--log-level"))?,
                origin: FilterOrigin::Flag,
            });
        }
        for var in FILTER_ENV_VARS {
            if let Some(value) = env(var).filter(|v| !v.trim().is_empty()) {
                return Ok(LogSettings {
                    format,
                    filter: parse_filter(&value).map_err(bad(var))?,
                    origin: FilterOrigin::Env(var),
                });
            }
        }
        if let Some(level) = &settings.log_level {
            return Ok(LogSettings {
                format,
                filter: parse_filter(level).map_err(bad("log_level (settings)"))?,
                origin: FilterOrigin::Settings,
            });
        }
        Ok(LogSettings {
            format,
            ..LogSettings::default()
        })
    }
}

impl LogSettings {
    /// The filter to run with given the cluster's Calico severity (BGPConfiguration
    /// `logSeverityScreen`, see [`calico_log_severity`]): the configured filter when the flag,
    /// the environment or the settings file set one, else the severity's level, else
    /// [`DEFAULT_FILTER`]. The daemon applies it with [`LogHandle::set_filter`] when the plan
    /// changes.
    pub fn effective_filter(&self, calico_severity: Option<&str>) -> String {
        if self.origin != FilterOrigin::Default {
            return self.filter.clone();
        }
        calico_severity
            .and_then(level_from_calico_severity)
            .map_or_else(|| self.filter.clone(), |l| level_name(l).to_owned())
    }
}

/// The `logSeverityScreen` that applies to `node`: its `node.<name>` BGPConfiguration's, else
/// the `default` one's (as confd renders BIRD's `debug` setting).
pub fn calico_log_severity<'a>(cluster: &'a crate::model::Cluster, node: &str) -> Option<&'a str> {
    cluster
        .node_bgp_configuration(node)
        .and_then(|c| c.log_severity_screen.as_deref())
        .or_else(|| {
            cluster
                .global_bgp_configuration()
                .and_then(|c| c.log_severity_screen.as_deref())
        })
}

/// The level of a Calico log severity (BGPConfiguration `logSeverityScreen`, Felix's
/// `logSeverityScreen`): `Debug`, `Info`, `Warning`, `Error`, `Fatal`, `Panic`, `None`, in any
/// case (also `trace`, `warn` and `off`). `Fatal` and `Panic` map to `error` (tern has no
/// more severe level); `None` turns logging off. `None` (the Rust value) for anything else.
pub fn level_from_calico_severity(severity: &str) -> Option<LevelFilter> {
    match severity.trim().to_ascii_lowercase().as_str() {
        "trace" => Some(LevelFilter::TRACE),
        "debug" => Some(LevelFilter::DEBUG),
        "info" => Some(LevelFilter::INFO),
        "warning" | "warn" => Some(LevelFilter::WARN),
        "error" | "fatal" | "panic" => Some(LevelFilter::ERROR),
        "none" | "off" => Some(LevelFilter::OFF),
        _ => None,
    }
}

fn level_name(level: LevelFilter) -> &'static str {
    match level {
        LevelFilter::OFF => "off",
        LevelFilter::ERROR => "error",
        LevelFilter::WARN => "warn",
        LevelFilter::INFO => "info",
        LevelFilter::DEBUG => "debug",
        _ => "trace",
    }
}

/// Validates and normalises a log level or filter: a level (`info`, or a Calico severity such
/// as `Warning`), or comma-separated directives where each is a level or `target=level`
/// (`warn,tern::session=trace`; span and field filters as in `EnvFilter`). A bare word that is
/// not a level is rejected rather than read as a target name, so that a typo such as `inf` is
/// reported instead of silently logging nothing.
pub fn parse_filter(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty log level".into());
    }
    let mut directives = Vec::new();
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let normalised = match directive.rsplit_once('=') {
            None => match level_from_calico_severity(directive) {
                Some(level) => level_name(level).to_owned(),
                None => {
                    return Err(format!(
                        "{directive:?} is not a log level (expected trace, debug, info, warn, error or off, \
                         a Calico severity such as Warning, or target=level)"
                    ));
                }
            },
            Some((target, level)) => match level_from_calico_severity(level) {
                Some(l) if !target.trim().is_empty() => {
                    format!("{}={}", target.trim(), level_name(l))
                }
                _ => {
                    return Err(format!(
                        "{directive:?}: expected target=level with a level such as debug"
                    ));
                }
            },
        };
        directives.push(normalised);
    }
    if directives.is_empty() {
        return Err("empty log level".into());
    }
    let filter = directives.join(",");
    env_filter(&filter)?;
    Ok(filter)
}

fn env_filter(filter: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(filter)
        .map_err(|e| format!("{filter:?}: {e}"))
}

/// Changes the running log filter.
#[derive(Clone)]
pub struct LogHandle {
    reload: reload::Handle<EnvFilter, Registry>,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle").finish_non_exhaustive()
    }
}

impl LogHandle {
    /// Replaces the filter (syntax of [`parse_filter`]), e.g. when BGPConfiguration
    /// `logSeverityScreen` changes and the filter's origin is [`FilterOrigin::Default`].
    pub fn set_filter(&self, filter: &str) -> Result<(), LogError> {
        let filter = parse_filter(filter)
            .and_then(|f| env_filter(&f))
            .map_err(|message| LogError::BadFilter {
                origin: "filter".into(),
                message,
            })?;
        self.reload
            .reload(filter)
            .map_err(|e| LogError::Reload(e.to_string()))
    }
}

/// Whether human-readable output goes to a terminal: `auto` and colours are decided by it.
fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Builds the subscriber: `json` selects JSON lines (one object per event, fields at the top
/// level, with the current span and the span list), otherwise human-readable lines, coloured
/// when `ansi`.
fn build<W>(
    json: bool,
    ansi: bool,
    filter: EnvFilter,
    writer: W,
) -> (
    impl Subscriber + Send + Sync + for<'a> LookupSpan<'a>,
    LogHandle,
)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (filter, reload) = reload::Layer::new(filter);
    let output = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed()
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(output);
    (subscriber, LogHandle { reload })
}

/// Installs the process-wide subscriber writing to standard error. `auto` means human-readable
/// on a terminal and JSON otherwise; colours only on a terminal and without `NO_COLOR`. Call
/// once, at daemon start.
pub fn init(settings: &LogSettings) -> Result<LogHandle, LogError> {
    let filter = env_filter(&settings.filter).map_err(|message| LogError::BadFilter {
        origin: "filter".into(),
        message,
    })?;
    let terminal = stderr_is_terminal();
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !terminal,
    };
    let ansi = terminal && std::env::var_os("NO_COLOR").is_none();
    let (subscriber, handle) = build(json, ansi, filter, std::io::stderr);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| LogError::AlreadyInitialised(e.to_string()))?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn calico_severities_map_to_levels() {
        assert_eq!(
            level_from_calico_severity("Debug"),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(level_from_calico_severity("INFO"), Some(LevelFilter::INFO));
        assert_eq!(
            level_from_calico_severity("Warning"),
            Some(LevelFilter::WARN)
        );
        assert_eq!(
            level_from_calico_severity("Error"),
            Some(LevelFilter::ERROR)
        );
        assert_eq!(
            level_from_calico_severity("Fatal"),
            Some(LevelFilter::ERROR)
        );
        assert_eq!(
            level_from_calico_severity("Panic"),
            Some(LevelFilter::ERROR)
        );
        assert_eq!(level_from_calico_severity("None"), Some(LevelFilter::OFF));
        assert_eq!(level_from_calico_severity("verbose"), None);
    }

    #[test]
    fn filters_are_normalised_and_typos_rejected() {
        assert_eq!(parse_filter("Warning").unwrap(), "warn");
        assert_eq!(
            parse_filter(" info , tern::session=Debug ").unwrap(),
            "info,tern::session=debug"
        );
        assert_eq!(
            parse_filter("tern[peer{name=Mesh_10_0_0_2}]=trace").unwrap(),
            "tern[peer{name=Mesh_10_0_0_2}]=trace"
        );
        for bad in ["", " , ", "inf", "tern::session", "tern=loud", "=debug"] {
            assert!(parse_filter(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn flag_beats_env_beats_settings_beats_default() {
        let mut settings = Settings {
            log_level: Some("error".into()),
            log_format: LogFormat::Json,
            ..Settings::default()
        };
        let env = |k: &str| match k {
            "TERN_LOG" => Some("debug".into()),
            "RUST_LOG" => Some("trace".into()),
            _ => None,
        };
        let s = LogSettings::resolve(&settings, Some(LogFormat::Human), Some("warn"), env).unwrap();
        assert_eq!(
            (s.format, s.filter.as_str(), s.origin),
            (LogFormat::Human, "warn", FilterOrigin::Flag)
        );
        let s = LogSettings::resolve(&settings, None, None, env).unwrap();
        assert_eq!(
            (s.format, s.filter.as_str(), s.origin),
            (LogFormat::Json, "debug", FilterOrigin::Env("TERN_LOG"))
        );
        let rust_log_only = |k: &str| (k == "RUST_LOG").then(|| "trace".to_string());
        let s = LogSettings::resolve(&settings, None, None, rust_log_only).unwrap();
        assert_eq!(s.origin, FilterOrigin::Env("RUST_LOG"));
        let s = LogSettings::resolve(&settings, None, None, no_env).unwrap();
        assert_eq!(
            (s.filter.as_str(), s.origin),
            ("error", FilterOrigin::Settings)
        );
        settings.log_level = None;
        let s = LogSettings::resolve(&settings, None, None, no_env).unwrap();
        assert_eq!(
            (s.filter.as_str(), s.origin),
            ("info", FilterOrigin::Default)
        );

        let e = LogSettings::resolve(&settings, None, None, |k: &str| {
            (k == "TERN_LOG").then(|| "chatty".to_string())
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("TERN_LOG: "), "{e}");
        let e = LogSettings::resolve(&settings, None, Some("x=y"), no_env).unwrap_err();
        assert!(e.to_string().starts_with("--log-level: "), "{e}");
    }

    #[test]
    fn calico_severity_applies_only_when_nothing_else_set_a_level() {
        let mut cluster = crate::model::Cluster::default();
        crate::model::load_documents(
            &mut cluster,
            std::path::Path::new("c.yaml"),
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {logSeverityScreen: Warning}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.n2}\nspec: {logSeverityScreen: Debug}\n",
            "kube-system",
        );
        assert!(cluster.problems.is_empty());
        assert_eq!(calico_log_severity(&cluster, "n1"), Some("Warning"));
        assert_eq!(calico_log_severity(&cluster, "n2"), Some("Debug"));
        assert_eq!(
            calico_log_severity(&crate::model::Cluster::default(), "n1"),
            None
        );

        let default = LogSettings::default();
        assert_eq!(default.effective_filter(Some("Warning")), "warn");
        assert_eq!(default.effective_filter(Some("Fatal")), "error");
        assert_eq!(default.effective_filter(Some("bogus")), "info");
        assert_eq!(default.effective_filter(None), "info");
        let from_env = LogSettings {
            filter: "debug".into(),
            origin: FilterOrigin::Env("TERN_LOG"),
            ..LogSettings::default()
        };
        assert_eq!(from_env.effective_filter(Some("Error")), "debug");
    }

    #[test]
    fn json_lines_carry_fields_and_spans() {
        let buffer = Buffer::default();
        let (subscriber, _handle) = build(true, false, env_filter("info").unwrap(), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("peer", peer = "Mesh_10_0_0_2");
            let _g = span.enter();
            tracing::info!(state = "Established", "session up");
            tracing::debug!("filtered out");
        });
        let text = buffer.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "session up");
        assert_eq!(v["state"], "Established");
        assert_eq!(v["span"]["name"], "peer");
        assert_eq!(v["span"]["peer"], "Mesh_10_0_0_2");
        assert!(v["timestamp"].is_string());
    }

    #[test]
    fn human_lines_and_reloaded_filter() {
        let buffer = Buffer::default();
        let (subscriber, handle) = build(false, false, env_filter("warn").unwrap(), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("hidden");
            tracing::warn!(peer = "n2", "hold timer expired");
            handle.set_filter("Debug").unwrap();
            tracing::debug!("now visible");
            assert!(handle.set_filter("loud").is_err());
        });
        let text = buffer.text();
        assert!(!text.contains("hidden"), "{text}");
        assert!(
            text.contains("WARN") && text.contains("hold timer expired peer=\"n2\""),
            "{text}"
        );
        assert!(
            text.contains("DEBUG") && text.contains("now visible"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "no colours when not asked: {text}");
    }
}
