#!/usr/bin/env bash
# test_reads_denied.sh — reads never start a job again. The Run API fake lets
# the start-up check (one ListExecutions of page size 1 per job) through, then
# denies the reads of the job (GetExecution, ListExecutions):
#  - an ack: on_completion event causes exactly one RunJob under replay, serve
#    and pull; its reads are retried (read_retry.max_attempts GetExecution),
#    then it ends as EXECUTION_UNCONFIRMED: dead-lettered with the execution
#    named, the delivery done (replay exit 1, serve 2xx, pull acks once);
#  - an ambiguous RunJob failure (DEADLINE_EXCEEDED, execution created) whose
#    lookup is denied: the lookup is retried (read_retry.lookup_attempts)
#    before the second RunJob, and the log names the duplicate risk;
#  - under pull, reads retried for longer than the ack deadline (following
#    and looking up) keep the message's lease: no redelivery meanwhile;
#  - reads denied from the start: an ack: on_completion route is a start-up
#    error (exit 3, naming the job and the permission) under replay, serve
#    and pull; default-ack routes run, with a warning.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

deny() { # deny JOB: the first ListExecutions (the start-up check) passes, later reads are denied
	printf '{"job": "%s", "method": "ListExecutions", "times": 1},\n' "$1"
	printf '{"job": "%s", "method": ["GetExecution", "ListExecutions"], "code": "PERMISSION_DENIED", "message": "Permission denied on resource"},\n' "$1"
}
{
	echo '{"rules": ['
	deny oc-replay
	deny oc-serve
	deny oc-pull
	deny amb
	deny amb-pull
	echo '{"job": "amb", "code": "DEADLINE_EXCEEDED", "create_execution": true, "times": 1},'
	echo '{"job": "amb-pull", "code": "DEADLINE_EXCEEDED", "create_execution": true, "times": 1},'
	echo '{"job": "denied", "method": ["GetExecution", "ListExecutions"], "code": "PERMISSION_DENIED"}'
	echo ']}'
} >"$WORK/fake.json"
start_fake --config "$WORK/fake.json" --require-request-params

READS='read_retry: { initial_backoff: 50ms, max_backoff: 100ms, max_attempts: 3, lookup_attempts: 3 }'
calls() { # calls METHOD JOB: calls of METHOD for JOB (page size 1 ListExecutions excluded)
	jq -r "select(.method==\"$1\" and (.request.pageSize // 0) != 1) | (.request.name // .request.parent)" \
		"$WORK/record.jsonl" | grep -c "/jobs/$2\(/\|\$\)" || true
}
unconfirmed_record() { # unconfirmed_record FILE JOB: the dead letter names the execution RunJob started
	local exec
	exec=$(jq -r "select(.method==\"RunJob\" and (.request.name|endswith(\"/jobs/$2\"))) | .execution" "$WORK/record.jsonl")
	[ -n "$exec" ] || fail "$2: no execution created"
	assert_eq "$(jq -c '[.error.code, .error.class]' "$1")" '["EXECUTION_UNCONFIRMED","permission"]' "$2: dead letter"
	jq -r .error.message "$1" | contains -F "execution $exec started" || fail "$2: the record does not say $exec started: $(cat "$1")"
}

echo "== replay: on_completion, reads denied; an ambiguous failure whose lookup is denied"
cat >"$WORK/replay.yaml" <<YAML
project: p1
region: europe-west2
call_timeout: 700ms
dead_letter: { file: $WORK/replay-dead.ndjson }
$READS
policies:
  timeout: { initial_backoff: 10ms, max_backoff: 20ms }
routes:
  - { name: oc, match: { type: t.oc }, job: oc-replay, ack: on_completion }
  - { name: amb, match: { type: t.amb }, job: amb }
YAML
printf '{"specversion":"1.0","id":"ev-%s","source":"/test","type":"t.%s"}\n' oc oc amb amb >"$WORK/events.ndjson"
set +e
"$JOBRELAY" --log-format json --config "$WORK/replay.yaml" replay "$WORK/events.ndjson" \
	>"$WORK/replay.out" 2>"$WORK/replay.log"
