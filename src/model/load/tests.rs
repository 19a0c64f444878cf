//! The loader: both API forms, multi-document files, bad resources skipped and named, the
//! v3 metadata annotation, Secrets, Services and EndpointSlices.

use super::*;
use crate::model::{AsNumber, Community};

/// Loads `text`; `Err` with the first problem when any resource was skipped.
fn load(text: &str) -> Result<Cluster, ResourceProblem> {
    let c = load_all(text);
    match c.problems.first() {
        Some(p) => Err(p.clone()),
        None => Ok(c),
    }
}

fn load_all(text: &str) -> Cluster {
    let mut c = Cluster::default();
    load_documents(&mut c, Path::new("test.yaml"), text, "kube-system");
    c
}

#[test]
fn multi_document_v3() {
    let c = load(
        r#"
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  asNumber: 64513
  nodeToNodeMeshEnabled: false
  serviceClusterIPs: [{cidr: 10.96.0.0/12}]
  communities: [{name: c1, value: "65000:1"}]
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor}
spec:
  peerIP: "10.0.0.1:1790"
  asNumber: "1.10"
  nodeSelector: rack == 'a'
---
# empty document
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: np}
"#,
    )
    .unwrap();
    let cfg = c.global_bgp_configuration().unwrap();
    assert_eq!(cfg.as_number, Some(AsNumber(64513)));
    assert_eq!(cfg.communities[0].value, Community::Standard(65000, 1));
    let peer = &c.bgp_peers["tor"].spec;
    assert_eq!(peer.peer_ip.unwrap().port, Some(1790));
    assert_eq!(peer.as_number, AsNumber(65546));
    assert_eq!(c.notes.len(), 1);
    assert!(c.notes[0].contains("NetworkPolicy"), "{:?}", c.notes);
}

#[test]
fn v1_storage_form_unpacks_metadata_and_string_bools() {
    let c = load(
        r#"
apiVersion: crd.projectcalico.org/v1
kind: Node
metadata:
  name: n1
  annotations:
    projectcalico.org/metadata: '{"labels":{"rack":"a"},"annotations":{"x":"y"}}'
spec:
  bgp: {ipv4Address: 10.0.0.1/24}
---
apiVersion: crd.projectcalico.org/v1
kind: BlockAffinity
metadata: {name: n1-10-244-0-0-26}
spec: {state: confirmed, node: n1, cidr: 10.244.0.0/26, deleted: "false", type: host}
"#,
    )
    .unwrap();
    let node = &c.nodes["n1"];
    assert_eq!(node.metadata.labels["rack"], "a");
    assert_eq!(node.metadata.annotations["x"], "y");
    assert!(!c.block_affinities["n1-10-244-0-0-26"].spec.deleted.0);
}

#[test]
fn kubernetes_node_and_secret() {
    let c = load(
        r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata:
    name: k1
    labels: {kubernetes.io/hostname: k1}
    annotations:
      projectcalico.org/IPv4Address: 192.168.1.10/24
      projectcalico.org/ASNumber: "65001"
      projectcalico.org/RouteReflectorClusterID: 224.0.0.1
  status: {addresses: []}
- apiVersion: v1
  kind: Secret
  metadata: {name: bgp}
  data: {a: aHVudGVyMg==}
  stringData: {b: plain}
"#,
    )
    .unwrap();
    let bgp = c.nodes["k1"].spec.bgp.as_ref().unwrap();
    assert_eq!(
        bgp.ipv4_address.unwrap().subnet().to_string(),
        "192.168.1.0/24"
    );
    assert_eq!(bgp.as_number, Some(AsNumber(65001)));
    let s = &c.secrets[&("kube-system".to_string(), "bgp".to_string())];
    assert_eq!(s.values["a"], b"hunter2");
    assert_eq!(s.values["b"], b"plain");
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[test]
fn errors_name_file_kind_resource_and_field() {
    let e = load(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: 10.0.0.300, asNumber: 1}\n",
        )
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("test.yaml: BGPPeer \"bad\": field spec.peerIP: invalid peer address"),
        "{text}"
    );
    let e = load("apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV4:\n  - {action: Maybe}\n").unwrap_err();
    assert!(
        e.to_string().contains("field spec.exportV4[0].action"),
        "{e}"
    );
    let e = load("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {nodeSelector: \"rack ==\", peerIP: 10.0.0.1}\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("field spec.nodeSelector: invalid selector"),
        "{e}"
    );
    let e = load("apiVersion: v1\nkind: Node\nmetadata: {name: k, annotations: {projectcalico.org/ASNumber: x}}\n").unwrap_err();
    assert!(e.to_string().contains("projectcalico.org/ASNumber"), "{e}");
    let e = load("a: [").unwrap_err();
    assert!(
        e.kind.is_empty() && e.message.starts_with("invalid YAML"),
        "{e}"
    );
    let e = load("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {asNumber: 1}\n").unwrap_err();
    assert!(e.to_string().contains("peerIP or peerSelector"), "{e}");
}

