#!/usr/bin/env bash
# bench/soak.sh — the long fault soak (docs/benchmarks.md, "fault soak").
#
#   bench/soak.sh [BUILD_DIR]      BUILD_DIR defaults to build (jobrelay is built in it)
#
# Runs tests/integration/test_soak_pull.sh, test_soak_serve.sh, test_soak_multi_pull.sh
# and test_soak_multi_serve.sh (3 processes side by side) with SOAK_EVENTS events
# (10,000) and SOAK_KILLS SIGKILL-and-restart points (4), RunJob answers 300-600 ms after
# the request (SOAK_ANSWER_DELAY), and prints each run's figures: events, dispatched,
# dead-lettered by class, lost, events started twice and why, kills with what was in
# flight (messages or push requests, and RunJob calls the fake had not answered yet),
# breaker transitions, RunJob and ListExecutions calls, wall time and jobrelay's CPU
# (user+system of every run, from /proc). Every check of the soak still applies: a
# violation fails the run, an event started twice included. Environment: SOAK_EVENTS, SOAK_KILLS, SOAK_SEED (1), SOAK_STREAM_TIMEOUT
# (3s), SOAK_WAIT (1800 s), SOAK_ANSWER_DELAY (300-600), MODES
# ("pull serve multi_pull multi_serve"), OUT (folder for the figures JSON, default
# /tmp/jobrelay-soak), JOBRELAY (the binary; default BUILD_DIR's).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$SRC/$BUILD
export JOBRELAY=${JOBRELAY:-$BUILD/src/jobrelay}
[ -x "$JOBRELAY" ] || { echo "bench/soak.sh: no $JOBRELAY (make build)" >&2; exit 2; }
export JR_SOURCE_DIR=$SRC JR_BUILD_DIR=$BUILD JR_TESTDATA=${JR_TESTDATA:-$SRC/tests/data}
export SOAK_EVENTS=${SOAK_EVENTS:-10000} SOAK_KILLS=${SOAK_KILLS:-4} SOAK_WAIT=${SOAK_WAIT:-1800}
OUT=${OUT:-/tmp/jobrelay-soak}
mkdir -p "$OUT"
echo "soak: $SOAK_EVENTS events, $SOAK_KILLS kills, seed ${SOAK_SEED:-1}, commit $(git -C "$SRC" rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
for mode in ${MODES:-pull serve multi_pull multi_serve}; do
	set +e
	bash "$SRC/tests/integration/test_soak_$mode.sh" >"$OUT/$mode.out" 2>"$OUT/$mode.err"
	st=$?
	set -e
	[ "$st" = 0 ] || { rc=1; echo "soak $mode: FAILED (exit $st); see $OUT/$mode.err"; tail -20 "$OUT/$mode.err"; }
	# the figures: the checker's JSON object, the first '{' line to its closing '}'
	sed -n '/^{$/,/^}$/p' "$OUT/$mode.out" >"$OUT/$mode.json"
	[ -s "$OUT/$mode.json" ] || continue
	node - "$OUT/$mode.json" "$mode" <<'JS'
const f = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const kv = (o) => Object.entries(o || {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
const line = (k, v) => console.log(`  ${k.padEnd(22)} ${v}`);
console.log(`soak ${process.argv[3]}${f.instances ? ` (${f.instances} processes)` : ''}:`);
line('events', f.events);
line('dispatched', `${f.dispatched} (RunJob calls ${f.runjob.calls}: ${kv(f.runjob.by_status)})`);
line('dead-lettered', `${kv(f.dead_lettered)} (topic ${f.dead_lettered_topic}, file ${f.dead_lettered_file})`);
line('lost', f.lost);
line('started twice', `${f.started_twice} (${kv(f.started_twice_by_cause)})${f.started_twice_allowed ? ', allowed for now' : ''}`);
line('duplicates', kv(f.duplicates));
line('kills', f.kills.map((k) => `run ${k.run}${k.process ? ` (process ${k.process})` : ''}: ${k.in_flight} in flight, RunJob ${k.runjob_in_flight} unanswered (${k.runjob_in_flight_created} created), ${k.duplicates} dispatched again`).join('; ') || 'none');
line('RunJob in flight at kills', f.runjob_in_flight_at_kills);
line('ambiguous recovered', `${f.ambiguous_recovered} (ListExecutions calls ${f.list_executions})`);
line('Pub/Sub dead-lettered', f.pubsub_dead_lettered);
line('breaker transitions', Object.entries(f.breaker).map(([j, s]) => `${j}: ${kv(s)}`).join('; ') || 'none');
if (f.pubsub) line('pub/sub', `${f.pubsub.deliveries} deliveries, ${f.pubsub.redelivered} messages redelivered${f.pubsub.reply_max_ms !== undefined ? `, first reply to a delivery within ${f.pubsub.reply_max_ms} ms` : ''}`);
line('wall time', `${f.wall_s.toFixed(1)} s`);
line('jobrelay CPU', `${f.jobrelay_cpu_s} s (${(f.jobrelay_cpu_s * 1e6 / f.events).toFixed(0)} us an event)`);
line('violations', f.violations);
JS
done
exit $rc
