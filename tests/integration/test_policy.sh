#!/usr/bin/env bash
# test_policy.sh — the failure policies against the Run API
# fake (docs/policies.md):
#  - a job failing with PERMISSION_DENIED opens its circuit breaker; while it
#    is open no RunJob reaches the job (its records fall between the
#    BREAKER-* log lines only as one probe per half-open period); when the
#    fault stops the probe closes it; the held event is dispatched, not
#    dead-lettered, and the holds cost no attempt (max_attempts 5, success on
#    attempt 5 after 3 holds);
#  - serve answers a hold 503 with Retry-After, and a push delivery's
#    deliveryAttempt is counted less its holds;
#  - dedup: the same source+id twice gives one RunJob (replay and serve);
#  - a rate-limited route never has more than burst + rate*t calls recorded
#    in any span t (the times jobrelay started the calls, from the records),
#    and a route waiting for a token does not hold back another route's event;
#  - AIMD: RESOURCE_EXHAUSTED with RetryInfo on a route without rate_limit
#    halves its observed rate (RATELIMIT-DECREASE) and no call follows within
#    the RetryInfo delay, nor before the halved rate's next token.
# Also check-config's policy lines.
. "$(dirname "${BASH_SOURCE[0]}")/serve_lib.sh"
CHECK_RECORDS="node $JR_SOURCE_DIR/tests/integration/check_records.js"

cat >"$WORK/fake.json" <<'JSON'
{"rules": [
  {"job": "denied", "code": "PERMISSION_DENIED", "message": "caller lacks run.jobs.run", "times": 4}
]}
JSON
start_fake --config "$WORK/fake.json"

cat >"$WORK/jobrelay.yaml" <<YAML
project: demo-project
region: europe-west2
concurrency: 1
call_timeout: 5s
dead_letter: { file: $WORK/dead.ndjson }
policies:
  permission: { action: retry, max_attempts: 5, initial_backoff: 10ms, max_backoff: 20ms }
  resource: { initial_backoff: 10ms, max_backoff: 20ms }
circuit_breaker: { window: 4, min_calls: 2, failure_rate: 0.5, open_for: 1s, max_open_for: 2s, half_open_calls: 1 }
dedup: { ttl: 10m, max_entries: 1000 }
routes:
  - name: denied
    match: { type: test.denied }
    job: denied
  - name: ok
    match: { type: test.ok }
    job: fine
  - name: busy
    match: { type: test.busy }
    job: busy
  - name: limited
    match: { type: test.limited }
    job: limited
    rate_limit: { per_second: 5, burst: 3 }
  - name: slow
    match: { type: test.slow }
    job: slow
    rate_limit: { per_second: 0.5, burst: 1 }
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"
ev() { printf '{"specversion":"1.0","id":"%s","source":"test","type":"%s"}\n' "$1" "$2"; }

echo "== check-config prints the effective policies"
"$JOBRELAY" check-config >"$WORK/check.out"
grep -q "^circuit_breaker (one per job): window 4, min_calls 2, failure_rate 0.5, open_for 1s, max_open_for 2s, half_open_calls 1$" "$WORK/check.out" ||
	fail "check-config: breaker line"
grep -q "^dedup (per instance): ttl 10m, max_entries 1000$" "$WORK/check.out" || fail "check-config: dedup line"
grep -q "^read_retry (reads after RunJob, never a second RunJob): backoff 1s -> 30s, max_attempts 10, lookup_attempts 4, lookup_pages 50$" "$WORK/check.out" ||
	fail "check-config: read_retry line"
grep -q "^    credentials      hold (no token: held, no attempt counted, never dead-lettered)$" "$WORK/check.out" ||
	fail "check-config: credentials class"
grep -q "^    permission       retry, max_attempts 5, backoff 10ms -> 20ms (full jitter); trips breaker$" "$WORK/check.out" ||
	fail "check-config: permission policy"
grep -q "^    invalid_event    dead_letter$" "$WORK/check.out" || fail "check-config: invalid_event policy"
grep -q "^  rate_limit: 5/s, burst 3; " "$WORK/check.out" || fail "check-config: rate limit"
! grep -q "CONFIG-NOT-ENFORCED" "$WORK/check.out" || fail "rate_limit still reported as not enforced"

echo "== breaker: opens on PERMISSION_DENIED, holds, probes, closes"
{ ev d1 test.denied; ev d2 test.denied; ev d3 test.denied; } >"$WORK/denied.ndjson"
"$JOBRELAY" --log-format json replay "$WORK/denied.ndjson" >"$WORK/denied.out" 2>"$WORK/denied.log" ||
	{ cat "$WORK/denied.log" >&2; fail "replay exited $?"; }
