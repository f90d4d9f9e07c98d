#!/usr/bin/env bash
# The README's demo command.
#
# For now it brings up the test bed (a source MariaDB, a target MariaDB and nats-server on
# loopback), builds `dtle` and checks the sample job with `dtle job validate`: the replication
# engine and the agent that will run the job end to end have not landed yet (see the issues
# "Replication engine" and "Gateway with an embedded orchestrator"). It says so when it finishes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

scripts/testbed.sh up
cargo build --release --locked --bin dtle
echo
echo "== the sample job (scripts/demo-job.json), as dtle-rs reads it:"
./target/release/dtle job validate scripts/demo-job.json
echo
scripts/testbed.sh status
eval "$(scripts/testbed.sh env)"
cat <<MSG

The test bed is up: source $DTLE_TEST_SRC, target $DTLE_TEST_DST, NATS $DTLE_TEST_NATS
(user $DTLE_TEST_USER). This demo stops here for now: the engine that copies the source to the
target is not built yet, so no job runs and nothing is replicated.
Stop the test bed with: scripts/testbed.sh down
MSG
