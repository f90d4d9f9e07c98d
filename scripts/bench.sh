#!/usr/bin/env bash
# Side-by-side benchmark: dtle against real peers, on the same private servers and settings.
#
#   scripts/bench.sh [--tables N] [--rows N] [--backlog-txns N] [--insert-txns N]
#                    [--rates N|max[,...]] [--rate-seconds N] [--threads N] [--timeout S]
#                    [--durable] [--keep] [--no-doc] [--doc PATH] [--only snapshot]
#
# --only snapshot: steps 1-4 only, printing the snapshot table (docs/benchmarks.md untouched).
#
# In one run it:
#   1. installs what is missing (apt-get: mariadb-server mariadb-client nats-server sysbench
#      mydumper) and builds dtle in release (`cargo build --release`, reused if up to date), or
#      uses the binary in $DTLE_BIN (e.g. an older build, to compare two versions);
#   2. starts its OWN servers under state/bench (git-ignored), loopback only, never the shared
#      test bed: source MariaDB 127.0.0.1:3317, target MariaDB 127.0.0.1:3318 (identical settings
#      but server-id and gtid_domain_id), nats-server 127.0.0.1:8293; they are created fresh for
#      each run and stopped at the end by pid (trap), their data deleted unless --keep;
#   3. prepares sysbench tables (--tables x --rows) in schema sbtest on the source;
#   4. snapshot: copies sbtest into a freshly emptied target with mariadb-dump | mariadb,
#      mydumper + myloader (2 threads each) and dtle's snapshot (Src + Dest tasks, done when the
#      target's dtle.job_position.phase is `binlog`); each copy is checked by CHECKSUM TABLE;
#   5. catch-up: from the GTID saved after the prepare, builds a backlog on the source with
#      sysbench oltp_write_only (--backlog-txns) then oltp_insert (--insert-txns); for each
#      contender the target is restored to the saved point (myloader of the dump taken at that
#      point, checked by checksums), then native replication (slave_parallel_threads=0, then 4
#      with slave_parallel_mode=optimistic) or dtle (job with "Gtid" = the saved point, no
#      snapshot) applies the backlog; checked by checksums after each;
#   6. lag: with the dtle job still following, an open-loop sysbench oltp_write_only --rate=N
#      for each rate in --rates (max: closed loop, as fast as the source takes the writes of
#      --threads clients) while a heartbeat row on the source is updated every 100 ms;
#      the target is sampled every 100 ms for the heartbeat's age (NOW(6) - ts), p50/p99/max;
#   7. prints a table (contender, rows/s, CPU, peak RSS, dtle/peer ratios) and writes it with the
#      exact commands, machine, settings and sizes into docs/benchmarks.md (between the markers
#      of its "Latest run" section; the rest of that file is kept as it is).
#
# CPU seconds: user+system of the contender's own processes (from /usr/bin/time -v, or from
# /proc/<pid>/stat for dtle's two tasks and for the servers), reported apart from the CPU the
# two mariadbd servers used during the same interval. Native replication runs inside the target
# server, so its contender CPU is the servers' column. Peak RSS: the kernel's high-water mark
# (VmHWM / time's "Maximum resident set size") of each contender process, summed over the
# processes that run at the same time (dump and load of a pipe; dtle's Src and Dest).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$ROOT/state/bench
W=$STATE/work
SRC_PORT=${BENCH_SRC_PORT:-3317}
DST_PORT=${BENCH_DST_PORT:-3318}
NATS_PORT=${BENCH_NATS_PORT:-8293}
NATS_URL=nats://127.0.0.1:$NATS_PORT
USER_NAME=bench
USER_PASSWORD=bench-pass
DTLE_BIN=${DTLE_BIN:-}  # a given binary is used as is (e.g. an older build, to compare)

TABLES=4
ROWS=250000
BACKLOG_TXNS=200000
INSERT_TXNS=50000
RATES=500,2000,max
RATE_SECONDS=30
THREADS=4
TIMEOUT=1800
DURABLE=0
KEEP=0
DOC=$ROOT/docs/benchmarks.md
WRITE_DOC=1
ONLY=

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --tables) TABLES=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --backlog-txns) BACKLOG_TXNS=$2; shift 2 ;;
    --insert-txns) INSERT_TXNS=$2; shift 2 ;;
    --rates|--rate) RATES=$2; shift 2 ;;
    --rate-seconds) RATE_SECONDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --durable) DURABLE=1; shift ;;
    --keep) KEEP=1; shift ;;
    --no-doc) WRITE_DOC=0; shift ;;
    --doc) DOC=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "bench: unknown argument $1" >&2; usage ;;
    esac
done
for n in "$TABLES" "$ROWS" "$BACKLOG_TXNS" "$INSERT_TXNS" "$RATE_SECONDS" "$THREADS" "$TIMEOUT"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "bench: not a number: $n" >&2; exit 2; }
done
[ -z "$ONLY" ] || [ "$ONLY" = snapshot ] || { echo "bench: --only wants snapshot, got $ONLY" >&2; exit 2; }
[[ $RATES =~ ^([0-9]+|max)(,([0-9]+|max))*$ ]] || { echo "bench: --rates wants N[,N...] (N a number or max), got $RATES" >&2; exit 2; }

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Installation and build

