#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit and property tests, golden vectors,
# and the interop suite in network namespaces (needs root; skipped with a notice otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --profile ci
