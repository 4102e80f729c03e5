#!/usr/bin/env bash
# test_pull_reconnect.sh — pstest closes every StreamingPull stream after
# 700 ms (SetStreamTimeout): jobrelay reopens the stream (backoff with
# jitter); every RunJob takes 1 s, so each ack goes out on a later stream
# than the one its message came on; no message is lost: all are acked, each
# dispatched.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

start_fake --latency-ms 1000
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" --stream-timeout 700ms
# the second publish repeats the CloudEvents (same source and id): no dedup here
write_config "dedup: { ttl: 0s }"
write_messages "$WORK/msgs.jsonl"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 60 || fail "publish: $PS_REPLY"

start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
ps_cmd wait-acked 60 90s || fail "not every message acked: $PS_REPLY"
closed_by_server() { grep -c '"msgid":"PUBSUB-STATE".*"state":"backoff".*stream closed by the server' "$PULL_LOG" || true; }
reopened_twice() { [ "$(closed_by_server)" -ge 2 ]; }
wait_until 20 reopened_twice || fail "the stream was not closed and reopened twice"
# more messages, on the streams that follow
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 60 || fail "publish: $PS_REPLY"
ps_cmd wait-acked 120 90s || fail "not every message acked: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"

reconnects=$(closed_by_server)
grep -q '"msgid":"PUBSUB-STATE".*"state":"open","from":"connecting"' "$PULL_LOG" || fail "no stream opened"

ps_cmd streams
[ "$(ps_field streamingPull)" -ge 3 ] || fail "pstest saw $(ps_field streamingPull) streams, not 3 or more"
ps_cmd stats
assert_eq "$(ps_field acked)" 120 "messages acked"
redelivered=$(ps_field redelivered)
node - "$WORK/record.jsonl" "$redelivered" <<'JS' || fail "every message dispatched"
const fs = require('fs');
const [file, redelivered] = process.argv.slice(2);
const runs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(JSON.parse).filter((r) => r.method === 'RunJob');
const count = {};
for (const r of runs) {
  const env = Object.fromEntries(((r.request.overrides.containerOverrides || [{}])[0].env || []).map((e) => [e.name, e.value]));
  count[env.MSG] = (count[env.MSG] || 0) + (r.status === 0 ? 1 : 0);
}
const ids = Object.keys(count).filter((k) => count[k] > 0);
if (ids.length !== 120) { console.error(`${ids.length} of 120 messages dispatched`); process.exit(1); }
const dups = ids.filter((k) => count[k] > 1).length;
// a duplicate RunJob needs a redelivery (an ack that a closing stream dropped)
if (dups > Number(redelivered)) { console.error(`${dups} duplicates but ${redelivered} redeliveries`); process.exit(1); }
console.log(`ok: 120 messages dispatched, ${dups} twice, ${redelivered} redelivered`);
JS
echo "test_pull_reconnect: ok ($reconnects streams closed by the server)"
