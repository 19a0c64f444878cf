//! The Kubernetes REST API over the store: discovery, get, list (limit/continue), watch
//! streams, create, update, merge/strategic-merge patch, delete; bearer-token authentication,
//! RBAC, and the injected faults.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::faults::Faults;
use crate::rbac::{Attributes, User, authorize};
use crate::store::{Change, ChangeKind, Failure, ResourceType, Selectors, Store, TypeId};

/// A response body: whole, or a watch stream.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Everything a request needs.
pub struct State {
    /// Objects.
    pub store: Mutex<Store>,
    /// Bearer token → user.
    pub tokens: HashMap<String, User>,
    /// Injected faults.
    pub faults: Faults,
    /// Bookmarks on watches that allow them, this often.
    pub bookmark_every: Duration,
    /// `https://host:port`, for `/api`.
    pub address: String,
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full(value.to_string()))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn fail(f: &Failure) -> Response<Body> {
    json_response(f.code, &f.status())
}

/// Percent-decodes a query component (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// A resource URL, parsed.
struct Target {
    ty: TypeId,
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
}

/// Handles one request (errors become Status responses).
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let user = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| state.tokens.get(t.trim()))
        .cloned();
    let response = match user {
        None => fail(&Failure::new(401, "Unauthorized", "Unauthorized")),
        Some(user) => route(&state, &user, req).await,
    };
    eprintln!(
        "kube-api: {method} {path} -> {}",
        response.status().as_u16()
    );
    Ok(response)
}

async fn route(state: &Arc<State>, user: &User, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => {
            return json_response(
                200,
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-api-double",
                        "platform": "linux/amd64"}),
            );
        }
        ["healthz" | "readyz" | "livez"] => {
            return Response::new(full("ok"));
        }
        ["api"] => {
            return json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": state.address}]}),
            );
        }
        ["apis"] => return json_response(200, &group_list(&state.store.lock().unwrap())),
        ["api", "v1"] => return resource_list(state, "", "v1"),
        ["apis", group] => {
            let list = group_list(&state.store.lock().unwrap());
            return match list["groups"]
                .as_array()
                .and_then(|g| g.iter().find(|g| g["name"] == *group))
            {
                Some(g) => {
                    let mut g = g.clone();
                    g["kind"] = json!("APIGroup");
                    g["apiVersion"] = json!("v1");
                    json_response(200, &g)
                }
                None => fail(&Failure::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            };
        }
        ["apis", group, version] => return resource_list(state, group, version),
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return fail(&Failure::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural, name @ ..] if group.is_empty() || *plural != "status" => (
            Some(ns.to_string()),
            *plural,
            name.first().map(|s| s.to_string()),
        ),
        [plural, name @ ..] => (None, *plural, name.first().map(|s| s.to_string())),
        [] => return fail(&Failure::new(404, "NotFound", "no resource")),
    };
    // `/api/v1/namespaces/<name>` is the Namespace itself.
    let (namespace, plural, name) = match (group, &namespace, plural, rest.len()) {
        ("", Some(ns), _, 2) => (None, "namespaces", Some(ns.clone())),
        _ => (namespace, plural, name),
    };
    let found = state
        .store
        .lock()
        .unwrap()
        .find_type(group, version, plural);
    let Some(ty) = found else {
        return fail(&Failure::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    };
    let rt = state.store.lock().unwrap().types[ty];
    if rest.len() > if namespace.is_some() { 4 } else { 2 } {
        return fail(&Failure::new(
            404,
            "NotFound",
            "subresources are not served",
        ));
    }
    let namespace = if rt.namespaced { namespace } else { None };
    let target = Target {
        ty,
        rt,
        namespace,
        name,
    };
    let q = query(&req);
    let watching = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = match (req.method(), &target.name, watching) {
        (&Method::GET, _, true) => "watch",
        (&Method::GET, Some(_), false) => "get",
        (&Method::GET, None, false) => "list",
        (&Method::POST, None, _) => "create",
        (&Method::PUT, Some(_), _) => "update",
        (&Method::PATCH, Some(_), _) => "patch",
        (&Method::DELETE, Some(_), _) => "delete",
        _ => return fail(&Failure::new(405, "MethodNotAllowed", "method not allowed")),
    };
    let selectors = match Selectors::parse(
        q.get("labelSelector").map(String::as_str),
        q.get("fieldSelector").map(String::as_str),
    ) {
        Ok(s) => s,
        Err(f) => return fail(&f),
    };
    let name_for_rbac = target
        .name
        .clone()
        .or(selectors.pinned_name().map(str::to_string));
    {
        let store = state.store.lock().unwrap();
        let attributes = Attributes {
            verb,
            resource: &target.rt,
            namespace: target.namespace.as_deref(),
            name: name_for_rbac.as_deref(),
        };
        if let Err(message) = authorize(&store, user, &attributes) {
            return fail(&Failure::new(403, "Forbidden", message));
        }
    }
    state.faults.count(verb, target.rt.plural);
    if let Some(code) = state
        .faults
        .injected(verb, target.rt.plural, q.contains_key("continue"))
    {
        let reason = if code == 429 {
            "TooManyRequests"
        } else {
            "InternalError"
        };
        let mut response = fail(&Failure::new(
            code,
            reason,
            format!("injected fault: {code}"),
        ));
        if code == 429 {
            response
                .headers_mut()
                .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
        }
        return response;
    }
    let ns = target.namespace.clone().unwrap_or_default();
    match verb {
        "get" => {
            let name = target.name.as_deref().unwrap_or("");
            match state.store.lock().unwrap().get(ty, &ns, name) {
                Some(o) => json_response(200, &o),
                None => fail(&Failure::new(
                    404,
                    "NotFound",
                    format!("{} \"{name}\" not found", rt.qualified()),
                )),
            }
        }
        "list" => list(state, &target, &selectors, &q, req.headers()),
        "watch" => watch(state, &target, selectors, &q),
        _ => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return fail(&Failure::new(400, "BadRequest", e.to_string())),
            };
            write(state, &target, verb, &ns, &body, &q)
        }
    }
}

