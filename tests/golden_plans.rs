//! Golden plan tests: `fixtures/clusters/<name>/manifests/` + `nodes.txt` → `plan-<node>.json`.
//! Regenerate with `UPDATE_GOLDEN=1 cargo nextest run -p tern --test golden_plans`, then review
//! the diff against calico-behaviour.md and confd.

use std::path::{Path, PathBuf};

use tern::model::load_paths;
use tern::plan::{PlanOptions, compute};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clusters")
}

fn check_cluster(name: &str) {
    let dir = fixtures().join(name);
    let cluster = load_paths(&[dir.join("manifests")], "kube-system").unwrap();
    let nodes = std::fs::read_to_string(dir.join("nodes.txt")).unwrap();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for node in nodes.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let plan = compute(&cluster, node, &PlanOptions::default()).unwrap();
        let json = serde_json::to_string_pretty(&plan).unwrap() + "\n";
        let path = dir.join(format!("plan-{node}.json"));
        if update {
            std::fs::write(&path, &json).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        if expected != json {
            failures.push(format!(
                "{}:\n--- expected\n{expected}\n+++ actual\n{json}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

macro_rules! golden {
    ($($test:ident => $dir:literal,)*) => {
        $(#[test] fn $test() { check_cluster($dir); })*

        #[test]
        fn every_fixture_has_a_test() {
            let mut dirs: Vec<String> = std::fs::read_dir(fixtures()).unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            dirs.sort();
            let mut listed = vec![$($dir.to_string()),*];
            listed.sort();
            assert_eq!(dirs, listed);
        }
    };
}

golden! {
    mesh_ipip_crosssubnet => "mesh-ipip-crosssubnet",
    route_reflectors => "route-reflectors",
    per_rack_as => "per-rack-as",
    global_dedup => "global-dedup",
    ip_port_peers => "ip-port-peers",
    passwords => "passwords",
    ttl_security => "ttl-security",
    bgpfilter => "bgpfilter",
    dual_stack => "dual-stack",
    mesh_encap_modes => "mesh-encap-modes",
    explicit_peers => "explicit-peers",
    rr_by_address_v6 => "rr-by-address-v6",
    service_advertisement => "service-advertisement",
}

#[test]
fn passwords_never_appear_in_plans() {
    let dir = fixtures().join("passwords");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains("mesh-password") && !text.contains("tor-password"),
                "{}",
                path.display()
            );
        }
    }
}
