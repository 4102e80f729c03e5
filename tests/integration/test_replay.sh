#!/usr/bin/env bash
# Replay sample events through jobrelay to the Run API fake (Node grpc-js with
# Google's protos) and check what the fake decoded; then inject errors and
# check retries and dead letters. (The slow job's calls outlive the client's
# deadline without creating an execution, so the ambiguous-failure lookup
# finds none and the timeout policy retries: test_ambiguous.sh has the case
# where the execution exists.)
. "$(dirname "$0")/lib.sh"
CHECK="node $JR_SOURCE_DIR/tests/integration/check_records.js"
TD="$JR_TESTDATA"

cat >"$WORK/fake.json" <<'JSON'
{"rules": [
  {"job": "flaky", "code": "UNAVAILABLE", "message": "backend down", "times": 2},
  {"job": "busy", "code": "RESOURCE_EXHAUSTED", "retry_delay_ms": 300, "times": 1},
  {"job": "denied", "code": "PERMISSION_DENIED", "message": "caller lacks run.jobs.run"},
  {"job": "missing", "code": "NOT_FOUND", "message": "job not found"},
  {"job": "slow", "code": "DEADLINE_EXCEEDED", "delay_ms": 3000}
]}
JSON
start_fake --config "$WORK/fake.json" --require-request-params

cat >"$WORK/jobrelay.yaml" <<YAML
project: demo-project
region: europe-west2
concurrency: 8
call_timeout: 500ms
dead_letter: { file: $WORK/dead.ndjson }
policies:
  network: { initial_backoff: 10ms, max_backoff: 50ms }
  timeout: { max_attempts: 2, initial_backoff: 10ms, max_backoff: 20ms }
routes:
  - name: csv
    match:
      type: google.cloud.storage.object.v1.finalized
      subject: { suffix: ".csv" }
    job: ingest-csv
    overrides:
      env: { INPUT: "gs://{{data.bucket}}/{{data.name}}", SIZE: "{{data.size}}" }
      args: [ "--input", "{{data.name}}" ]
      task_count: 2
      timeout: 10m
  - name: pubsub
    match: { type: google.cloud.pubsub.topic.v1.messagePublished }
    job: projects/other-project/locations/us-central1/jobs/on-message
    overrides:
      env: { MSG: "{{message.id}}", ATTR: "{{attributes.attr1?}}" }
  - name: flaky
    match: { type: test.flaky }
    job: flaky
  - name: busy
    match: { type: test.busy }
    job: busy
  - name: denied
    match: { type: test.denied }
    job: denied
  - name: missing
    match: { type: test.missing }
    job: missing
  - name: slow
    match: { type: test.slow }
    job: slow
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"

echo "== check-config"
"$JOBRELAY" check-config >"$WORK/check.out"
grep -q "job: projects/demo-project/locations/europe-west2/jobs/ingest-csv" "$WORK/check.out" ||
	fail "check-config does not show the full job name"
grep -q "job: projects/other-project/locations/us-central1/jobs/on-message" "$WORK/check.out" ||
	fail "check-config does not keep a full job name"

echo "== replay the sample events"
mkdir "$WORK/events"
cat >"$WORK/events/a.json" <<'JSON'
{"specversion":"1.0","id":"csv-1","source":"//storage.googleapis.com/projects/_/buckets/uploads",
 "type":"google.cloud.storage.object.v1.finalized","subject":"objects/in/data.csv",
 "time":"2026-11-26T10:00:00Z","datacontenttype":"application/json",
 "data":{"bucket":"uploads","name":"in/data.csv","size":"1024"}}
JSON
printf '%s\n' \
 '{"specversion":"1.0","id":"csv-2","source":"//storage.googleapis.com/projects/_/buckets/uploads","type":"google.cloud.storage.object.v1.finalized","subject":"objects/b.csv","data":{"bucket":"uploads","name":"b.csv","size":7}}' \
 '{"specversion":"1.0","id":"png-1","source":"//storage.googleapis.com/projects/_/buckets/uploads","type":"google.cloud.storage.object.v1.finalized","subject":"objects/b.png","data":{"bucket":"uploads","name":"b.png"}}' \
 >"$WORK/events/b.ndjson"
cp "$TD/functions-framework-dotnet/src/Google.Cloud.Functions.Framework.Tests/GcfEvents/raw_pubsub.json" "$WORK/events/c-push.json"
"$JOBRELAY" replay "$WORK/events" >"$WORK/replay.out" 2>"$WORK/replay.err" ||
	{ cat "$WORK/replay.err" >&2; fail "replay exited $?"; }
