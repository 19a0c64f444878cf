#!/usr/bin/env bash
# Builds and runs one libFuzzer target of fuzz/ (the tern fuzz crate) or bgp-proto/fuzz/ on the
# stable toolchain: the coverage instrumentation cargo-fuzz adds (-Cpasses=sancov-module ...) is
# passed by hand, without -Zsanitizer (nightly only), so no AddressSanitizer; Rust's own bounds
# and overflow checks (debug assertions on) catch memory errors in safe code.
#
#   scripts/fuzz.sh session 60            # target `session` of fuzz/, 60 seconds
#   scripts/fuzz.sh receive 3600 -jobs=1  # one hour; extra arguments go to libFuzzer
#   FUZZ_CRATE=bgp-proto/fuzz scripts/fuzz.sh decode 60
#   scripts/fuzz.sh session 0             # build every target only
#
# The corpus lives in <crate>/corpus/<target> (kept between runs), crashes in
# <crate>/artifacts/<target>/. Exit status non-zero when a crash, leak or timeout was found.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer args...]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer args...]}
shift 2
crate=${FUZZ_CRATE:-fuzz}
flags=(
  --cfg fuzzing
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  -Cdebug-assertions
  -Coverflow-checks
  -Cdebuginfo=1
)
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/$crate/target}
# An explicit --target keeps the instrumentation out of build scripts and proc macros.
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${flags[*]}" cargo build --manifest-path "$crate/Cargo.toml" --release \
  --target "$host" --bins
[ "$seconds" = 0 ] && exit 0  # build only
mkdir -p "$crate/corpus/$target" "$crate/artifacts/$target"
exec "$CARGO_TARGET_DIR/$host/release/$target" "$crate/corpus/$target" \
  -artifact_prefix="$crate/artifacts/$target/" -max_total_time="$seconds" -print_final_stats=1 \
  -timeout=10 -rss_limit_mb=2048 "$@"
