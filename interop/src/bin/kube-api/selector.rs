//! Label selectors and field selectors (`metadata.name`, `metadata.namespace`), as list and
//! watch requests carry them.

use serde_json::Value;

use crate::store::{Failure, meta_str};

#[derive(Debug, Clone)]
enum Requirement {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

/// A label selector and a field selector (`metadata.name`, `metadata.namespace`).
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Selectors {
    /// Parses `labelSelector` and `fieldSelector`.
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Selectors, Failure> {
        let labels = parse_requirements(labels.unwrap_or(""))?;
        let fields = parse_requirements(fields.unwrap_or(""))?;
        for f in &fields {
            let key = match f {
                Requirement::Eq(k, _) | Requirement::Ne(k, _) => k,
                _ => {
                    return Err(Failure::new(
                        400,
                        "BadRequest",
                        "field selectors support only = and !=",
                    ));
                }
            };
            if key != "metadata.name" && key != "metadata.namespace" {
                return Err(Failure::new(
                    400,
                    "BadRequest",
                    format!("field label not supported: {key}"),
                ));
            }
        }
        Ok(Selectors { labels, fields })
    }

    /// The `metadata.name` a field selector pins, if any (RBAC `resourceNames` for list/watch).
    pub fn pinned_name(&self) -> Option<&str> {
        self.fields.iter().find_map(|f| match f {
            Requirement::Eq(k, v) if k == "metadata.name" => Some(v.as_str()),
            _ => None,
        })
    }

    /// Whether an object matches.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let field = |k: &str| meta_str(object, k.trim_start_matches("metadata."));
        self.labels
            .iter()
            .all(|r| eval(r, |k| label(k).map(str::to_string)))
            && self.fields.iter().all(|r| eval(r, field))
    }
}

fn eval(r: &Requirement, get: impl Fn(&str) -> Option<String>) -> bool {
    match r {
        Requirement::Eq(k, v) => get(k).as_deref() == Some(v.as_str()),
        Requirement::Ne(k, v) => get(k).as_deref() != Some(v.as_str()),
        Requirement::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
        Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(&x)),
        Requirement::Exists(k) => get(k).is_some(),
        Requirement::Absent(k) => get(k).is_none(),
    }
}

/// Splits at commas outside parentheses.
fn split_top(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirements(text: &str) -> Result<Vec<Requirement>, Failure> {
    let bad = |s: &str| {
        Failure::new(
            400,
            "BadRequest",
            format!("unable to parse requirement: {s:?}"),
        )
    };
    let mut out = Vec::new();
    for part in split_top(text)
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let set = |rest: &str| -> Option<Vec<String>> {
            let rest = rest.trim();
            let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
            Some(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let r = if let Some(k) = part.strip_prefix('!') {
            Requirement::Absent(k.trim().to_string())
        } else if let Some((k, v)) = part.split_once("!=") {
            Requirement::Ne(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = part.split_once("==") {
            Requirement::Eq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = part.split_once('=') {
            Requirement::Eq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            Requirement::NotIn(k.trim().to_string(), set(rest).ok_or_else(|| bad(part))?)
        } else if let Some((k, rest)) = part.split_once(" in ") {
            Requirement::In(k.trim().to_string(), set(rest).ok_or_else(|| bad(part))?)
        } else if part.contains(char::is_whitespace) || part.contains('(') {
            return Err(bad(part));
        } else {
            Requirement::Exists(part.to_string())
        };
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors() {
        let o = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}});
        let m = |l: &str, f: &str| Selectors::parse(Some(l), Some(f)).unwrap().matches(&o);
        assert!(m("x=1", ""));
        assert!(m("x==1,y in (2, 3)", "metadata.name=a"));
        assert!(!m("x!=1", ""));
        assert!(m("!z,y", ""));
        assert!(!m("x notin (1)", ""));
        assert!(!m("", "metadata.name=b"));
        assert!(Selectors::parse(None, Some("spec.node=x")).is_err());
    }
}