cat "$WORK/replay.out"
$CHECK "$WORK/record.jsonl" '
expect(runs.length === 3, "3 RunJob calls, got " + runs.length);
const csv1 = runs.find((r) => env(r).CE_ID === "csv-1");
expect(csv1, "csv-1 was dispatched");
expect(csv1.request.name === "projects/demo-project/locations/europe-west2/jobs/ingest-csv", "csv-1 job name");
const e = env(csv1);
expect(e.INPUT === "gs://uploads/in/data.csv", "INPUT rendered: " + e.INPUT);
expect(e.SIZE === "1024", "SIZE rendered");
expect(e.CE_SOURCE === "//storage.googleapis.com/projects/_/buckets/uploads", "CE_SOURCE");
expect(e.CE_TYPE === "google.cloud.storage.object.v1.finalized", "CE_TYPE");
expect(e.CE_SUBJECT === "objects/in/data.csv", "CE_SUBJECT");
expect(e.CE_TIME === "2026-11-26T10:00:00Z", "CE_TIME");
expect(e.JOBRELAY_ROUTE === "csv", "JOBRELAY_ROUTE");
expect(/^[0-9a-f]{16}$/.test(e.JOBRELAY_KEY), "JOBRELAY_KEY");
const co = csv1.request.overrides.containerOverrides[0];
expect(JSON.stringify(co.args) === JSON.stringify(["--input", "in/data.csv"]), "args");
expect(csv1.request.overrides.taskCount === 2, "taskCount");
expect(csv1.request.overrides.timeout === "600s", "timeout " + csv1.request.overrides.timeout);
expect(csv1.metadata["x-goog-request-params"] === "location=europe-west2", "request params: " + csv1.metadata["x-goog-request-params"]);
expect(runs.every((r) => r.requestParams.ok), "routing header as the annotation asks");
expect(/jobrelay\//.test(csv1.metadata["user-agent"]), "user-agent names jobrelay");
expect(/jobrelay\//.test(csv1.metadata["x-goog-api-client"] || ""), "x-goog-api-client names jobrelay");
expect(csv1.deadline > 0 && csv1.deadline <= 600, "call_timeout sent as the deadline: " + csv1.deadline);
const csv2 = runs.find((r) => env(r).CE_ID === "csv-2");
expect(csv2 && env(csv2).SIZE === "7", "a number renders as JSON text");
const ps = runs.find((r) => r.request.name === "projects/other-project/locations/us-central1/jobs/on-message");
expect(ps, "push body dispatched by the pubsub route");
expect(env(ps).MSG === env(ps).CE_ID && env(ps).MSG.length > 0, "message.id is the event id");
expect(!runs.some((r) => env(r).CE_ID === "png-1"), "unmatched event not dispatched");
'
grep -q "unrouted" "$WORK/replay.out" || fail "no summary"
grep -Eq "^csv +2 +0 +0 +0" "$WORK/replay.out" || fail "summary for csv"

echo "== errors: retry, RetryInfo, permission, not found, deadline"
: >"$WORK/record.jsonl"
ev() { printf '{"specversion":"1.0","id":"%s","source":"test","type":"%s"}\n' "$1" "$2"; }
{ ev f1 test.flaky; ev b1 test.busy; ev n1 test.missing; ev s1 test.slow; } >"$WORK/errs.ndjson"
set +e
"$JOBRELAY" replay "$WORK/errs.ndjson" >"$WORK/errs.out" 2>"$WORK/errs.err"
rc=$?
set -e
cat "$WORK/errs.out"
assert_eq "$rc" 1 "exit code with dead-lettered events"
$CHECK "$WORK/record.jsonl" '
const by = (j) => runs.filter((r) => r.request.name.endsWith("/jobs/" + j));
expect(by("flaky").length === 3, "flaky: 2 UNAVAILABLE then OK = 3 calls, got " + by("flaky").length);
expect(by("flaky")[2].status === 0, "flaky succeeds on the third call");
const busy = by("busy");
expect(busy.length === 2, "busy: RESOURCE_EXHAUSTED then OK");
const gap = Date.parse(busy[1].time) - Date.parse(busy[0].time);
expect(gap >= 300, "RetryInfo delay honoured: waited " + gap + " ms");
expect(by("missing").length === 1, "NOT_FOUND is not retried");
expect(by("slow").length === 2, "deadline: 2 attempts (max_attempts 2)");
'
node -e '
const fs = require("fs");
const recs = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
const by = Object.fromEntries(recs.map((r) => [r.event.id, r]));
const want = {n1: ["invalid_request", "NOT_FOUND", 1], s1: ["timeout", "DEADLINE_EXCEEDED", 2]};
for (const [id, [cls, code, att]] of Object.entries(want)) {
  const r = by[id];
  if (!r || r.error.class !== cls || r.error.code !== code || r.attempts !== att) {
    console.error("FAIL: dead letter for", id, JSON.stringify(r)); process.exit(1);
  }
}
if (recs.length !== 2) { console.error("FAIL: 2 dead letters expected, got", recs.length); process.exit(1); }
if (!by.n1.route || by.n1.event.type !== "test.missing" || !by.n1.failed_at) { console.error("FAIL: record fields"); process.exit(1); }
' "$WORK/dead.ndjson"

echo "== --no-retry fails fast"
: >"$WORK/record.jsonl"
ev d1 test.denied >"$WORK/denied.ndjson"
set +e
"$JOBRELAY" replay --no-retry "$WORK/denied.ndjson" >"$WORK/denied.out" 2>&1
rc=$?
set -e
assert_eq "$rc" 1 "--no-retry exit code"
assert_eq "$(count_records RunJob)" 1 "--no-retry makes one call"
tail -n 1 "$WORK/dead.ndjson" | contains '"class":"permission","code":"PERMISSION_DENIED"' ||
	fail "permission dead letter"

echo "== the dead-letter file replays"
cat >"$WORK/fake.json" <<'JSON'
{"rules": []}
JSON
: >"$WORK/record.jsonl"
"$JOBRELAY" replay "$WORK/dead.ndjson" >"$WORK/redo.out" 2>"$WORK/redo.err" ||
	{ cat "$WORK/redo.err" >&2; fail "replaying the dead-letter file"; }
$CHECK "$WORK/record.jsonl" '
const ids = runs.map((r) => env(r).CE_ID).sort().join(",");
expect(ids === "d1,n1,s1", "re-dispatched the dead-lettered events: " + ids);
'

echo "== a bad line costs only itself"
: >"$WORK/record.jsonl"
{ ev g1 test.flaky; echo '{"specversion":"1.0","id":'; echo '{"id":"x","source":"s","type":"t"}'; ev g2 test.flaky; } >"$WORK/bad.ndjson"
set +e
"$JOBRELAY" replay "$WORK/bad.ndjson" >"$WORK/bad.out" 2>"$WORK/bad.err"
rc=$?
set -e
assert_eq "$rc" 1 "exit code with invalid lines"
grep -q "bad.ndjson:2" "$WORK/bad.err" || fail "line 2 not named"
grep -q "bad.ndjson:3" "$WORK/bad.err" || fail "line 3 not named"
assert_eq "$(count_records RunJob)" 2 "the good lines still ran"

echo "== dry run prints requests and calls nothing"
: >"$WORK/record.jsonl"
"$JOBRELAY" replay --dry-run "$WORK/events/a.json" >"$WORK/dry.out" 2>/dev/null
assert_eq "$(count_records RunJob)" 0 "dry run calls nothing"
node -e '
const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
if (l.length !== 1) { console.error("FAIL: one line expected"); process.exit(1); }
const o = JSON.parse(l[0]);
const ok = o.route === "csv" && o.event.id === "csv-1" &&
  o.request.name === "projects/demo-project/locations/europe-west2/jobs/ingest-csv" &&
  o.request.overrides.containerOverrides[0].env[0].name === "INPUT" &&
  o.request.overrides.taskCount === 2 && o.request.overrides.timeout === "600s";
if (!ok) { console.error("FAIL: dry-run line", l[0]); process.exit(1); }
' "$WORK/dry.out"

echo "== config errors exit 2 naming key and line"
printf 'project: p\nregion: r\nroutes:\n  - name: a\n    job: j\n    colour: blue\n' >"$WORK/bad.yaml"
set +e
"$JOBRELAY" --config "$WORK/bad.yaml" check-config >/dev/null 2>"$WORK/badcfg.err"
rc=$?
set -e
assert_eq "$rc" 2 "check-config exit code on a bad config"
grep -q "bad.yaml:6" "$WORK/badcfg.err" || fail "line not named: $(cat "$WORK/badcfg.err")"
grep -q "colour" "$WORK/badcfg.err" || fail "key not named"
echo "== stdin, --format and --route"
printf '%s\n%s\n' "$(ev in1 test.flaky)" "$(ev in2 test.busy)" |
	"$JOBRELAY" replay --dry-run --format ndjson --route busy - >"$WORK/stdin.out" 2>"$WORK/stdin.err"
assert_eq "$(wc -l <"$WORK/stdin.out")" 1 "only the --route route fires"
grep -q '"route":"busy","event":{"id":"in2"' "$WORK/stdin.out" || fail "stdin event in2 via route busy"
set +e
"$JOBRELAY" replay --format xml "$WORK/events" >/dev/null 2>"$WORK/fmt.err"
rc=$?
"$JOBRELAY" replay --route nope "$WORK/events" >/dev/null 2>>"$WORK/fmt.err"
rc2=$?
set -e
assert_eq "$rc" 2 "unknown --format is a usage error"
assert_eq "$rc2" 2 "unknown --route is a usage error"
grep -q "no route named 'nope'" "$WORK/fmt.err" || fail "unknown route not named"

echo "== an unreachable Run API at start-up exits 3"
set +e
JOBRELAY_RUN_ENDPOINT=127.0.0.1:1 "$JOBRELAY" replay "$WORK/events/a.json" >"$WORK/unreach.out" 2>"$WORK/unreach.err"
rc=$?
set -e
assert_eq "$rc" 3 "exit code when the Run API cannot be reached"
grep -q "RUNAPI-UNREACHABLE" "$WORK/unreach.err" || fail "no clear error: $(cat "$WORK/unreach.err")"
echo "PASS"
