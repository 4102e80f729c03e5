#!/usr/bin/env bash
# bench/dltopic.sh — dead letters per second through each sink: `jobrelay replay` of N
# events whose route's template names a field the events lack, so every event is
# dead-lettered at once as invalid_event, with no RunJob call (and no circuit breaker, which
# a RunJob error class such as NOT_FOUND would trip): the sinks alone are measured, with
# dead_letter.file, .topic (Google's pstest on loopback), and both. The Run API fake only
# answers replay's start-up check.
#
#   bench/dltopic.sh [BUILD_DIR]     BUILD_DIR defaults to build (its src/jobrelay is run)
#
# Environment: N (5000 events), REPS (3; the run with the median wall time is shown),
# CONCURRENCY (64). Prints one row a sink: wall seconds, dead letters/s, jobrelay's CPU
# (user+sys) per dead letter, and the spread of the wall time over the runs. Everything
# stays on 127.0.0.1.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$SRC/$BUILD
N=${N:-5000}
REPS=${REPS:-3}
CONCURRENCY=${CONCURRENCY:-64}
JOBRELAY=$BUILD/src/jobrelay
JR_BUILD_DIR=$BUILD
[[ -x $JOBRELAY ]] || { echo "bench/dltopic.sh: no $JOBRELAY (build first)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "bench/dltopic.sh: /usr/bin/time is needed" >&2; exit 1; }
export METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9
unset GOOGLE_APPLICATION_CREDENTIALS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobrelay-dltopic-bench.XXXXXX")
FAKE_PID=
# shellcheck source=tests/peers/pstest/lib.sh
. "$SRC/tests/peers/pstest/lib.sh"
done_() {
	[ -z "$FAKE_PID" ] || { kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; } || true
	stop_pstest
	rm -rf "$WORK"
}
trap done_ EXIT

DLT=projects/bench/topics/dead
start_pstest "$WORK" --topic "$DLT" --subscription projects/bench/subscriptions/dead
mkfifo "$WORK/fake.out"
node "$SRC/tests/peers/runfake/server.js" --port 0 >"$WORK/fake.out" 2>"$WORK/fake.err" </dev/null &
FAKE_PID=$!
read -r line <"$WORK/fake.out"
export JOBRELAY_RUN_ENDPOINT=127.0.0.1:${line#LISTENING }

node -e 'for (let i = 0; i < +process.argv[1]; i++) console.log(JSON.stringify({specversion: "1.0",
  id: "e" + i, source: "//bench", type: "bench.dead", data: {n: i, name: "object-" + i + ".csv"}}))' "$N" \
	>"$WORK/events.ndjson"

config() {
	cat >"$WORK/$1.yaml" <<YAML
project: bench
region: europe-west2
concurrency: $CONCURRENCY
dead_letter: $2
routes:
  - { name: dead, match: { type: bench.dead }, job: j, overrides: { env: { X: "{{data.nope}}" } } }
YAML
}
config file "{ file: $WORK/dead.ndjson }"
config topic "{ topic: $DLT }"
config both "{ topic: $DLT, file: $WORK/dead.ndjson }"

printf '%-6s %8s %10s %16s %16s\n' sink wall_s "dl/s" "cpu_us/dl" "wall_min-max"
for sink in file topic both; do
	rows=()
	for ((r = 0; r < REPS; r++)); do
		rm -f "$WORK/dead.ndjson"
		set +e
		/usr/bin/time -f '%e %U %S' -o "$WORK/time" "$JOBRELAY" --log-level error --config "$WORK/$sink.yaml" \
			replay "$WORK/events.ndjson" >"$WORK/out" 2>"$WORK/err"
		rc=$?
		set -e
		[ "$rc" = 1 ] || { cat "$WORK/err" >&2; echo "replay exit $rc (want 1: dead-lettered)" >&2; exit 1; }
		grep -q "^dead .* $N " "$WORK/out" || { cat "$WORK/out" >&2; echo "not all $N dead-lettered" >&2; exit 1; }
		rows+=("$(tail -n 1 "$WORK/time")")
	done
	printf '%s\n' "${rows[@]}" | sort -n | awk -v n="$N" -v sink="$sink" -v reps="$REPS" '
		{ w[NR] = $1; c[NR] = $2 + $3 }
		END { m = int((reps + 1) / 2); printf "%-6s %8.2f %10.0f %16.1f %16s\n", sink, w[m], n / w[m], c[m] * 1e6 / n, w[1] "-" w[reps] }'
done