. "$ROOT/scripts/lib/processes.sh"

install_missing() {
    local missing=()
    find_bin mariadbd >/dev/null || missing+=(mariadb-server)
    find_bin mariadb >/dev/null || missing+=(mariadb-client)
    find_bin nats-server >/dev/null || missing+=(nats-server)
    find_bin sysbench >/dev/null || missing+=(sysbench)
    find_bin mydumper >/dev/null || missing+=(mydumper)
    [ -x /usr/bin/time ] || missing+=(time)
    apt_install "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# Our own processes: servers by pid file, everything else by the pids we recorded.

MARIADB=
MARIADB_ADMIN=
CLK_TCK=$(getconf CLK_TCK)
PIDS=()           # background helpers and dtle tasks started by this script

# kill_pid PID: TERM one process we started (and, for a pipeline leader we started with
# setsid, its process group), then reap it.
kill_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_helpers() {
    local pid
    for pid in "${PIDS[@]}"; do
        [ -n "$pid" ] || continue
        if [ -d "/proc/$pid" ]; then
            # helpers run in their own process group (setsid): end the group they lead
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${PIDS[@]}"; do [ -n "$pid" ] && { wait "$pid" 2>/dev/null || true; }; done
    PIDS=()
}

stop_servers() {
    stop_pidfile nats "$STATE/nats/nats.pid" "$STATE/nats" 60
    stop_pidfile dst "$STATE/dst/mysqld.pid" "$STATE/dst/data" 60
    stop_pidfile src "$STATE/src/mysqld.pid" "$STATE/src/data" 60
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_helpers
    if [ -S "$STATE/src/mysqld.sock" ] && [ "$KEEP" = 0 ]; then
        sql_sock src "DROP DATABASE IF EXISTS sbtest" 2>/dev/null || true
    fi
    if [ -S "$STATE/dst/mysqld.sock" ] && [ "$KEEP" = 0 ]; then
        sql_sock dst "STOP SLAVE; RESET SLAVE ALL; DROP DATABASE IF EXISTS sbtest; DROP DATABASE IF EXISTS dtle" 2>/dev/null || true
    fi
    stop_servers
    if [ "$KEEP" = 0 ]; then
        rm -rf "$STATE"
        log "deleted $STATE (use --keep to keep it)"
    else
        log "kept $STATE"
    fi
    [ $rc -eq 0 ] || log "FAILED (exit $rc); logs were under $W"
    exit $rc
}

# ---------------------------------------------------------------------------------------------
# SQL

sql() {
    local port=$1; shift
    "$MARIADB" --no-defaults -h127.0.0.1 -P"$port" -u"$USER_NAME" -p"$USER_PASSWORD" \
        --default-character-set=utf8mb4 -N -B -e "$*"
}
sql_sock() {
    local name=$1; shift
    "$MARIADB" --no-defaults --socket="$STATE/$name/mysqld.sock" -uroot -N -B -e "$*"
}

# The settings both servers share; only server-id, gtid-domain-id and paths differ.
server_settings() {
    local flush=2 sync=0
    [ "$DURABLE" = 1 ] && { flush=1; sync=1; }
    echo --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --max-allowed-packet=1G --max-connections=500 \
        --innodb-buffer-pool-size=1G --innodb-log-file-size=1G --innodb-log-buffer-size=64M \
        --innodb-flush-log-at-trx-commit=$flush --sync-binlog=$sync --innodb-flush-method=O_DIRECT \
        --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
        --binlog-checksum=CRC32 --gtid-strict-mode=1 --log-slave-updates \
        --performance-schema=OFF
}

# start_mariadb NAME PORT SERVER_ID DOMAIN_ID: a fresh data directory every run.
start_mariadb() {
    local name=$1 port=$2 server_id=$3 domain=$4
    local dir=$STATE/$name data=$STATE/$name/data
    stop_pidfile "$name (left from an earlier run)" "$dir/mysqld.pid" "$data" 60
    rm -rf "$dir" && mkdir -p "$dir"
    "$(find_bin mariadb-install-db)" --no-defaults --user="$(id -un)" --datadir="$data" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
        || { cat "$dir/install.log" >&2; die "$name: mariadb-install-db failed"; }
    local user_args=()
    [ "$(id -u)" -eq 0 ] && user_args=(--user=root)
    # shellcheck disable=SC2046
    setsid "$(find_bin mariadbd)" --no-defaults "${user_args[@]}" \
        --datadir="$data" --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
        --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
        --log-error="$dir/error.log" --server-id="$server_id" --gtid-domain-id="$domain" \
        --log-bin="$data/mysql-bin" $(server_settings) \
        </dev/null >/dev/null 2>&1 &
    local i
    for i in $(seq 1 600); do
        "$MARIADB_ADMIN" --no-defaults --socket="$dir/mysqld.sock" -uroot ping >/dev/null 2>&1 \
            && alive "$dir/mysqld.pid" "$data" && break
        sleep 0.1
    done
    alive "$dir/mysqld.pid" "$data" || { tail -n 20 "$dir/error.log" >&2 || true; die "$name: mariadbd did not start"; }
    sql_sock "$name" "CREATE USER '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$USER_PASSWORD';
        GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'127.0.0.1' WITH GRANT OPTION;"
    log "$name: started (pid $(cat "$dir/mysqld.pid"), 127.0.0.1:$port)"
}

start_nats() {
    local dir=$STATE/nats
    stop_pidfile "nats (left from an earlier run)" "$dir/nats.pid" "$dir" 60
    rm -rf "$dir" && mkdir -p "$dir"
    setsid "$(find_bin nats-server)" -a 127.0.0.1 -p "$NATS_PORT" -P "$dir/nats.pid" \
        -l "$dir/nats.log" -js -sd "$dir/jetstream" </dev/null >/dev/null 2>&1 &
    local i
    for i in $(seq 1 100); do
        alive "$dir/nats.pid" "$dir" && (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && break
        sleep 0.1
    done
    alive "$dir/nats.pid" "$dir" || { tail -n 20 "$dir/nats.log" >&2 || true; die "nats: did not start"; }
    log "nats: started (pid $(cat "$dir/nats.pid"), 127.0.0.1:$NATS_PORT)"
}

# ---------------------------------------------------------------------------------------------
# Measurement helpers

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", ($1) }"; }
# proc_cpu PID: user+system seconds of a live process (empty when gone).
proc_cpu() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    # fields after the ")" of the command name: 12 = utime, 13 = stime (1-based 14, 15)
    echo "${stat##*) }" | awk -v t="$CLK_TCK" '{ printf "%.2f", ($12 + $13) / t }'
}
proc_hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
server_pid() { cat "$STATE/$1/mysqld.pid"; }
servers_cpu() { calc "$(proc_cpu "$(server_pid src)") + $(proc_cpu "$(server_pid dst)")"; }
# time_field FILE: user+sys seconds and max RSS KiB from /usr/bin/time -v output
time_cpu() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$1"; }
time_rss_kb() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
TIMEV=(/usr/bin/time -v)

