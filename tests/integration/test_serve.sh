#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve and start_fake take optional flags
# jobrelay serve over real HTTP on loopback, dispatching to the Run API fake:
# every HTTP form of docs/decoding.md from the captures and bodies in
# tests/data, batch answers, injected errors (503/429 with
# Retry-After), undecodable input (400 without a dead-letter file, 204 and a
# record with one), GET endpoints, trace correlation and Cloud Run labels.
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"
TD="$JR_TESTDATA"
GE="$TD/google-cloudevents/examples"
EA="$TD/eventarc-samples/transcribed"
FF="$TD/functions-framework-dotnet/src/Google.Cloud.Functions.Framework.Tests/GcfEvents"
export GE EA FF

cat >"$WORK/fake.json" <<'JSON'
{"rules": [
  {"job": "flaky", "code": "UNAVAILABLE", "message": "backend down"},
  {"job": "busy", "code": "RESOURCE_EXHAUSTED", "retry_delay_ms": 7000},
  {"job": "missing", "code": "NOT_FOUND", "message": "job not found"}
]}
JSON
start_fake --config "$WORK/fake.json" --require-request-params

write_config() { # write_config FILE [DEAD_LETTER_LINE]
	cat >"$1" <<YAML
project: demo-project
region: europe-west2
call_timeout: 5s
# the captures reuse event ids (two share curl-command/123-abc): no dedup here;
# and no breaker for the NOT_FOUND job (docs/policies.md; test_policy.sh tests both)
dedup: { ttl: 0s }
circuit_breaker: { window: 1000, min_calls: 1000 }
$2
routes:
  - name: storage
    match: { type: google.cloud.storage.object.v1.finalized }
    job: ingest
    overrides:
      env: { BUCKET: "{{data.bucket}}", NAME: "{{data.name}}" }
  - name: pubsub
    match: { type: google.cloud.pubsub.topic.v1.messagePublished }
    job: on-message
    overrides:
      env: { MSG: "{{message.id?}}", ATTR1: "{{attributes.attr1?}}", SUB: "{{data.subscription?}}" }
  - name: audit
    match: { type: google.cloud.audit.log.v1.written }
    job: audit
    overrides:
      env: { RES: "{{data.protoPayload.resourceName?}}" }
  - name: curl
    match: { type: curl.demo }
    job: curl-demo
    overrides:
      env: { METHOD: "{{data.protoPayload.methodName?}}" }
  - name: other
    match:
      type: { any_of: [google.cloud.cloudbuild.build.v1.statusChanged, google.cloud.firestore.document.v1.written, google.cloud.scheduler.job.v1.executed] }
    job: other
  - name: advanced
    match: { extensions: { env: demo } }
    job: advanced
    overrides:
      env: { SRC: "{{source}}" }
  - name: flaky
    match: { type: test.flaky }
    job: flaky
  - name: busy
    match: { type: test.busy }
    job: busy
  - name: missing
    match: { type: test.missing }
    job: missing
YAML
}
write_config "$WORK/jobrelay.yaml" "dead_letter: { file: $WORK/dead.ndjson }"
write_config "$WORK/nosink.yaml" ""
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"

K_SERVICE=jobrelay-svc K_REVISION=jobrelay-svc-00007-abc K_CONFIGURATION=jobrelay-svc \
	start_serve