#[test]
fn unknown_spec_fields_and_kinds_are_named_not_fatal() {
    let c = load("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p, resourceVersion: '1'}\nspec: {peerIP: 10.0.0.1, asNumber: 1, nodeSelektor: all()}\n---\n\
                      apiVersion: projectcalico.org/v3\nkind: BgpPeer\nmetadata: {name: q}\nspec: {peerIP: 10.0.0.2, asNumber: 1}\n---\n\
                      apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np}\n").unwrap();
    // The peer loads (the daemon ignores the field, as calicoctl would not have let it in).
    assert!(c.bgp_peers.contains_key("p"));
    assert_eq!(c.unknown.len(), 2, "{:?}", c.unknown);
    assert!(
        c.unknown[0].contains("BGPPeer \"p\": unknown field spec.nodeSelektor")
            && c.unknown[0].contains("calicoctl refuses"),
        "{:?}",
        c.unknown
    );
    assert!(
        c.unknown[1]
            .contains("unknown resource type (BgpPeer) and/or version (projectcalico.org/v3)")
            && c.unknown[1].contains("did you mean BGPPeer?"),
        "{:?}",
        c.unknown
    );
    // A Calico kind tern does not read is only a note.
    assert_eq!(c.notes.len(), 1);
    assert!(c.notes[0].contains("NetworkPolicy"), "{:?}", c.notes);
}

/// Errors show the value and say what Calico expects, not Rust's type names.
#[test]
fn errors_say_what_calico_expects_with_the_value() {
    let problem = |spec: &str| {
        load(&format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {spec}\n"
        ))
        .unwrap_err()
        .to_string()
    };
    let t = problem("{peerIP: 10.0.0.1, asNumber: 1, ttlSecurity: 300}");
    assert!(
        t.contains("field spec.ttlSecurity = '300' (expected a TTL security hop count, 0 to 255)"),
        "{t}"
    );
    assert!(!t.contains("u8"), "{t}");
    let t = problem("{peerIP: 10.0.0.1, asNumber: 1, reachableBy: 10.0.0.999}");
    assert!(
        t.contains("field spec.reachableBy = '10.0.0.999' (invalid IP address)"),
        "{t}"
    );
    let t = problem("{peerIP: 10.0.0.1, asNumber: 1.10}");
    assert!(
        t.contains("field spec.asNumber") && t.contains("\"1.10\""),
        "{t}"
    );
    assert!(!t.contains("\"1.1\""), "must not suggest \"1.1\": {t}");
    let t = problem("{peerIP: 10.0.0.1, asNumber: 1, nextHopMode: Sometimes}");
    assert!(
        t.contains("field spec.nextHopMode = 'Sometimes' (must be one of Auto, Self, Keep)"),
        "{t}"
    );
}

#[test]
fn documents_split_at_markers_keeping_line_numbers() {
    let text = "a: 1\n---\nb: 2\n--- # c\nc: 3\n---\n\n---\nkey: |\n  --- not a marker\n";
    let parts = split_documents(text);
    assert_eq!(parts.len(), 4, "{parts:?}");
    assert_eq!(parts[0], "a: 1\n");
    assert_eq!(parts[1], "\n---\nb: 2\n");
    assert_eq!(parts[2], "\n\n\n--- # c\nc: 3\n");
    assert_eq!(
        parts[3],
        "\n".repeat(7) + "---\nkey: |\n  --- not a marker\n"
    );
    assert!(split_documents("").is_empty());
    assert!(split_documents("---\n").is_empty());
    assert_eq!(split_documents("%YAML 1.2\n---\na: 1\n").len(), 1);
    assert_eq!(split_documents("---x: 1\n"), vec!["---x: 1\n".to_string()]);
}