RESULTS=$W/results.tsv    # phase contender wall units units_per_s txn_per_s cpu server_cpu rss_mb
CMDS=$W/commands.md
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }
note_cmd() { printf '%s\n' "$*" >>"$CMDS"; }

table_list() {
    sql $SRC_PORT "SELECT GROUP_CONCAT(CONCAT('sbtest.', TABLE_NAME) ORDER BY TABLE_NAME)
        FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sbtest'"
}
checksums() { sql "$1" "CHECKSUM TABLE $(table_list)"; }

# verify WHAT EXPECTED: the target's per-table checksums must equal EXPECTED.
verify() {
    local what=$1 expected=$2 got
    got=$(checksums $DST_PORT)
    if [ "$got" != "$expected" ]; then
        log "source (expected):"; echo "$expected" >&2
        log "target:"; echo "$got" >&2
        die "$what: WRONG COPY: the target's CHECKSUM TABLE differs from the source's"
    fi
    if grep -q NULL <<<"$got"; then die "$what: a table is missing on the target"; fi
    log "$what: checksums equal ($(wc -l <<<"$got") tables)"
}

reset_target() {
    sql $DST_PORT "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL slave_parallel_threads = 0;
        DROP DATABASE IF EXISTS sbtest; DROP DATABASE IF EXISTS dtle; RESET MASTER;"
}

