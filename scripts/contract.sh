#!/usr/bin/env bash
# The served contract: schemathesis against a live agent with a running job.
#
#   scripts/contract.sh [--max-examples N] [--seed N]
#
# 1. installs python3-venv when missing (apt-get) and schemathesis (PyPI, pinned) into a venv
#    under <cargo target dir>/contract;
# 2. builds the dtle debug binary (`cargo build --bin dtle`; DTLE_BIN overrides);
# 3. on the test bed (scripts/testbed.sh, which must be up) creates schema `contract_db` on the
#    source with a few rows, starts `dtle agent` on 127.0.0.1:18790 with a fresh state folder,
#    posts a job replicating the schema and waits until it runs past its snapshot;
# 4. runs schemathesis over every operation of GET /openapi.json while rows keep being written
#    on the source, with the checks: no 5xx (not_a_server_error), every status, content type,
#    header and body as the document says, and no secret of the job in any response
#    (tests/contract/hooks.py, which also points half the reads at the real job's IDs);
#    first the examples, coverage and fuzzing phases;
# 5. checks that the job kept replicating: the target has every row of the source;
# 6. then the stateful phase, whose links pause, resume, stop and purge the job;
# 7. stops the agent and the writer (by pid) and drops the schema on both servers.
# Exit status: 0 when schemathesis found nothing and the job kept replicating.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { echo "contract: $*" >&2; }
die() { log "error: $*"; exit 1; }

. "$ROOT/scripts/lib/processes.sh"

SCHEMATHESIS=schemathesis==4.32.5
PORT=18790
SCHEMA=contract_db
MAX_EXAMPLES=40
SEED=${DTLE_CONTRACT_SEED:-$RANDOM}
while [ $# -gt 0 ]; do
    case "$1" in
        --max-examples) MAX_EXAMPLES=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        *) die "unknown argument $1" ;;
    esac
done

scripts/testbed.sh status >/dev/null 2>&1 || die "the test bed is down: run scripts/testbed.sh up"
eval "$(scripts/testbed.sh env)"

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
WORK=$TARGET/contract
VENV=$WORK/venv
mkdir -p "$WORK"

python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv
installed=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' \
    2>/dev/null || true)
if [ "$installed" != "${SCHEMATHESIS#*==}" ]; then
    log "installing $SCHEMATHESIS into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "$SCHEMATHESIS"
fi
PY=$VENV/bin/python

if [ -z "${DTLE_BIN:-}" ]; then
    cargo build --quiet --locked --bin dtle
    DTLE_BIN=$TARGET/debug/dtle
fi

mysql_at() { # HOST:PORT SQL
    "$(find_bin mariadb)" --no-defaults -h "${1%:*}" -P "${1#*:}" -u "$DTLE_TEST_USER" \
        -p"$DTLE_TEST_PASSWORD" -N -e "$2"
}
count_at() { mysql_at "$1" "SELECT COUNT(*) FROM $SCHEMA.t" 2>/dev/null || echo -1; }

agent_pid= writer_pid=
cleanup() {
    [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null || true
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
    mysql_at "$DTLE_TEST_SRC" "DROP DATABASE IF EXISTS $SCHEMA" || true
    # The job's position goes with its rows: a later run must start with a snapshot.
    mysql_at "$DTLE_TEST_DST" "DROP DATABASE IF EXISTS $SCHEMA" || true
    for table in job_position gtid_executed; do
        mysql_at "$DTLE_TEST_DST" "DELETE FROM dtle.$table WHERE job_name = 'contract-job'" \
            2>/dev/null || true
    done
}
trap cleanup EXIT

cleanup
mysql_at "$DTLE_TEST_SRC" "CREATE DATABASE $SCHEMA;
    USE $SCHEMA;
    CREATE TABLE $SCHEMA.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(64), d DECIMAL(12,3), at DATETIME(6));
    INSERT INTO $SCHEMA.t (v, d, at) SELECT CONCAT('row ', seq), seq / 7, NOW(6) FROM seq_1_to_500;"