cat "$WORK/denied.out"
node - "$WORK/record.jsonl" "$WORK/denied.log" "$WORK/dead.ndjson" <<'JS' || fail "breaker"
const fs = require('fs');
const [recFile, logFile, deadFile] = process.argv.slice(2);
const lines = (f) => fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map(JSON.parse) : [];
const fail = (m) => { console.error(m); process.exit(1); };
const runs = lines(recFile).filter((r) => r.method === 'RunJob' && r.request.name.endsWith('/jobs/denied'));
const logs = lines(logFile);
const codes = runs.map((r) => r.statusName);
// 4 denials (2 open it, then 2 failed probes), then the probe that closes it and the rest
if (codes.join() !== 'PERMISSION_DENIED,PERMISSION_DENIED,PERMISSION_DENIED,PERMISSION_DENIED,OK,OK,OK')
  fail('RunJob answers: ' + codes);
const trans = logs.filter((l) => /^BREAKER-/.test(l.msgid));
const seq = trans.map((l) => l.msgid).join();
const want = 'BREAKER-OPEN,BREAKER-HALF-OPEN,BREAKER-OPEN,BREAKER-HALF-OPEN,BREAKER-OPEN,BREAKER-HALF-OPEN,BREAKER-CLOSED';
if (seq !== want) fail('transitions: ' + seq);
if (!trans.every((l) => l.job === 'projects/demo-project/locations/europe-west2/jobs/denied')) fail('job of a transition');
// open time doubles, up to max_open_for
const opens = trans.filter((l) => l.msgid === 'BREAKER-OPEN').map((l) => l.open_for).join();
if (opens !== "1000ms,2000ms,2000ms") fail('open_for: ' + opens);
if (trans[0].failure_rate !== '1.00' || trans[0].class !== 'permission') fail('first opening: ' + JSON.stringify(trans[0]));
// no RunJob for the job while open; exactly one (the probe) in each half-open period
const ms = (t) => Date.parse(t);
for (let i = 0; i < trans.length; i++) {
  const from = ms(trans[i].time), to = i + 1 < trans.length ? ms(trans[i + 1].time) : Infinity;
  // records carry arrival times in whole ms: an open period excludes its end points
  const inside = runs.filter((r) => ms(r.time) > Math.floor(from) && ms(r.time) < Math.floor(to)).length;
  const around = runs.filter((r) => ms(r.time) >= Math.floor(from) && ms(r.time) <= Math.floor(to)).length;
  if (trans[i].msgid === 'BREAKER-OPEN' && inside !== 0) fail(`${inside} RunJob calls while open (transition ${i})`);
  if (trans[i].msgid === 'BREAKER-HALF-OPEN' && i + 1 < trans.length && trans[i + 1].msgid === 'BREAKER-OPEN' && around !== 1)
    fail(`${around} RunJob calls while half-open (transition ${i})`);
}
const held = logs.filter((l) => l.msgid === 'DISPATCH-HELD');
if (held.length < 3) fail(`${held.length} DISPATCH-HELD lines`);
const ok = logs.filter((l) => l.msgid === 'DISPATCH-OK');
const d1 = ok.find((l) => l.event_id === 'd1');
// 2 failures, 3 holds, 2 failed probes, the probe that succeeds: attempt 5 of max_attempts 5
if (!d1 || d1.attempt !== '5') fail('d1 dispatched on attempt ' + (d1 && d1.attempt));
if (ok.length !== 3) fail(`${ok.length} events dispatched, not 3`);
if (lines(deadFile).length !== 0) fail('held events were dead-lettered');
console.log(`ok: ${trans.length} transitions, ${held.length} holds, no call while open`);
JS
grep -Eq "^denied +3 +0 +0 +0 +0 +[1-9]" "$WORK/denied.out" || fail "replay summary for denied (held column)"

echo "== breaker with --no-retry: a held event fails (dead-lettered)"
cat >"$WORK/fake.json" <<'JSON'
{"rules": [{"job": "denied", "code": "PERMISSION_DENIED"}]}
JSON
: >"$WORK/record.jsonl"
{ ev n1 test.denied; ev n2 test.denied; ev n3 test.denied; } >"$WORK/noretry.ndjson"
set +e
"$JOBRELAY" --log-format json replay --no-retry "$WORK/noretry.ndjson" >"$WORK/noretry.out" 2>"$WORK/noretry.log"
rc=$?
set -e
assert_eq "$rc" 1 "replay --no-retry exit code"
assert_eq "$(count_records RunJob)" 2 "RunJob calls before the breaker opened"
assert_eq "$(grep -c '"code":"BREAKER_OPEN"' "$WORK/dead.ndjson")" 1 "dead letters of the held event"
printf '{"rules": []}\n' >"$WORK/fake.json"

