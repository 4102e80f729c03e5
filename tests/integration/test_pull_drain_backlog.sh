#!/usr/bin/env bash
# test_pull_drain_backlog.sh — SIGTERM with a backlog (docs/pull.md, SIGTERM):
# 3,000 messages published, max_messages 1,000, every RunJob slow, so that
# hundreds of messages wait in jobrelay when the signal comes. The drain stops
# the intake before it gives them back (the stream is cancelled, the nacks go
# in unary ModifyAckDeadline calls with the routing header), so pstest
# redelivers none of them to the draining process: `redelivered` is 0 after
# the first run. A second run dispatches the rest: every message acked, one
# RunJob each (nothing lost, nothing twice).
#
# MEASURE=1 prints the numbers without asserting the redeliveries (to measure
# another binary: JOBRELAY=/path/to/jobrelay MEASURE=1 bash this-file).
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

N=3000
fake_delay() {
	if [ "$1" = 0 ]; then echo '{}' >"$WORK/fake.tmp"; else
		printf '{"rules":[{"job":"*","delay_ms":%d}]}\n' "$1" >"$WORK/fake.tmp"; fi
	mv "$WORK/fake.tmp" "$WORK/fake.json"
}
summary_field() {
	grep '"msgid":"PULL-SUMMARY"' "$PULL_LOG" | sed -n "s/.*\"$1\":\"\([0-9]*\)\".*/\1/p"
}

fake_delay "${DRAIN_CALL_MS:-6000}"
start_fake --config "$WORK/fake.json"
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" --ack-deadline 10
GRACE=10s write_config "flow_control: { max_messages: 1000 }
concurrency: 16"
write_messages "$WORK/msgs.jsonl"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" $N || fail "publish: $PS_REPLY"

# --- run 1: busy (16 slow calls), hundreds waiting, then SIGTERM
start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
ps_cmd wait-delivered 500 60s || fail "500 messages not delivered: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"
ps_cmd stats || fail "stats: $PS_REPLY"
redelivered=$(ps_field redelivered)
delivered=$(ps_field delivered)
acked1=$(ps_field acked)
received=$(summary_field received)
nacked=$(summary_field nacked_at_shutdown)
echo "drain backlog: delivered=$delivered received=$received acked=$acked1" \
	"nacked_at_shutdown=$nacked redelivered_to_draining=$redelivered"
if [ "${MEASURE:-0}" != 1 ]; then
	assert_eq "$redelivered" 0 "messages redelivered to the draining process"
	[ "$nacked" -ge 300 ] || fail "only $nacked messages waited at SIGTERM: no backlog to drain"
	log_has PUBSUB-INTAKE-STOPPED || fail "no PUBSUB-INTAKE-STOPPED line"
	ps_cmd calls /google.pubsub.v1.Subscriber/ModifyAckDeadline || fail "calls: $PS_REPLY"
	[ "$(ps_field calls)" -ge 1 ] || fail "no unary ModifyAckDeadline call: $PS_REPLY"
	grep -q 'subscription=projects%2Ftest-project%2Fsubscriptions%2Fjobs' <<<"$PS_REPLY" ||
		fail "unary call without the routing header: $PS_REPLY"
fi

# --- run 2: the rest is dispatched; nothing lost, nothing twice
fake_delay 0
start_pull
ps_cmd wait-acked $N 180s || fail "not every message acked after the second run: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code of the second run"
res=$(check_runjobs) || fail "RunJob records"
echo "runjobs: $res"
assert_eq "$(ps_field okMessages "$res")" $N "messages dispatched"
assert_eq "$(ps_field duplicates "$res")" 0 "messages dispatched twice"

echo "test_pull_drain_backlog: ok"
