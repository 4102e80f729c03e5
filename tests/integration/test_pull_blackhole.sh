#!/usr/bin/env bash
# test_pull_blackhole.sh — the connection to Pub/Sub dies silently: a TCP front
# (tests/peers/tcpfront) between jobrelay and pstest stops forwarding in both
# directions and keeps the sockets open, as a NAT or load balancer that dropped
# the connection does. The keepalive interval is scaled down to 2 s
# (JOBRELAY_PUBSUB_KEEPALIVE_MS), so the stated bound, interval + ping timeout
# (min(20 s, interval)), is 4 s. Checks: an idle stream sends empty
# StreamingPull requests (counted by pstest) and is not closed for pinging too
# often; after the blackhole the stream ends and a new one opens within the
# bound (plus scheduling slack); every message published before and after is
# dispatched once and acked: nothing lost, nothing started twice.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"
. "$JR_SOURCE_DIR/tests/peers/tcpfront/lib.sh"
trap 'stop_front; pull_cleanup' EXIT

KEEPALIVE_MS=2000
BOUND_MS=$((KEEPALIVE_MS + KEEPALIVE_MS)) # interval + ping timeout, min(20 s, interval)
SLACK_MS=3000                             # timers, scheduling on a busy machine, the 50 ms poll
export JOBRELAY_PUBSUB_KEEPALIVE_MS=$KEEPALIVE_MS

start_fake
# pings more often than every second, while pstest sends nothing, get GOAWAY too_many_pings
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" --keepalive-min-time 1s
start_front "$WORK" "127.0.0.1:$PSTEST_PORT" || fail "the TCP front did not start"
export PUBSUB_EMULATOR_HOST="127.0.0.1:$FRONT_PORT"
write_config
# plain messages: the CloudEvent id is the message id, so the second batch is not a duplicate
echo '{"data":"plain text {{n}}","attributes":{"kind":"plain"}}' >"$WORK/msgs.jsonl"

ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 30 || fail "publish: $PS_REPLY"
start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
ps_cmd wait-acked 30 60s || fail "first batch not acked: $PS_REPLY"

# idle: nothing to ack, so only the stream keepalive sends. Three of them: the stream has been
# idle longer than gRPC's 2 pings without data, after which only the empty requests let the
# channel ping on (without them, the blackhole below is never noticed)
empty_requests_at_least() { ps_cmd streams && [ "$(ps_field emptyRequests)" -ge "$1" ]; }
wait_until 15 empty_requests_at_least 3 || fail "no empty StreamingPull requests on the idle stream: $PS_REPLY"
# polled every 50 ms, so the count that first reaches 3 is 3: more means a burst, not one an interval
[ "$(ps_field emptyRequests)" -le 4 ] || fail "a burst of empty requests, not one an interval: $PS_REPLY"
ps_cmd streams
assert_eq "$(ps_field streamingPull)" 1 "streams while idle (a too_many_pings GOAWAY would end it)"
backoffs() { grep -c '"msgid":"PUBSUB-STATE".*"state":"backoff"' "$PULL_LOG" || true; }
assert_eq "$(backoffs)" 0 "stream ends before the blackhole"

now_ms() { date +%s%3N; }
t0=$(now_ms)
front_cmd blackhole || fail "blackhole: $FRONT_REPLY"
assert_eq "$(front_field blackholed)" 1 "connections blackholed (the Pub/Sub channel's)"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 30 || fail "publish: $PS_REPLY"

# the dead connection is noticed: the stream ends (backoff), a new one is opened
stream_ended() { [ "$(backoffs)" -ge 1 ]; }
wait_until 60 stream_ended || fail "the stream on the blackholed connection never ended"
detected_ms=$(($(now_ms) - t0))
reopened() { grep '"msgid":"PUBSUB-STATE"' "$PULL_LOG" | sed -n '/"state":"backoff"/,$p' | contains '"state":"connecting"'; }
wait_until 30 reopened || fail "no stream opened after the blackholed one ended"
reopened_ms=$(($(now_ms) - t0))
ended=$(grep -m1 '"msgid":"PUBSUB-STATE".*"state":"backoff"' "$PULL_LOG")
echo "blackhole: stream ended after ${detected_ms} ms, reopened after ${reopened_ms} ms (bound ${BOUND_MS} ms): $ended"
[ "$reopened_ms" -le $((BOUND_MS + SLACK_MS)) ] ||
	fail "stream replaced after ${reopened_ms} ms, past the bound of ${BOUND_MS} ms (+${SLACK_MS} ms slack)"

# nothing lost: the second batch comes on the new stream (pstest redelivers what it handed
# to the dead one when its ack deadline expires)
ps_cmd wait-acked 60 90s || fail "not every message acked: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"
ps_cmd stats
assert_eq "$(ps_field acked)" 60 "messages acked"
ps_cmd streams
[ "$(ps_field streamingPull)" -ge 2 ] || fail "pstest saw $(ps_field streamingPull) streams, not 2 or more"

node - "$WORK/record.jsonl" <<'JS' || fail "every message dispatched once"
const fs = require('fs');
const runs = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map(JSON.parse)
  .filter((r) => r.method === 'RunJob' && r.status === 0);
const count = {};
for (const r of runs) {
  const env = Object.fromEntries(((r.request.overrides.containerOverrides || [{}])[0].env || []).map((e) => [e.name, e.value]));
  count[env.MSG] = (count[env.MSG] || 0) + 1;
}
const ids = Object.keys(count);
const dups = ids.filter((k) => count[k] > 1);
if (ids.length !== 60 || dups.length) {
  console.error(`${ids.length} of 60 messages dispatched; twice: ${dups.join(' ')}`);
  process.exit(1);
}
JS
echo "test_pull_blackhole: ok (60 messages, each dispatched once; stream replaced after ${reopened_ms} ms)"