echo "== binary mode: google-cloudevents examples/binary with ce- headers"
client '
const dir = process.env.GE + "/binary";
const types = {
  storage: "google.cloud.storage.object.v1.finalized",
  pubsub: "google.cloud.pubsub.topic.v1.messagePublished",
  audit: "google.cloud.audit.log.v1.written",
  cloudbuild: "google.cloud.cloudbuild.build.v1.statusChanged",
  firestore: "google.cloud.firestore.document.v1.written",
  scheduler: "google.cloud.scheduler.job.v1.executed",
};
let n = 0;
for (const folder of Object.keys(types)) {
  for (const f of fs.readdirSync(dir + "/" + folder)) {
    const id = "bin-" + folder + "-" + f;
    const r = await post("/", {
      "ce-specversion": "1.0", "ce-id": id, "ce-type": types[folder],
      "ce-source": "//" + folder + ".googleapis.com/projects/demo-project",
      "ce-subject": "objects%2Fpath%20with%20space", "ce-time": "2021-02-05T04:06:14.109Z",
      "content-type": "application/json",
    }, fs.readFileSync(dir + "/" + folder + "/" + f));
    expect(r.status === 204, id + ": status " + r.status + " " + r.body);
    n++;
  }
}
expect(n === 11, "11 binary examples sent, got " + n);
const runs = records();
const by = (id) => runs.filter((r) => env(r).CE_ID && env(r).CE_ID.startsWith(id));
const st = by("bin-storage-StorageObjectData-simple");
expect(st.length === 1 && st[0].request.name === "projects/demo-project/locations/europe-west2/jobs/ingest", "storage simple -> ingest");
expect(env(st[0]).BUCKET === "sample-bucket" && env(st[0]).NAME === "folder/Test.cs", "storage env from data: " + JSON.stringify(env(st[0])));
expect(env(st[0]).CE_SUBJECT === "objects/path with space", "ce- header values percent-decoded: " + env(st[0]).CE_SUBJECT);
const ps = by("bin-pubsub-MessagePublishedData-complex");
expect(ps.length === 1 && ps[0].request.name.endsWith("/jobs/on-message"), "binary pubsub -> on-message");
expect(by("bin-audit").length === 2 && by("bin-audit").every((r) => r.request.name.endsWith("/jobs/audit")), "audit -> audit");
expect(by("bin-cloudbuild").length === 2 && by("bin-firestore").length === 2 && by("bin-scheduler").length === 1, "other types -> other");
expect(runs.every((r) => r.requestParams.ok), "routing header on every call");
'

echo "== structured mode: google-cloudevents examples/structured"
client '
const dir = process.env.GE + "/structured";
const want = { pubsub: "on-message", storage: "ingest", audit: "audit" };
const before = records().length;
for (const folder of Object.keys(want)) {
  for (const f of fs.readdirSync(dir + "/" + folder)) {
    const r = await post("/", { "content-type": "application/cloudevents+json; charset=utf-8" },
      fs.readFileSync(dir + "/" + folder + "/" + f));
    expect(r.status === 204, folder + "/" + f + ": status " + r.status + " " + r.body);
  }
}
const runs = records().slice(before);
const ps = runs.find((r) => env(r).CE_ID === "3103425958877813");
expect(ps && ps.request.name.endsWith("/jobs/on-message"), "structured pubsub dispatched");
expect(env(ps).MSG === "", "a structured event is not a Pub/Sub message: message.id empty");
const st = runs.find((r) => r.request.name.endsWith("/jobs/ingest"));
expect(st && env(st).BUCKET === "sample-bucket", "structured storage dispatched with data");
expect(!runs.some((r) => r.request.name.endsWith("/jobs/audit")), "the audit example (camelCase extension names) is not dispatched");
'
grep -q '"class":"invalid_event"' "$WORK/dead.ndjson" || fail "the invalid audit example was not dead-lettered"

echo "== Eventarc captures sent as real requests"
client '
const dir = process.env.EA;
const want = {
  "gce-vm-labeler-test": ["curl-demo", "beta.compute.instances.insert"],
  "bigquery-jobs-notifier-test": ["curl-demo", "jobservice.jobcompleted"],
  "image-v2-filter-test": ["audit", null],
  "advanced-bus-order-created": ["advanced", null],
  "advanced-bus-order-paid": ["advanced", null],
  "advanced-bus-fulfillment-plan-created-internal": ["advanced", null],
  "advanced-bus-fulfillment-plan-created-third-party": ["advanced", null],
};
for (const [name, [job, method]] of Object.entries(want)) {
  const before = records().length;
  const r = await capture(dir + "/" + name + ".transcribed.http");
  expect(r.status === 204, name + ": status " + r.status + " " + r.body);
  const runs = records().slice(before);
  expect(runs.length === 1, name + ": one RunJob, got " + runs.length);
  expect(runs[0].request.name === "projects/demo-project/locations/europe-west2/jobs/" + job, name + " -> " + job + ", got " + runs[0].request.name);
  if (method) expect(env(runs[0]).METHOD === method, name + ": METHOD " + env(runs[0]).METHOD);
  if (job === "audit") expect(env(runs[0]).RES === "projects/_/buckets/workflows-atamel-images-input/objects/atamel.jpg", "image filter RES");
}
'

