#!/usr/bin/env bash
# The shared test bed: private MariaDB source and target servers and two nats-servers, all on
# loopback.
#
#   scripts/testbed.sh up      install what is missing, start whatever is not running (idempotent)
#   scripts/testbed.sh down    stop what `up` started, by the pid files under the state folder
#   scripts/testbed.sh status  one line per service; exit 0 only when all four answer
#   scripts/testbed.sh env     print the connection settings as shell variables
#   scripts/testbed.sh restart src|dst|nats|nats-secure
#                              stop one service and start it again (fault tests)
#
# State lives in $DTLE_TESTBED_DIR (default: <repo>/state/testbed, git-ignored):
#   src/  MariaDB source  127.0.0.1:3307  server-id 1, ROW binlog, FULL row image and metadata, CRC32,
#                                           GTID strict mode, utf8mb4
#   dst/  MariaDB target  127.0.0.1:3308  server-id 2, its own binlog
#   nats/ nats-server     127.0.0.1:8193  no credentials, no TLS
#   nats-secure/          127.0.0.1:8194  TLS (tls/server.pem) and a NATS user per test job (below)
#   tls/  a throwaway CA made at the first `up`: ca.pem signs server.pem, which is valid for the IP
#         127.0.0.1 only (not for the name `localhost`); other-ca.pem signs nothing here (the
#         "wrong CA" of the tests)
# Both MariaDB servers have root without a password and a user `dtle` / `dtle-pass` with every
# privilege, reachable on 127.0.0.1 only. They offer TLS (server.pem) and leave it optional,
# except for the user `dtle_tls` / `dtle-tls-pass` (every privilege too), created REQUIRE SSL.
#
# Each user of the secure nats-server may use one job's subjects and inboxes only, as
# docs/security.md ("NATS") describes: `<job>` / `<job>-pass` for each job of SECURE_JOBS, and an
# NKey user for the job NKEY_JOB. These credentials are the test bed's, for loopback tests only,
# like `dtle-pass`.
#
# Ports and the state folder can be moved, for a second test bed beside a shared one:
# DTLE_TESTBED_DIR, DTLE_TESTBED_SRC_PORT, DTLE_TESTBED_DST_PORT, DTLE_TESTBED_NATS_PORT,
# DTLE_TESTBED_NATS_TLS_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${DTLE_TESTBED_DIR:-$ROOT/state/testbed}
SRC_PORT=${DTLE_TESTBED_SRC_PORT:-3307}
DST_PORT=${DTLE_TESTBED_DST_PORT:-3308}
NATS_PORT=${DTLE_TESTBED_NATS_PORT:-8193}
NATS_TLS_PORT=${DTLE_TESTBED_NATS_TLS_PORT:-8194}
TESTBED_USER=dtle
TESTBED_PASSWORD=dtle-pass
TLS_USER=dtle_tls
TLS_PASSWORD=dtle-tls-pass
TLS=$STATE/tls
# The jobs of tests/transport_security with a NATS user each (user: the job's name; password:
# `<job>-pass`).
SECURE_JOBS="sec_a sec_b sec_agent sec_handoff"
# The job whose NATS user is an NKey (a throwaway pair made for this test bed).
NKEY_JOB=sec_nkey
NKEY_PUBLIC=UBMAATRBOAGXU66RJYG25OE754VMZBEX73K3OO46MHAJILHBXCGUV3CV
NKEY_SEED=SUAL7BJBSSH7FFPMLXT7NBCBNFAOFP7UCYUKUOU3SUQBRPCPTZJIGHN3GY

log() { echo "testbed: $*" >&2; }
die() { log "error: $*"; exit 1; }

. "$ROOT/scripts/lib/processes.sh"

install_missing() {
    local missing=()
    find_bin mariadbd >/dev/null || missing+=(mariadb-server)
    find_bin mariadb >/dev/null || missing+=(mariadb-client)
    find_bin nats-server >/dev/null || missing+=(nats-server)
    find_bin curl >/dev/null || missing+=(curl)
    find_bin openssl >/dev/null || missing+=(openssl)
    apt_install "${missing[@]}"
}

