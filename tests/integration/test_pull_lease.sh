#!/usr/bin/env bash
# test_pull_lease.sh — lease management: a RunJob slower than the ack
# deadline (10 s deadline, 13 s call) does not cause a redelivery, because
# jobrelay extends the message's deadline while the call runs. The control:
# the same message on a second subscription, pulled with max_extension 0
# (no extensions), is redelivered once its 10 s run out.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

TOPIC_A=$TOPIC SUB_A=$SUB
TOPIC_B=projects/test-project/topics/control SUB_B=projects/test-project/subscriptions/control
start_fake --config <(echo '{"rules":[{"job":"*","delay_ms":13000}]}')
start_pstest "$WORK" --topic "$TOPIC_A" --subscription "$SUB_A" --ack-deadline 10
ps_cmd create-topic "$TOPIC_B" || fail "$PS_REPLY"
ps_cmd create-subscription "$SUB_B" "$TOPIC_B" 10 || fail "$PS_REPLY"
printf '{"data":"slow job","attributes":{"kind":"plain"}}\n' >"$WORK/one.jsonl"

PULL_CONFIG="$WORK/a.yaml" GRACE=1s write_config "flow_control: { ack_deadline: 10s }"
TOPIC=$TOPIC_B SUB=$SUB_B PULL_CONFIG="$WORK/b.yaml" GRACE=1s \
	write_config "flow_control: { ack_deadline: 10s, max_extension: 0s }"

ps_cmd publish "$TOPIC_A" "$WORK/one.jsonl" || fail "$PS_REPLY"
MSG_A=$(ps_field first)
ps_cmd publish "$TOPIC_B" "$WORK/one.jsonl" || fail "$PS_REPLY"
MSG_B=$(ps_field first)

PULL_CONFIG="$WORK/a.yaml" start_pull
PID_A=$PULL_PID LOG_A=$PULL_LOG CAT_A=$PULL_CAT
PULL_CONFIG="$WORK/b.yaml" start_pull
PID_B=$PULL_PID LOG_B=$PULL_LOG CAT_B=$PULL_CAT

# message_field ID FIELD: deliveries or acks of one message, from pstest
message_field() {
	ps_cmd messages >/dev/null
	local m
	m=$(grep -o "{\"id\":\"$1\",[^}]*}" <<<"$PS_REPLY" || true)
	ps_field "$2" "$m"
}
acked_a() { [ "$(message_field "$MSG_A" acks)" -ge 1 ]; }
redelivered_b() { [ "$(message_field "$MSG_B" deliveries)" -ge 2 ]; }

wait_until 40 acked_a || fail "the slow message was not acked"
assert_eq "$(message_field "$MSG_A" deliveries)" 1 "deliveries of the message whose lease was extended"
grep -q '"msgid":"DISPATCH-OK"' "$LOG_A" || fail "no DISPATCH-OK"
wait_until 40 redelivered_b || fail "control: the message without lease extensions was not redelivered"
grep -q '"msgid":"PULL-LEASE-MAX"' "$LOG_B" || fail "control: no PULL-LEASE-MAX line"

PULL_PID=$PID_A PULL_CAT=$CAT_A stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code (extended)"
PULL_PID=$PID_B PULL_CAT=$CAT_B stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code (control)"
ext=$(grep '"msgid":"PULL-SUMMARY"' "$LOG_A" | sed -n 's/.*"lease_extensions":"\([0-9]*\)".*/\1/p')
[ "${ext:-0}" -ge 1 ] || fail "no lease extension counted"
echo "test_pull_lease: ok ($ext lease extensions)"
