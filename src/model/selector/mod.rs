//! The Calico selector language (`nodeSelector`, `peerSelector`, IPPool `nodeSelector`).
//!
//! Grammar (as libcalico-go parses it):
//!
//! ```text
//! selector  := ε | or
//! or        := and ( "||" and )*
//! and       := unary ( "&&" unary )*
//! unary     := "!"* primary
//! primary   := "has(" label ")" | "all()" | "global()" | "(" or ")"
//!            | label ( "==" | "!=" | "contains" | "starts with" | "ends with" ) string
//!            | label ( "in" | "not in" ) "{" [ string ( "," string )* ] "}"
//! label     := [A-Za-z0-9_./-]+           (at most 512 bytes)
//! string    := '"' [^"]* '"' | "'" [^']* "'"
//! ```
//!
//! An empty selector matches everything. `k != 'v'` and `k not in {..}` also match when the label
//! is absent; every other comparison needs the label present.

mod parser;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use parser::SelectorError;

/// A parsed selector expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `all()`, `global()` or the empty selector: matches everything.
    All,
    /// `has(k)`.
    Has(String),
    /// `k == 'v'`.
    Eq(String, String),
    /// `k != 'v'` (true when `k` is absent).
    Ne(String, String),
    /// `k contains 'v'`.
    Contains(String, String),
    /// `k starts with 'v'`.
    StartsWith(String, String),
    /// `k ends with 'v'`.
    EndsWith(String, String),
    /// `k in {'a', 'b'}`.
    In(String, BTreeSet<String>),
    /// `k not in {'a', 'b'}` (true when `k` is absent).
    NotIn(String, BTreeSet<String>),
    /// `!e`.
    Not(Box<Selector>),
    /// `a && b && ...`.
    And(Vec<Selector>),
    /// `a || b || ...`.
    Or(Vec<Selector>),
}

impl Selector {
    /// Parses a selector; an empty (or all-whitespace) string is [`Selector::All`].
    pub fn parse(input: &str) -> Result<Selector, SelectorError> {
        parser::parse(input)
    }

    /// Whether a set of labels matches this selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::All => true,
            Selector::Has(k) => labels.contains_key(k),
            Selector::Eq(k, v) => labels.get(k).is_some_and(|x| x == v),
            Selector::Ne(k, v) => labels.get(k).is_none_or(|x| x != v),
            Selector::Contains(k, v) => labels.get(k).is_some_and(|x| x.contains(v.as_str())),
            Selector::StartsWith(k, v) => labels.get(k).is_some_and(|x| x.starts_with(v.as_str())),
            Selector::EndsWith(k, v) => labels.get(k).is_some_and(|x| x.ends_with(v.as_str())),
            Selector::In(k, set) => labels.get(k).is_some_and(|x| set.contains(x)),
            Selector::NotIn(k, set) => labels.get(k).is_none_or(|x| !set.contains(x)),
            Selector::Not(inner) => !inner.matches(labels),
            Selector::And(items) => items.iter().all(|s| s.matches(labels)),
            Selector::Or(items) => items.iter().any(|s| s.matches(labels)),
        }
    }
}

fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    if s.contains('"') {
        write!(f, "'{s}'")
    } else {
        write!(f, "\"{s}\"")
    }
}

fn write_set(f: &mut fmt::Formatter<'_>, set: &BTreeSet<String>) -> fmt::Result {
    f.write_str("{")?;
    for (i, v) in set.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_str(f, v)?;
    }
    f.write_str("}")
}

