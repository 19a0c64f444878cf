#!/usr/bin/env bash
# The demo: three tern nodes in network namespaces (two subnets, a router, an IP-in-IP
# CrossSubnet pool), converged, shown and pinged across, then torn down (also on Ctrl-C).
#
#   sudo scripts/demo.sh                  # full mesh
#   sudo scripts/demo.sh --topology rr    # node-3 as route reflector
#   sudo scripts/demo.sh --keep           # keep the cluster running until Ctrl-C
#
# Installs what is missing (scripts/setup.sh), builds the release
# binary and runs `tern demo` with the arguments given. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root (network namespaces): sudo $0 $*" >&2
  exit 1
fi
scripts/setup.sh
cargo build --release --locked --bin tern
exec target/release/tern demo "$@"
