#!/usr/bin/env bash
# The README's demo: one job end to end on this machine.
#
#   1. the test bed: a source MariaDB, a target MariaDB and nats-server on loopback;
#   2. a release build of `dtle`;
#   3. a sample database `demo` on the source, with a writer that keeps changing it;
#   4. `dtle agent` (the dtle 2.x HTTP API on 127.0.0.1:8190) and the sample job
#      (scripts/demo-job.json) POSTed to /v1/jobs;
#   5. its allocations and stats from the API, then source and target compared table by table
#      (CHECKSUM TABLE) while the binlog is being followed.
#
# The job keeps running afterwards; the script prints how to stop it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=$ROOT/state/demo
mkdir -p "$STATE"

scripts/testbed.sh up
eval "$(scripts/testbed.sh env)"
SRC_PORT=${DTLE_TEST_SRC##*:}
DST_PORT=${DTLE_TEST_DST##*:}
src_sql() { mariadb --no-defaults -h127.0.0.1 -P"$SRC_PORT" -u"$DTLE_TEST_USER" -p"$DTLE_TEST_PASSWORD" --default-character-set=utf8mb4 -N "$@"; }
dst_sql() { mariadb --no-defaults -h127.0.0.1 -P"$DST_PORT" -u"$DTLE_TEST_USER" -p"$DTLE_TEST_PASSWORD" --default-character-set=utf8mb4 -N "$@"; }

echo "== building dtle (release)"
cargo build --release --locked --bin dtle
DTLE=$ROOT/target/release/dtle

stop_pidfile() {
    local file=$1
    if [ -s "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null; then
        kill "$(cat "$file")" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$(cat "$file")" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$file"
}
# A previous demo's agent and writer are replaced, not duplicated.
for name in writer agent; do stop_pidfile "$STATE/$name.pid"; done
API=http://127.0.0.1:8190

echo "== a sample database on the source (127.0.0.1:$SRC_PORT)"
src_sql -e "DROP DATABASE IF EXISTS demo; CREATE DATABASE demo;
  CREATE TABLE demo.customers (id INT PRIMARY KEY, name VARCHAR(50), city VARCHAR(30), since DATE);
  CREATE TABLE demo.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id INT, amount DECIMAL(10,2),
    status ENUM('new','paid','shipped'), placed_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3), note TEXT);
  CREATE TABLE demo.events (happened_at DATETIME(6), kind VARCHAR(20), payload JSON);
  INSERT INTO demo.customers SELECT seq, CONCAT('customer ', seq), ELT(1 + seq % 4, 'Paris', 'Berlin', 'Tōkyō', 'São Paulo'),
    '2020-01-01' + INTERVAL seq DAY FROM demo.seq_1_to_5000;
  INSERT INTO demo.orders (customer_id, amount, status, note) SELECT 1 + seq % 5000, seq % 1000 + 0.99,
    ELT(1 + seq % 3, 'new', 'paid', 'shipped'), REPEAT('n', seq % 200) FROM demo.seq_1_to_50000;"
dst_sql -e "DROP DATABASE IF EXISTS demo; CREATE DATABASE IF NOT EXISTS dtle;
  DELETE FROM dtle.job_position WHERE job_name = 'demo'" 2>/dev/null || true
dst_sql -e "DELETE FROM dtle.gtid_executed WHERE job_name = 'demo'; DELETE FROM dtle.snapshot_progress WHERE job_name = 'demo'" 2>/dev/null || true

echo "== a writer that keeps changing the source"
(
    i=0
    while true; do
        i=$((i + 1))
        src_sql -e "INSERT INTO demo.orders (customer_id, amount, status) VALUES ($((i % 5000 + 1)), $((i % 300)).50, 'new');
          UPDATE demo.orders SET status = 'paid' WHERE id = $((i * 7 % 50000 + 1));
          DELETE FROM demo.orders WHERE id = $((i * 13 % 50000 + 1));
          INSERT INTO demo.events VALUES (NOW(6), 'tick', JSON_OBJECT('i', $i));
          UPDATE demo.customers SET city = 'Lyon' WHERE id = $((i % 5000 + 1))" || true
        sleep 0.2
    done
) >/dev/null 2>&1 &
echo $! >"$STATE/writer.pid"

echo "== dtle agent on $API"
rm -rf "$STATE/agent-state"
DTLE_LOG=info nohup "$DTLE" agent --listen 127.0.0.1:8190 --nats "$DTLE_TEST_NATS" \
    --state-dir "$STATE/agent-state" >"$STATE/agent.log" 2>&1 &
echo $! >"$STATE/agent.pid"
for _ in $(seq 1 100); do curl -sf "$API/v1/leader" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== POST /v1/jobs (scripts/demo-job.json)"
curl -sf -X POST "$API/v1/jobs" --data-binary @scripts/demo-job.json
echo
echo "== waiting for the snapshot"
for _ in $(seq 1 300); do
    phase=$(dst_sql -e "SELECT phase FROM dtle.job_position WHERE job_name = 'demo'" 2>/dev/null || true)
    [ "$phase" = "binlog" ] && break
    sleep 0.5
done
[ "$phase" = "binlog" ] || { echo "the snapshot did not finish; see $STATE/agent.log" >&2; exit 1; }
echo "snapshot applied; the binlog is being followed"
sleep 5

echo "== the job, as the agent reports it"
"$DTLE" job status demo --address "$API"
echo "== GET /v1/job/demo/allocations (first 400 bytes)"
curl -sf "$API/v1/job/demo/allocations" | head -c 400
echo
echo "== GET /v1/agent/allocation/<Src allocation>/stats (first 400 bytes)"
src_alloc=$(curl -sf "$API/v1/job/demo/allocations" | grep -o '"ID":"[0-9a-f-]*","JobID":"demo","EvalID":"[0-9a-f-]*","NodeID":"[0-9a-f-]*","Name":"demo.Src"' | head -1 | cut -d'"' -f4)
curl -sf "$API/v1/agent/allocation/$src_alloc/stats" | head -c 400
echo

echo "== pausing the writer to compare source and target"
kill -STOP "$(cat "$STATE/writer.pid")"
ok=1
for table in customers orders events; do
    same=0
    for _ in $(seq 1 120); do
        a=$(src_sql -e "CHECKSUM TABLE demo.$table" | cut -f2)
        b=$(dst_sql -e "CHECKSUM TABLE demo.$table" | cut -f2)
        [ "$a" = "$b" ] && { same=1; break; }
        sleep 0.5
    done
    rows=$(src_sql -e "SELECT COUNT(*) FROM demo.$table")
    if [ "$same" = 1 ]; then
        echo "demo.$table: $rows rows, checksum $a on both sides"
    else
        echo "demo.$table: checksums differ (source $a, target $b)"
        ok=0
    fi
done
kill -CONT "$(cat "$STATE/writer.pid")"
dst_sql -e "SELECT CONCAT('position on the target: ', gtid_set, ' (', binlog_file, ':', binlog_pos, ')') FROM dtle.job_position WHERE job_name = 'demo';
  SELECT CONCAT('source transactions applied: ', COUNT(*)) FROM dtle.gtid_executed WHERE job_name = 'demo'"

cat <<MSG

The job 'demo' keeps replicating while the writer runs. Watch it with
  $DTLE job status demo      or      curl $API/v1/job/demo/allocations
Agent log: $STATE/agent.log
Stop the job:      $DTLE job stop demo
Stop everything:   kill \$(cat $STATE/writer.pid $STATE/agent.pid); scripts/testbed.sh down
MSG
[ "$ok" = 1 ]
