#!/usr/bin/env bash
# The Nomad conformance test: a Go program that plays a Nomad client against `dtle` in plugin
# mode (tests/conformance, see its package comment), built offline from Debian's packages.
#
#   scripts/conformance.sh
#
# 1. installs the Debian packages it builds with, when any is missing (apt-get);
# 2. generates Go code from driver/proto (protoc + protoc-gen-go with gRPC) and builds the
#    program in GOPATH mode against Debian's Go sources (/usr/share/gocode), no network;
#    everything goes to <cargo target dir>/conformance (CARGO_TARGET_DIR is respected);
# 3. builds the dtle debug binary (`cargo build --bin dtle`; DTLE_BIN overrides);
# 4. runs the program against the test bed (scripts/testbed.sh, which must be up), with its
#    settings from `scripts/testbed.sh env` unless already set in the environment.
# Exit status: the program's (0 when every check passed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { echo "conformance: $*" >&2; }
die() { log "error: $*"; exit 1; }

. "$ROOT/scripts/lib/processes.sh"

# Debian bookworm's go-plugin client stack, Nomad's encoders (cty, hcl) and a MariaDB driver.
PACKAGES=(
    golang-go
    protobuf-compiler
    protoc-gen-go-1-5
    golang-github-hashicorp-go-plugin-dev
    golang-google-grpc-dev
    golang-google-protobuf-dev
    golang-github-golang-protobuf-1-5-dev
    golang-github-zclconf-go-cty-dev
    golang-github-hashicorp-hcl-v2-dev
    golang-github-hashicorp-go-version-dev
    golang-github-go-sql-driver-mysql-dev
)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
apt_install "${missing[@]}"

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
BUILD=$TARGET/conformance
GOSRC=$BUILD/gopath/src/dtleconf

# Generated code and a copy of the program's sources, as one GOPATH package tree.
rm -rf "$GOSRC"
mkdir -p "$GOSRC"
cp tests/conformance/*.go "$GOSRC/"
# Each proto file's Go package, given on the command line (the files carry no go_package).
P=dtleconf/proto
MAPS="Mplugins/base/proto/base.proto=$P/base"
MAPS+=",Mplugins/drivers/proto/driver.proto=$P/drivers"
MAPS+=",Mplugins/shared/hclspec/hcl_spec.proto=$P/hclspec"
MAPS+=",Mplugins/shared/structs/proto/attribute.proto=$P/structs"
MAPS+=",Mplugins/shared/structs/proto/recoverable_error.proto=$P/structs"
MAPS+=",Mgo-plugin/grpc_controller.proto=$P/goplugin"
for proto in plugins/base/proto/base.proto plugins/drivers/proto/driver.proto \
    plugins/shared/hclspec/hcl_spec.proto plugins/shared/structs/proto/attribute.proto \
    plugins/shared/structs/proto/recoverable_error.proto go-plugin/grpc_controller.proto; do
    protoc -I driver/proto -I /usr/include --go_out="plugins=grpc,$MAPS:$BUILD/gopath/src" \
        "driver/proto/$proto"
done

log "building the Go client (GOPATH mode, Debian's Go sources, offline)"
(
    export GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local
    export GOPATH="$BUILD/gopath:/usr/share/gocode" GOCACHE="$BUILD/gocache"
    cd "$GOSRC"
    go vet dtleconf
    go build -o "$BUILD/conformance" dtleconf
)

if [ -z "${DTLE_BIN:-}" ]; then
    log "building dtle (cargo build --bin dtle)"
    cargo build --bin dtle --locked
    DTLE_BIN=$TARGET/debug/dtle
fi
[ -x "$DTLE_BIN" ] || die "$DTLE_BIN is not an executable"

# The test bed's settings, unless the caller set them.
while IFS='=' read -r name value; do
    [ -n "$name" ] && [ -z "${!name:-}" ] && export "$name=$value"
done < <(scripts/testbed.sh env)
for addr in "$DTLE_TEST_SRC" "$DTLE_TEST_DST" "${DTLE_TEST_NATS#nats://}"; do
    [ "${addr%:*}" = 127.0.0.1 ] || die "$addr is not on 127.0.0.1"
    port_open "${addr##*:}" || die "nothing listens on $addr: is the test bed up (scripts/testbed.sh up)?"
done

export DTLE_BIN CONFORMANCE_WORK="$BUILD/work"
rm -rf "$CONFORMANCE_WORK"
exec "$BUILD/conformance"