# make_tls: the throwaway CAs and the servers' certificate, once (kept across `down` and `up`).
make_tls() {
    [ -s "$TLS/server.pem" ] && [ -s "$TLS/other-ca.pem" ] && return 0
    local ssl
    ssl=$(find_bin openssl) || die "openssl is missing"
    mkdir -p "$TLS"
    chmod 700 "$TLS"
    local ca_ext=(-addext "basicConstraints=critical,CA:TRUE"
        -addext "keyUsage=critical,keyCertSign,cRLSign")
    "$ssl" req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=dtle testbed CA" \
        "${ca_ext[@]}" -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
    "$ssl" req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=dtle testbed other CA" \
        "${ca_ext[@]}" -keyout "$TLS/other-ca.key" -out "$TLS/other-ca.pem" 2>/dev/null
    "$ssl" req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
        >"$TLS/server.ext"
    "$ssl" x509 -req -days 3650 -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
        -CAcreateserial -extfile "$TLS/server.ext" -out "$TLS/server.pem" 2>/dev/null
    chmod 600 "$TLS"/*.key
    log "tls: made a throwaway CA and the servers' certificate in $TLS"
}

mariadb_ping() {
    local dir=$1
    "$(find_bin mariadb-admin)" --no-defaults --socket="$dir/mysqld.sock" -uroot ping >/dev/null 2>&1
}

sql() {
    local dir=$1; shift
    "$(find_bin mariadb)" --no-defaults --socket="$dir/mysqld.sock" -uroot \
        --default-character-set=utf8mb4 -N -e "$*"
}

# start_mariadb NAME PORT SERVER_ID [EXTRA_ARGS...]
start_mariadb() {
    local name=$1 port=$2 server_id=$3; shift 3
    local dir=$STATE/$name
    local data=$dir/data
    mkdir -p "$dir"
    if alive "$dir/mysqld.pid" "$data"; then
        log "$name: already running (pid $(cat "$dir/mysqld.pid"), port $port)"
        return 0
    fi
    if [ ! -d "$data/mysql" ]; then
        log "$name: initialising $data"
        rm -rf "$data"
        "$(find_bin mariadb-install-db)" --no-defaults --user="$(id -un)" --datadir="$data" \
            --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
            || { cat "$dir/install.log" >&2; die "$name: mariadb-install-db failed"; }
    fi
    local user_args=()
    [ "$(id -u)" -eq 0 ] && user_args=(--user=root)
    # --no-defaults must come first, or /etc/mysql/my.cnf redirects the socket and pid file.
    setsid "$(find_bin mariadbd)" --no-defaults "${user_args[@]}" \
        --datadir="$data" --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
        --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
        --log-error="$dir/error.log" --server-id="$server_id" \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --max-allowed-packet=1G --innodb-buffer-pool-size=256M --innodb-log-file-size=256M \
        --log-bin="$data/mysql-bin" --binlog-checksum=CRC32 \
        --ssl-ca="$TLS/ca.pem" --ssl-cert="$TLS/server.pem" --ssl-key="$TLS/server.key" \
        "$@" </dev/null >/dev/null 2>&1 &
    local i
    for i in $(seq 1 300); do
        mariadb_ping "$dir" && alive "$dir/mysqld.pid" "$data" && break
        sleep 0.1
    done
    mariadb_ping "$dir" || { tail -n 20 "$dir/error.log" >&2 || true; die "$name: mariadbd did not start"; }
    sql "$dir" "CREATE USER IF NOT EXISTS '$TESTBED_USER'@'127.0.0.1' IDENTIFIED BY '$TESTBED_PASSWORD';
        GRANT ALL PRIVILEGES ON *.* TO '$TESTBED_USER'@'127.0.0.1' WITH GRANT OPTION;
        CREATE USER IF NOT EXISTS '$TLS_USER'@'127.0.0.1' IDENTIFIED BY '$TLS_PASSWORD' REQUIRE SSL;
        GRANT ALL PRIVILEGES ON *.* TO '$TLS_USER'@'127.0.0.1';"
    log "$name: started (pid $(cat "$dir/mysqld.pid"), port $port)"
}

start_nats() {
    local dir=$STATE/nats
    mkdir -p "$dir"
    if alive "$dir/nats.pid" "$dir"; then
        log "nats: already running (pid $(cat "$dir/nats.pid"), port $NATS_PORT)"
        return 0
    fi
    setsid "$(find_bin nats-server)" -a 127.0.0.1 -p "$NATS_PORT" -P "$dir/nats.pid" \
        -l "$dir/nats.log" -js -sd "$dir/jetstream" </dev/null >/dev/null 2>&1 &
    local i
    for i in $(seq 1 100); do
        alive "$dir/nats.pid" "$dir" && port_open "$NATS_PORT" && break
        sleep 0.1
    done
    port_open "$NATS_PORT" || { tail -n 20 "$dir/nats.log" >&2 || true; die "nats: did not start"; }
    log "nats: started (pid $(cat "$dir/nats.pid"), port $NATS_PORT)"
}

# job_permissions JOB: publish and subscribe on the job's subjects and inboxes only.
job_permissions() {
    local allow="[\"dtle.$1.>\", \"_INBOX.dtle.$1.>\"]"
    echo "{ publish: { allow: $allow }, subscribe: { allow: $allow } }"
}

# nats_secure_config FILE: the secure nats-server's config (TLS; a user per job, allowed that
# job's subjects and inboxes only), rewritten at every start.
nats_secure_config() {
    local job users=""
    for job in $SECURE_JOBS; do
        users+="    { user: \"$job\", password: \"$job-pass\", permissions: $(job_permissions "$job") }"$'\n'
    done
    users+="    { nkey: \"$NKEY_PUBLIC\", permissions: $(job_permissions "$NKEY_JOB") }"$'\n'
    {
        echo "# Written by scripts/testbed.sh at every start of the secure nats-server."
        echo "listen: \"127.0.0.1:$NATS_TLS_PORT\""
        echo "tls { cert_file: \"$TLS/server.pem\", key_file: \"$TLS/server.key\", timeout: 5 }"
        echo "authorization {"
        echo "  users: ["
        printf '%s' "$users"
        echo "  ]"
        echo "}"
    } >"$1"
    chmod 600 "$1"
}

start_nats_secure() {
    local dir=$STATE/nats-secure
    mkdir -p "$dir"
    if alive "$dir/nats.pid" "$dir"; then
        log "nats-secure: already running (pid $(cat "$dir/nats.pid"), port $NATS_TLS_PORT)"
        return 0
    fi
    nats_secure_config "$dir/nats.conf"
    setsid "$(find_bin nats-server)" -c "$dir/nats.conf" -P "$dir/nats.pid" \
        -l "$dir/nats.log" </dev/null >/dev/null 2>&1 &
    local i
    for i in $(seq 1 100); do
        alive "$dir/nats.pid" "$dir" && port_open "$NATS_TLS_PORT" && break
        sleep 0.1
    done
    port_open "$NATS_TLS_PORT" || { tail -n 20 "$dir/nats.log" >&2 || true; die "nats-secure: did not start"; }
    log "nats-secure: started (pid $(cat "$dir/nats.pid"), port $NATS_TLS_PORT, TLS, a user per job)"
}

# stop NAME PIDFILE PATTERN: TERM the process we started, wait, KILL if it will not go.
stop() {
    alive "$2" "$3" || { log "$1: not running"; rm -f "$2"; return 0; }
    stop_pidfile "$1" "$2" "$3" 30
}

status_line() {
    local name=$1 pidfile=$2 pattern=$3 port=$4
    if alive "$pidfile" "$pattern" && port_open "$port"; then
        echo "$name: up (pid $(cat "$pidfile"), 127.0.0.1:$port)"
    else
        echo "$name: down"
        return 1
    fi
}

start_src() {
    start_mariadb src "$SRC_PORT" 1 --binlog-format=ROW --binlog-row-image=FULL \
        --binlog-row-metadata=FULL --gtid-strict-mode=1 --log-slave-updates
}

start_dst() {
    start_mariadb dst "$DST_PORT" 2 --binlog-format=ROW
}

cmd=${1:-}
case "$cmd" in
up)
    install_missing
    mkdir -p "$STATE"
    make_tls
    start_src
    start_dst
    start_nats
    start_nats_secure
    ;;
down)
    stop nats-secure "$STATE/nats-secure/nats.pid" "$STATE/nats-secure"
    stop nats "$STATE/nats/nats.pid" "$STATE/nats"
    stop dst "$STATE/dst/mysqld.pid" "$STATE/dst/data"
    stop src "$STATE/src/mysqld.pid" "$STATE/src/data"
    ;;
status)
    rc=0
    status_line src "$STATE/src/mysqld.pid" "$STATE/src/data" "$SRC_PORT" || rc=1
    status_line dst "$STATE/dst/mysqld.pid" "$STATE/dst/data" "$DST_PORT" || rc=1
    status_line nats "$STATE/nats/nats.pid" "$STATE/nats" "$NATS_PORT" || rc=1
    status_line nats-secure "$STATE/nats-secure/nats.pid" "$STATE/nats-secure" "$NATS_TLS_PORT" || rc=1
    exit $rc
    ;;
restart)
    case "${2:-}" in
    src) stop src "$STATE/src/mysqld.pid" "$STATE/src/data"; start_src ;;
    dst) stop dst "$STATE/dst/mysqld.pid" "$STATE/dst/data"; start_dst ;;
    nats) stop nats "$STATE/nats/nats.pid" "$STATE/nats"
          start_nats ;;
    nats-secure) stop nats-secure "$STATE/nats-secure/nats.pid" "$STATE/nats-secure"
          start_nats_secure ;;
    *) echo "usage: $0 restart src|dst|nats|nats-secure" >&2; exit 2 ;;
    esac
    ;;
env)
    cat <<EOF
DTLE_TEST_SRC=127.0.0.1:$SRC_PORT
DTLE_TEST_DST=127.0.0.1:$DST_PORT
DTLE_TEST_NATS=nats://127.0.0.1:$NATS_PORT
DTLE_TEST_USER=$TESTBED_USER
DTLE_TEST_PASSWORD=$TESTBED_PASSWORD
DTLE_TEST_TLS_USER=$TLS_USER
DTLE_TEST_TLS_PASSWORD=$TLS_PASSWORD
DTLE_TEST_CA=$TLS/ca.pem
DTLE_TEST_OTHER_CA=$TLS/other-ca.pem
DTLE_TEST_NATS_SECURE=tls://127.0.0.1:$NATS_TLS_PORT
DTLE_TEST_NATS_SECURE_JOBS="$SECURE_JOBS"
DTLE_TEST_NATS_NKEY_JOB=$NKEY_JOB
DTLE_TEST_NATS_NKEY_SEED=$NKEY_SEED
EOF
    ;;
*)
    echo "usage: $0 up|down|status|env|restart src|dst|nats|nats-secure" >&2
    exit 2
    ;;
esac