rm -rf "$WORK/state"
# Every call carries the admin token: the document's 401 and 403 are the gate's, held apart.
TOKEN=contract-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
export DTLE_CONTRACT_TOKEN=$TOKEN
DTLE_ADMIN_TOKEN=$TOKEN "$DTLE_BIN" agent --listen "127.0.0.1:$PORT" --nats "$DTLE_TEST_NATS" \
    --state-dir "$WORK/state" 2>"$WORK/agent.log" &
agent_pid=$!
BASE=http://127.0.0.1:$PORT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.2
done

cat >"$WORK/job.json" <<JOB
{"ID": "contract-job", "Name": "contract-job", "Tasks": [
  {"Type": "Src", "Config": {"ReplicateDoDb": [{"TableSchema": "$SCHEMA"}],
    "ConnectionConfig": {"Host": "${DTLE_TEST_SRC%:*}", "Port": ${DTLE_TEST_SRC#*:},
      "User": "$DTLE_TEST_USER", "Password": "$DTLE_TEST_PASSWORD"}}},
  {"Type": "Dest", "Config": {
    "ConnectionConfig": {"Host": "${DTLE_TEST_DST%:*}", "Port": ${DTLE_TEST_DST#*:},
      "User": "$DTLE_TEST_USER", "Password": "$DTLE_TEST_PASSWORD"}}}]}
JOB
JOB_ID=$("$PY" tests/contract/prepare.py register "$BASE" "$WORK/job.json")
"$PY" tests/contract/prepare.py wait-running "$BASE" "$JOB_ID"
log "job $JOB_ID runs; schemathesis (seed $SEED, $MAX_EXAMPLES examples per operation)"

# Numbers that move: a row every 200 ms for the whole run.
(while true; do
    mysql_at "$DTLE_TEST_SRC" "INSERT INTO $SCHEMA.t (v, d, at) VALUES ('during', RAND() * 1000, NOW(6))" || true
    sleep 0.2
done) &
writer_pid=$!

export DTLE_CONTRACT_IDS DTLE_CONTRACT_SECRETS=$DTLE_TEST_PASSWORD,$TOKEN DTLE_CONTRACT_SEED=$SEED
DTLE_CONTRACT_IDS=$("$PY" tests/contract/prepare.py ids "$BASE" "$JOB_ID")
st() { # CONFIG PHASES: one schemathesis pass over every operation
    PYTHONPATH=$ROOT/tests/contract SCHEMATHESIS_HOOKS=hooks "$VENV/bin/st" \
        --config-file "$ROOT/tests/contract/$1" run "$BASE/openapi.json" \
        -H "Authorization: Bearer $TOKEN" \
        --phases "$2" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,no_secret_leaks \
        --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 --request-timeout 30 \
        --suppress-health-check all --no-color
}
status=0
# First the passes that keep the job running (writes get random IDs)...
st reads-only-real.toml examples,coverage,fuzzing || status=$?

kill "$writer_pid" 2>/dev/null; wait "$writer_pid" 2>/dev/null || true
writer_pid=
# ... through which the job kept replicating: the target catches up with every row.
for _ in $(seq 120); do
    [ "$(count_at "$DTLE_TEST_SRC")" = "$(count_at "$DTLE_TEST_DST")" ] && break
    sleep 0.5
done
src=$(count_at "$DTLE_TEST_SRC") dst=$(count_at "$DTLE_TEST_DST")
if [ "$src" != "$dst" ]; then
    log "the job stopped replicating during the run: source $src rows, target $dst (log: $WORK/agent.log)"
    status=1
fi
# Then the passes that take the real job's IDs from the answers, for writes too: links and
# reused values pause, resume, stop and purge it, and the answers about a job in each of those
# states are held to the document.
st follow-answers.toml fuzzing,stateful || status=$?
# Neither the job's password nor the token is in the agent's log or its state folder.
for secret in "$DTLE_TEST_PASSWORD" "$TOKEN"; do
    if grep -rlF -- "$secret" "$WORK/agent.log" "$WORK/state" >&2; then
        log "a secret is written in clear in the file(s) above"
        status=1
    fi
done
[ "$status" -eq 0 ] && log "passed: $src rows replicated during the run" || log "failed (seed $SEED)"
exit "$status"
