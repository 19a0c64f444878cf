//! `kube-api`: a Kubernetes API server double for tests without a cluster.
//!
//! It speaks the real protocol over HTTPS (a CA and a server certificate generated at start),
//! authenticates bearer tokens, authorizes every request against the RBAC objects it holds
//! (loaded from `deploy/` or applied with kubectl), and serves discovery, get, list with
//! `limit`/`continue`, watch streams (ADDED, MODIFIED, DELETED, BOOKMARK, `timeoutSeconds`,
//! 410 Gone for a compacted `resourceVersion`), create, update, patch and delete for the core
//! kinds tern reads and the Calico CRD groups.
//!
//! A plain HTTP control socket (a Unix socket, so that tests reach it from any network
//! namespace) injects faults: `POST /down`, `/up` (stop listening and cut every connection,
//! listen again), `/drop-watches`, `/compact[?drop-watches=1]`,
//! `/fail?code=500&count=N[&verb=list][&resource=bgppeers][&continue=1]`, `/max-page?n=N`,
//! `/clear`, `/load` (a YAML body, applied as an administrator), and `GET /stats`.

mod api;
mod faults;
mod rbac;
mod selector;
mod store;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, UnixListener};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use api::State;
use faults::{FailRule, Faults};
use rbac::User;
use store::{BUILTIN, CALICO_GROUPS, CALICO_KINDS, ResourceType, Store};

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "kube-api", about = "A Kubernetes API server double for tests")]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Extra subject alternative names (IP or DNS) of the server certificate.
    #[arg(long)]
    san: Vec<String>,
    /// Bearer token and user: `TOKEN=USER[;GROUP,GROUP]` (group system:masters = admin).
    #[arg(long, value_name = "TOKEN=USER")]
    token: Vec<String>,
    /// Calico CRD group to serve: crd.projectcalico.org/v1 and/or projectcalico.org/v3.
    #[arg(long = "calico-group", value_name = "GROUP/VERSION")]
    calico_groups: Vec<String>,
    /// YAML manifests to create at start (RBAC from deploy/, seed resources).
    #[arg(long)]
    load: Vec<PathBuf>,
    /// Where the CA certificate (PEM) is written.
    #[arg(long)]
    ca_out: PathBuf,
    /// Written once listening: JSON with `server` (https URL) and `ca`.
    #[arg(long)]
    ready_file: PathBuf,
    /// The control socket (plain HTTP on a Unix socket).
    #[arg(long)]
    control: PathBuf,
    /// Bookmark interval on watches that allow bookmarks, milliseconds.
    #[arg(long, default_value_t = 5000)]
    bookmark_ms: u64,
    /// Changes kept for watches to resume from; older resume points get 410.
    #[arg(long, default_value_t = 100_000)]
    history: usize,
}

fn types(groups: &[String]) -> Result<Vec<ResourceType>> {
    let mut types = BUILTIN.to_vec();
    let groups = if groups.is_empty() {
        vec!["crd.projectcalico.org/v1".to_string()]
    } else {
        groups.to_vec()
    };
    for g in &groups {
        let Some((group, version)) = CALICO_GROUPS
            .iter()
            .find(|(group, version)| format!("{group}/{version}") == *g)
        else {
            bail!("unknown Calico group {g:?}");
        };
        for (plural, kind) in CALICO_KINDS {
            types.push(ResourceType {
                group,
                version,
                plural,
                kind,
                namespaced: false,
            });
        }
    }
    Ok(types)
}

fn parse_token(spec: &str) -> Result<(String, User)> {
    let (token, user) = spec
        .split_once('=')
        .with_context(|| format!("--token {spec:?}: expected TOKEN=USER[;GROUPS]"))?;
    // A ServiceAccount user name has colons, so groups follow a `;`.
    let (name, groups) = match user.split_once(';') {
        Some((n, g)) => (n, g.split(',').map(str::to_string).collect()),
        None => (user, Vec::new()),
    };
    Ok((
        token.to_string(),
        User {
            name: name.to_string(),
            groups,
        },
    ))
}

/// Loads a YAML stream of objects (and `List`s) into the store, creating or replacing.
fn load_yaml(store: &mut Store, text: &str) -> Result<usize> {
    let mut loaded = 0;
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).context("invalid YAML")?;
        let items = match value["kind"].as_str() {
            Some(k) if k.ends_with("List") => {
                value["items"].as_array().cloned().unwrap_or_default()
            }
            _ if value.is_null() => Vec::new(),
            _ => vec![value],
        };
        for item in items {
            let api_version = item["apiVersion"].as_str().unwrap_or("").to_string();
            let kind = item["kind"].as_str().unwrap_or("").to_string();
            let ty = store
                .type_of_kind(&api_version, &kind)
                .with_context(|| format!("kind {kind} of {api_version} is not served"))?;
            let rt = store.types[ty];
            let ns = if rt.namespaced {
                item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string()
            } else {
                String::new()
            };
            let name = item["metadata"]["name"].as_str().unwrap_or("").to_string();
            let result = if store.get(ty, &ns, &name).is_some() {
                store.update(ty, &ns, &name, item)
            } else {
                store.create(ty, &ns, item)
            };
            result.map_err(|f| anyhow::anyhow!("{kind} {name:?}: {}", f.message))?;
            loaded += 1;
        }
    }
    Ok(loaded)
}

fn tls_config(args: &Args, addr: SocketAddr) -> Result<rustls::ServerConfig> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-api double CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if !addr.ip().is_unspecified() {
        sans.push(addr.ip().to_string());
    }
    sans.extend(args.san.iter().cloned());
    sans.dedup();
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(sans)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver");
    let cert = params.signed_by(&key, &ca)?;
    std::fs::write(&args.ca_out, ca.pem())
        .with_context(|| format!("write {}", args.ca_out.display()))?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone(), ca.der().clone()], key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves the API while `up` is true; when it turns false, stops listening and cuts every
