#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve and start_fake take optional flags
# jobrelay serve under overload (docs/serve.md, "Overload"): the Run API fake answers every
# RunJob in 1 s, serve has concurrency 16 and serve.max_queue_wait 5s, and 800 Pub/Sub push
# deliveries arrive at once (push_redeliver.js: all 800 outstanding, a 10 s deadline as
# Pub/Sub's push default, every non-2xx delivered again after a backoff, until all are 2xx).
# Checked: every answer came within the documented bound (max_queue_wait + one RunJob
# latency = 6 s; asserted with 50% slack, 9 s, still inside the 10 s deadline), so no
# delivery timed out; every non-2xx was 503 with Retry-After; some of the first deliveries
# were shed; and the fake saw exactly 800 distinct JOBRELAY_KEYs, each in one RunJob.
# Then: a redelivery of an event whose RunJob is still in flight starts no second RunJob
# (it waits for the first, and both get 204).
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"

EVENTS=800
BOUND_MS=6000 # serve.max_queue_wait + the fake's RunJob latency (docs/serve.md)
SLACK_MS=3000

cat >"$WORK/fake.json" <<'JSON'
{"rules": [{"job": "slow", "delay_ms": 4000}]}
JSON
start_fake --latency-ms 1000 --config "$WORK/fake.json"

cat >"$WORK/jobrelay.yaml" <<'YAML'
project: demo-project
region: europe-west2
topic: projects/demo-project/topics/shed
concurrency: 16
call_timeout: 30s
serve:
  max_queue_wait: 5s
routes:
  - name: slow
    match: { attributes: { kind: { exact: slow } } }
    job: slow
  - name: all
    match: { attributes: { kind: { exact: load } } }
    job: shed-job
YAML
JOBRELAY_CONFIG="$WORK/jobrelay.yaml" start_serve

echo "== $EVENTS pushes at once, redelivered like Pub/Sub until all are 2xx"
echo '{"data": "event {{n}}", "attributes": {"kind": "load", "n": "{{n}}"}}' >"$WORK/msgs.jsonl"
t0=$SECONDS
timeout 150 node "$JR_SOURCE_DIR/tests/integration/push_redeliver.js" --url "http://127.0.0.1:$SERVE_PORT/" \
	--messages "$WORK/msgs.jsonl" --count "$EVENTS" --concurrency "$EVENTS" --timeout-ms 10000 \
	--min-backoff-ms 500 --max-backoff-ms 4000 --log "$WORK/client.jsonl" --progress "$WORK/progress.json" \
	2>"$WORK/client.err" || fail "the push client did not get a 2xx for every event: $(cat "$WORK/client.err" "$WORK/progress.json")"
echo "all $EVENTS acknowledged after $((SECONDS - t0)) s"

node -e '
const fs = require("fs");
const [log, rec, events, bound, slack] = process.argv.slice(1);
const fail = (m) => { console.error("FAIL: " + m); process.exit(1); };
const ans = fs.readFileSync(log, "utf8").split("\n").filter(Boolean).map(JSON.parse);
let worst = 0, shed = 0, first = 0, firstShed = 0;
const acked = new Set();
for (const a of ans) {
  if (a.status === undefined) fail("delivery " + a.n + "/" + a.attempt + " got no answer: " + a.error);
  const ms = a.end - a.start;
  worst = Math.max(worst, ms);
  if (ms > Number(bound) + Number(slack))
    fail("delivery " + a.n + "/" + a.attempt + " answered " + a.status + " after " + ms + " ms, bound " + bound + " ms + " + slack + " ms slack");
  if (a.attempt === 1) first++;
  if (a.status >= 200 && a.status < 300) { acked.add(a.n); continue; }
  if (a.status !== 503) fail("delivery " + a.n + "/" + a.attempt + ": " + a.status + ", expected 2xx or 503");
  if (!/^[1-9][0-9]*$/.test(a.retry_after || "")) fail("503 without a Retry-After in seconds: " + JSON.stringify(a));
  shed++;
  if (a.attempt === 1) firstShed++;
}
if (acked.size !== Number(events)) fail(acked.size + " events acknowledged, expected " + events);
if (first !== Number(events)) fail(first + " first deliveries, expected " + events);
if (firstShed === 0) fail("no first delivery was shed");
const runs = fs.readFileSync(rec, "utf8").split("\n").filter(Boolean).map(JSON.parse)
  .filter((r) => r.method === "RunJob" && /jobs\/shed-job$/.test(r.request.name));
const keys = new Map();
for (const r of runs) {
  if (r.status !== 0) fail("a RunJob failed at the fake: " + JSON.stringify(r).slice(0, 300));
  const k = r.request.overrides.containerOverrides[0].env.find((e) => e.name === "JOBRELAY_KEY").value;
  keys.set(k, (keys.get(k) || 0) + 1);
}
const twice = [...keys].filter(([, c]) => c > 1);
if (twice.length) fail(twice.length + " keys ran more than once, e.g. " + twice[0][0]);
if (keys.size !== Number(events)) fail(keys.size + " distinct JOBRELAY_KEYs, expected " + events);
console.log("deliveries " + ans.length + ", shed (503) " + shed + " (" + firstShed + " of the first " + events +
  "), slowest answer " + worst + " ms (bound " + bound + " ms + " + slack + " ms slack), RunJob " + runs.length +
  " for " + keys.size + " keys");
' "$WORK/client.jsonl" "$WORK/record.jsonl" "$EVENTS" "$BOUND_MS" "$SLACK_MS"
shed_metric=$(curl -s "http://127.0.0.1:$SERVE_PORT/metrics" | sed -n 's/^jobrelay_http_shed_total \([0-9]*\).*/\1/p')
[ "${shed_metric:-0}" -gt 0 ] || fail "jobrelay_http_shed_total is '${shed_metric}'"

echo "== a redelivery while the first delivery's RunJob is in flight starts no second RunJob"
in_twice() { # in_twice OUT: posts the same push message (id twice-1), answer status to OUT
	OUT="$1" REC="$WORK/record.jsonl" $CLIENT "$SERVE_PORT" '
const body = JSON.stringify({ message: { data: Buffer.from("x").toString("base64"), attributes: { kind: "slow" },
  messageId: "twice-1", publishTime: new Date().toISOString() }, subscription: "projects/demo-project/subscriptions/push" });
const r = await post("/", { "content-type": "application/json" }, body);
fs.writeFileSync(process.env.OUT, String(r.status));
'
}
in_twice "$WORK/first.status" &
FIRST_PID=$!
wait_lines "$WORK/record.jsonl" '"value":"twice-1"' 1 || fail "the first delivery's RunJob did not reach the fake"
in_twice "$WORK/second.status"
wait "$FIRST_PID" || fail "first delivery"
assert_eq "$(cat "$WORK/first.status")" 204 "first delivery"
assert_eq "$(cat "$WORK/second.status")" 204 "redelivery while in flight"
assert_eq "$(grep -c '"value":"twice-1"' "$WORK/record.jsonl")" 1 "RunJob calls for the event delivered twice"
grep -q '"msgid":"DISPATCH-WAIT"' "$SERVE_LOG" || fail "no DISPATCH-WAIT line"
grep -q 'started by another delivery of the event' "$SERVE_LOG" || fail "the redelivery was not a duplicate"

stop_serve
assert_eq "$SERVE_RC" 0 "exit code"
echo "PASS"
