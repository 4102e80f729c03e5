#!/usr/bin/env bash
# The dispatcher renders a RunJob request when its call is sent, not when it
# is queued behind `concurrency`: with concurrency 1 and two routes per event,
# the second route's task waits in the queue; when its template cannot be
# rendered (a missing field) it is dead-lettered as INVALID_EVENT then, and
# every other call still goes out, one at a time.
. "$(dirname "$0")/lib.sh"
CHECK="node $JR_SOURCE_DIR/tests/integration/check_records.js"

cat >"$WORK/fake.json" <<'JSON'
{"rules": [ {"job": "first", "delay_ms": 100} ]}
JSON
start_fake --config "$WORK/fake.json"

cat >"$WORK/jobrelay.yaml" <<YAML
project: demo-project
region: europe-west2
concurrency: 1
dead_letter: { file: $WORK/dead.ndjson }
routes:
  - name: first
    match: { type: test.render }
    job: first
  - name: second
    match: { type: test.render }
    job: second
    overrides:
      env: { NAME: "{{data.name}}" }
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"

ev() { printf '{"specversion":"1.0","id":"%s","source":"test","type":"test.render","data":%s}\n' "$1" "$2"; }
{ ev ok-1 '{"name":"a"}'; ev bad-1 '{}'; ev ok-2 '{"name":"b"}'; } >"$WORK/events.ndjson"
set +e
"$JOBRELAY" replay "$WORK/events.ndjson" >"$WORK/replay.out" 2>"$WORK/replay.err"
rc=$?
set -e
cat "$WORK/replay.out"
assert_eq "$rc" 1 "exit code with a dead-lettered event"
$CHECK "$WORK/record.jsonl" '
const ids = (j) => runs.filter((r) => r.request.name.endsWith("/jobs/" + j)).map((r) => env(r).CE_ID).sort();
expect(JSON.stringify(ids("first")) === JSON.stringify(["bad-1", "ok-1", "ok-2"]), "first: every event, got " + ids("first"));
expect(JSON.stringify(ids("second")) === JSON.stringify(["ok-1", "ok-2"]), "second: the renderable ones, got " + ids("second"));
expect(runs.every((r) => r.inFlight === 1), "one call at a time: " + runs.map((r) => r.inFlight));
const b = runs.find((r) => env(r).CE_ID === "ok-2" && r.request.name.endsWith("/jobs/second"));
expect(b && env(b).NAME === "b", "NAME rendered for ok-2");
'
[ "$(wc -l <"$WORK/dead.ndjson")" -eq 1 ] || fail "one dead letter expected: $(cat "$WORK/dead.ndjson")"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const ok = r.route === "second" && r.error && r.error.code === "INVALID_EVENT" && /data\.name/.test(JSON.stringify(r));
if (!ok) { console.error("dead letter: " + JSON.stringify(r)); process.exit(1); }
' "$WORK/dead.ndjson" || fail "dead letter of bad-1 on route second with INVALID_EVENT"
grep -q '"ROUTE-RENDER-FAILED"' "$WORK/replay.err" || contains 'ROUTE-RENDER-FAILED' "$WORK/replay.err" ||
	fail "no ROUTE-RENDER-FAILED line"
echo "PASS"