/// Canonical text form; parsing it gives back an equal selector.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::All => f.write_str("all()"),
            Selector::Has(k) => write!(f, "has({k})"),
            Selector::Eq(k, v) => {
                write!(f, "{k} == ")?;
                write_str(f, v)
            }
            Selector::Ne(k, v) => {
                write!(f, "{k} != ")?;
                write_str(f, v)
            }
            Selector::Contains(k, v) => {
                write!(f, "{k} contains ")?;
                write_str(f, v)
            }
            Selector::StartsWith(k, v) => {
                write!(f, "{k} starts with ")?;
                write_str(f, v)
            }
            Selector::EndsWith(k, v) => {
                write!(f, "{k} ends with ")?;
                write_str(f, v)
            }
            Selector::In(k, set) => {
                write!(f, "{k} in ")?;
                write_set(f, set)
            }
            Selector::NotIn(k, set) => {
                write!(f, "{k} not in ")?;
                write_set(f, set)
            }
            Selector::Not(inner) => write!(f, "!({inner})"),
            Selector::And(items) | Selector::Or(items) => {
                let sep = if matches!(self, Selector::And(_)) {
                    " && "
                } else {
                    " || "
                };
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "({s})")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Selector::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(sel: &str, pairs: &[(&str, &str)]) -> bool {
        Selector::parse(sel).unwrap().matches(&labels(pairs))
    }

    #[test]
    fn empty_and_all_match_everything() {
        assert!(m("", &[]));
        assert!(m("   ", &[("a", "b")]));
        assert!(m("all()", &[]));
        assert!(m("global()", &[]));
        assert!(m("all( )", &[]));
    }

    #[test]
    fn equality_and_inequality() {
        assert!(m("rack == 'a'", &[("rack", "a")]));
        assert!(!m("rack == 'a'", &[("rack", "b")]));
        assert!(!m("rack == 'a'", &[]));
        assert!(m("rack != 'a'", &[]), "!= matches an absent label");
        assert!(m("rack != \"a\"", &[("rack", "b")]));
        assert!(!m("rack != 'a'", &[("rack", "a")]));
    }

    #[test]
    fn sets() {
        assert!(m("rack in {'a', 'b'}", &[("rack", "b")]));
        assert!(!m("rack in {'a','b'}", &[("rack", "c")]));
        assert!(!m("rack in {}", &[("rack", "c")]));
        assert!(!m("rack in {'a'}", &[]));
        assert!(
            m("rack not in {'a'}", &[]),
            "not in matches an absent label"
        );
        assert!(m("rack not   in {'a'}", &[("rack", "c")]));
        assert!(!m("rack not in {'a'}", &[("rack", "a")]));
    }

    #[test]
    fn string_operators() {
        assert!(m("name contains 'ode'", &[("name", "node-1")]));
        assert!(m("name starts with 'node'", &[("name", "node-1")]));
        assert!(m("name ends with '-1'", &[("name", "node-1")]));
        assert!(!m("name ends with '-2'", &[("name", "node-1")]));
        assert!(!m("name contains 'x'", &[]));
    }

    #[test]
    fn has_not_and_or_parens() {
        assert!(m("has(route-reflector)", &[("route-reflector", "")]));
        assert!(m("!has(rr)", &[]));
        assert!(m("!!has(rr)", &[("rr", "true")]));
        assert!(m("has(a) && has(b)", &[("a", "1"), ("b", "1")]));
        assert!(!m("has(a) && has(b)", &[("a", "1")]));
        assert!(m("has(a) || has(b)", &[("b", "1")]));
        // && binds tighter than ||.
        assert!(m("has(a) || has(b) && has(c)", &[("a", "1")]));
        assert!(!m("(has(a) || has(b)) && has(c)", &[("a", "1")]));
        assert!(m("!(has(a) && has(b))", &[("a", "1")]));
        assert!(m(
            "kubernetes.io/hostname == 'n-1' && example.com/rack in {'r1'}",
            &[
                ("kubernetes.io/hostname", "n-1"),
                ("example.com/rack", "r1")
            ]
        ));
    }

    #[test]
    fn keywords_need_a_word_boundary() {
        // `index` is a label, not `in` + `dex`.
        assert!(m("a == 'x' && index == 'y'", &[("a", "x"), ("index", "y")]));
        assert!(m("has(in)", &[("in", "")]));
    }

    #[test]
    fn errors_name_position_and_expectation() {
        let e = Selector::parse("rack == a").unwrap_err();
        assert_eq!(e.position, 8);
        assert!(e.to_string().contains("expected a quoted string"), "{e}");
        let e = Selector::parse("rack = 'a'").unwrap_err();
        assert_eq!(e.position, 5);
        assert!(e.to_string().contains("'=='"), "{e}");
        let e = Selector::parse("has(a").unwrap_err();
        assert!(e.to_string().contains("')'"), "{e}");
        let e = Selector::parse("rack == 'a").unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
        let e = Selector::parse("rack").unwrap_err();
        assert!(e.to_string().contains("operator"), "{e}");
        let e = Selector::parse("has(a) has(b)").unwrap_err();
        assert_eq!(e.position, 7);
        let e = Selector::parse("(has(a)").unwrap_err();
        assert!(e.to_string().contains("')'"), "{e}");
        let e = Selector::parse("a in {'x' 'y'}").unwrap_err();
        assert!(e.to_string().contains("',' or '}'"), "{e}");
        let e = Selector::parse("a & b").unwrap_err();
        assert!(e.to_string().contains("'&&'"), "{e}");
        let e = Selector::parse("has(a) &&").unwrap_err();
        assert!(e.to_string().contains("end of selector"), "{e}");
        let long = "a".repeat(513);
        assert!(Selector::parse(&format!("has({long})")).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let sel: Selector = serde_json::from_str("\"rack == 'a'\"").unwrap();
        assert_eq!(sel, Selector::Eq("rack".into(), "a".into()));
        assert_eq!(
            serde_json::to_string(&sel).unwrap(),
            "\"rack == \\\"a\\\"\""
        );
        assert!(serde_json::from_str::<Selector>("\"rack ==\"").is_err());
    }

    fn arb_label() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9./_-]{0,6}"
    }

    fn arb_value() -> impl Strategy<Value = String> {
        "[a-z0-9 ]{0,4}"
    }

    fn arb_selector() -> impl Strategy<Value = Selector> {
        let leaf = prop_oneof![
            Just(Selector::All),
            arb_label().prop_map(Selector::Has),
            (arb_label(), arb_value()).prop_map(|(k, v)| Selector::Eq(k, v)),
            (arb_label(), arb_value()).prop_map(|(k, v)| Selector::Ne(k, v)),
            (arb_label(), arb_value()).prop_map(|(k, v)| Selector::Contains(k, v)),
            (arb_label(), arb_value()).prop_map(|(k, v)| Selector::StartsWith(k, v)),
            (arb_label(), arb_value()).prop_map(|(k, v)| Selector::EndsWith(k, v)),
            (
                arb_label(),
                proptest::collection::btree_set(arb_value(), 0..3)
            )
                .prop_map(|(k, s)| Selector::In(k, s)),
            (
                arb_label(),
                proptest::collection::btree_set(arb_value(), 0..3)
            )
                .prop_map(|(k, s)| Selector::NotIn(k, s)),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|s| Selector::Not(Box::new(s))),
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Selector::And),
                proptest::collection::vec(inner, 2..4).prop_map(Selector::Or),
            ]
        })
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(sel in arb_selector()) {
            let text = sel.to_string();
            let back = Selector::parse(&text).unwrap();
            prop_assert_eq!(back, sel);
        }

        #[test]
        fn parser_never_panics(input in ".{0,64}") {
            let _ = Selector::parse(&input);
        }

        #[test]
        fn negation_inverts(sel in arb_selector(),
                            pairs in proptest::collection::btree_map(arb_label(), arb_value(), 0..4)) {
            let not = Selector::Not(Box::new(sel.clone()));
            prop_assert_eq!(not.matches(&pairs), !sel.matches(&pairs));
        }
    }
}