/// One resource tern cannot use is named and skipped; the rest of the datastore loads.
#[test]
fn a_bad_resource_is_skipped_and_the_rest_loads() {
    let c = load_all(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: good}\nspec: {cidr: 10.0.0.0/16}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: 10.0.0.300, asNumber: 1}\n---\n\
             kind: [\n---\n\
             apiVersion: v1\nkind: List\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: BlockAffinity\n  metadata: {name: b1}\n  spec: {node: n1, cidr: 10.0.0.0/26, state: sideways}\n\
             - apiVersion: projectcalico.org/v3\n  kind: BlockAffinity\n  metadata: {name: b2}\n  spec: {node: n1, cidr: 10.0.0.64/26}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: good-peer}\nspec: {peerIP: 10.0.0.1, asNumber: 1}\n",
    );
    assert!(c.ip_pools.contains_key("good"));
    assert!(c.bgp_peers.contains_key("good-peer"));
    assert!(!c.bgp_peers.contains_key("bad"));
    assert_eq!(c.block_affinities.keys().collect::<Vec<_>>(), ["b2"]);
    let problems: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with("test.yaml: BGPPeer \"bad\": field spec.peerIP")
            && problems[0].ends_with("; skipped"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("test.yaml: document: invalid YAML"),
        "{problems:#?}"
    );
    assert!(problems[1].contains("line 12"), "{problems:#?}");
    assert!(
        problems[2].starts_with("test.yaml: BlockAffinity \"b1\": field spec.state"),
        "{problems:#?}"
    );
}

/// The same from parsed documents, as a datastore other than files hands them over.
#[test]
fn parsed_documents_load_with_problems_collected() {
    let doc = |origin: &str, text: &str| Document {
        origin: origin.to_string(),
        value: serde_yaml_ng::from_str(text).unwrap(),
    };
    let c = load_resources(
        [
            doc(
                "kubernetes",
                "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}",
            ),
            doc(
                "kubernetes",
                "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: q}\nspec: {cidr: banana}",
            ),
        ],
        "kube-system",
    );
    assert_eq!(c.ip_pools.keys().collect::<Vec<_>>(), ["p"]);
    assert_eq!(c.problems.len(), 1);
    assert_eq!(c.problems[0].origin, "kubernetes");
    assert_eq!(
        (c.problems[0].kind.as_str(), c.problems[0].name.as_str()),
        ("IPPool", "q")
    );
}

/// Older Calico versions (and confd's own test corpus) store `state: ""`: implicitly
/// confirmed, as is a missing state.
#[test]
fn empty_or_missing_affinity_state_is_confirmed() {
    let c = load(
            "apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: a}\nspec: {node: n1, cidr: 10.0.0.0/26, state: \"\"}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: b}\nspec: {node: n1, cidr: 10.0.1.0/26}\n",
        )
        .unwrap();
    for name in ["a", "b"] {
        assert_eq!(
            c.block_affinities[name].spec.state,
            AffinityState::Confirmed
        );
    }
}

/// `routeReflector: true` (a YAML boolean) is the label value "true", as Calico reads it.
#[test]
fn label_values_typed_by_yaml_are_strings() {
    let c = load(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: n1\n  labels: {routeReflector: true, rack: 7}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n",
        )
        .unwrap();
    let labels = &c.nodes["n1"].metadata.labels;
    assert_eq!(labels["routeReflector"], "true");
    assert_eq!(labels["rack"], "7");
}

/// A BGPPeer with `peerIP` and no `asNumber` (peering with a Calico node by address, the AS
/// taken from that node) loads.
#[test]
fn peer_ip_without_as_number_loads() {
    let c = load(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: \"fe0a::2\"}\n",
        )
        .unwrap();
    assert_eq!(c.bgp_peers["p"].spec.as_number, AsNumber(0));
}

#[test]
fn directories_load_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.yaml"), "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.1.0.0/16}\n").unwrap();
    std::fs::write(dir.path().join("a.yaml"), "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
    let c = load_paths(&[dir.path().to_path_buf()], "kube-system").unwrap();
    assert_eq!(c.ip_pools["p"].spec.cidr.to_string(), "10.1.0.0/16");
    assert_eq!(c.notes.len(), 1, "duplicate noted");
    let e = load_paths(&[dir.path().join("missing.yaml")], "kube-system").unwrap_err();
    assert!(e.to_string().contains("missing.yaml: cannot read"), "{e}");
}
