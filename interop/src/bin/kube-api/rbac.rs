//! RBAC authorization against the ClusterRoles, ClusterRoleBindings, Roles and RoleBindings in
//! the store (as the real authorizer does: a request is allowed when some rule of a role bound
//! to the user, or to one of its groups, matches group, resource, verb and name).

use serde_json::Value;

use crate::store::{ResourceType, Store};

/// Who is asking.
#[derive(Debug, Clone)]
pub struct User {
    /// User name (`system:serviceaccount:<ns>:<name>` for a ServiceAccount token).
    pub name: String,
    /// Groups; `system:masters` is allowed everything.
    pub groups: Vec<String>,
}

/// What is asked.
#[derive(Debug)]
pub struct Attributes<'a> {
    /// get, list, watch, create, update, patch, delete.
    pub verb: &'a str,
    /// The resource type.
    pub resource: &'a ResourceType,
    /// Namespace of the request, if any.
    pub namespace: Option<&'a str>,
    /// Object name (from the URL, or a `metadata.name` field selector).
    pub name: Option<&'a str>,
}

/// Allowed, or the real server's 403 message.
pub fn authorize(store: &Store, user: &User, a: &Attributes<'_>) -> Result<(), String> {
    if user.groups.iter().any(|g| g == "system:masters") {
        return Ok(());
    }
    let rbac = |plural: &str| {
        store
            .find_type("rbac.authorization.k8s.io", "v1", plural)
            .map(|ty| store.all(ty, None))
            .unwrap_or_default()
    };
    let role_rules = |kind: &str, name: &str, namespace: &str| -> Vec<Value> {
        let (plural, ns) = if kind == "ClusterRole" {
            ("clusterroles", "")
        } else {
            ("roles", namespace)
        };
        rbac(plural)
            .into_iter()
            .find(|r| {
                r["metadata"]["name"] == name && (ns.is_empty() || r["metadata"]["namespace"] == ns)
            })
            .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    };
    let bound = |binding: &Value| {
        binding["subjects"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| subject_matches(s, user)))
    };
    let mut rules = Vec::new();
    for b in rbac("clusterrolebindings").iter().filter(|b| bound(b)) {
        rules.extend(role_rules(
            b["roleRef"]["kind"].as_str().unwrap_or(""),
            b["roleRef"]["name"].as_str().unwrap_or(""),
            "",
        ));
    }
    if let Some(ns) = a.namespace {
        for b in rbac("rolebindings")
            .iter()
            .filter(|b| b["metadata"]["namespace"] == ns && bound(b))
        {
            rules.extend(role_rules(
                b["roleRef"]["kind"].as_str().unwrap_or(""),
                b["roleRef"]["name"].as_str().unwrap_or(""),
                ns,
            ));
        }
    }
    if rules.iter().any(|r| rule_matches(r, a)) {
        return Ok(());
    }
    let r = a.resource;
    let what = match a.name {
        Some(name) if !matches!(a.verb, "list" | "watch") => {
            format!("{} \"{name}\"", r.qualified())
        }
        _ => r.qualified(),
    };
    let scope = match a.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    Err(format!(
        "{what} is forbidden: User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        user.name, a.verb, r.plural, r.group
    ))
}

fn subject_matches(subject: &Value, user: &User) -> bool {
    let name = subject["name"].as_str().unwrap_or("");
    match subject["kind"].as_str().unwrap_or("") {
        "User" => name == user.name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject["namespace"].as_str().unwrap_or("");
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn has(list: &Value, wanted: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v == "*" || v == wanted))
}

fn rule_matches(rule: &Value, a: &Attributes<'_>) -> bool {
    if !has(&rule["apiGroups"], a.resource.group)
        || !has(&rule["resources"], a.resource.plural)
        || !has(&rule["verbs"], a.verb)
    {
        return false;
    }
    match rule["resourceNames"].as_array() {
        Some(names) if !names.is_empty() => {
            a.name.is_some_and(|n| names.iter().any(|v| v == n)) && a.verb != "create"
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BUILTIN;
    use serde_json::json;

    #[test]
    fn bindings_roles_and_names() {
        let mut s = Store::new(BUILTIN.to_vec(), 10);
        let ty = |s: &Store, p: &str| s.find_type("rbac.authorization.k8s.io", "v1", p).unwrap();
        let (cr, crb, role, rb) = (
            ty(&s, "clusterroles"),
            ty(&s, "clusterrolebindings"),
            ty(&s, "roles"),
            ty(&s, "rolebindings"),
        );
        s.create(
            cr,
            "",
            json!({"metadata": {"name": "r"}, "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]}),
        )
        .unwrap();
        s.create(
            crb,
            "",
            json!({"metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "kube-system"}]}),
        )
        .unwrap();
        s.create(role, "kube-system", json!({"metadata": {"name": "sec"}, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["watch", "list", "get"], "resourceNames": ["bgp"]}]}))
            .unwrap();
        s.create(
            rb,
            "kube-system",
            json!({"metadata": {"name": "sec"},
            "roleRef": {"kind": "Role", "name": "sec"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "kube-system"}]}),
        )
        .unwrap();
        let user = User {
            name: "system:serviceaccount:kube-system:sa".into(),
            groups: vec![],
        };
        let nodes = s.types[0];
        let secrets = s.types[s.find_type("", "v1", "secrets").unwrap()];
        let ask = |verb, resource, namespace, name| {
            authorize(
                &s,
                &user,
                &Attributes {
                    verb,
                    resource,
                    namespace,
                    name,
                },
            )
        };
        assert!(ask("watch", &nodes, None, None).is_ok());
        let e = ask("delete", &nodes, None, Some("n1")).unwrap_err();
        assert_eq!(
            e,
            "nodes \"n1\" is forbidden: User \"system:serviceaccount:kube-system:sa\" cannot delete resource \"nodes\" in API group \"\" at the cluster scope"
        );
        assert!(ask("watch", &secrets, Some("kube-system"), Some("bgp")).is_ok());
        assert!(ask("watch", &secrets, Some("kube-system"), None).is_err());
        assert!(ask("get", &secrets, Some("default"), Some("bgp")).is_err());
    }
}