# wait_until WHAT COMMAND...: poll every 0.2 s until COMMAND succeeds (timeout --timeout)
wait_until() {
    local what=$1; shift
    local start=$SECONDS
    until "$@"; do
        [ $((SECONDS - start)) -lt "$TIMEOUT" ] || die "$what: not done after ${TIMEOUT}s"
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------------
# dtle tasks

DTLE_SRC=
DTLE_DST=
write_job() {
    local file=$1 name=$2 gtid=${3:-}
    local start=""
    [ -n "$gtid" ] && start="\"Gtid\": \"$gtid\","
    cat >"$file" <<EOF
{
  "Name": "$name",
  "Tasks": [
    {"Type": "Src", "Config": {$start
      "ReplicateDoDb": [{"TableSchema": "sbtest"}],
      "ConnectionConfig": {"Host": "127.0.0.1", "Port": $SRC_PORT, "User": "$USER_NAME", "Password": "$USER_PASSWORD"}}},
    {"Type": "Dest", "Config": {
      "ConnectionConfig": {"Host": "127.0.0.1", "Port": $DST_PORT, "User": "$USER_NAME", "Password": "$USER_PASSWORD"}}}
  ]
}
EOF
}

dtle_start() {
    local job=$1 dir=$2
    DTLE_LOG=info "$DTLE_BIN" task run --role dest --nats "$NATS_URL" "$job" 2>"$dir/dest.log" &
    DTLE_DST=$!
    PIDS+=("$DTLE_DST")
    DTLE_LOG=info "$DTLE_BIN" task run --role src --nats "$NATS_URL" "$job" 2>"$dir/src.log" &
    DTLE_SRC=$!
    PIDS+=("$DTLE_SRC")
}
dtle_alive() {
    kill -0 "$DTLE_SRC" 2>/dev/null || die "the dtle src task died (see $1/src.log)"
    kill -0 "$DTLE_DST" 2>/dev/null || die "the dtle dest task died (see $1/dest.log)"
}
dtle_cpu() { calc "$(proc_cpu "$DTLE_SRC") + $(proc_cpu "$DTLE_DST")"; }
dtle_rss_mb() { calc "($(proc_hwm_kb "$DTLE_SRC") + $(proc_hwm_kb "$DTLE_DST")) / 1024" 0; }
dtle_stop() {
    kill_pid "$DTLE_SRC"
    kill_pid "$DTLE_DST"
    local keep=() pid
    for pid in "${PIDS[@]}"; do [ "$pid" = "$DTLE_SRC" ] || [ "$pid" = "$DTLE_DST" ] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------------------------------------
# Setup

[ -n "${BASH_VERSION:-}" ] || die "run with bash"
install_missing
MARIADB=$(find_bin mariadb)
MARIADB_ADMIN=$(find_bin mariadb-admin)
if [ -z "$DTLE_BIN" ]; then
    log "building dtle (cargo build --release; reused if up to date)"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    DTLE_BIN=$ROOT/target/release/dtle
fi
[ -x "$DTLE_BIN" ] || die "no binary at $DTLE_BIN"

mkdir -p "$STATE"
trap cleanup EXIT
trap 'exit 130' INT TERM
start_mariadb src $SRC_PORT 1 0
start_mariadb dst $DST_PORT 2 2
start_nats
mkdir -p "$W"
: >"$RESULTS"
: >"$CMDS"
SB=(sysbench --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=$SRC_PORT
    --mysql-user=$USER_NAME --mysql-password=$USER_PASSWORD --mysql-db=sbtest
    --tables="$TABLES" --table-size="$ROWS")

log "sizes: --tables $TABLES --rows $ROWS --backlog-txns $BACKLOG_TXNS --insert-txns $INSERT_TXNS --rates $RATES --rate-seconds $RATE_SECONDS --threads $THREADS"
RUN_STARTED=$SECONDS

# ---------------------------------------------------------------------------------------------
# Prepare

log "prepare: sysbench $TABLES tables x $ROWS rows on the source"
sql $SRC_PORT "CREATE DATABASE sbtest"
note_cmd "sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=$SRC_PORT --mysql-user=$USER_NAME --mysql-password=$USER_PASSWORD --mysql-db=sbtest --tables=$TABLES --table-size=$ROWS --threads=2 prepare"
"${SB[@]}" --threads=2 oltp_write_only prepare >"$W/prepare.log" 2>&1 \
    || { tail "$W/prepare.log" >&2; die "sysbench prepare failed"; }
sql $SRC_PORT "CREATE TABLE sbtest.heartbeat (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL) ENGINE=InnoDB;
    INSERT INTO sbtest.heartbeat VALUES (1, NOW(6))"
SNAPSHOT_ROWS=$((TABLES * ROWS))
SAVED_GTID=$(sql $SRC_PORT "SELECT @@gtid_binlog_pos")
SAVED_SUMS=$(checksums $SRC_PORT)
log "saved point: source GTID $SAVED_GTID"

# ---------------------------------------------------------------------------------------------
# Snapshot contenders

snapshot_begin() { reset_target; T0=$(now); S0=$(servers_cpu); }

log "snapshot 1/3: mariadb-dump --single-transaction --quick | mariadb"
DUMP="mariadb-dump --no-defaults -h127.0.0.1 -P$SRC_PORT -u$USER_NAME -p$USER_PASSWORD --single-transaction --quick --databases sbtest"
LOAD="mariadb --no-defaults -h127.0.0.1 -P$DST_PORT -u$USER_NAME -p$USER_PASSWORD"
note_cmd "$DUMP | $LOAD"
snapshot_begin
# shellcheck disable=SC2086
"${TIMEV[@]}" -o "$W/dump.time" $DUMP 2>"$W/dump.err" \
    | "${TIMEV[@]}" -o "$W/load.time" $LOAD 2>"$W/load.err" \
    || { cat "$W/dump.err" "$W/load.err" >&2; die "mariadb-dump | mariadb failed"; }
T1=$(now); S1=$(servers_cpu)
verify "mariadb-dump | mariadb" "$SAVED_SUMS"
WALL=$(calc "$T1 - $T0")
record snapshot "mariadb-dump piped to mariadb" "$WALL" rows "$(calc "$SNAPSHOT_ROWS / $WALL" 0)" - \
    "$(calc "$(time_cpu "$W/dump.time") + $(time_cpu "$W/load.time")")" "$(calc "$S1 - $S0")" \
    "$(calc "($(time_rss_kb "$W/dump.time") + $(time_rss_kb "$W/load.time")) / 1024" 0)"

log "snapshot 2/3: mydumper -t 2, then myloader -t 2"
DUMPDIR=$W/mydumper
MYDUMPER="mydumper -h 127.0.0.1 -P $SRC_PORT -u $USER_NAME -p $USER_PASSWORD -B sbtest -t 2 --trx-consistency-only -o $DUMPDIR"
MYLOADER="myloader -h 127.0.0.1 -P $DST_PORT -u $USER_NAME -p $USER_PASSWORD -t 2 -o -d $DUMPDIR"
note_cmd "$MYDUMPER && $MYLOADER"
rm -rf "$DUMPDIR"
snapshot_begin
# shellcheck disable=SC2086
"${TIMEV[@]}" -o "$W/mydumper.time" $MYDUMPER >"$W/mydumper.log" 2>&1 \
    || { tail "$W/mydumper.log" >&2; die "mydumper failed"; }
# shellcheck disable=SC2086
"${TIMEV[@]}" -o "$W/myloader.time" $MYLOADER >"$W/myloader.log" 2>&1 \
    || { tail "$W/myloader.log" >&2; die "myloader failed"; }
T1=$(now); S1=$(servers_cpu)
verify "mydumper/myloader" "$SAVED_SUMS"
WALL=$(calc "$T1 - $T0")
RSS_A=$(time_rss_kb "$W/mydumper.time"); RSS_B=$(time_rss_kb "$W/myloader.time")
record snapshot "mydumper/myloader -t 2" "$WALL" rows "$(calc "$SNAPSHOT_ROWS / $WALL" 0)" - \
    "$(calc "$(time_cpu "$W/mydumper.time") + $(time_cpu "$W/myloader.time")")" "$(calc "$S1 - $S0")" \
    "$(calc "($RSS_A > $RSS_B ? $RSS_A : $RSS_B) / 1024" 0)"

log "snapshot 3/3: dtle (Src + Dest tasks) until phase = binlog"
D=$W/dtle-snapshot; mkdir -p "$D"
write_job "$D/job.json" bench-snapshot
note_cmd "dtle task run --role dest --nats $NATS_URL job.json & dtle task run --role src --nats $NATS_URL job.json   # job: $(tr -d '\n ' <"$D/job.json")"
phase_is_binlog() {
    dtle_alive "$D"
    [ "$(sql $DST_PORT "SELECT phase FROM dtle.job_position WHERE job_name = 'bench-snapshot'" 2>/dev/null || true)" = binlog ]
}
snapshot_begin
dtle_start "$D/job.json" "$D"
wait_until "dtle snapshot" phase_is_binlog
T1=$(now); S1=$(servers_cpu)
CPU=$(dtle_cpu); RSS=$(dtle_rss_mb)
dtle_stop
verify "dtle snapshot" "$SAVED_SUMS"
WALL=$(calc "$T1 - $T0")
record snapshot "dtle snapshot" "$WALL" rows "$(calc "$SNAPSHOT_ROWS / $WALL" 0)" - "$CPU" "$(calc "$S1 - $S0")" "$RSS"
if [ "$ONLY" = snapshot ]; then
    echo "| contender | wall s | rows/s | contender CPU s | servers CPU s | peak RSS MB | dtle/peer speed |"
    awk -F'\t' '$2 ~ /^dtle/ { d = $5 } { r[NR] = $0 } END { for (i = 1; i <= NR; i++) { split(r[i], f, "\t");
        printf "| %s | %s | %s | %s | %s | %s | %.2fx |\n", f[2], f[3], f[5], f[7], f[8], f[9], d / f[5] } }' "$RESULTS"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Backlog from the saved point