echo "== Pub/Sub push, wrapped (functions-framework-dotnet bodies) and unwrapped"
client '
const ff = process.env.FF;
let before = records().length;
let r = await post("/", { "content-type": "application/json" }, fs.readFileSync(ff + "/raw_pubsub.json"));
expect(r.status === 204, "raw_pubsub.json: " + r.status + " " + r.body);
let run = records().slice(before);
expect(run.length === 1 && run[0].request.name.endsWith("/jobs/on-message"), "raw push -> on-message");
let e = env(run[0]);
expect(e.MSG === "4102184774039362" && e.CE_ID === "4102184774039362", "message id is the event id: " + e.MSG);
expect(e.ATTR1 === "value1", "attributes.attr1: " + e.ATTR1);
expect(e.SUB === "projects/sample-project/subscriptions/sample-subscription", "subscription in data: " + e.SUB);
expect(e.CE_SOURCE === "//pubsub.googleapis.com/projects/sample-project/subscriptions/sample-subscription", "source from the subscription: " + e.CE_SOURCE);
before = records().length;
r = await post("/projects/emulator-project/topics/my-topic", { "content-type": "application/json" }, fs.readFileSync(ff + "/emulator_pubsub.json"));
expect(r.status === 204, "emulator_pubsub.json: " + r.status + " " + r.body);
run = records().slice(before);
expect(run.length === 1 && env(run[0]).ATTR1 === "attr-value1", "emulator push dispatched");
expect(env(run[0]).CE_SOURCE === "//pubsub.googleapis.com/projects/emulator-project/topics/my-topic", "topic from the push path: " + env(run[0]).CE_SOURCE);
before = records().length;
r = await post("/", { "content-type": "text/plain", "x-goog-pubsub-message-id": "77001",
  "x-goog-pubsub-publish-time": "2026-11-26T10:00:00Z",
  "x-goog-pubsub-subscription-name": "projects/demo-project/subscriptions/push-unwrapped",
  "attr1": "from-header" }, "unwrapped payload");
expect(r.status === 204, "unwrapped push: " + r.status + " " + r.body);
run = records().slice(before);
expect(run.length === 1 && env(run[0]).MSG === "77001" && env(run[0]).ATTR1 === "from-header", "unwrapped push: id and attribute from headers " + JSON.stringify(env(run[0] || {request:{}})));
'

echo "== batch mode: 204 only when every event is done"
client '
const ev = (id, type) => ({ specversion: "1.0", id, source: "test", type, data: { bucket: "b", name: id } });
let before = records().length;
let r = await post("/", { "content-type": "application/cloudevents-batch+json" },
  JSON.stringify([ev("b1", "google.cloud.storage.object.v1.finalized"), ev("b2", "google.cloud.storage.object.v1.finalized"), ev("b3", "nothing.matches")]));
expect(r.status === 204, "all-done batch: " + r.status + " " + r.body);
let ids = records().slice(before).map((x) => env(x).CE_ID).sort().join(",");
expect(ids === "b1,b2", "batch events each dispatched; unrouted dropped: " + ids);
before = records().length;
r = await post("/", { "content-type": "application/cloudevents-batch+json" },
  JSON.stringify([ev("b4", "google.cloud.storage.object.v1.finalized"), ev("b5", "test.flaky")]));
expect(r.status === 503, "batch with a failing event: " + r.status);
expect(Number(r.headers["retry-after"]) >= 1, "Retry-After on 503: " + r.headers["retry-after"]);
ids = records().slice(before).map((x) => env(x).CE_ID).sort().join(",");
expect(ids === "b4,b5", "both events were tried: " + ids);
'