rc=$?
set -e
assert_eq "$rc" 1 "replay exit code (a record was dead-lettered)"
assert_eq "$(calls RunJob oc-replay)" 1 "RunJob calls for oc-replay"
assert_eq "$(calls GetExecution oc-replay)" 3 "GetExecution calls for oc-replay (read_retry.max_attempts)"
grep '"msgid":"DISPATCH-UNCONFIRMED"' "$WORK/replay.log" | contains '"route":"oc"' || fail "no DISPATCH-UNCONFIRMED: $(tail -5 "$WORK/replay.log")"
unconfirmed_record "$WORK/replay-dead.ndjson" oc-replay
# amb: RunJob DEADLINE_EXCEEDED, three denied lookups, then (and only then) the retry
seq=$(jq -r 'select((.request.name // .request.parent // "")|test("/jobs/amb$")) | select(.method!="ListExecutions" or .request.pageSize != 1) | "\(.method):\(.statusName)"' "$WORK/record.jsonl" | paste -sd' ')
assert_eq "$seq" "RunJob:DEADLINE_EXCEEDED ListExecutions:PERMISSION_DENIED ListExecutions:PERMISSION_DENIED ListExecutions:PERMISSION_DENIED RunJob:OK" "amb: calls in order"
assert_eq "$(grep -c '"msgid":"LOOKUP-RETRY"' "$WORK/replay.log")" 2 "LOOKUP-RETRY lines"
grep '"msgid":"LOOKUP-FAILED"' "$WORK/replay.log" | grep '"route":"amb"' | contains 'duplicate' ||
	fail "the failed lookup does not name the duplicate risk: $(grep LOOKUP "$WORK/replay.log")"

echo "== serve: on_completion, reads denied: one RunJob, answered 2xx"
cat >"$WORK/serve.yaml" <<YAML
project: p1
region: europe-west2
dead_letter: { file: $WORK/serve-dead.ndjson }
$READS
routes:
  - { name: oc, match: { type: t.oc }, job: oc-serve, ack: on_completion }
YAML
SERVE_LOG="$WORK/serve.log"
"$JOBRELAY" --log-format json --config "$WORK/serve.yaml" serve --port 0 --bind 127.0.0.1 >"$SERVE_LOG" 2>&1 &
SERVE_PID=$!
PULL_PIDS+=("$SERVE_PID") # killed at exit if the test fails first
listening() { grep -q '"msgid":"SERVE-LISTENING"' "$SERVE_LOG"; }
wait_until 30 listening || fail "serve did not start: $(tail -5 "$SERVE_LOG")"
SERVE_PORT=$(grep '"msgid":"SERVE-LISTENING"' "$SERVE_LOG" | jq -r .port)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'ce-specversion: 1.0' -H 'ce-id: sv-1' \
	-H 'ce-source: /test' -H 'ce-type: t.oc' --data '' "http://127.0.0.1:$SERVE_PORT/")
[[ "$code" == 2?? ]] || fail "serve answered $code: $(tail -5 "$SERVE_LOG")"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || fail "serve exit code $?"
assert_eq "$(calls RunJob oc-serve)" 1 "RunJob calls for oc-serve"
unconfirmed_record "$WORK/serve-dead.ndjson" oc-serve

echo "== pull: reads retried past the ack deadline keep the lease; one RunJob, acked once"
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" --ack-deadline 10
cat >"$WORK/pull.yaml" <<YAML
project: test-project
region: europe-west2
subscription: $SUB
topic: $TOPIC
dead_letter: { file: $WORK/pull-dead.ndjson }
shutdown_grace: 1s
flow_control: { ack_deadline: 10s }
read_retry: { initial_backoff: 5s, max_backoff: 5s, max_attempts: 3, lookup_attempts: 3 }
policies:
  timeout: { initial_backoff: 10ms, max_backoff: 20ms }
routes:
  - { name: oc, match: { attributes: { kind: oc } }, job: oc-pull, ack: on_completion }
  - { name: amb, match: { attributes: { kind: amb } }, job: amb-pull }
