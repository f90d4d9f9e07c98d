# Shared by the scripts that install servers and start and stop their own processes
# (testbed.sh, bench.sh). Source it after defining `log` and `die`.

# as_root CMD...: run CMD as root (directly, or through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root (or sudo) to run: $*"
    fi
}

# find_bin NAME: the path of a program, also in the sbin folders a user's PATH may lack.
find_bin() {
    local name=$1 dir
    command -v "$name" 2>/dev/null && return 0
    for dir in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
        [ -x "$dir/$name" ] && { echo "$dir/$name"; return 0; }
    done
    return 1
}

# apt_install PACKAGE...: install Debian packages (nothing when none are given).
apt_install() {
    [ $# -eq 0 ] && return 0
    log "installing $* from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# alive PIDFILE PATTERN: the pid in PIDFILE is running and its command line mentions PATTERN
# (so a pid reused by some other process is never taken for ours).
alive() {
    local pidfile=$1 pattern=$2 pid
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# stop_pidfile NAME PIDFILE PATTERN SECONDS: TERM the process we started (if it is still ours),
# wait up to SECONDS, KILL it if it will not go.
stop_pidfile() {
    local name=$1 pidfile=$2 pattern=$3 seconds=$4 pid i
    alive "$pidfile" "$pattern" || { rm -f "$pidfile"; return 0; }
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((seconds * 10))); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
        log "$name: pid $pid ignored TERM for $seconds s; killing"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    log "$name: stopped (pid $pid)"
}

# port_open PORT: something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