gtid_seq() { sed -E 's/.*0-1-([0-9]+).*/\1/' <<<"$1"; }
# row changes on the source: Handler_write + Handler_update + Handler_delete (every statement of
# the backlog touches user tables only; a transaction sysbench retried after a deadlock counts twice)
row_changes() {
    sql $SRC_PORT "SHOW GLOBAL STATUS WHERE Variable_name IN ('Handler_write', 'Handler_update', 'Handler_delete')" \
        | awk '{ s += $2 } END { print s }'
}
[ "$(sql $SRC_PORT "SELECT @@gtid_binlog_pos")" = "$SAVED_GTID" ] \
    || die "the source moved during the snapshots; the saved point is no longer valid"
log "backlog: sysbench oltp_write_only --threads=$THREADS --events=$BACKLOG_TXNS, then oltp_insert --events=$INSERT_TXNS"
C0=$(row_changes)
B0=$(now)
note_cmd "sysbench oltp_write_only ... --threads=$THREADS --events=$BACKLOG_TXNS --time=0 run"
"${SB[@]}" --threads="$THREADS" --events="$BACKLOG_TXNS" --time=0 --report-interval=0 oltp_write_only run \
    >"$W/backlog-write.log" 2>&1 || { tail "$W/backlog-write.log" >&2; die "sysbench oltp_write_only failed"; }
if [ "$INSERT_TXNS" -gt 0 ]; then
    note_cmd "sysbench oltp_insert ... --threads=$THREADS --events=$INSERT_TXNS --time=0 run"
    "${SB[@]}" --threads="$THREADS" --events="$INSERT_TXNS" --time=0 --report-interval=0 oltp_insert run \
        >"$W/backlog-insert.log" 2>&1 || { tail "$W/backlog-insert.log" >&2; die "sysbench oltp_insert failed"; }
