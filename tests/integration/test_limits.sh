#!/usr/bin/env bash
# test_limits.sh — the Run API's limits are checked before sending, and which
# RunJob answers trip a job's breaker (docs/configuration.md, "Limits checked
# before sending"; docs/policies.md). The fake enforces the same limits as the
# real API (INVALID_ARGUMENT for an env value over 32768 bytes), and every
# breaker here opens after one failure (window 1, min_calls 1):
#  - an event whose rendered env value is one byte over the limit is
#    dead-lettered as invalid_event naming the variable and its size; the fake
#    sees no RunJob for it, the job's breaker stays closed, and the next events
#    of the same job (one exactly at the limit) are dispatched;
#  - an INVALID_ARGUMENT answer from the fake costs that event only
#    (invalid_event, no BREAKER-OPEN), the job's next event is dispatched;
#  - a NOT_FOUND answer still opens the job's breaker: the next event of that
#    job is held (with --no-retry: dead-lettered BREAKER_OPEN), no RunJob sent.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHECK="node $JR_SOURCE_DIR/tests/integration/check_records.js"

cat >"$WORK/fake.json" <<'JSON'
{"rules": [
  {"job": "argbad", "code": "INVALID_ARGUMENT", "message": "overrides rejected", "times": 1},
  {"job": "missing", "code": "NOT_FOUND", "message": "job missing", "times": 1}
]}
JSON
start_fake --config "$WORK/fake.json"

cat >"$WORK/jobrelay.yaml" <<YAML
project: demo-project
region: europe-west2
concurrency: 1
call_timeout: 5s
dead_letter: { file: $WORK/dead.ndjson }
circuit_breaker: { window: 1, min_calls: 1, failure_rate: 1, open_for: 1m, max_open_for: 1m }
routes:
  - name: payload
    match: { type: test.payload }
    job: ingest
    overrides:
      env: { PAYLOAD_B64: "{{data.message.data}}" }
  - name: argbad
    match: { type: test.argbad }
    job: argbad
  - name: missing
    match: { type: test.missing }
    job: missing
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"

ev() { printf '{"specversion":"1.0","id":"%s","source":"test","type":"%s","data":%s}\n' "$1" "$2" "${3:-null}"; }
# msg N: an Eventarc-style message whose base64 data is N bytes
msg() { printf '{"message":{"data":"%s"}}' "$(head -c "$1" /dev/zero | tr '\0' Q)"; }
{
	ev p-over test.payload "$(msg 32769)"
	ev p-at test.payload "$(msg 32768)"
	ev p-small test.payload "$(msg 8)"
	ev a1 test.argbad
	ev a2 test.argbad
	ev m1 test.missing
	ev m2 test.missing
} >"$WORK/events.ndjson"

# --no-retry: an event held by an open breaker is dead-lettered at once (code
# BREAKER_OPEN) instead of waiting out open_for
set +e
"$JOBRELAY" --log-format json replay --no-retry "$WORK/events.ndjson" >"$WORK/replay.out" 2>"$WORK/replay.log"
rc=$?
set -e
cat "$WORK/replay.out"
assert_eq "$rc" 1 "replay exit code (dead letters)"

echo "== the fake saw no RunJob for the oversized event; the others of its job went out"
$CHECK "$WORK/record.jsonl" '
const of = (j) => runs.filter((r) => r.request.name === "projects/demo-project/locations/europe-west2/jobs/" + j);
const ingest = of("ingest").map((r) => env(r).CE_ID + ":" + r.statusName).join();
expect(ingest === "p-at:OK,p-small:OK", "ingest calls: " + ingest);
expect(env(of("ingest")[0]).PAYLOAD_B64.length === 32768, "the value at the limit was sent whole");
const argbad = of("argbad").map((r) => env(r).CE_ID + ":" + r.statusName).join();
expect(argbad === "a1:INVALID_ARGUMENT,a2:OK", "argbad calls: " + argbad);
const missing = of("missing").map((r) => env(r).CE_ID + ":" + r.statusName).join();
expect(missing === "m1:NOT_FOUND", "missing calls (m2 held by the open breaker): " + missing);
'

echo "== dead letters: invalid_event naming the variable and its size; BREAKER_OPEN only for missing"
node - "$WORK/dead.ndjson" "$WORK/replay.log" <<'JS' || fail "dead letters and breaker log"
const fs = require('fs');
const [deadFile, logFile] = process.argv.slice(2);
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map(JSON.parse);
const fail = (m) => { console.error(m); process.exit(1); };
const dead = lines(deadFile);
const got = dead.map((d) => `${d.event.id}:${d.route}:${d.error.class}:${d.error.code}`).sort().join();
const want = 'a1:argbad:invalid_event:INVALID_ARGUMENT,m1:missing:invalid_request:NOT_FOUND,' +
  'm2:missing:invalid_request:BREAKER_OPEN,p-over:payload:invalid_event:INVALID_EVENT';
if (got !== want) fail('dead letters: ' + got);
const over = dead.find((d) => d.event.id === 'p-over');
if (!/PAYLOAD_B64/.test(over.error.message) || !/32769 bytes/.test(over.error.message) || !/32768/.test(over.error.message))
  fail('message of the oversized event: ' + over.error.message);
const logs = lines(logFile);
const render = logs.filter((l) => l.msgid === 'ROUTE-RENDER-FAILED');
if (render.length !== 1 || render[0].event_id !== 'p-over') fail('ROUTE-RENDER-FAILED lines: ' + JSON.stringify(render));
const opened = logs.filter((l) => l.msgid === 'BREAKER-OPEN').map((l) => `${l.job.replace(/.*\//, '')}:${l.class}`).join();
if (opened !== 'missing:invalid_request') fail('BREAKER-OPEN lines: ' + opened);
const ok = logs.filter((l) => l.msgid === 'DISPATCH-OK').map((l) => l.event_id).sort().join();
if (ok !== 'a2,p-at,p-small') fail('dispatched: ' + ok);
console.log('ok: ' + got);
JS
echo "PASS"
