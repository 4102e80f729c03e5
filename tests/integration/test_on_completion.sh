#!/usr/bin/env bash
# test_on_completion.sh — routes with ack: on_completion (docs/jobs.md):
# the event is done only when its execution finishes; a failed or cancelled
# execution is an application error (dead-lettered by default), a timed-out
# one a timeout error (retried, then dead-lettered). First through replay,
# then through pull on pstest, where the message's lease must be extended
# while a long execution runs (no redelivery), and it is acked only after.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

cat >"$WORK/fake.json" <<'JSON'
{"executions": [
  {"job": "good", "run_ms": 1500},
  {"job": "bad", "run_ms": 500, "outcome": "failed", "failure_reason": "exit code 4: bad input"},
  {"job": "tmo", "run_ms": 300, "outcome": "timed_out"},
  {"job": "canc", "run_ms": 600000},
  {"job": "long", "run_ms": 14000},
  {"job": "*", "run_ms": 0}
]}
JSON
start_fake --config "$WORK/fake.json" --require-request-params

# ---- replay
cat >"$WORK/replay.yaml" <<YAML
project: p1
region: europe-west2
dead_letter: { file: $WORK/replay-dead.ndjson }
policies:
  timeout: { max_attempts: 2, initial_backoff: 10ms, max_backoff: 20ms }
routes:
  - { name: good, match: { type: t.good }, job: good, ack: on_completion }
  - { name: bad, match: { type: t.bad }, job: bad, ack: on_completion }
  - { name: tmo, match: { type: t.tmo }, job: tmo, ack: on_completion }
  - { name: canc, match: { type: t.canc }, job: canc, ack: on_completion }
  - { name: quick, match: { type: t.good }, job: quick }
YAML
for t in good bad tmo canc; do
	printf '{"specversion":"1.0","id":"ev-%s","source":"/test","type":"t.%s"}\n' "$t" "$t"
done >"$WORK/events.ndjson"
"$JOBRELAY" --log-format json --config "$WORK/replay.yaml" replay "$WORK/events.ndjson" \
	>"$WORK/replay.out" 2>"$WORK/replay.log" &
RPID=$!
canc_started() { grep '"msgid":"DISPATCH-STARTED"' "$WORK/replay.log" | contains '"route":"canc"'; }
wait_until 30 canc_started || fail "the canc execution did not start"
CANC=$(grep '"msgid":"DISPATCH-STARTED"' "$WORK/replay.log" | grep '"route":"canc"' | jq -r .execution)
"$JOBRELAY" executions cancel "$CANC" >/dev/null || fail "cancel $CANC"
set +e
wait "$RPID"
rc=$?
set -e
assert_eq "$rc" 1 "replay exit code (events dead-lettered)"

# good: counted dispatched only once its execution finished; the on_dispatch route at once
ok_line=$(grep '"msgid":"DISPATCH-OK"' "$WORK/replay.log" | grep '"route":"good"')
grep -q '"message":"execution finished"' <<<"$ok_line" || fail "good: $ok_line"
GOOD=$(jq -r .execution <<<"$ok_line")
"$JOBRELAY" executions get "$GOOD" >"$WORK/good.json"
assert_eq "$(jq -r .state "$WORK/good.json")" SUCCEEDED "good execution state"
done_at=$(jq -r .completionTime "$WORK/good.json")
ok_at=$(jq -r .time <<<"$ok_line")
[[ "$ok_at" > "$done_at" || "$ok_at" == "$done_at" ]] || fail "good counted at $ok_at, before its execution completed at $done_at"
grep '"msgid":"DISPATCH-OK"' "$WORK/replay.log" | grep '"route":"quick"' | contains '"execution started"' ||
	fail "the on_dispatch route is done when RunJob returns"
assert_eq "$(jq -r 'select(.method=="GetExecution" and (.request.name|test("/jobs/good/"))) | .status' "$WORK/record.jsonl" | sort -u)" \
	0 "GetExecution polls of good"

# bad: application, dead-lettered after one RunJob; tmo: timeout, retried once, then dead-lettered
dl() { jq -c "select(.route==\"$1\") | [.error.class, .error.code, .attempts]" "$WORK/replay-dead.ndjson"; }
assert_eq "$(dl bad)" '["application","EXECUTION_FAILED",1]' "bad dead letter"
jq -r 'select(.route=="bad") | .error.message' "$WORK/replay-dead.ndjson" | contains 'exit code 4: bad input' ||
	fail "the failure reason is in the dead letter"
