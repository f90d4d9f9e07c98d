#!/usr/bin/env bash
# Peak memory of the two tasks of a job for huge values, through the binlog phase.
#
#   scripts/bench-memory.sh [row|txn|all]      (default: all)
#
#   row  one row with a LONGBLOB of ROW_MB MiB (default 512), inserted after the job reached the
#        binlog phase;
#   txn  one transaction of TXN_ROWS rows of TXN_ROW_KB KiB each (default 1024 x 1024 KiB = 1 GiB),
#        one INSERT ... SELECT, also in the binlog phase.
#
# For each case it starts `dtle task run --role dest` and `--role src` on a fresh job, waits for
# the binlog phase, writes the data on the source, waits until the target holds it, and prints
# each task's peak resident set (VmHWM from /proc/<pid>/status, the kernel's high-water mark, read
# every half second so a task that dies still reports its last value) and the source and target
# CHECKSUM TABLE, which must be equal.
#
# Assumes the test bed is up (scripts/testbed.sh up) and a built binary: DTLE_BIN, default
# target/debug/dtle (`cargo build`; a debug build is slower but the memory profile is the same:
# the copies are the same copies). Raises max_allowed_packet on both servers to 1 GiB if lower
# (never lowers it). Uses only the schemas mem_bench_row / mem_bench_txn and the jobs
# mem-bench-row / mem-bench-txn, and drops the schemas again at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DTLE_BIN=${DTLE_BIN:-$ROOT/target/debug/dtle}
ROW_MB=${ROW_MB:-512}
TXN_ROWS=${TXN_ROWS:-1024}
TXN_ROW_KB=${TXN_ROW_KB:-1024}
TIMEOUT=${TIMEOUT:-900}
SRC_PORT=3307
DST_PORT=3308
NATS_URL=${NATS_URL:-nats://127.0.0.1:8193}
WORK=${WORK:-$ROOT/target/bench-memory}
GIB=1073741824

die() { echo "bench-memory: $*" >&2; exit 1; }
sql() { local port=$1; shift; mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot -N -B -e "$*"; }

[ -x "$DTLE_BIN" ] || die "no binary at $DTLE_BIN (cargo build, or set DTLE_BIN)"
sql $SRC_PORT "SELECT 1" >/dev/null || die "the source on $SRC_PORT does not answer (scripts/testbed.sh up)"
sql $DST_PORT "SELECT 1" >/dev/null || die "the target on $DST_PORT does not answer (scripts/testbed.sh up)"

for port in $SRC_PORT $DST_PORT; do
    current=$(sql "$port" "SELECT @@global.max_allowed_packet")
    if [ "$current" -lt $GIB ]; then
        sql "$port" "SET GLOBAL max_allowed_packet = $GIB"
        echo "bench-memory: raised max_allowed_packet on $port from $current to $GIB" >&2
    fi
done

# peak_kb PID: the task's VmHWM in KiB (empty once the process is gone).
peak_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap cleanup EXIT

# run_case NAME SCHEMA JOB CREATE_SQL LOAD_SQL ROWS
run_case() {
    local name=$1 schema=$2 job=$3 create=$4 load=$5 rows=$6
    local dir=$WORK/$job
    rm -rf "$dir" && mkdir -p "$dir"
    sql $SRC_PORT "DROP DATABASE IF EXISTS \`$schema\`; CREATE DATABASE \`$schema\`; $create"
    sql $DST_PORT "DROP DATABASE IF EXISTS \`$schema\`"
    for table in gtid_executed job_position snapshot_progress; do
        sql $DST_PORT "DELETE FROM dtle.$table WHERE job_name = '$job'" 2>/dev/null || true
    done
    cat >"$dir/job.json" <<EOF
{"Name": "$job", "Tasks": [
  {"Type": "Src", "Config": {"ReplicateDoDb": [{"TableSchema": "$schema"}],
    "ConnectionConfig": {"Host": "127.0.0.1", "Port": $SRC_PORT, "User": "dtle", "Password": "dtle-pass"}}},
  {"Type": "Dest", "Config": {
    "ConnectionConfig": {"Host": "127.0.0.1", "Port": $DST_PORT, "User": "dtle", "Password": "dtle-pass"}}}]}
EOF
    DTLE_LOG=info "$DTLE_BIN" task run --role dest --nats "$NATS_URL" "$dir/job.json" 2>"$dir/dest.log" &
    local dest=$!
    PIDS+=("$dest")
    DTLE_LOG=info "$DTLE_BIN" task run --role src --nats "$NATS_URL" "$dir/job.json" 2>"$dir/src.log" &
    local src=$!
    PIDS+=("$src")

    local waited=0 phase=""
    until [ "$phase" = binlog ]; do
        phase=$(sql $DST_PORT "SELECT phase FROM dtle.job_position WHERE job_name = '$job'" 2>/dev/null || true)
        sleep 0.5
        waited=$((waited + 1))
        [ $waited -lt 240 ] || die "$name: the job did not reach the binlog phase (see $dir)"
    done
    local src_before dest_before
    src_before=$(peak_kb $src)
    dest_before=$(peak_kb $dest)

    local started=$SECONDS
    sql $SRC_PORT "$load"
    local loaded=$((SECONDS - started))

    local src_peak=$src_before dest_peak=$dest_before count=0 now
    while :; do
        now=$(peak_kb $src); [ -n "$now" ] && src_peak=$now
        now=$(peak_kb $dest); [ -n "$now" ] && dest_peak=$now
        count=$(sql $DST_PORT "SELECT COUNT(*) FROM \`$schema\`.t" 2>/dev/null || echo 0)
        [ "$count" = "$rows" ] && break
        kill -0 $src 2>/dev/null || die "$name: the src task died (see $dir/src.log)"
        kill -0 $dest 2>/dev/null || die "$name: the dest task died (see $dir/dest.log)"
        [ $((SECONDS - started)) -lt "$TIMEOUT" ] || die "$name: the target has $count of $rows rows after ${TIMEOUT}s"
        sleep 0.5
    done
    local replicated=$((SECONDS - started))
    now=$(peak_kb $src); [ -n "$now" ] && src_peak=$now
    now=$(peak_kb $dest); [ -n "$now" ] && dest_peak=$now
    cleanup

    local sum_src sum_dst verdict
    sum_src=$(sql $SRC_PORT "CHECKSUM TABLE \`$schema\`.t" | awk '{ print $2 }')
    sum_dst=$(sql $DST_PORT "CHECKSUM TABLE \`$schema\`.t" | awk '{ print $2 }')
    if [ "$sum_src" = "$sum_dst" ] && [ -n "$sum_src" ] && [ "$sum_src" != NULL ]; then
        verdict=equal
    else
        verdict=DIFFERENT
    fi
    printf '%-22s src  peak RSS %6d MiB (before the load %4d MiB)\n' "$name" $((src_peak / 1024)) $((src_before / 1024))
    printf '%-22s dest peak RSS %6d MiB (before the load %4d MiB)\n' "$name" $((dest_peak / 1024)) $((dest_before / 1024))
    printf '%-22s load %ds on the source, replicated %ds after it began; CHECKSUM TABLE source %s target %s: %s\n' \
        "$name" "$loaded" "$replicated" "$sum_src" "$sum_dst" "$verdict"
    sql $SRC_PORT "DROP DATABASE IF EXISTS \`$schema\`"
    sql $DST_PORT "DROP DATABASE IF EXISTS \`$schema\`"
    [ "$verdict" = equal ] || die "$name: source and target differ"
}

case_row() {
    run_case "row ${ROW_MB} MiB" mem_bench_row mem-bench-row \
        "CREATE TABLE mem_bench_row.t (id INT PRIMARY KEY, b LONGBLOB)" \
        "INSERT INTO mem_bench_row.t VALUES (1, REPEAT('0123456789abcdef', $ROW_MB * 65536))" 1
}

case_txn() {
    run_case "txn ${TXN_ROWS}x${TXN_ROW_KB} KiB" mem_bench_txn mem-bench-txn \
        "CREATE TABLE mem_bench_txn.t (id INT PRIMARY KEY, b MEDIUMBLOB)" \
        "INSERT INTO mem_bench_txn.t SELECT seq, REPEAT(CHAR(65 + seq % 26), $TXN_ROW_KB * 1024) FROM mem_bench_txn.seq_1_to_$TXN_ROWS" \
        "$TXN_ROWS"
}

echo "bench-memory: $DTLE_BIN" >&2
case ${1:-all} in
row) case_row ;;
txn) case_txn ;;
all) case_row; case_txn ;;
*) die "usage: $0 [row|txn|all]" ;;
esac