/// connection; listens again at the same address when it turns true.
async fn serve(
    state: Arc<State>,
    first: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    mut up: watch::Receiver<bool>,
) {
    let addr = first.local_addr().expect("bound");
    let mut listener = Some(first);
    loop {
        while !*up.borrow_and_update() {
            if up.changed().await.is_err() {
                return;
            }
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match bind(addr) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("kube-api: cannot listen again on {addr}: {e}");
                    return;
                }
            },
        };
        eprintln!("kube-api: listening on {addr}");
        let kill = CancellationToken::new();
        loop {
            tokio::select! {
                accepted = l.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let (tls, state, kill) = (tls.clone(), Arc::clone(&state), kill.clone());
                    tokio::spawn(async move {
                        let Ok(stream) = tls.accept(tcp).await else { return };
                        let service = service_fn(move |req| api::handle(Arc::clone(&state), req));
                        let conn = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::select! {
                            _ = conn => {}
                            _ = kill.cancelled() => {}
                        }
                    });
                }
                changed = up.changed() => {
                    if changed.is_err() || !*up.borrow_and_update() {
                        kill.cancel();
                        state.faults.drop_watches();
                        eprintln!("kube-api: down (not listening, connections cut)");
                        break;
                    }
                }
            }
        }
    }
}

type Plain = http_body_util::Full<Bytes>;

async fn control(
    state: Arc<State>,
    up: Arc<watch::Sender<bool>>,
    req: Request<Incoming>,
) -> Result<Response<Plain>, Infallible> {
    let path = req.uri().path().to_string();
    let q: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer: Result<Value, String> = match path.as_str() {
        "/down" => {
            up.send_replace(false);
            Ok(json!({"up": false}))
        }
        "/up" => {
            up.send_replace(true);
            Ok(json!({"up": true}))
        }
        "/drop-watches" => {
            state.faults.drop_watches();
            Ok(json!({"dropped": true}))
        }
        "/compact" => {
            state.store.lock().unwrap().compact();
            if q.get("drop-watches").is_some_and(|v| v == "1") {
                state.faults.drop_watches();
            }
            Ok(json!({"compacted": state.store.lock().unwrap().rv()}))
        }
        "/fail" => match q.get("code").and_then(|c| c.parse::<u16>().ok()) {
            Some(code) => {
                state.faults.add(FailRule {
                    code,
                    count: q.get("count").and_then(|c| c.parse().ok()).unwrap_or(1),
                    verb: q.get("verb").cloned(),
                    resource: q.get("resource").cloned(),
                    continue_only: q.get("continue").is_some_and(|v| v == "1"),
                });
                Ok(json!({"armed": code}))
            }
            None => Err("fail: code=N required".into()),
        },
        "/max-page" => {
            let n = q.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
            state.faults.set_max_page(n);
            Ok(json!({"maxPage": n}))
        }
        "/clear" => {
            state.faults.clear();
            Ok(json!({"cleared": true}))
        }
        "/load" => {
            let text = String::from_utf8_lossy(&body);
            load_yaml(&mut state.store.lock().unwrap(), &text)
                .map(|n| json!({"loaded": n}))
                .map_err(|e| format!("{e:#}"))
        }
        "/stats" => Ok(state.faults.stats(state.store.lock().unwrap().rv())),
        _ => Err(format!("unknown control {path}")),
    };
    eprintln!("kube-api: control {path} -> {answer:?}");
    let (code, body) = match answer {
        Ok(v) => (200, v.to_string()),
        Err(e) => (400, json!({"error": e}).to_string()),
    };
    Ok(Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut store = Store::new(types(&args.calico_groups)?, args.history);
    for ns in ["default", "kube-system"] {
        let ty = store.find_type("", "v1", "namespaces").expect("served");
        let _ = store.create(ty, "", json!({"metadata": {"name": ns}}));
    }
    for path in &args.load {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        load_yaml(&mut store, &text).with_context(|| format!("load {}", path.display()))?;
    }
    let tokens = args
        .token
        .iter()
        .map(|t| parse_token(t))
        .collect::<Result<HashMap<_, _>>>()?;
    let listener = bind(args.listen).with_context(|| format!("listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(&args, addr)?));
    let server = format!("https://{addr}");
    let state = Arc::new(State {
        store: Mutex::new(store),
        tokens,
        faults: Faults::default(),
        bookmark_every: Duration::from_millis(args.bookmark_ms.max(10)),
        address: addr.to_string(),
    });
    let _ = std::fs::remove_file(&args.control);
    let control_listener = UnixListener::bind(&args.control)
        .with_context(|| format!("control socket {}", args.control.display()))?;
    let (up_tx, up_rx) = watch::channel(true);
    let up_tx = Arc::new(up_tx);
    {
        let (state, up_tx) = (Arc::clone(&state), Arc::clone(&up_tx));
        tokio::spawn(async move {
            while let Ok((stream, _)) = control_listener.accept().await {
                let (state, up_tx) = (Arc::clone(&state), Arc::clone(&up_tx));
                tokio::spawn(async move {
                    let service =
                        service_fn(move |req| control(Arc::clone(&state), Arc::clone(&up_tx), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }
    let ready = json!({"server": server, "ca": args.ca_out, "control": args.control});
    let tmp = args.ready_file.with_extension("tmp");
    std::fs::write(&tmp, ready.to_string())?;
    std::fs::rename(&tmp, &args.ready_file)?;
    let serving = tokio::spawn(serve(Arc::clone(&state), listener, tls, up_rx));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = serving => {}
    }
    let _ = std::fs::remove_file(&args.control);
    Ok(())
}
