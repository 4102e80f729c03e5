#!/usr/bin/env bash
# test_pull_errors.sh — RunJob errors under jobrelay pull (docs/pull.md,
# what happens to a message): a retryable error leaves the message in Pub/Sub
# (modifyAckDeadline) and its redelivery succeeds, with the attempt counted
# per message id; a permanent error dead-letters the event and acks it; when
# the dead-letter sink fails the message is nacked with backoff and stays in
# Pub/Sub. Every message is accounted for.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

cat >"$WORK/fake.json" <<'JSON'
{"rules": [
  {"job": "binary-job", "code": "UNAVAILABLE", "message": "try again", "times": 5},
  {"job": "plain-job", "code": "NOT_FOUND", "message": "no such job"}
]}
JSON
# the errors here are per event: no circuit breaker (test_policy.sh tests it)
NO_BREAKER="circuit_breaker: { window: 1000, min_calls: 1000 }"
start_fake --config "$WORK/fake.json"
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB"
write_config "$NO_BREAKER"
write_messages "$WORK/msgs.jsonl"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 30 || fail "publish: $PS_REPLY"

start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
ps_cmd wait-acked 30 60s || fail "not every message acked: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"

ps_cmd stats
assert_eq "$(ps_field acked)" 30 "messages acked"
[ "$(ps_field redelivered)" -ge 1 ] || fail "no message was redelivered after UNAVAILABLE"

# what the fake saw, and the attempt jobrelay counted for each success
node - "$WORK/record.jsonl" "$PULL_LOG" "$WORK/dead.ndjson" <<'JS' || fail "errors accounted for"
const fs = require('fs');
const [recFile, logFile, deadFile] = process.argv.slice(2);
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map(JSON.parse);
const fail = (m) => { console.error(m); process.exit(1); };
const runs = lines(recFile).filter((r) => r.method === 'RunJob');
const envOf = (r) => Object.fromEntries(((r.request.overrides.containerOverrides || [{}])[0].env || []).map((e) => [e.name, e.value]));
const per = {};
for (const r of runs) {
  const msg = envOf(r).MSG, job = r.request.name.split('/').pop();
  const p = (per[msg] = per[msg] || { job, codes: [] });
  p.codes.push(r.statusName);
}
const msgs = Object.keys(per);
if (msgs.length !== 30) fail(`RunJob for ${msgs.length} messages, not 30`);
let unavailable = 0;
const okAttempt = {};
for (const l of lines(logFile))
  if (l.msgid === 'DISPATCH-OK' && l.route === 'binary') okAttempt[l.event_id] = Number(l.attempt);
for (const [msg, p] of Object.entries(per)) {
  const n = Number(msg.slice(1));
  if (p.job === 'structured-job' && p.codes.join() !== 'OK') fail(`${msg}: ${p.codes}`);
  if (p.job === 'plain-job' && p.codes.join() !== 'NOT_FOUND') fail(`${msg}: dead letter expected after one call, got ${p.codes}`);
  if (p.job === 'binary-job') {
    const fails = p.codes.filter((c) => c === 'UNAVAILABLE').length;
    unavailable += fails;
    if (p.codes[p.codes.length - 1] !== 'OK' || p.codes.filter((c) => c === 'OK').length !== 1) fail(`${msg}: ${p.codes}`);
    if (okAttempt[`bin-${n}`] !== fails + 1) fail(`${msg}: succeeded on attempt ${okAttempt[`bin-${n}`]}, after ${fails} failures`);
  }
}
if (unavailable !== 5) fail(`${unavailable} UNAVAILABLE answers, not 5`);
const dead = lines(deadFile);
if (dead.length !== 10) fail(`${dead.length} dead letters, not 10`);
for (const d of dead) {
  if (d.route !== 'plain' || d.error.class !== 'invalid_request' || d.error.code !== 'NOT_FOUND' || d.attempts !== 1)
    fail(`dead letter ${JSON.stringify(d)}`);
  const n = Number(d.message.messageId.slice(1));
  if (Buffer.from(d.message.data, 'base64').toString() !== `plain text ${n}` || d.message.attributes.kind !== 'plain')
    fail(`dead letter message ${JSON.stringify(d.message)}`);
}
console.log(`ok: 30 messages, ${unavailable} retried after UNAVAILABLE, 10 dead-lettered`);
JS

# --- the dead-letter sink fails: the events stay in Pub/Sub (nacked with backoff, never acked)
write_config "$NO_BREAKER"
sed -i "s|dead_letter: { file: .* }|dead_letter: { file: /dev/full }|" "$WORK/jobrelay.yaml"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 30 || fail "publish: $PS_REPLY"
start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
ps_cmd wait-acked 50 60s || fail "the 20 good messages were not acked: $PS_REPLY"
nacked_10() { [ "$(grep -c '"msgid":"PULL-REDELIVER".*dead letter not written' "$PULL_LOG")" -ge 10 ]; }
wait_until 60 nacked_10 || fail "no nack after the failed dead letters"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"
ps_cmd stats
assert_eq "$(ps_field acked)" 50 "messages acked"
assert_eq "$(ps_field unacked)" 10 "messages left in Pub/Sub"
log_has DEADLETTER-FAILED 'No space left on device' || fail "DEADLETTER-FAILED line"

echo "test_pull_errors: ok"
