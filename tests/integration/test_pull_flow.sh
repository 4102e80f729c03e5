#!/usr/bin/env bash
# test_pull_flow.sh — local flow control and ordering keys under jobrelay
# pull, checked at the Run API fake, which records how many RunJob calls were
# in flight (in all, and per job) when each arrived. pstest ignores the
# server-side flow control of StreamingPull, so what is seen here is
# jobrelay's own limit.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

# Each part looks only at the calls recorded since its mark_records.
REC_MARK=0
mark_records() { REC_MARK=$(wc -l <"$WORK/record.jsonl" 2>/dev/null || echo 0); }
new_records() { tail -n +$((REC_MARK + 1)) "$WORK/record.jsonl" >"$WORK/new.jsonl"; }
new_runjobs() { new_records; grep -c '"method":"RunJob"' "$WORK/new.jsonl" || true; }

# max_in_flight [JOB-SUFFIX]: the largest number of RunJob calls in flight at once (per the fake)
max_in_flight() {
	new_records
	node -e '
const [file, job] = process.argv.slice(1);
const runs = require("fs").readFileSync(file, "utf8").split("\n").filter(Boolean).map(JSON.parse)
  .filter((r) => r.method === "RunJob" && (!job || r.request.name.endsWith("/" + job)));
console.log(Math.max(0, ...runs.map((r) => (job ? r.inFlightJob : r.inFlight))));' "$WORK/new.jsonl" "${1:-}"
}

start_fake --latency-ms 300
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB"
write_messages "$WORK/msgs.jsonl"

# --- max_messages 3: never more than 3 messages with the dispatcher, so at most 3 calls at once
write_config "flow_control: { max_messages: 3 }"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 21 || fail "publish: $PS_REPLY"
start_pull
ps_cmd wait-acked 21 60s || fail "not every message acked: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code"
assert_eq "$(new_runjobs)" 21 "RunJob calls"
assert_eq "$(max_in_flight)" 3 "most RunJob calls in flight with max_messages 3"

# --- max_bytes 1KiB with 400-byte messages: two at a time
head -c 400 /dev/zero | tr '\0' 'x' >"$WORK/400"
printf '{"data":"%s","attributes":{"kind":"plain"}}\n' "$(cat "$WORK/400")" >"$WORK/big.jsonl"
write_config "flow_control: { max_messages: 100, max_bytes: 1KiB }"
mark_records
ps_cmd publish "$TOPIC" "$WORK/big.jsonl" 8 || fail "publish: $PS_REPLY"
start_pull
ps_cmd wait-acked 29 60s || fail "not every message acked: $PS_REPLY"
stop_pull TERM
assert_eq "$(new_runjobs)" 8 "RunJob calls"
assert_eq "$(max_in_flight)" 2 "most RunJob calls in flight with max_bytes 1KiB"

# --- ordering keys: one call at a time per key, in the order received; keys side by side
cat >"$WORK/keyed.jsonl" <<'JSONL'
{"data":"a {{n}}","attributes":{"kind":"keyed"},"ordering_key":"key-a"}
{"data":"b {{n}}","attributes":{"kind":"keyed"},"ordering_key":"key-b"}
{"data":"c {{n}}","attributes":{"kind":"keyed"},"ordering_key":"key-c"}
JSONL
write_config
cat >>"$WORK/jobrelay.yaml" <<'YAML'
  - name: keyed
    match: { attributes: { kind: keyed } }
    job: "ordered-{{message.ordering_key}}"
    overrides:
      env: { MSG: "{{message.id}}" }
YAML
mark_records
ps_cmd publish "$TOPIC" "$WORK/keyed.jsonl" 12 || fail "publish: $PS_REPLY"
PULL_GLOBALS="--log-level debug" start_pull
ps_cmd wait-acked 41 60s || fail "not every message acked: $PS_REPLY"
stop_pull TERM
assert_eq "$(new_runjobs)" 12 "RunJob calls"
for k in a b c; do
	assert_eq "$(max_in_flight ordered-key-$k)" 1 "calls in flight at once for key-$k"
done
[ "$(max_in_flight)" -ge 2 ] || fail "messages of different keys were not dispatched side by side"
new_records
node - "$PULL_LOG" "$WORK/new.jsonl" <<'JS' || fail "order within a key"
const fs = require('fs');
const [logFile, recFile] = process.argv.slice(2);
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map(JSON.parse);
const received = {}, dispatched = {};
for (const l of lines(logFile))
  if (l.msgid === 'PULL-RECEIVED' && l.ordering_key) (received[l.ordering_key] = received[l.ordering_key] || []).push(l.message_id);
for (const r of lines(recFile).filter((x) => x.method === 'RunJob')) {
  const key = r.request.name.split('/').pop().replace('ordered-', '');
  const env = Object.fromEntries(r.request.overrides.containerOverrides[0].env.map((e) => [e.name, e.value]));
  (dispatched[key] = dispatched[key] || []).push(env.MSG);
}
for (const k of ['key-a', 'key-b', 'key-c']) {
  const a = JSON.stringify(received[k]), b = JSON.stringify(dispatched[k]);
  if (a !== b || received[k].length !== 4) { console.error(`${k}: received ${a}, dispatched ${b}`); process.exit(1); }
}
console.log('ok: each key dispatched one at a time, in the order received');
JS

echo "test_pull_flow: ok"