assert_eq "$(dl tmo)" '["timeout","EXECUTION_TIMED_OUT",2]' "tmo dead letter"
assert_eq "$(dl canc)" '["application","EXECUTION_CANCELLED",1]' "cancelled execution"
runs_of() { jq -r "select(.method==\"RunJob\" and (.request.name|endswith(\"/jobs/$1\"))) | .status" "$WORK/record.jsonl" | wc -l; }
assert_eq "$(runs_of bad)" 1 "RunJob calls for bad"
assert_eq "$(runs_of tmo)" 2 "RunJob calls for tmo (timeout is retried)"
assert_eq "$(runs_of good)" 1 "RunJob calls for good"

# ---- pull: a 14 s execution under a 10 s ack deadline; a failed one. With concurrency 1,
# the failed one is taken while the long one is followed: following holds no call slot.
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" --ack-deadline 10
cat >"$WORK/pull.yaml" <<YAML
project: test-project
region: europe-west2
subscription: $SUB
topic: $TOPIC
dead_letter: { file: $WORK/pull-dead.ndjson }
shutdown_grace: 1s
concurrency: 1
flow_control: { ack_deadline: 10s }
routes:
  - { name: long, match: { attributes: { kind: long } }, job: long, ack: on_completion }
  - { name: bad, match: { attributes: { kind: bad } }, job: bad, ack: on_completion }
  - { name: forever, match: { attributes: { kind: forever } }, job: canc, ack: on_completion }
YAML
printf '{"data":"x","attributes":{"kind":"long"}}\n' >"$WORK/long.jsonl"
printf '{"data":"y","attributes":{"kind":"bad"}}\n' >"$WORK/bad.jsonl"
ps_cmd publish "$TOPIC" "$WORK/long.jsonl" || fail "$PS_REPLY"
MSG_LONG=$(ps_field first)
ps_cmd publish "$TOPIC" "$WORK/bad.jsonl" || fail "$PS_REPLY"
MSG_BAD=$(ps_field first)
PULL_CONFIG="$WORK/pull.yaml" start_pull
[ -n "$PULL_PID" ] || fail "pull did not start: $(tail -5 "$PULL_LOG")"

message_field() {
	ps_cmd messages >/dev/null
	local m
	m=$(grep -o "{\"id\":\"$1\",[^}]*}" <<<"$PS_REPLY" || true)
	ps_field "$2" "$m"
}
acked() { [ "$(message_field "$1" acks)" -ge 1 ]; }
wait_until 30 acked "$MSG_BAD" || fail "the failed execution's message was not acked"
jq -e 'select(.route=="bad") | .error.class == "application"' "$WORK/pull-dead.ndjson" >/dev/null ||
	fail "pull: failed execution not dead-lettered as application"
finished_long() { grep '"msgid":"DISPATCH-OK"' "$PULL_LOG" | contains '"route":"long"'; }
acked "$MSG_LONG" && fail "the long execution's message was acked before the failed one (which must not wait behind a followed execution)"
wait_until 40 acked "$MSG_LONG" || fail "the long execution's message was not acked"
finished_long || fail "acked without DISPATCH-OK for the long execution"
assert_eq "$(message_field "$MSG_LONG" deliveries)" 1 "deliveries of the long message (lease extended, not redelivered)"
# SIGTERM while an execution is followed: after shutdown_grace the follow ends, the message
# is left to Pub/Sub (not acked), and pull exits 0
printf '{"data":"z","attributes":{"kind":"forever"}}\n' >"$WORK/forever.jsonl"
ps_cmd publish "$TOPIC" "$WORK/forever.jsonl" || fail "$PS_REPLY"
MSG_FOREVER=$(ps_field first)
following() { grep '"msgid":"DISPATCH-STARTED"' "$PULL_LOG" | contains '"route":"forever"'; }
wait_until 30 following || fail "the forever execution was not followed"
stop_pull TERM
assert_eq "$PULL_RC" 0 "pull exit code"
assert_eq "$(message_field "$MSG_FOREVER" acks)" 0 "a message whose execution still ran at shutdown is not acked"
ext=$(grep '"msgid":"PULL-SUMMARY"' "$PULL_LOG" | sed -n 's/.*"lease_extensions":"\([0-9]*\)".*/\1/p')
[ "${ext:-0}" -ge 1 ] || fail "no lease extension while the execution ran"
LONG=$(grep '"msgid":"DISPATCH-OK"' "$PULL_LOG" | grep '"route":"long"' | jq -r .execution)
"$JOBRELAY" executions get "$LONG" | jq -e '.state == "SUCCEEDED"' >/dev/null || fail "long execution state"
echo "test_on_completion: ok ($ext lease extensions)"
