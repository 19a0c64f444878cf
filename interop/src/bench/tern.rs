//! tern as a daemon under test: `tern run` with a settings file and a file datastore of
//! Calico manifests (BGPConfiguration AS 65002 without the node mesh, its own Node, BGPPeers
//! for the generator and the monitor, a BGPFilter accepting every route both ways).
//!
//! `tern` runs with `[kernel] program = false`, like the other daemons here, which program
//! nothing; `tern-kernel` keeps tern's default and also installs the learned routes (they are
//! outside any Calico IP pool) into the `dut` namespace's kernel. The benchmark counts the kernel
//! routes of every daemon and reports them.

use anyhow::{Result, bail};

use crate::artifacts::Artifacts;
use crate::netns::Netns;
use crate::process::Process;

use super::dut::{Addressing, DUT_AS, Dut, DutKind, GEN_AS, MON_AS, path};
use super::speaker::HOLD_TIME;

/// The `tern` binary benchmarked: `$TERN_BIN`, else `<workspace>/target/release/tern` (an
/// optimised build, unlike the interop scenarios' debug default).
pub fn tern_binary() -> std::path::PathBuf {
    std::env::var_os("TERN_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/tern")
        })
}

/// The node name tern runs as.
pub const NODE: &str = "dut";

/// The settings file: file datastore, equal timers, metrics off, control socket in `dir`;
/// kernel programming as `program_kernel` says.
pub fn settings(resources: &str, control_socket: &str, program_kernel: bool) -> String {
    format!(
        "node_name = \"{NODE}\"
log_format = \"text\"

[datastore]
type = \"file\"
paths = [\"{resources}\"]

[bgp]
hold_time = {hold}
keepalive_time = {ka}
connect_retry_time = 5

[kernel]
program = {program_kernel}

[control]
socket = \"{control_socket}\"

[metrics]
enabled = false

[birdctl]
enabled = false
",
        hold = HOLD_TIME,
        ka = HOLD_TIME / 3,
    )
}

/// The Calico resources of the benchmark node.
pub fn resources(a: &Addressing) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  asNumber: {DUT_AS}
  nodeToNodeMeshEnabled: false
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: {NODE}
spec:
  bgp:
    ipv4Address: {dut}/30
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: accept-all
spec:
  importV4:
    - action: Accept
  exportV4:
    - action: Accept
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: gen
spec:
  peerIP: {gen}
  asNumber: {GEN_AS}
  filters:
    - accept-all
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: mon
spec:
  peerIP: {mon}
  asNumber: {MON_AS}
  filters:
    - accept-all
",
        dut = a.dut_gen_side,
        gen = a.gen_addr,
        mon = a.mon_addr,
    )
}

/// Starts `tern run` in `netns`.
pub fn start(
    netns: &Netns,
    artifacts: &Artifacts,
    a: &Addressing,
    program_kernel: bool,
) -> Result<Dut> {
    let binary = tern_binary();
    if !binary.is_file() {
        bail!(
            "tern binary {} not built (cargo build --release -p tern, or set TERN_BIN)",
            binary.display()
        );
    }
    let dir = artifacts.runtime_dir("tern")?;
    let resources_dir = dir.join("resources");
    std::fs::create_dir_all(&resources_dir)?;
    std::fs::write(resources_dir.join("calico.yaml"), resources(a))?;
    let conf = dir.join("tern.toml");
    std::fs::write(
        &conf,
        settings(
            path(&resources_dir)?,
            path(&dir.join("tern.ctl"))?,
            program_kernel,
        ),
    )?;
    let process = Process::spawn(
        Some(netns),
        "tern",
        path(&binary)?,
        ["run", "--config", path(&conf)?],
        &artifacts.path("tern.log"),
    )?;
    Ok(Dut {
        kind: if program_kernel {
            DutKind::TernKernel
        } else {
            DutKind::Tern
        },
        processes: vec![process],
        cleanup: vec![],
    })
}
