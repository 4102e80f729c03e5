#!/usr/bin/env bash
# bench/run.sh — every benchmark of docs/benchmarks.md, side by side, in one table.
#
#   bench/run.sh [BUILD_DIR]        BUILD_DIR defaults to build-bench (configured with
#                                   -DCMAKE_BUILD_TYPE=Release; the targets are built here)
#
# 1. replay --dry-run (output to /dev/null) over N generated storage events with
#    bench/routes20.yaml: CPU and wall time, events/s, peak RSS. Two event shapes of
#    bench/gen_events.js: the default (~800 bytes, 1,000,000 and 100,000 events) and
#    --full (all 17 data fields, ~1,050 bytes, 1,000,000 events).
# 2. yajl alone over the same 1,000,000-event files (bench/yajl_baseline.c): tree parse
#    and stream parse.
# 3. replay against the Run API fake (tests/peers/runfake) on loopback: RunJob calls/s,
#    jobrelay's CPU per call, and the fake's own CPU per call (cpu.sinceListening of its
#    stats file); and bench/runjob_bench (the RunJob client alone) against a fresh fake.
#
# Each measurement runs REPS times; the table shows the run with the median CPU time,
# and the spread (min-max CPU) so the noise of a shared machine is visible.
#
# Environment: EVENTS (1000000), SMALL (100000), RUNJOB_EVENTS (20000), REPS (3),
# WORK (reused scratch folder, default ${TMPDIR:-/tmp}/jobrelay-bench; the event files are
# regenerated only when the generator or the count changes), RECORD=1 (the fake records
# each request to a file in WORK; off by default, see docs/benchmarks.md).
#
# Every step has a time limit; the fake is stopped on exit (and exits by itself when this
# script dies, since its stdin closes). Nothing leaves 127.0.0.1; the fake is told not to
# look for a metadata server.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-bench}
[[ $BUILD = /* ]] || BUILD=$SRC/$BUILD
EVENTS=${EVENTS:-1000000}
SMALL=${SMALL:-100000}
RUNJOB_EVENTS=${RUNJOB_EVENTS:-20000}
REPS=${REPS:-3}
WORK=${WORK:-${TMPDIR:-/tmp}/jobrelay-bench}
RECORD=${RECORD:-0}
CONFIG=$SRC/bench/routes20.yaml
FAKE_DIR=$SRC/tests/peers/runfake
JOB=projects/acme-prod/locations/europe-west2/jobs/ingest-csv

die() { echo "bench/run.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

[[ -f $BUILD/CMakeCache.txt ]] || die "$BUILD is not a configured build folder (see docs/benchmarks.md)"
command -v node >/dev/null || die "node is needed (the event generator and the Run API fake)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (apt-get install time)"
[[ -d $FAKE_DIR/node_modules ]] || die "run 'npm ci' in $FAKE_DIR first"
mkdir -p "$WORK"

FAKE_PID=
cleanup() {
	if [[ -n $FAKE_PID ]] && kill -0 "$FAKE_PID" 2>/dev/null; then
		kill -TERM "$FAKE_PID" 2>/dev/null || true
		wait "$FAKE_PID" 2>/dev/null || true
	fi
	exec 7>&- 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building jobrelay, yajl_baseline, runjob_bench in $BUILD"
timeout 600 cmake --build "$BUILD" -j2 --target jobrelay yajl_baseline runjob_bench >"$WORK/build.log" 2>&1 ||
	die "build failed, see $WORK/build.log"
JOBRELAY=$BUILD/src/jobrelay
grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$BUILD/CMakeCache.txt" ||
	echo "bench/run.sh: warning: $BUILD is not a Release build" >&2

# ---- input -----------------------------------------------------------------------------

# events FILE COUNT [--full]: the first COUNT events of the generator's stream (seed 1), cached.
events() {
	local file=$1 count=$2 stamp
	shift 2
	stamp="$(sha256sum "$SRC/bench/gen_events.js" | cut -c1-16) $count $*"
	if [[ -f $file && -f $file.stamp && $(cat "$file.stamp") == "$stamp" ]]; then
		return
	fi
	say "generating $count events $* into $file"
	timeout 900 node "$SRC/bench/gen_events.js" "$@" "$count" 1 >"$file.tmp"
	mv "$file.tmp" "$file"
	echo "$stamp" >"$file.stamp"
}
BIG=$WORK/events-$EVENTS.ndjson
events "$BIG" "$EVENTS"
FULL=$WORK/events-full-$EVENTS.ndjson
events "$FULL" "$EVENTS" --full
SMALL_FILE=$WORK/events-$SMALL.ndjson
RUNJOB_FILE=$WORK/events-$RUNJOB_EVENTS.ndjson
for pair in "$SMALL_FILE:$SMALL" "$RUNJOB_FILE:$RUNJOB_EVENTS"; do
	f=${pair%%:*} n=${pair##*:}
	stamp="$(cat "$BIG.stamp") head $n"
	if [[ ! -f $f.stamp || $(cat "$f.stamp") != "$stamp" ]]; then
		head -n "$n" "$BIG" >"$f"
		echo "$stamp" >"$f.stamp"
	fi
done
BYTES=$(stat -c %s "$BIG")
FULL_BYTES=$(stat -c %s "$FULL")

# ---- measuring -------------------------------------------------------------------------

# timed OUT LIMIT CMD...: runs CMD with stdout to /dev/null, appends "user sys wall maxrss_kb" to OUT.
timed() {
	local out=$1 limit=$2
	shift 2
	/usr/bin/time -f '%U %S %e %M' -o "$WORK/time.tmp" timeout "$limit" "$@" >/dev/null 2>"$WORK/stderr.tmp" ||
		die "failed: $* (see $WORK/stderr.tmp)"
	cat "$WORK/time.tmp" >>"$out"
}

# median OUT: the line of OUT with the median user+sys, then the least and most CPU
# of all lines: "FIELDS... min max".
median() {
	local cpus min max n
	cpus=$(awk '{ printf "%.2f %s\n", $1 + $2, $0 }' "$1" | sort -n)
	n=$(echo "$cpus" | wc -l)
	min=$(echo "$cpus" | head -n 1 | cut -d' ' -f1)
	max=$(echo "$cpus" | tail -n 1 | cut -d' ' -f1)
	echo "$(echo "$cpus" | sed -n "$(((n + 1) / 2))p" | cut -d' ' -f2-) $min $max"
}

dry_run() { # dry_run FILE COUNT -> median line
	local f=$1 n=$2 tag out
	tag=$(basename "$f" .ndjson)
	out=$WORK/dry-$tag.txt
	: >"$out"
	for ((i = 0; i < REPS; i++)); do
		timed "$out" 300 "$JOBRELAY" --config "$CONFIG" replay --dry-run "$f"
		grep -q "events: $n read, 0 invalid" "$WORK/stderr.tmp" || die "dry run of $f: unexpected summary"
	done
	cp "$WORK/stderr.tmp" "$WORK/dry-$tag.summary"
	median "$out"
}

yajl() { # yajl MODE FILE -> median line
	local out
	out=$WORK/yajl-$1-$(basename "$2" .ndjson).txt
	: >"$out"
	for ((i = 0; i < REPS; i++)); do
		timed "$out" 300 "$BUILD/bench/yajl_baseline" "$1" "$2"
	done
	median "$out"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "replay --dry-run: $EVENTS events x $REPS"
DRY_BIG=$(dry_run "$BIG" "$EVENTS")
say "replay --dry-run: $SMALL events x $REPS"
DRY_SMALL=$(dry_run "$SMALL_FILE" "$SMALL")
say "replay --dry-run: $EVENTS full events x $REPS"
DRY_FULL=$(dry_run "$FULL" "$EVENTS")
say "yajl baselines: $EVENTS events x $REPS each, both shapes"
YAJL_TREE=$(yajl tree "$BIG")
YAJL_STREAM=$(yajl stream "$BIG")
YAJL_TREE_FULL=$(yajl tree "$FULL")
YAJL_STREAM_FULL=$(yajl stream "$FULL")

# ---- Run API fake ----------------------------------------------------------------------

# fake_start: a fresh fake on a random loopback port; sets FAKE_PID and PORT.
fake_start() {
	local args=(--port 0 --stats "$WORK/fake-stats.json" --exit-on-stdin-close)
	[[ $RECORD = 1 ]] && args+=(--record "$WORK/fake-record.jsonl")
	rm -f "$WORK/fake-stats.json" "$WORK/fake-record.jsonl" "$WORK/fake.fifo"
	mkfifo "$WORK/fake.fifo"
	METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9 \
		timeout 900 node "$FAKE_DIR/server.js" "${args[@]}" <"$WORK/fake.fifo" \
		>"$WORK/fake.out" 2>"$WORK/fake.err" &
	FAKE_PID=$!
	exec 7>"$WORK/fake.fifo" # its stdin: closes (and so stops the fake) if this script dies
	for ((i = 0; i < 300; i++)); do
		PORT=$(awk '/^LISTENING/ { print $2 }' "$WORK/fake.out")
		[[ -n $PORT ]] && return
		kill -0 "$FAKE_PID" 2>/dev/null || die "the fake did not start (see $WORK/fake.err)"
		sleep 0.1
	done
	die "the fake did not listen within 30 s"
}

# fake_stop: SIGTERM, wait, then FAKE_RESULT="calls ok cpu_micros" from its stats file.
fake_stop() {
	kill -TERM "$FAKE_PID"
	wait "$FAKE_PID" || true
	FAKE_PID=
	exec 7>&-
	[[ -f $WORK/fake-stats.json ]] || die "the fake wrote no stats (see $WORK/fake.err)"
	FAKE_RESULT=$(node -e '
		const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
		const rj = (s.byMethod.RunJob || { codes: {} });
		console.log(rj.total || 0, rj.codes.OK || 0, s.cpu.sinceListening.totalMicros);
	' "$WORK/fake-stats.json")
}

# runjob_replay -> "user sys wall rss calls fake_calls fake_ok fake_cpu_us"
runjob_replay() {
	fake_start
	JOBRELAY_RUN_ENDPOINT=127.0.0.1:$PORT /usr/bin/time -f '%U %S %e %M' -o "$WORK/time.tmp" \
		timeout 600 "$JOBRELAY" --config "$CONFIG" --log-format json replay "$RUNJOB_FILE" \
		>"$WORK/runjob.summary" 2>"$WORK/runjob.log" || die "replay against the fake failed (see $WORK/runjob.*)"
	local calls
	calls=$(awk '$2 ~ /^[0-9]+$/ && $3 == 0 && $4 == 0 && $5 == 0 { n += $2 } END { print n + 0 }' "$WORK/runjob.summary")
	fake_stop
	echo "$(cat "$WORK/time.tmp") $calls $FAKE_RESULT"
}

# runjob_client -> "user sys wall rss calls fake_calls fake_ok fake_cpu_us"
runjob_client() {
	fake_start
	/usr/bin/time -f '%U %S %e %M' -o "$WORK/time.tmp" timeout 600 "$BUILD/bench/runjob_bench" \
		"127.0.0.1:$PORT" "$JOB" "$RUNJOB_EVENTS" 64 >"$WORK/runjob_bench.out" 2>&1 ||
		die "runjob_bench failed (see $WORK/runjob_bench.out)"
	fake_stop
	# the fake also saw runjob_bench's warm-up call
	echo "$(cat "$WORK/time.tmp") $RUNJOB_EVENTS $(echo "$FAKE_RESULT" | awk '{ print $1 - 1, $2 - 1, $3 }')"
}

say "replay against the Run API fake: $RUNJOB_EVENTS events x $REPS (record: $RECORD)"
: >"$WORK/runjob.txt"
for ((i = 0; i < REPS; i++)); do runjob_replay >>"$WORK/runjob.txt"; done
say "runjob_bench (the client alone) against the fake: $RUNJOB_EVENTS calls x $REPS"
: >"$WORK/client.txt"
for ((i = 0; i < REPS; i++)); do runjob_client >>"$WORK/client.txt"; done
RUNJOB=$(median "$WORK/runjob.txt")
CLIENT=$(median "$WORK/client.txt")
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- table -----------------------------------------------------------------------------

cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
printf '\njobrelay %s (%s), %s cpus (%s), load %s at start, %s at end\n' \
	"$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')" "$(basename "$BUILD")" \
	"$(nproc)" "$cpu_model" "$LOAD_START" "$LOAD_END"
printf 'events: %s storage events, %s bytes (%d bytes/event); full: %s bytes (%d bytes/event)\n' \
	"$EVENTS" "$BYTES" "$((BYTES / EVENTS))" "$FULL_BYTES" "$((FULL_BYTES / EVENTS))"
printf '%s runs each, median by CPU time\n\n' "$REPS"

printf '%-38s %9s %7s %7s %12s %12s %10s %9s %10s\n' workload events "cpu s" "wall s" "events/s cpu" \
	"events/s wall" "MB/s cpu" "peak RSS" "cpu range"
row() { # row NAME EVENTS BYTES MEDIAN_LINE
	echo "$4" | awk -v name="$1" -v n="$2" -v b="$3" '{
		cpu = $1 + $2
		printf "%-38s %9d %7.2f %7.2f %12.0f %12.0f %10.0f %6.1f MiB %4.2f-%.2f\n",
			name, n, cpu, $3, n / cpu, n / $3, b / cpu / 1e6, $4 / 1024, $5, $6 }'
}
row "replay --dry-run, 20 routes" "$EVENTS" "$BYTES" "$DRY_BIG"
row "replay --dry-run, 20 routes" "$SMALL" "$(stat -c %s "$SMALL_FILE")" "$DRY_SMALL"
row "yajl_tree_parse + free (baseline)" "$EVENTS" "$BYTES" "$YAJL_TREE"
row "yajl stream, no callbacks (baseline)" "$EVENTS" "$BYTES" "$YAJL_STREAM"
row "full: replay --dry-run, 20 routes" "$EVENTS" "$FULL_BYTES" "$DRY_FULL"
row "full: yajl_tree_parse + free" "$EVENTS" "$FULL_BYTES" "$YAJL_TREE_FULL"
row "full: yajl stream, no callbacks" "$EVENTS" "$FULL_BYTES" "$YAJL_STREAM_FULL"

printf '\nRunJob over gRPC to the Run API fake on 127.0.0.1 (concurrency 64, fake %s)\n' \
	"$([[ $RECORD = 1 ]] && echo 'recording to a file' || echo 'not recording')"
printf '%-38s %9s %7s %9s %18s %15s %9s %10s\n' workload calls "wall s" "calls/s" "jobrelay cpu us/call" \
	"fake cpu us/call" "peak RSS" "cpu range"
rrow() { # rrow NAME MEDIAN_LINE ("user sys wall rss calls fake_calls fake_ok fake_cpu min max")
	echo "$2" | awk -v name="$1" '{
		cpu = $1 + $2
		if ($6 != $5 || $7 != $5) printf "WARNING: %s: fake saw %d RunJob calls, %d OK, expected %d\n", name, $6, $7, $5
		printf "%-38s %9d %7.2f %9.0f %18.1f %15.1f %5.1f MiB %4.2f-%.2f\n",
			name, $5, $3, $5 / $3, cpu * 1e6 / $5, $8 / $5, $4 / 1024, $9, $10 }'
}
rrow "replay ($RUNJOB_EVENTS events, 20 routes)" "$RUNJOB"
rrow "runjob_bench (RunJob client alone)" "$CLIENT"
echo
echo "targets: replay --dry-run >= 300000 events/s on one core; RSS flat from $SMALL to $EVENTS events"