fi
B1=$(now)
C1=$(row_changes)
FINAL_GTID=$(sql $SRC_PORT "SELECT @@gtid_binlog_pos")
FINAL_SEQ=$(gtid_seq "$FINAL_GTID")
BACKLOG_TXN_COUNT=$((FINAL_SEQ - $(gtid_seq "$SAVED_GTID")))
BACKLOG_CHANGES=$((C1 - C0))
FINAL_SUMS=$(checksums $SRC_PORT)
BACKLOG_WALL=$(calc "$B1 - $B0")
log "backlog: $BACKLOG_TXN_COUNT transactions, $BACKLOG_CHANGES row changes in ${BACKLOG_WALL}s on the source ($(calc "$BACKLOG_CHANGES / $BACKLOG_WALL" 0) changes/s); source at $FINAL_GTID"

restore_saved_point() {
    reset_target
    # shellcheck disable=SC2086
    $MYLOADER >"$W/restore.log" 2>&1 || { tail "$W/restore.log" >&2; die "myloader (restore) failed"; }
    verify "restore of the saved point" "$SAVED_SUMS"
}

# ---------------------------------------------------------------------------------------------
# Catch-up: native replication

native_caught_up() {
    local status
    status=$(sql $DST_PORT "SHOW SLAVE STATUS\G" 2>/dev/null || true)
    if grep -qE 'Slave_SQL_Running: No' <<<"$status" && grep -qE 'Last_SQL_Errno: [1-9]' <<<"$status"; then
        echo "$status" >&2; die "native replication stopped with an error"
    fi
    [ "$(sql $DST_PORT "SELECT @@gtid_slave_pos")" = "$FINAL_GTID" ]
}

native_run() {
    local label=$1 threads=$2 mode=$3
    log "catch-up: $label"
    restore_saved_point
    local setup="SET GLOBAL slave_parallel_threads = $threads; SET GLOBAL slave_parallel_mode = '$mode';
        SET GLOBAL gtid_slave_pos = '$SAVED_GTID';
        CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $SRC_PORT, MASTER_USER = '$USER_NAME',
            MASTER_PASSWORD = '$USER_PASSWORD', MASTER_USE_GTID = slave_pos;"
    note_cmd "target: $(tr -s ' \n' ' ' <<<"$setup") START SLAVE;   -- done when @@gtid_slave_pos = the source's @@gtid_binlog_pos"
    sql $DST_PORT "$setup"
    T0=$(now); S0=$(servers_cpu)
    sql $DST_PORT "START SLAVE"
    wait_until "$label" native_caught_up
    T1=$(now); S1=$(servers_cpu)
    sql $DST_PORT "STOP SLAVE"
    verify "$label" "$FINAL_SUMS"
    local wall; wall=$(calc "$T1 - $T0")
    record catchup "$label" "$wall" changes "$(calc "$BACKLOG_CHANGES / $wall" 0)" \
        "$(calc "$BACKLOG_TXN_COUNT / $wall" 0)" "-" "$(calc "$S1 - $S0")" "-"
}

native_run "native, slave_parallel_threads=0" 0 conservative
native_run "native, 4 threads optimistic" 4 optimistic

# ---------------------------------------------------------------------------------------------
# Catch-up: dtle from the same point (and it keeps following for the lag runs)

log "catch-up: dtle from $SAVED_GTID"
restore_saved_point
D=$W/dtle-catchup; mkdir -p "$D"
write_job "$D/job.json" bench-catchup "$SAVED_GTID"
note_cmd "dtle task run --role dest ... & dtle task run --role src ...   # job: $(tr -d '\n ' <"$D/job.json")   -- done when MAX(gno) in dtle.gtid_executed = the source's last seq_no"
dtle_caught_up() {
    dtle_alive "$D"
    [ "$(sql $DST_PORT "SELECT MAX(gno) FROM dtle.gtid_executed WHERE job_name = 'bench-catchup'" 2>/dev/null || true)" = "$FINAL_SEQ" ]
}
T0=$(now); S0=$(servers_cpu)
dtle_start "$D/job.json" "$D"
wait_until "dtle catch-up" dtle_caught_up
T1=$(now); S1=$(servers_cpu)
CPU=$(dtle_cpu); RSS=$(dtle_rss_mb)
verify "dtle catch-up" "$FINAL_SUMS"
WALL=$(calc "$T1 - $T0")
record catchup "dtle catch-up" "$WALL" changes "$(calc "$BACKLOG_CHANGES / $WALL" 0)" \
    "$(calc "$BACKLOG_TXN_COUNT / $WALL" 0)" "$CPU" "$(calc "$S1 - $S0")" "$RSS"

# ---------------------------------------------------------------------------------------------
# Lag under an open-loop load