echo "== dedup: the same source and id twice, one RunJob"
: >"$WORK/record.jsonl"
: >"$WORK/dead.ndjson"
{ ev same-1 test.ok; ev same-1 test.ok; ev other-1 test.ok; ev same-1 test.ok; } >"$WORK/dups.ndjson"
"$JOBRELAY" --log-format json replay "$WORK/dups.ndjson" >"$WORK/dups.out" 2>"$WORK/dups.log" ||
	{ cat "$WORK/dups.log" >&2; fail "replay exited $?"; }
cat "$WORK/dups.out"
$CHECK_RECORDS "$WORK/record.jsonl" '
const ids = runs.map((r) => env(r).CE_ID).sort().join();
expect(ids === "other-1,same-1", "one RunJob per event id: " + ids);
'
grep -Eq "^ok +2 +0 +0 +0 +2 +0" "$WORK/dups.out" || fail "replay summary: 2 dispatched, 2 duplicates"
assert_eq "$(grep -c '"msgid":"DISPATCH-DUPLICATE"' "$WORK/dups.log")" 2 "DISPATCH-DUPLICATE lines"

echo "== dedup under serve: a redelivered push gives 204 and no second RunJob"
: >"$WORK/record.jsonl"
start_serve
client '
const h = { "ce-specversion": "1.0", "ce-id": "push-1", "ce-source": "//test", "ce-type": "test.ok" };
for (let i = 0; i < 3; i++) {
  const r = await post("/", h, "");
  expect(r.status === 204, "delivery " + i + ": " + r.status + " " + r.body);
}
expect(records().length === 1, "one RunJob for three deliveries, got " + records().length);
const m = (await raw("GET /metrics HTTP/1.0\r\n\r\n")).text;
expect(/jobrelay_dispatch_total\{route="ok",outcome="duplicate"\} 2/.test(m), "duplicates counted in /metrics");
'
stop_serve TERM