echo "== injected errors: UNAVAILABLE -> 503, RESOURCE_EXHAUSTED -> 429, NOT_FOUND -> dead letter, 204"
client '
const bin = (id, type) => post("/", { "ce-specversion": "1.0", "ce-id": id, "ce-source": "test", "ce-type": type }, "");
let r = await bin("e1", "test.flaky");
expect(r.status === 503, "UNAVAILABLE: " + r.status);
expect(/^[0-9]+$/.test(r.headers["retry-after"] || ""), "Retry-After is seconds: " + r.headers["retry-after"]);
r = await post("/", { "content-type": "application/json" }, JSON.stringify({ message: { data: "", messageId: "m-busy", attributes: { "ce-specversion": "1.0", "ce-id": "e2", "ce-source": "test", "ce-type": "test.busy" } }, subscription: "projects/p/subscriptions/s", deliveryAttempt: 3 }));
expect(r.status === 429, "RESOURCE_EXHAUSTED: " + r.status + " " + r.body);
expect(Number(r.headers["retry-after"]) >= 7, "Retry-After honours RetryInfo (7 s): " + r.headers["retry-after"]);
r = await bin("e3", "test.missing");
expect(r.status === 204, "NOT_FOUND is dead-lettered, then 204: " + r.status);
'
grep -q '"attempt":"3"' "$SERVE_LOG" || fail "deliveryAttempt 3 of the push body not used as the attempt"
node -e '
const recs = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
const r = recs.find((x) => x.event && x.event.id === "e3");
if (!r || r.error.code !== "NOT_FOUND" || r.route !== "missing") { console.error("FAIL: dead letter for e3", JSON.stringify(recs)); process.exit(1); }
' "$WORK/dead.ndjson"

echo "== undecodable input with a dead-letter file: recorded, then 204"
client '
const r = await post("/", { "content-type": "application/cloudevents+json" }, "{\"specversion\": \"1.0\", \"id\": ");
expect(r.status === 204, "invalid JSON dead-lettered: " + r.status + " " + r.body);
'
grep -q '"raw":"{\\"specversion\\": \\"1.0\\", \\"id\\": "' "$WORK/dead.ndjson" || fail "no dead letter with the raw body"
grep -q '"class":"invalid_event"' "$WORK/dead.ndjson" || fail "dead letter class invalid_event"

echo "== an undecodable body past 64 KiB is dead-lettered whole (a cut record could not be replayed)"
lines_before=$(wc -l <"$WORK/dead.ndjson")
client '
const big = "{\"specversion\": \"1.0\", \"id\": \"" + "x".repeat(100000);
const r = await post("/", { "content-type": "application/cloudevents+json" }, big);
expect(r.status === 204, "a large invalid body dead-lettered: " + r.status + " " + r.body);
'
assert_eq "$(($(wc -l <"$WORK/dead.ndjson") - lines_before))" 1 "records for the large body"
tail -n 1 "$WORK/dead.ndjson" | node -e '
const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
if (!r.raw || r.raw.length !== 100000 + 30) { console.error("FAIL: raw body of", r.raw && r.raw.length, "bytes"); process.exit(1); }'

echo "== a batch past limits.batch_events: 400, nothing dispatched, nothing dead-lettered"
lines_before=$(wc -l <"$WORK/dead.ndjson")
client '
const evs = [];
for (let i = 0; i < 1001; i++) evs.push({ specversion: "1.0", id: "cap-" + i, source: "/cap", type: "com.example.order" });
const r = await post("/", { "content-type": "application/cloudevents-batch+json" }, JSON.stringify(evs));
expect(r.status === 400 && /batch of 1001 events is over the limit of 1000 events/.test(r.body), "1001 events: " + r.status + " " + r.body);
'
assert_eq "$(wc -l <"$WORK/dead.ndjson")" "$lines_before" "dead-letter records after the over-cap batch"
! grep -q '"value":"cap-' "$WORK/record.jsonl" || fail "an event of the over-cap batch was dispatched"