YAML
printf '{"data":"x","attributes":{"kind":"oc"}}\n' >"$WORK/oc.jsonl"
printf '{"data":"y","attributes":{"kind":"amb"}}\n' >"$WORK/amb.jsonl"
ps_cmd publish "$TOPIC" "$WORK/oc.jsonl" || fail "$PS_REPLY"
MSG=$(ps_field first)
ps_cmd publish "$TOPIC" "$WORK/amb.jsonl" || fail "$PS_REPLY"
MSG_AMB=$(ps_field first)
PULL_CONFIG="$WORK/pull.yaml" start_pull
[ -n "$PULL_PID" ] || fail "pull did not start: $(tail -5 "$PULL_LOG")"
message_field() {
	ps_cmd messages >/dev/null
	local m
	m=$(grep -o "{\"id\":\"$1\",[^}]*}" <<<"$PS_REPLY" || true)
	ps_field "$2" "$m"
}
acked() { [ "$(message_field "$1" acks)" -ge 1 ]; }
wait_until 40 acked "$MSG" || fail "the message was not acked: $(tail -5 "$PULL_LOG")"
wait_until 40 acked "$MSG_AMB" || fail "the amb message was not acked: $(tail -5 "$PULL_LOG")"
stop_pull TERM
assert_eq "$PULL_RC" 0 "pull exit code"
assert_eq "$(message_field "$MSG" deliveries)" 1 "deliveries of the message (11 s of reads, lease kept)"
assert_eq "$(calls RunJob oc-pull)" 1 "RunJob calls for oc-pull"
assert_eq "$(calls GetExecution oc-pull)" 3 "GetExecution calls for oc-pull"
unconfirmed_record "$WORK/pull-dead.ndjson" oc-pull
# amb: 10 s of lookups under a 10 s ack deadline, then the retry: its one redelivery, a
# suspected repeat (repeat_check: published over 10 s ago, and its key's lookup failed), is
# looked up again before RunJob (three denied lookups: LOOKUP-FAILED, RunJob anyway)
seq=$(jq -r 'select((.request.name // .request.parent // "")|test("/jobs/amb-pull$")) | select(.method!="ListExecutions" or .request.pageSize != 1) | "\(.method):\(.statusName)"' "$WORK/record.jsonl" | paste -sd' ')
assert_eq "$seq" "RunJob:DEADLINE_EXCEEDED$(printf ' ListExecutions:PERMISSION_DENIED%.0s' 1 2 3 4 5 6) RunJob:OK" "amb-pull: calls in order"
assert_eq "$(message_field "$MSG_AMB" deliveries)" 2 "deliveries of the amb message (the retry only)"
ext=$(grep '"msgid":"PULL-SUMMARY"' "$PULL_LOG" | jq -r .lease_extensions)
[ "${ext:-0}" -ge 2 ] || fail "lease extensions while reads were retried: ${ext:-none}"

echo "== start-up with reads denied"
cat >"$WORK/denied-oc.yaml" <<YAML
project: p1
region: europe-west2
subscription: $SUB
topic: $TOPIC
dead_letter: { file: $WORK/denied-dead.ndjson }
routes:
  - { name: d, match: { type: t.d }, job: denied, ack: on_completion }
YAML
printf '{"specversion":"1.0","id":"ev-d","source":"/test","type":"t.d"}\n' >"$WORK/denied.ndjson"
startup_denied() { # startup_denied LOG: the log names the job and the permission
	local line
	line=$(grep '"msgid":"RUNAPI-READS-DENIED"' "$1") || fail "no RUNAPI-READS-DENIED: $(tail -5 "$1")"
	jq -e '.job == "projects/p1/locations/europe-west2/jobs/denied" and .permission == "run.executions.list"' <<<"$line" >/dev/null ||
		fail "RUNAPI-READS-DENIED: $line"
}
set +e
"$JOBRELAY" --log-format json --config "$WORK/denied-oc.yaml" replay "$WORK/denied.ndjson" >/dev/null 2>"$WORK/d-replay.log"
rc=$?
set -e
assert_eq "$rc" 3 "replay exit code, on_completion route with reads denied"
startup_denied "$WORK/d-replay.log"
set +e
timeout 60 "$JOBRELAY" --log-format json --config "$WORK/denied-oc.yaml" serve --port 0 --bind 127.0.0.1 >"$WORK/d-serve.log" 2>&1
rc=$?
set -e
assert_eq "$rc" 3 "serve exit code, on_completion route with reads denied"
startup_denied "$WORK/d-serve.log"
PULL_CONFIG="$WORK/denied-oc.yaml" run_pull_to_exit
assert_eq "$PULL_RC" 3 "pull exit code, on_completion route with reads denied"
startup_denied "$PULL_LOG"
assert_eq "$(calls RunJob denied)" 0 "RunJob calls for denied"

sed 's/, ack: on_completion//' "$WORK/denied-oc.yaml" >"$WORK/denied-default.yaml"
"$JOBRELAY" --log-format json --config "$WORK/denied-default.yaml" replay "$WORK/denied.ndjson" \
	>/dev/null 2>"$WORK/d-default.log" || fail "replay with a default-ack route: $(tail -5 "$WORK/d-default.log")"
grep '"msgid":"AMBIGUITY-CHECK-UNAVAILABLE"' "$WORK/d-default.log" | contains '"permission":"run.executions.list"' ||
	fail "no AMBIGUITY-CHECK-UNAVAILABLE warning: $(tail -5 "$WORK/d-default.log")"
assert_eq "$(calls RunJob denied)" 1 "RunJob calls for denied (default ack)"
echo "test_reads_denied: ok"