echo "== serve: a held event is answered 503 with Retry-After"
printf '{"rules": [{"job": "denied", "code": "PERMISSION_DENIED"}]}\n' >"$WORK/fake.json"
# open long enough that the third request surely finds it open
sed 's/open_for: 1s, max_open_for: 2s/open_for: 30s, max_open_for: 1m/' "$WORK/jobrelay.yaml" >"$WORK/serve-open.yaml"
JOBRELAY_CONFIG="$WORK/serve-open.yaml" start_serve
client '
const h = (id) => ({ "ce-specversion": "1.0", "ce-id": id, "ce-source": "//test", "ce-type": "test.denied" });
await post("/", h("s1"), "");
await post("/", h("s2"), "");
const before = records().length;
const r = await post("/", h("s3"), "");
expect(r.status === 503, "held: " + r.status);
const ra = Number(r.headers["retry-after"]);
expect(ra >= 1 && ra <= 30, "Retry-After: the remaining open time, got " + r.headers["retry-after"]);
expect(records().length === before, "no RunJob while the breaker is open");
const m = (await raw("GET /metrics HTTP/1.0\r\n\r\n")).text;
expect(/jobrelay_breaker_state\{job="projects\/demo-project\/locations\/europe-west2\/jobs\/denied"\} 2/.test(m), "breaker state open in /metrics");
expect(/jobrelay_breaker_transitions_total\{job="[^"]*denied",state="open"\} 1/.test(m), "transition counted");
'
stop_serve TERM

echo "== serve: the holds of a push delivery are not counted as attempts"
# open_for 1s: the same message is pushed again, deliveryAttempt growing, until it is the
# half-open probe (a RunJob, denied again): its attempt is deliveryAttempt less the holds
start_serve
client '
const body = (k) => JSON.stringify({ subscription: "projects/p/subscriptions/s", deliveryAttempt: k,
  message: { messageId: "m-h1", data: "", attributes: { "ce-specversion": "1.0", "ce-id": "h1",
    "ce-source": "//test", "ce-type": "test.denied" } } });
const h = (id) => ({ "ce-specversion": "1.0", "ce-id": id, "ce-source": "//test", "ce-type": "test.denied" });
await post("/", h("o1"), "");
await post("/", h("o2"), "");
const probe = () => records().filter((r) => env(r).CE_ID === "h1").length;
let k = 0;
while (probe() === 0 && k < 400) {
  k++;
  const r = await post("/", { "content-type": "application/json" }, body(k));
  expect(r.status === 503, "delivery " + k + ": " + r.status);
  if (probe() === 0) await new Promise((res) => setTimeout(res, 20)); // poll: the breaker opens for 1 s
}
expect(probe() === 1 && k >= 2, "h1 was held, then the probe: " + k + " deliveries");
'
stop_serve TERM
grep '"msgid":"DISPATCH-RETRY"' "$SERVE_LOG" | grep '"event_id":"h1"' | contains '"attempt":"1"' ||
	{ grep '"event_id":"h1"' "$SERVE_LOG" >&2; fail "the probe of h1 was not attempt 1 (holds counted)"; }
printf '{"rules": []}\n' >"$WORK/fake.json"

echo "== serve: a route waiting for a token does not hold back the others"
# slow allows one call, then one every 2 s: rl-r2 waits for its token while rl-o1 (another
# route, a call slot free) must go at once, not behind rl-r2 when rl-r2's token comes
start_serve
client '
const h = (id, type) => ({ "ce-specversion": "1.0", "ce-id": id, "ce-source": "//test", "ce-type": type });
expect((await post("/", h("rl-r1", "test.slow"), "")).status === 204, "r1 dispatched");
const second = post("/", h("rl-r2", "test.slow"), "");
const waits = async () => /jobrelay_rate_limit_waits_total\{route="slow"\} 1/.test((await raw("GET /metrics HTTP/1.0\r\n\r\n")).text);
let k = 0;
while (!(await waits()) && k++ < 500) await new Promise((res) => setTimeout(res, 10)); // poll: r2 reaches the dispatcher
expect(k < 500, "r2 never waited for a token");
expect((await post("/", h("rl-o1", "test.ok"), "")).status === 204, "o1 dispatched");
expect((await second).status === 204, "r2 dispatched");
const ids = records().map((r) => env(r).CE_ID).filter((id) => id === "rl-o1" || id === "rl-r2");
expect(ids.join() === "rl-o1,rl-r2", "o1 waited for the slow route: RunJob order " + ids.join());
'
stop_serve TERM

echo "== rate limit: never more than burst + rate*t calls in any span t"
: >"$WORK/record.jsonl"
for i in $(seq 1 16); do ev "lim-$i" test.limited; done >"$WORK/limited.ndjson"
sed -i 's/^concurrency: 1$/concurrency: 16/' "$WORK/jobrelay.yaml"
"$JOBRELAY" --log-format json replay "$WORK/limited.ndjson" >"$WORK/limited.out" 2>"$WORK/limited.log" ||
	{ cat "$WORK/limited.log" >&2; fail "replay exited $?"; }
$CHECK_RECORDS "$WORK/record.jsonl" '
expect(runs.length === 16, "16 RunJob calls, got " + runs.length);
// when jobrelay started each call: the arrival time less the part of the 5 s
// deadline (call_timeout) already gone on arrival. What is left between the
// two clocks is the transit time of the call, whose jitter on a loaded machine
// reaches tens of ms: 20 ms of it allowed over a span (a tenth of a token at 5/s)
const t = runs.map((r) => Date.parse(r.time) - (5000 - r.deadline)).sort((a, b) => a - b);
for (let i = 0; i < t.length; i++)
  for (let j = i; j < t.length; j++) {
    const span = (t[j] - t[i] + 20) / 1000;
    expect(j - i + 1 <= 3 + 5 * span, `${j - i + 1} calls within ${t[j] - t[i]} ms`);
  }
'
grep -q '"msgid":"DISPATCH-OK"' "$WORK/limited.log" || fail "no dispatch logged"

echo "== AIMD: RESOURCE_EXHAUSTED with RetryInfo slows a route without rate_limit"
printf '{"rules": [{"job": "busy", "code": "RESOURCE_EXHAUSTED", "retry_delay_ms": 400, "times": 1}]}\n' >"$WORK/fake.json"
: >"$WORK/record.jsonl"
{ ev b1 test.busy; ev b2 test.busy; } >"$WORK/busy.ndjson"
sed -i 's/^concurrency: 16$/concurrency: 1/' "$WORK/jobrelay.yaml"
"$JOBRELAY" --log-format json replay "$WORK/busy.ndjson" >"$WORK/busy.out" 2>"$WORK/busy.log" ||
	{ cat "$WORK/busy.log" >&2; fail "replay exited $?"; }
grep '"msgid":"RATELIMIT-DECREASE"' "$WORK/busy.log" | contains '"route":"busy","rate_per_second":"0.500"' ||
	fail "no RATELIMIT-DECREASE to half the observed 1/s"
$CHECK_RECORDS "$WORK/record.jsonl" '
expect(runs.length === 3 && runs[0].statusName === "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED then 2 calls: " + runs.map((r) => r.statusName));
const sent = (r) => Date.parse(r.time) - (5000 - r.deadline);
// RetryInfo: no call of the route for 400 ms; then the halved rate (0.5/s, bucket emptied)
expect(sent(runs[1]) - Date.parse(runs[0].time) >= 400 - 5, "a call within the RetryInfo delay");
// (0.5/s growing by 0.05/s each second: the next token is due about 1.94 s after the decrease)
expect(sent(runs[1]) - Date.parse(runs[0].time) >= 1800, "the first token after the decrease came before 1.8 s: " + (sent(runs[1]) - Date.parse(runs[0].time)));
'
echo "test_policy: ok"