fn group_list(store: &Store) -> Value {
    let mut groups: Vec<(String, String)> = Vec::new();
    for t in &store.types {
        if !t.group.is_empty() && !groups.iter().any(|(g, _)| g == t.group) {
            groups.push((t.group.to_string(), t.version.to_string()));
        }
    }
    let groups: Vec<Value> = groups
        .iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(state: &State, group: &str, version: &str) -> Response<Body> {
    let store = state.store.lock().unwrap();
    let resources: Vec<Value> = store
        .types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .map(|t| {
            json!({"name": t.plural, "singularName": t.kind.to_lowercase(), "namespaced": t.namespaced,
                   "kind": t.kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
        })
        .collect();
    if resources.is_empty() {
        return fail(&Failure::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn list(
    state: &State,
    target: &Target,
    selectors: &Selectors,
    q: &HashMap<String, String>,
    headers: &hyper::HeaderMap,
) -> Response<Body> {
    let mut limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let cap = state.faults.max_page();
    if cap > 0 && (limit == 0 || limit > cap) {
        limit = cap;
    }
    let page = state.store.lock().unwrap().list(
        target.ty,
        target.namespace.as_deref(),
        selectors,
        limit,
        q.get("continue")
            .map(String::as_str)
            .filter(|c| !c.is_empty()),
    );
    let page = match page {
        Ok(p) => p,
        Err(f) => return fail(&f),
    };
    let mut metadata = json!({"resourceVersion": page.rv.to_string()});
    if let Some(next) = &page.next {
        metadata["continue"] = json!(next);
        metadata["remainingItemCount"] = json!(page.remaining);
    }
    let wants_table = headers
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    if wants_table {
        let rows: Vec<Value> = page
            .items
            .iter()
            .map(|o| {
                json!({"cells": [o["metadata"]["name"], o["metadata"]["creationTimestamp"]],
                       "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                  "metadata": o["metadata"]}})
            })
            .collect();
        return json_response(
            200,
            &json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
                    "columnDefinitions": [
                        {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
                        {"name": "Created At", "type": "date", "format": "", "description": "Creation time", "priority": 0}],
                    "rows": rows}),
        );
    }
    json_response(
        200,
        &json!({"kind": format!("{}List", target.rt.kind), "apiVersion": target.rt.api_version(),
                "metadata": metadata, "items": page.items.iter().map(|o| (**o).clone()).collect::<Vec<_>>()}),
    )
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// Whether a change is seen by a watch, and as what.
fn seen_as(change: &Change, target: &Target, selectors: &Selectors) -> Option<&'static str> {
    if change.ty != target.ty
        || target
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != change.namespace)
    {
        return None;
    }
    let now = selectors.matches(&change.object);
    let before = change.prev.as_deref().is_some_and(|p| selectors.matches(p));
    match change.kind {
        ChangeKind::Added => now.then_some("ADDED"),
        ChangeKind::Deleted => before.then_some("DELETED"),
        ChangeKind::Modified => match (before, now) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        },
    }
}

fn watch(
    state: &Arc<State>,
    target: &Target,
    selectors: Selectors,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let from = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .map(|v| v.parse::<u64>());
    let from = match from {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return fail(&Failure::new(400, "BadRequest", "invalid resourceVersion")),
        None => None,
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(256);
    let start =
        state
            .store
            .lock()
            .unwrap()
            .watch(target.ty, target.namespace.as_deref(), &selectors, from);
    let target = Target {
        ty: target.ty,
        rt: target.rt,
        namespace: target.namespace.clone(),
        name: None,
    };
    let kill = state.faults.watch_token();
    let state = Arc::clone(state);
    let watches = state.faults.watch_opened();
    tokio::spawn(async move {
        let _open = watches;
        let send = |bytes: Bytes| tx.send(Ok(Frame::data(bytes)));
        let mut start = match start {
            Ok(s) => s,
            Err(f) => {
                // As the real server: 200, then one ERROR event with the Status.
                let _ = send(event_line("ERROR", &f.status())).await;
                return;
            }
        };
        let mut last_rv = start.rv;
        for change in start.initial.drain(..) {
            last_rv = last_rv.max(change.rv);
            let kind = if change.prev.is_none() && change.kind == ChangeKind::Added {
                Some("ADDED")
            } else {
                seen_as(&change, &target, &selectors)
            };
            if let Some(kind) = kind
                && send(event_line(kind, &change.object)).await.is_err()
            {
                return;
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval(state.bookmark_every);
        tick.tick().await;
        loop {
            tokio::select! {
                change = start.live.recv() => match change {
                    Ok(change) => {
                        last_rv = last_rv.max(change.rv);
                        if let Some(kind) = seen_as(&change, &target, &selectors)
                            && send(event_line(kind, &change.object)).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let f = Failure::new(410, "Expired", "watch fell behind");
                        let _ = send(event_line("ERROR", &f.status())).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let object = json!({"kind": target.rt.kind, "apiVersion": target.rt.api_version(),
                                        "metadata": {"resourceVersion": last_rv.to_string()}});
                    if send(event_line("BOOKMARK", &object)).await.is_err() {
                        return;
                    }
                }
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => return,
                _ = kill.cancelled() => {
                    let _ = tx.send(Err(std::io::Error::other("watch dropped"))).await;
                    return;
                }
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// RFC 7386 JSON merge patch (also used for strategic merge patches: the directives are
/// dropped, lists are replaced).
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn write(
    state: &State,
    target: &Target,
    verb: &str,
    ns: &str,
    body: &[u8],
    q: &HashMap<String, String>,
) -> Response<Body> {
    let parsed: Result<Value, _> = if body.is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_slice(body)
    };
    let value = match parsed {
        Ok(v) => v,
        Err(e) => {
            return fail(&Failure::new(
                400,
                "BadRequest",
                format!("invalid body: {e}"),
            ));
        }
    };
    let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
    let name = target.name.clone().unwrap_or_default();
    let mut store = state.store.lock().unwrap();
    let result = match verb {
        "create" => {
            if let Some(body_ns) = value["metadata"]["namespace"].as_str()
                && target.rt.namespaced
                && body_ns != ns
            {
                return fail(&Failure::new(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            if dry_run {
                return json_response(201, &value);
            }
            store.create(target.ty, ns, value).map(|o| (201, o))
        }
        "update" => store.update(target.ty, ns, &name, value).map(|o| (200, o)),
        "patch" => match store.get(target.ty, ns, &name) {
            None => Err(Failure::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", target.rt.qualified()),
            )),
            Some(current) => {
                let mut next = (*current).clone();
                merge_patch(&mut next, &value);
                if let Some(m) = next["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
                store.update(target.ty, ns, &name, next).map(|o| (200, o))
            }
        },
        "delete" => store.delete(target.ty, ns, &name).map(|o| (200, o)),
        _ => Err(Failure::new(405, "MethodNotAllowed", "method not allowed")),
    };
    match result {
        Ok((code, object)) => json_response(code, &object),
        Err(f) => fail(&f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_and_merge_patch() {
        assert_eq!(decode("a%3Db+c%2C"), "a=b c,");
        assert_eq!(decode("%"), "%");
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(
            &mut t,
            &json!({"a": {"b": null, "d": 3}, "l": [3], "$retainKeys": ["x"]}),
        );
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }
}