echo "== GET endpoints, trace correlation, labels"
curl -sf "http://127.0.0.1:$SERVE_PORT/healthz" | contains ok || fail "/healthz"
curl -sf "http://127.0.0.1:$SERVE_PORT/readyz" | contains ready || fail "/readyz"
curl -sf "http://127.0.0.1:$SERVE_PORT/metrics" >"$WORK/metrics.txt" || fail "/metrics"
grep -q '^jobrelay_events_received_total{source="serve"} ' "$WORK/metrics.txt" || fail "events received metric"
grep -q '^jobrelay_http_responses_total{code="204"} ' "$WORK/metrics.txt" || fail "responses by status"
grep -q '^jobrelay_http_responses_total{code="503"} ' "$WORK/metrics.txt" || fail "503 counted"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SERVE_PORT/nope")" 404 "unknown GET path"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$SERVE_PORT/")" 405 "DELETE"
client '
let r = await post("/", { "ce-specversion": "1.0", "ce-id": "tr1", "ce-source": "s", "ce-type": "google.cloud.storage.object.v1.finalized",
  "content-type": "application/json", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }, "{\"bucket\":\"b\",\"name\":\"n\"}");
expect(r.status === 204, "traced request: " + r.status);
r = await post("/", { "ce-specversion": "1.0", "ce-id": "tr2", "ce-source": "s", "ce-type": "google.cloud.storage.object.v1.finalized",
  "content-type": "application/json", "x-cloud-trace-context": "105445aa7843bc8bf206b12000100000/1;o=1" }, "{\"bucket\":\"b\",\"name\":\"n\"}");
expect(r.status === 204, "traced request 2: " + r.status);
r = await post("/", { "ce-specversion": "1.0", "ce-id": "tr3", "ce-source": "s", "ce-type": "google.cloud.storage.object.v1.finalized",
  "content-type": "application/json", "traceparent": "00-bad" }, "{\"bucket\":\"b\",\"name\":\"n\"}");
expect(r.status === 204, "request with a malformed traceparent: " + r.status);
// the execution gets TRACEPARENT: the same trace and flags, a new span (the dispatch span)
const run = (id) => records().filter((x) => env(x).CE_ID === id);
const tp1 = run("tr1").map((x) => env(x).TRACEPARENT);
expect(tp1.length === 1 && /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/.test(tp1[0]) &&
  tp1[0].slice(36, 52) !== "00f067aa0ba902b7" && tp1[0].slice(36, 52) !== "0000000000000000", "TRACEPARENT of tr1: " + tp1);
const tp2 = run("tr2").map((x) => env(x).TRACEPARENT);
expect(tp2.length === 1 && /^00-105445aa7843bc8bf206b12000100000-[0-9a-f]{16}-01$/.test(tp2[0]) &&
  tp2[0].slice(36, 52) !== "0000000000000001", "TRACEPARENT of tr2 (X-Cloud-Trace-Context o=1): " + tp2);
