#!/usr/bin/env bash
# bench/serve.sh — `jobrelay serve` under wrk (docs/benchmarks.md, "serve").
#
#   bench/serve.sh [BUILD_DIR]      BUILD_DIR defaults to build-bench (configured here with
#                                   -DCMAKE_BUILD_TYPE=Release; jobrelay is built in it)
#
# wrk POSTs a binary-mode Cloud Storage event (bench/serve.lua) to jobrelay serve, which
# routes it with bench/routes20.yaml (one route of the twenty matches it). jobrelay is
# pinned to CPU 0 (taskset), wrk (and the Run API fake) to CPU 1. Rows:
#
#   dry-run, ceiling   --dry-run (RunJob completes at once, unsent), --log-level warning:
#                      CONNS connections as fast as they go: the server's own ceiling
#   dry-run, half      the same server at about half the 20,000 requests/s target:
#                      HALF_CONNS connections, each waiting 2 ms between requests (wrk's
#                      delay() hook; wrk2's constant-rate mode is not in Debian); the rate
#                      that gives depends on wrk's timer and the machine, so it is reported;
#                      p99 is measured below saturation
#   dry-run, info logs --dry-run with the default log level: one DISPATCH-OK line per
#                      request, written to /dev/null
#   healthz, 1 conn    GET /healthz on one connection, answered on the HTTP thread alone:
#                      the latency floor of this machine at that moment (on a shared
#                      machine its p99 shows how much of the others' p99 is scheduling)
#   dry-run, 1 conn    the POST path on one connection: beside the row above, what the hand-off
#                      to the loop thread and back adds
#   Run API fake       RunJob to tests/peers/runfake (no recording), info logs to
#                      /dev/null: the end-to-end path; the fake's own CPU per call is shown
#                      to tell whether it is the limit
#
# For each row: requests/s, p50 and p99 latency (wrk --latency), non-2xx answers,
# jobrelay's CPU (user+system, /proc/PID/stat) per request, and its RSS at the end and at
# peak (VmRSS/VmHWM). Each row runs REPS times and the run with the median requests/s is
# shown, with the min-max spread. Environment: DURATION (10 s), WARMUP (2 s), CONNS (64),
# HALF_CONNS (30: about 10,000 requests/s on a quiet machine, where wrk's 2 ms delay()
# timer fires 2.5-3 ms apart), REPS (3), WORK (scratch folder), JR_NICE (0: jobrelay's
# nice value; on a shared machine a negative one, as root, keeps other processes' bursts
# off its CPU), ROWS (all, or dry: the dry-run rows only).
#
# Everything binds 127.0.0.1; the fake is told not to look for a metadata server.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-bench}
[[ $BUILD = /* ]] || BUILD=$SRC/$BUILD
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
HALF_CONNS=${HALF_CONNS:-30}
REPS=${REPS:-3}
JR_NICE=${JR_NICE:-0}
ROWS=${ROWS:-all}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/jobrelay-bench-serve.XXXXXX")}
CONFIG=$SRC/bench/routes20.yaml
LUA=$SRC/bench/serve.lua
FAKE_DIR=$SRC/tests/peers/runfake
export METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9

die() { echo "bench/serve.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
command -v taskset >/dev/null || die "taskset is needed (util-linux)"
command -v node >/dev/null || die "node is needed (the Run API fake)"
[[ -d $FAKE_DIR/node_modules ]] || die "run 'npm ci' in $FAKE_DIR first"
[[ $(nproc) -ge 2 ]] || die "two CPUs are needed (jobrelay on one, wrk on the other)"
mkdir -p "$WORK"

JR_PID=
FAKE_PID=
cleanup() {
	for p in $JR_PID $FAKE_PID; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	exec 7<&- 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building jobrelay in $BUILD (Release)"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 ||
	{ cat "$WORK/cmake.log" >&2; die "configure failed"; }
cmake --build "$BUILD" -j"$(nproc)" --target jobrelay >>"$WORK/cmake.log" 2>&1 ||
	{ tail -30 "$WORK/cmake.log" >&2; die "build failed"; }
JOBRELAY=$BUILD/src/jobrelay

# free_port: a port the kernel just handed out (jobrelay's log level may hide its own line).
free_port() {
	node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

start_fake() {
	mkfifo "$WORK/fake.out" "$WORK/fake.in"
	# its stdin stays open while this script runs: if the script dies, the fake exits
	taskset -c 1 node "$FAKE_DIR/server.js" --port 0 --stats "$WORK/fake.stats.json" \
		--exit-on-stdin-close >"$WORK/fake.out" 2>"$WORK/fake.err" <"$WORK/fake.in" &
	FAKE_PID=$!
	exec 7<"$WORK/fake.out" # (the shell opens the fake's stdout before its stdin)
	exec 6>"$WORK/fake.in"
	local line=
	FAKE_PORT=
	while read -r -u 7 line; do
		case "$line" in LISTENING\ *) FAKE_PORT=${line#LISTENING }; break ;; esac
	done
	[[ -n $FAKE_PORT ]] || { cat "$WORK/fake.err" >&2; die "the Run API fake did not start"; }
	cat <&7 >/dev/null &
	rm -f "$WORK/fake.out"
}

stop_fake() {
	kill -TERM "$FAKE_PID"
	wait "$FAKE_PID" || true
	FAKE_PID=
	exec 6>&- 7<&-
}

# start_jobrelay LOGLEVEL [SERVE FLAGS...]: JR_PID, JR_PORT; waits until /healthz answers.
start_jobrelay() {
	local level=$1
	shift
	JR_PORT=$(free_port)
	taskset -c 0 nice -n "$JR_NICE" "$JOBRELAY" --config "$CONFIG" --log-format json --log-level "$level" \
		serve --port "$JR_PORT" --bind 127.0.0.1 "$@" >/dev/null 2>"$WORK/jobrelay.err" &
	JR_PID=$!
	for _ in $(seq 1 100); do
		curl -sf "http://127.0.0.1:$JR_PORT/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$JR_PID" 2>/dev/null || { cat "$WORK/jobrelay.err" >&2; die "jobrelay serve exited"; }
		sleep 0.1 # start-up poll of a benchmark, not a test's synchronisation
	done
	die "jobrelay serve did not become ready"
}

stop_jobrelay() {
	kill -TERM "$JR_PID"
	wait "$JR_PID" || true
	JR_PID=
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
to_ms() { # "1.23ms" "850.00us" "1.02s" -> ms
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

# measure CONNS DELAY_MS: one wrk run against JR_PORT after a warm-up; prints
# "rps p50 p99 non2xx cpu_us_per_req rss_kb hwm_kb".
measure() {
	local conns=$1 delay=$2 out="$WORK/wrk.out"
	WRK_GET=${GET:-0} WRK_DELAY_MS=$delay taskset -c 1 wrk -t1 -c"$conns" -d"${WARMUP}s" -s "$LUA" \
		"http://127.0.0.1:$JR_PORT/" >/dev/null
	local t0 t1
	t0=$(cpu_ticks "$JR_PID")
	WRK_GET=${GET:-0} WRK_DELAY_MS=$delay taskset -c 1 wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$LUA" \
		"http://127.0.0.1:$JR_PORT/" >"$out"
	t1=$(cpu_ticks "$JR_PID")
	local rps total p50 p99 non
	rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' "$out")
	total=$(awk '/requests in/ {print $1}' "$out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
	non=$(awk '/Non-2xx/ {print $NF}' "$out")
	local tck
	tck=$(getconf CLK_TCK)
	echo "$rps $p50 $p99 ${non:-0} $(awk -v d=$((t1 - t0)) -v n="$total" -v t="$tck" 'BEGIN { printf "%.1f", d * 1e6 / t / n }') $(status_kb "$JR_PID" VmRSS) $(status_kb "$JR_PID" VmHWM)"
}

# row NAME CONNS DELAY LOGLEVEL [SERVE FLAGS...]: REPS runs, each with a fresh jobrelay;
# prints the median run (by requests/s) and the spread.
row() {
	local name=$1 conns=$2 delay=$3 level=$4
	shift 4
	local runs=() r
	for r in $(seq 1 "$REPS"); do
		start_jobrelay "$level" "$@"
		runs+=("$(measure "$conns" "$delay")")
		stop_jobrelay
		say "$name run $r: ${runs[-1]}"
	done
	printf '%s\n' "${runs[@]}" | sort -n -k1,1 >"$WORK/runs.txt"
	local med min max
	med=$(sed -n "$(((REPS + 1) / 2))p" "$WORK/runs.txt")
	min=$(head -1 "$WORK/runs.txt" | cut -d' ' -f1)
	max=$(tail -1 "$WORK/runs.txt" | cut -d' ' -f1)
	ROW_RPS=${med%% *}
	# shellcheck disable=SC2086 # the fields of the median run
	set -- $med
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s–%s |\n' "$name" "$conns" \
		"${delay:-0}" "$1" "$2" "$3" "$4" "$5" "$(($6 / 1024))" "$(($7 / 1024))" "$min" "$max" >>"$WORK/table.md"
}

{
	echo "| row | connections | delay ms | requests/s | p50 ms | p99 ms | non-2xx | CPU µs/request | RSS MiB | peak RSS MiB | requests/s spread |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >"$WORK/table.md"

say "dry-run ceiling ($CONNS connections, ${DURATION}s x $REPS)"
row "dry-run, ceiling" "$CONNS" 0 warning --dry-run
say "dry-run at about half load ($HALF_CONNS connections, 2 ms apart)"
row "dry-run, half load" "$HALF_CONNS" 2 warning --dry-run
say "noise floor: GET /healthz on one connection"
GET=1 row "GET /healthz, 1 connection" 1 0 warning --dry-run
row "dry-run, 1 connection" 1 0 warning --dry-run
say "dry-run with info logs"
row "dry-run, info logs" "$CONNS" 0 info --dry-run

FAKE_CPU="not run (ROWS=$ROWS)"
if [[ $ROWS = all ]]; then
say "Run API fake"
start_fake
export JOBRELAY_RUN_ENDPOINT=127.0.0.1:$FAKE_PORT
row "Run API fake, info logs" "$CONNS" 0 info
stop_fake
FAKE_CPU=$(node -e '
const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const c = s.cpu.sinceListening;
const calls = (s.byMethod.RunJob || {}).total || s.calls;
console.log(calls + " RunJob calls, " + (c.totalMicros / calls).toFixed(0) + " µs of the fake'"'"'s CPU per call (cpu.sinceListening)");
' "$WORK/fake.stats.json")
fi

echo
echo "jobrelay serve (nice $JR_NICE), $(date -u +%Y-%m-%d), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "config: bench/routes20.yaml (20 routes, 1 matches); request: bench/serve.lua; ${DURATION}s per run after ${WARMUP}s of warm-up; median of $REPS runs"
echo
cat "$WORK/table.md"
echo
echo "Run API fake: $FAKE_CPU"