LAG=$W/lag.tsv     # rate achieved_tps p50_ms p99_ms max_ms drain_s
: >"$LAG"
HB_SQL="UPDATE sbtest.heartbeat SET ts = NOW(6) WHERE id = 1;"
SAMPLE_SQL="SELECT UNIX_TIMESTAMP(NOW(6)), UNIX_TIMESTAMP(ts), TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) FROM sbtest.heartbeat WHERE id = 1;"
note_cmd "heartbeat on the source, one session: every 100 ms $HB_SQL"
note_cmd "lag sample on the target, one session: every 20 ms $SAMPLE_SQL   -- lag of a heartbeat = when the target first showed it - its ts"
for RATE in ${RATES//,/ }; do
    # max: closed loop, the source's own top speed (sysbench stops when an open loop outruns it)
    RATE_ARG=(); [ "$RATE" = max ] || RATE_ARG=(--rate="$RATE")
    log "lag: sysbench oltp_write_only ${RATE_ARG[*]:-(closed loop)} --threads=$THREADS --time=$RATE_SECONDS while dtle follows"
    # heartbeat writer and lag sampler, each one client session fed by a loop, in their own groups
    setsid bash -c "while :; do echo '$HB_SQL'; sleep 0.1; done | $MARIADB --no-defaults -h127.0.0.1 -P$SRC_PORT -u$USER_NAME -p$USER_PASSWORD -N -B" \
        >/dev/null 2>"$W/heartbeat.err" &
    HB=$!; PIDS+=("$HB")
    sleep 1
    setsid bash -c "while :; do echo '$SAMPLE_SQL'; sleep 0.02; done | $MARIADB --no-defaults --unbuffered -h127.0.0.1 -P$DST_PORT -u$USER_NAME -p$USER_PASSWORD -N -B" \
        >"$W/lag-$RATE.samples" 2>"$W/sampler.err" &
    SAMPLER=$!; PIDS+=("$SAMPLER")
    note_cmd "sysbench oltp_write_only ... --threads=$THREADS ${RATE_ARG[*]} --time=$RATE_SECONDS run"
    S0=$(servers_cpu); L0=$(dtle_cpu); LOAD_T0=$(now)
    "${SB[@]}" --threads="$THREADS" "${RATE_ARG[@]}" --time="$RATE_SECONDS" --report-interval=0 oltp_write_only run \
        >"$W/lag-$RATE.log" 2>&1 || { tail "$W/lag-$RATE.log" >&2; die "sysbench --rate=$RATE failed"; }
    LOAD_END=$SECONDS; LOAD_T1=$(now)
    dtle_alive "$D"
    # after the load: wait until the newest heartbeat is applied (age under 0.5 s)
    drained() {
        dtle_alive "$D"
        [ "$(tail -n 2 "$W/lag-$RATE.samples" 2>/dev/null | awk 'NF == 3 { age = $3 } END { print (age != "" && age < 500000) ? "yes" : "no" }')" = yes ]
    }
    wait_until "dtle after --rate=$RATE" drained
    DRAIN=$((SECONDS - LOAD_END))
    S1=$(servers_cpu); L1=$(dtle_cpu)
    for pid in "$SAMPLER" "$HB"; do kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    keep=(); for pid in "${PIDS[@]}"; do [ "$pid" = "$SAMPLER" ] || [ "$pid" = "$HB" ] || keep+=("$pid"); done; PIDS=("${keep[@]}")
    TPS=$(awk '/transactions:/ { gsub(/\(/, "", $3); print $3 }' "$W/lag-$RATE.log")
    # one figure per heartbeat written during the load (its first 2 s of warm-up left out): the
    # time the target first showed it minus the time the source wrote it, in microseconds
    awk -v a="$LOAD_T0" -v b="$LOAD_T1" 'NF == 3 && $2 != last { last = $2; if ($2 >= a + 2 && $2 <= b) print int(($1 - $2) * 1e6) }' \
        "$W/lag-$RATE.samples" | sort -n >"$W/lag-$RATE.sorted"
    N=$(wc -l <"$W/lag-$RATE.sorted")
    [ "$N" -gt 0 ] || die "no lag samples for --rate=$RATE (see $W/sampler.err)"
    pct() { sed -n "$(( ($1 * N + 99) / 100 ))p" "$W/lag-$RATE.sorted"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$RATE" "$TPS" "$(calc "$(pct 50) / 1000" 0)" "$(calc "$(pct 99) / 1000" 0)" \
        "$(calc "$(tail -n 1 "$W/lag-$RATE.sorted") / 1000" 0)" "$DRAIN" "$(calc "$L1 - $L0")" "$(calc "$S1 - $S0")" >>"$LAG"
    log "lag at --rate=$RATE: source $TPS tx/s, p50 $(calc "$(pct 50) / 1000" 0) ms, p99 $(calc "$(pct 99) / 1000" 0) ms ($N samples); caught up ${DRAIN}s after the load"
done
LAG_SUMS=$(checksums $SRC_PORT)
verify "dtle after the lag runs" "$LAG_SUMS"
RSS_END=$(dtle_rss_mb)
dtle_stop

# ---------------------------------------------------------------------------------------------
# Report

TOTAL=$((SECONDS - RUN_STARTED))
ratio() { [ "$2" != - ] && [ "$1" != - ] && [ "$(calc "$2 > 0" 0)" = 1 ] && calc "$1 / $2" 2 || echo -; }
make_table() {
    echo "| phase | contender | wall s | rows/s (snapshot) or row changes/s | txn/s | contender CPU s | servers CPU s (src+dst) | peak RSS MB | dtle/peer speed | dtle/peer total CPU |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    local phase name wall units rate tps cpu scpu rss dtle_rate dtle_total total
    while IFS=$'\t' read -r phase name wall units rate tps cpu scpu rss; do
        dtle_rate=$(awk -F'\t' -v p="$phase" '$1 == p && $2 ~ /^dtle/ { print $5 }' "$RESULTS")
        dtle_total=$(awk -F'\t' -v p="$phase" '$1 == p && $2 ~ /^dtle/ { print ($7 == "-" ? 0 : $7) + $8 }' "$RESULTS")
        total=$(calc "$([ "$cpu" = - ] && echo 0 || echo "$cpu") + $scpu")
        if [[ $name == dtle* ]]; then
            echo "| $phase | **$name** | $wall | **$rate** | $tps | $cpu | $scpu | $rss | — | — |"
        else
            echo "| $phase | $name | $wall | $rate | $tps | $cpu | $scpu | $rss | $(ratio "$dtle_rate" "$rate")x | $(ratio "$dtle_total" "$total")x |"
        fi
    done <"$RESULTS"
}
make_lag_table() {
    echo "| --rate (txn/s asked) | source achieved txn/s | dtle lag p50 ms | p99 ms | max ms | caught up after the load, s | dtle CPU s | servers CPU s |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$LAG"
}

TABLE=$(make_table)
LAG_TABLE=$(make_lag_table)
echo
echo "$TABLE"
echo
echo "$LAG_TABLE"
echo
log "run took ${TOTAL}s; dtle peak RSS over the catch-up and lag runs: $RSS_END MB"

if [ "$WRITE_DOC" = 1 ]; then
    CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
    MEM=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
    SECTION=$(cat <<EOF
<!-- bench.sh: latest run begins (generated; everything between these markers is replaced) -->
## Latest run: $(date -u '+%Y-%m-%d %H:%M UTC')

\`scripts/bench.sh --tables $TABLES --rows $ROWS --backlog-txns $BACKLOG_TXNS --insert-txns $INSERT_TXNS --rates $RATES --rate-seconds $RATE_SECONDS --threads $THREADS$([ "$DURABLE" = 1 ] && echo " --durable")\`
(took ${TOTAL} s)

- machine: $(nproc) cores ($CPU_MODEL), $MEM, $(uname -sr); one VM, everything on loopback
- dtle: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- . ':!docs' 2>/dev/null || echo " (with local changes)"), release build
- $("$(find_bin mariadbd)" --version | sed 's/^.*Ver/MariaDB/'); $(mydumper --version 2>&1 | head -1); $(sysbench --version); $(nats-server --version)
- both servers: \`$(server_settings)\`; source server-id 1 gtid-domain-id 0, target server-id 2
  gtid-domain-id 2 (its own writes, e.g. myloader's, must not collide with the source's GTIDs in
  strict mode)
- sizes: $TABLES sysbench tables x $ROWS rows ($SNAPSHOT_ROWS rows, plus a 1-row heartbeat table);
  backlog: $BACKLOG_TXN_COUNT source transactions, $BACKLOG_CHANGES row changes (the source's Handler_write
  + Handler_update + Handler_delete), written in ${BACKLOG_WALL} s by $THREADS sysbench
  threads ($(calc "$BACKLOG_CHANGES / $BACKLOG_WALL" 0) changes/s)

$TABLE

Lag while dtle follows an open-loop \`sysbench oltp_write_only --rate=N --threads=$THREADS\` for $RATE_SECONDS s
(\`max\`: closed loop, the source taking the writes as fast as it can)
(a heartbeat row on the source gets \`ts = NOW(6)\` every 100 ms; the target is read every 20 ms,
and each heartbeat's lag is the time the target first showed it minus its ts, so a figure is high by
0-20 ms plus one query; heartbeats of the load's first 2 s are left out):

$LAG_TABLE

dtle's peak RSS (Src + Dest) over the catch-up and the lag runs: $RSS_END MB.

Exact commands of this run (\`...\` = the connection options shown in the first sysbench line):

\`\`\`
$(cat "$CMDS")
\`\`\`
<!-- bench.sh: latest run ends -->
EOF
)
    mkdir -p "$(dirname "$DOC")"
    printf '%s\n' "$SECTION" >"$W/section.md"
    if [ -f "$DOC" ] && grep -q '<!-- bench.sh: latest run begins' "$DOC"; then
        awk -v section="$W/section.md" '
            /<!-- bench.sh: latest run begins/ { while ((getline line < section) > 0) print line; skip = 1; next }
            /<!-- bench.sh: latest run ends/ { skip = 0; next }
            !skip { print }' "$DOC" >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
    else
        { [ -f "$DOC" ] && cat "$DOC" && echo; echo "$SECTION"; } >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
    fi
    log "wrote $DOC"
fi