const tp3 = run("tr3");
expect(tp3.length === 1 && !("TRACEPARENT" in env(tp3[0])), "no TRACEPARENT without a valid trace: " + JSON.stringify(env(tp3[0] || { request: {} })));
fs.writeFileSync(process.env.REC.replace(/[^/]*$/, "tp.txt"), tp1[0] + "\n" + tp2[0] + "\n");
'
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.startsWith("{")).map(JSON.parse);
const fail = (m) => { console.error("FAIL: " + m); process.exit(1); };
const ok1 = lines.find((l) => l.msgid === "DISPATCH-OK" && l.event_id === "tr1");
if (!ok1 || ok1["logging.googleapis.com/trace"] !== "projects/demo-project/traces/4bf92f3577b34da6a3ce929d0e0e4736") fail("traceparent not in DISPATCH-OK: " + JSON.stringify(ok1));
const ok2 = lines.find((l) => l.msgid === "DISPATCH-OK" && l.event_id === "tr2");
if (!ok2 || ok2["logging.googleapis.com/trace"] !== "projects/demo-project/traces/105445aa7843bc8bf206b12000100000") fail("X-Cloud-Trace-Context not in DISPATCH-OK: " + JSON.stringify(ok2));
// the dispatcher lines: the dispatch span (the parent span of the execution TRACEPARENT) and the sampled flag
const [tp1, tp2] = require("fs").readFileSync(process.argv[2], "utf8").split("\n");
if (ok1["logging.googleapis.com/spanId"] !== tp1.slice(36, 52) || ok1["logging.googleapis.com/trace_sampled"] !== true) fail("span of DISPATCH-OK tr1: " + JSON.stringify(ok1) + " TRACEPARENT " + tp1);
if (ok2["logging.googleapis.com/spanId"] !== tp2.slice(36, 52) || ok2["logging.googleapis.com/trace_sampled"] !== true) fail("span of DISPATCH-OK tr2: " + JSON.stringify(ok2) + " TRACEPARENT " + tp2);
const ok3 = lines.find((l) => l.msgid === "DISPATCH-OK" && l.event_id === "tr3");
if (!ok3 || "logging.googleapis.com/trace" in ok3 || "logging.googleapis.com/spanId" in ok3 || "logging.googleapis.com/trace_sampled" in ok3) fail("trace fields without a trace: " + JSON.stringify(ok3));
const lab = ok1["logging.googleapis.com/labels"] || {};
if (lab.K_SERVICE !== "jobrelay-svc" || lab.K_REVISION !== "jobrelay-svc-00007-abc" || lab.K_CONFIGURATION !== "jobrelay-svc") fail("Cloud Run labels: " + JSON.stringify(lab));
for (const l of lines) if (!l.severity || !l.time || !l.msgid || !("message" in l)) fail("not a Cloud Logging line: " + JSON.stringify(l));
' "$SERVE_LOG" "$WORK/tp.txt"
stop_serve TERM
assert_eq "$SERVE_RC" 0 "exit code after SIGTERM"

echo "== undecodable input without a dead-letter file: 400 naming the problem"
JOBRELAY_CONFIG="$WORK/nosink.yaml" start_serve
before=$(count_records RunJob)
client '
const cases = [
  ["invalid JSON", { "content-type": "application/cloudevents+json" }, "{\"specversion\":\"1.0\",", /JSON|parse|invalid/i],
  ["missing ce headers", { "ce-specversion": "1.0", "ce-type": "google.cloud.storage.object.v1.finalized", "content-type": "application/json" }, "{}", /id|source/i],
  ["invalid CloudEvent", { "content-type": "application/cloudevents+json" }, JSON.stringify({ specversion: "1.0", id: "x", type: "t" }), /source/i],
  ["bad time", { "content-type": "application/cloudevents+json" }, JSON.stringify({ specversion: "1.0", id: "x", source: "s", type: "t", time: "yesterday" }), /time/i],
  ["unknown specversion", { "content-type": "application/cloudevents+json" }, JSON.stringify({ specversion: "9.9", id: "x", source: "s", type: "t" }), /specversion/i],
  ["no CloudEvent at all", { "content-type": "text/plain" }, "hello", /ce-specversion|CloudEvents/i],
  ["batch with one bad element", { "content-type": "application/cloudevents-batch+json" },
    JSON.stringify([{ specversion: "1.0", id: "ok1", source: "s", type: "google.cloud.storage.object.v1.finalized", data: { bucket: "b", name: "n" } }, { id: "bad" }]), /./],
];
for (const [what, h, body, re] of cases) {
  const r = await post("/", h, body);
  expect(r.status === 400, what + ": status " + r.status);
  expect(re.test(r.body) && r.body.startsWith("invalid event: "), what + ": answer names the problem: " + r.body);
}
'
assert_eq "$(count_records RunJob)" "$before" "nothing dispatched from rejected requests (not even the good batch element)"
alive "bad input"
stop_serve TERM
assert_eq "$SERVE_RC" 0 "exit code after SIGTERM"

echo "== an unreachable Run API at start-up exits 3"
set +e
JOBRELAY_RUN_ENDPOINT=127.0.0.1:1 "$JOBRELAY" serve --port 0 --bind 127.0.0.1 >"$WORK/unreach.out" 2>&1
rc=$?
set -e
assert_eq "$rc" 3 "exit code when the Run API cannot be reached"
grep -q "RUNAPI-UNREACHABLE" "$WORK/unreach.out" || fail "no clear error: $(cat "$WORK/unreach.out")"
echo "PASS"
