#!/usr/bin/env bash
# test_policy_pull.sh — the failure policies under jobrelay pull with pstest
# (docs/policies.md):
#  - the breaker of a job failing with PERMISSION_DENIED opens; its messages
#    are held in Pub/Sub (modifyAckDeadline for the open time, PULL-REDELIVER
#    "held"), none is dead-lettered, no RunJob reaches the job while it is
#    open, and after the probe closes it every message is dispatched, each on
#    the attempt its failures make (the holds are not counted);
#  - the same CloudEvents published again are duplicates: acked, no RunJob.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

cat >"$WORK/fake.json" <<'JSON'
{"rules": [
  {"job": "binary-job", "code": "PERMISSION_DENIED", "message": "denied", "times": 2}
]}
JSON
start_fake --config "$WORK/fake.json"
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB"
# the first line lands in write_config's policies: block
write_config "  permission: { max_attempts: 5, initial_backoff: 10ms, max_backoff: 20ms }
concurrency: 1
circuit_breaker: { window: 4, min_calls: 2, failure_rate: 0.5, open_for: 1s, max_open_for: 2s }"
write_messages "$WORK/msgs.jsonl"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 12 || fail "publish: $PS_REPLY"

start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
ps_cmd wait-acked 12 60s || fail "not every message acked: $PS_REPLY"

echo "== the same CloudEvents again: duplicates, acked without a RunJob"
runs_before=$(count_records RunJob)
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 12 || fail "publish: $PS_REPLY"
ps_cmd wait-acked 24 60s || fail "not every message acked: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"
# plain messages have new message ids (their event id), the others repeat source and id
assert_eq "$(($(count_records RunJob) - runs_before))" 4 "RunJob calls for the second publish (the plain messages)"
assert_eq "$(grep -c '"msgid":"DISPATCH-DUPLICATE"' "$PULL_LOG")" 8 "duplicates"
[ ! -s "$WORK/dead.ndjson" ] || fail "dead letters: $(cat "$WORK/dead.ndjson")"

node - "$WORK/record.jsonl" "$PULL_LOG" <<'JS' || fail "breaker under pull"
const fs = require('fs');
const [recFile, logFile] = process.argv.slice(2);
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map(JSON.parse);
const fail = (m) => { console.error(m); process.exit(1); };
const logs = lines(logFile);
const job = 'projects/test-project/locations/europe-west2/jobs/binary-job';
const runs = lines(recFile).filter((r) => r.method === 'RunJob' && r.request.name === job);
const trans = logs.filter((l) => /^BREAKER-/.test(l.msgid) && l.job === job);
if (trans.map((l) => l.msgid).join() !== 'BREAKER-OPEN,BREAKER-HALF-OPEN,BREAKER-CLOSED')
  fail('transitions: ' + trans.map((l) => l.msgid));
const [open, half] = trans.map((l) => Date.parse(l.time));
const during = runs.filter((r) => Date.parse(r.time) > Math.floor(open) && Date.parse(r.time) < Math.floor(half));
if (during.length) fail(`${during.length} RunJob calls while open`);
const held = logs.filter((l) => l.msgid === 'PULL-REDELIVER' && /held/.test(l.message));
if (!held.length) fail('no message held in Pub/Sub');
// each binary message: dispatched once, on attempt = its PERMISSION_DENIED answers + 1
const envOf = (r) => Object.fromEntries(((r.request.overrides.containerOverrides || [{}])[0].env || []).map((e) => [e.name, e.value]));
const fails = {};
for (const r of runs) if (r.status !== 0) { const id = 'bin-' + envOf(r).N; fails[id] = (fails[id] || 0) + 1; }
const oks = logs.filter((l) => l.msgid === 'DISPATCH-OK' && l.route === 'binary');
if (oks.length !== 4) fail(`${oks.length} binary messages dispatched, not 4`);
for (const l of oks)
  if (Number(l.attempt) !== (fails[l.event_id] || 0) + 1) fail(`${l.event_id}: attempt ${l.attempt} after ${fails[l.event_id] || 0} failures (holds counted?)`);
console.log(`ok: ${held.length} holds, ${runs.length} RunJob calls for the job, none while open`);
JS
echo "test_policy_pull: ok"
