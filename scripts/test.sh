#!/usr/bin/env bash
# Runs every check and test of dtle-rs on this machine, from a clean clone:
#   test bed up (installing MariaDB and nats-server if missing), formatting, clippy, all tests,
#   then the test bed down again unless it was already running before.
# The README's test command and .ci/run both call this.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if ! command -v cargo >/dev/null; then
    # rustup installs put cargo here; a non-login shell may not have it on PATH.
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "test.sh: cargo not found; install Rust (rustup) first" >&2; exit 1; }

# --large: the randomized fidelity test with many rows per table and phase (see README).
if [ "${1:-}" = "--large" ]; then
    shift
    export DTLE_FIDELITY_ROWS="${DTLE_FIDELITY_ROWS:-50000}"
fi

was_up=0
scripts/testbed.sh status >/dev/null 2>&1 && was_up=1
scripts/testbed.sh up
if [ "$was_up" -eq 0 ]; then
    trap 'scripts/testbed.sh down' EXIT
fi

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test" >&2
cargo test --workspace --locked "$@"
echo "== Nomad conformance" >&2
scripts/conformance.sh
echo "== API contract (schemathesis)" >&2
scripts/contract.sh
