#!/usr/bin/env bash
# bench/lookup.sh — what the lookup before RunJob costs (repeat_check, docs/operations.md
# "Exactly-once job starts"): `jobrelay replay` of Pub/Sub push bodies against the Run API
# fake (tests/peers/runfake) on loopback, one route, one job.
#
#   bench/lookup.sh [BUILD_DIR]     BUILD_DIR defaults to build-bench (Release; jobrelay is
#                                   built there)
#
# Each repetition starts two fresh fakes and runs, in order (the fake keeps the executions
# it creates, so each step sees the job the steps before it left):
#   quiet job (a fake of its own):
#     q-normal   S events, deliveryAttempt 1                 -> RunJob each, no lookup
#     q-found    the same S events, deliveryAttempt 2        -> lookup each, found, no RunJob
#     q-miss     S new events, deliveryAttempt 2             -> lookup each, not found, RunJob
#   busy job (another fake):
#     b-normal   N events, deliveryAttempt 1                 -> RunJob each, no lookup
#     b-newest   the newest NEWEST of them, deliveryAttempt 2 -> found on the first page(s)
#     b-oldest   the oldest S of them, deliveryAttempt 2     -> past the 5 pages: not found, RunJob
#     b-all      (STORM_ALL=1 only; slow) all N again, deliveryAttempt 2
# A lookup reads ListExecutions pages of 100, newest first, at most 5 (runwatch.h), so the
# job's executions newer than the one looked for decide how many pages it reads.
#
# Per step: jobrelay CPU (user+sys, /usr/bin/time, start-up included) per event, wall time,
# RunJob and ListExecutions calls at the fake (its --stats, written on SIGUSR1 after each
# step; the one ListExecutions of page size 1 that every jobrelay run makes at start-up is
# subtracted), the fake's CPU per event (cpu.sinceListening), and DISPATCH-LOOKUP /
# DISPATCH-FOUND from jobrelay's log. Each step runs REPS times (each time on fresh fakes);
# the table shows the run with the median jobrelay CPU and the range of all runs.
#
# Also per repetition: a replay of an empty file against the fake (start-up: loading, the
# channel, the start-up ListExecutions), its CPU printed above the table.
#
# Environment: N (5000), S (500), NEWEST (100), REPS (3), STORM_ALL (0),
# WORK (${TMPDIR:-/tmp}/jobrelay-lookup).
#
# Every step has a time limit; the fakes are stopped on exit (and stop by themselves if this
# script dies: their stdin closes). Nothing leaves 127.0.0.1; the fake is told not to look
# for a metadata server.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-bench}
[[ $BUILD = /* ]] || BUILD=$SRC/$BUILD
N=${N:-5000}
S=${S:-500}
NEWEST=${NEWEST:-100}
REPS=${REPS:-3}
STORM_ALL=${STORM_ALL:-0}
WORK=${WORK:-${TMPDIR:-/tmp}/jobrelay-lookup}
FAKE_DIR=$SRC/tests/peers/runfake

die() { echo "bench/lookup.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

[[ -f $BUILD/CMakeCache.txt ]] || die "$BUILD is not a configured build folder (see docs/benchmarks.md)"
command -v node >/dev/null || die "node is needed (the Run API fake)"
command -v jq >/dev/null || die "jq is needed"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (apt-get install time)"
[[ -d $FAKE_DIR/node_modules ]] || die "run 'npm ci' in $FAKE_DIR first (or scripts/deps.sh)"
((NEWEST <= N && S <= N)) || die "NEWEST and S must not exceed N"
mkdir -p "$WORK"

FAKE_PID= FAKE_NODE=
cleanup() {
	if [[ -n $FAKE_PID ]] && kill -0 "$FAKE_PID" 2>/dev/null; then
		kill -TERM "$FAKE_PID" 2>/dev/null || true
		wait "$FAKE_PID" 2>/dev/null || true
	fi
	exec 7>&- 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building jobrelay in $BUILD"
timeout 600 cmake --build "$BUILD" -j2 --target jobrelay >"$WORK/build.log" 2>&1 ||
	die "build failed, see $WORK/build.log"
JOBRELAY=$BUILD/src/jobrelay
grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$BUILD/CMakeCache.txt" ||
	echo "bench/lookup.sh: warning: $BUILD is not a Release build" >&2

cat >"$WORK/jobrelay.yaml" <<YAML
project: acme-prod
region: europe-west2
dead_letter: { file: $WORK/dead.ndjson }
repeat_check: { mode: on_redelivery }
routes:
  - name: msg
    match: { type: google.cloud.pubsub.topic.v1.messagePublished }
    job: lookup-bench
YAML

# push PREFIX FROM TO ATTEMPT PUBLISHTIME: push bodies of messages PREFIX-FROM..PREFIX-TO
push() {
	awk -v p="$1" -v from="$2" -v to="$3" -v a="$4" -v t="$5" 'BEGIN {
		for (i = from; i <= to; i++)
			printf "{\"message\":{\"data\":\"aGVsbG8=\",\"messageId\":\"%s-%d\",\"publishTime\":\"%s\"},\"subscription\":\"projects/acme-prod/subscriptions/lookup\",\"deliveryAttempt\":%d}\n", p, i, t, a
	}'
}

# ---- Run API fake ----------------------------------------------------------------------

fake_start() { # a fresh fake on a random loopback port: FAKE_PID (timeout), FAKE_NODE, PORT
	rm -f "$WORK/fake-stats.json" "$WORK/fake.fifo"
	mkfifo "$WORK/fake.fifo"
	METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9 \
		timeout 1800 node "$FAKE_DIR/server.js" --port 0 --stats "$WORK/fake-stats.json" \
		--exit-on-stdin-close <"$WORK/fake.fifo" >"$WORK/fake.out" 2>"$WORK/fake.err" &
	FAKE_PID=$!
	exec 7>"$WORK/fake.fifo" # its stdin: closes (and so stops the fake) if this script dies
	for ((i = 0; i < 300; i++)); do
		PORT=$(awk '/^LISTENING/ { print $2 }' "$WORK/fake.out")
		if [[ -n $PORT ]]; then
			FAKE_NODE=$(pgrep -P "$FAKE_PID" -x node) || die "no node process under $FAKE_PID"
			FAKE_LAST="0 0 0 0" # RunJob ListExecutions cpu_us executions, at the last snapshot
			return
		fi
		kill -0 "$FAKE_PID" 2>/dev/null || die "the fake did not start (see $WORK/fake.err)"
		sleep 0.1
	done
	die "the fake did not listen within 30 s"
}

fake_stop() {
	kill -TERM "$FAKE_PID"
	wait "$FAKE_PID" || true
	FAKE_PID= FAKE_NODE=
	exec 7>&-
}

# fake_delta: SIGUSR1 (stats written, the fake keeps running); FAKE_DELTA = "runjob
# listexecutions cpu_us" since the last snapshot, and the job's executions now
fake_delta() {
	rm -f "$WORK/fake-stats.json"
	kill -USR1 "$FAKE_NODE"
	for ((i = 0; i < 100; i++)); do
		[[ -f $WORK/fake-stats.json ]] && break
		sleep 0.05
	done
	[[ -f $WORK/fake-stats.json ]] || die "the fake wrote no stats (see $WORK/fake.err)"
	local now
	now=$(jq -r '[(.byMethod.RunJob.total // 0), (.byMethod.ListExecutions.total // 0),
		.cpu.sinceListening.totalMicros, .executionsKnown] | @tsv' "$WORK/fake-stats.json")
	FAKE_DELTA=$(echo "$FAKE_LAST $now" | awk '{ print $5 - $1, $6 - $2, $7 - $3, $8 }')
	FAKE_LAST=$now
}

# step NAME FILE: one jobrelay replay of FILE against the fake; appends to $WORK/NAME.txt
# "user sys wall events runjob lookups_le_calls fake_cpu_us lookups found executions_after"
step() {
	local name=$1 file=$2 events
	events=$(wc -l <"$file")
	JOBRELAY_RUN_ENDPOINT=127.0.0.1:$PORT /usr/bin/time -f '%U %S %e' -o "$WORK/time.tmp" \
		timeout 900 "$JOBRELAY" --config "$WORK/jobrelay.yaml" --log-format json replay "$file" \
		>"$WORK/$name.summary" 2>"$WORK/$name.log" || die "replay $name failed (see $WORK/$name.*)"
	grep -q "events: $events read, 0 invalid, 0 unrouted" "$WORK/$name.summary" ||
		die "replay $name: unexpected summary (see $WORK/$name.summary)"
	fake_delta
	local lookups found
	lookups=$(grep -c '"msgid":"DISPATCH-LOOKUP"' "$WORK/$name.log" || true)
	found=$(grep -c '"msgid":"DISPATCH-FOUND"' "$WORK/$name.log" || true)
	# every jobrelay run opens with one ListExecutions of page size 1 (the reads check)
	echo "$(cat "$WORK/time.tmp") $events $FAKE_DELTA $lookups $found" |
		awk '{ print $1, $2, $3, $4, $5, $6 - 1, $7, $9, $10, $8 }' >>"$WORK/$name.txt"
}

STEPS="q-normal q-found q-miss b-normal b-newest b-oldest"
[[ $STORM_ALL = 1 ]] && STEPS+=" b-all"
for s in $STEPS; do : >"$WORK/$s.txt"; done
: >"$WORK/startup.txt"
rm -f "$WORK/dead.ndjson"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= REPS; r++)); do
	# publish times: the events' first delivery now; a redelivery keeps its message's time
	t=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
	push q 1 "$S" 1 "$t" >"$WORK/q-normal.ndjson"
	push q 1 "$S" 2 "$t" >"$WORK/q-found.ndjson"
	push qm 1 "$S" 2 "$t" >"$WORK/q-miss.ndjson"
	push b 1 "$N" 1 "$t" >"$WORK/b-normal.ndjson"
	push b $((N - NEWEST + 1)) "$N" 2 "$t" >"$WORK/b-newest.ndjson"
	push b 1 "$S" 2 "$t" >"$WORK/b-oldest.ndjson"
	push b 1 "$N" 2 "$t" >"$WORK/b-all.ndjson"

	say "run $r of $REPS: quiet job ($S events, then the same $S redelivered, then $S new ones redelivered)"
	fake_start
	: >"$WORK/empty.ndjson"
	JOBRELAY_RUN_ENDPOINT=127.0.0.1:$PORT /usr/bin/time -f '%U %S %e' -o "$WORK/time.tmp" \
		timeout 60 "$JOBRELAY" --config "$WORK/jobrelay.yaml" --log-format json replay \
		"$WORK/empty.ndjson" >/dev/null 2>"$WORK/startup.log" || die "empty replay failed"
	cat "$WORK/time.tmp" >>"$WORK/startup.txt"
	fake_delta
	for s in q-normal q-found q-miss; do step "$s" "$WORK/$s.ndjson"; done
	fake_stop
	say "run $r of $REPS: busy job ($N events, then redeliveries of the newest $NEWEST and of the oldest $S)"
	fake_start
	for s in b-normal b-newest b-oldest; do step "$s" "$WORK/$s.ndjson"; done
	if [[ $STORM_ALL = 1 ]]; then
		say "run $r of $REPS: all $N events redelivered (slow: 5 pages a lookup)"
		step b-all "$WORK/b-all.ndjson"
	fi
	fake_stop
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
[[ ! -s $WORK/dead.ndjson ]] || die "events were dead-lettered: see $WORK/dead.ndjson"

# ---- table -----------------------------------------------------------------------------

cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
printf '\njobrelay %s (%s), %s cpus (%s), load %s at start, %s at end\n' \
	"$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')" "$(basename "$BUILD")" \
	"$(nproc)" "$cpu_model" "$LOAD_START" "$LOAD_END"
printf 'one route, one job; replay of push bodies against the Run API fake on 127.0.0.1; %s runs, median by jobrelay CPU\n\n' "$REPS"
STARTUP=$(awk '{ print $1 + $2 }' "$WORK/startup.txt" | sort -n | sed -n "$(((REPS + 1) / 2))p")
printf 'start-up (replay of an empty file), median: %s s CPU (all runs: %s)\n\n' "$STARTUP" \
	"$(awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 + $2 }' "$WORK/startup.txt")"
printf '%-9s %6s %7s %6s %6s %6s %6s %10s %6s %7s %11s %8s %11s\n' step events "execs@" lookups found \
	RunJob ListEx "pages/look" "cpu s" "wall s" "jr us/event" "range" "fake us/ev"
for s in $STEPS; do
	awk '{ printf "%.3f %s\n", ($1 + $2) * 1e6 / $4, $0 }' "$WORK/$s.txt" | sort -n >"$WORK/$s.sorted"
	n=$(wc -l <"$WORK/$s.sorted")
	min=$(head -n 1 "$WORK/$s.sorted" | cut -d' ' -f1)
	max=$(tail -n 1 "$WORK/$s.sorted" | cut -d' ' -f1)
	sed -n "$(((n + 1) / 2))p" "$WORK/$s.sorted" | awk -v name="$s" -v min="$min" -v max="$max" '{
		# $1 us/event; $2 user $3 sys $4 wall $5 events $6 runjob $7 le $8 fake_us $9 lookups
		# $10 found $11 executions after the step
		before = $11 - $6
		printf "%-9s %6d %7d %7d %6d %6d %6d %10s %6.2f %7.2f %11.0f %8s %11.0f\n", name, $5,
			before, $9, $10, $6, $7, ($9 ? sprintf("%.2f", $7 / $9) : "-"), $2 + $3, $4, $1,
			sprintf("%.0f-%.0f", min, max), $8 / $5 }'
done
cat <<'EOF'

execs@: the job's executions when the step began; ListEx: ListExecutions calls of the lookups
(start-up check excluded); pages/look: ListEx per lookup; jr us/event: jobrelay user+sys per
event, start-up included (range: of all runs; /usr/bin/time counts in 10 ms steps, so
short steps are coarse); fake us/ev: the fake's CPU per event
EOF
