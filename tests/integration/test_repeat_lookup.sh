#!/usr/bin/env bash
# test_repeat_lookup.sh — look before you run, when the delivery may be a
# repeat (repeat_check, default on_redelivery). Against the Run API fake,
# which keeps the executions it creates (their overrides' env, JOBRELAY_KEY
# included) for as long as it runs, across jobrelay runs:
#  1. a first delivery (push body, no deliveryAttempt) starts its execution
#     with no ListExecutions lookup;
#  2. the same message redelivered (deliveryAttempt 2), as after a crash
#     before the ack or on another instance: one lookup finds the execution
#     of step 1 -> DISPATCH-FOUND, no second RunJob;
#  3. a message delivered twice whose execution does not exist (the first
#     delivery never reached RunJob): looked up, not found, RunJob once;
#  4. with repeat_check.mode never, a redelivery is sent without a lookup.
. "$(dirname "$0")/lib.sh"

start_fake --require-request-params

config() { # config MODE
	cat <<YAML
project: p1
region: europe-west2
dead_letter: { file: $WORK/dead.ndjson }
repeat_check: { mode: $1 }
routes:
  - name: msg
    match: { type: google.cloud.pubsub.topic.v1.messagePublished }
    job: on-message
YAML
}
config on_redelivery >"$WORK/jobrelay.yaml"
config never >"$WORK/never.yaml"

# push MSGID [ATTEMPT]: a push body of message MSGID published an hour ago (the age rule
# is not applied to replayed records: only deliveryAttempt marks them as repeats)
push() {
	local attempt=${2:+,\"deliveryAttempt\":$2}
	printf '{"message":{"data":"aGVsbG8=","messageId":"%s","publishTime":"%s"},"subscription":"projects/p1/subscriptions/s"%s}\n' \
		"$1" "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%S.000Z)" "$attempt"
}

replay() { # replay NAME CONFIG BODY: one replay run, its log in $WORK/NAME.log
	printf '%s\n' "$3" >"$WORK/$1.json"
	"$JOBRELAY" --log-format json --config "$2" replay --format push "$WORK/$1.json" \
		>"$WORK/$1.out" 2>"$WORK/$1.log" || fail "replay $1: $(tail -5 "$WORK/$1.log")"
}

# lookups: ListExecutions calls that look for an execution (the start-up check of reads
# is one call of page size 1 per job); runs: RunJob calls
lookups() { jq -s '[.[] | select(.method=="ListExecutions" and .request.pageSize != 1)] | length' "$WORK/record.jsonl"; }
runs() { jq -s '[.[] | select(.method=="RunJob")] | length' "$WORK/record.jsonl"; }
msgids() { jq -r "select(.msgid==\"$2\") | .event_id" "$WORK/$1.log" | paste -sd' '; }

# 1. first delivery: RunJob, no lookup
replay first "$WORK/jobrelay.yaml" "$(push m-1)"
assert_eq "$(runs)" 1 "RunJob calls after the first delivery"
assert_eq "$(lookups)" 0 "lookups for a first delivery"
assert_eq "$(msgids first DISPATCH-OK)" m-1 "first delivery dispatched"
first_exec=$(jq -r 'select(.method=="RunJob") | .execution' "$WORK/record.jsonl")
[ -n "$first_exec" ] && [ "$first_exec" != null ] || fail "the fake named no execution"

# 2. the same message redelivered: found, no second RunJob
replay again "$WORK/jobrelay.yaml" "$(push m-1 2)"
assert_eq "$(runs)" 1 "RunJob calls after the redelivery (the execution exists)"
assert_eq "$(lookups)" 1 "lookups for the redelivery"
assert_eq "$(msgids again DISPATCH-LOOKUP)" m-1 "the redelivery was looked up"
assert_eq "$(jq -r 'select(.msgid=="DISPATCH-LOOKUP") | .why' "$WORK/again.log")" attempt "why it was suspected"
assert_eq "$(msgids again DISPATCH-FOUND)" m-1 "the redelivery's execution found"
assert_eq "$(jq -r 'select(.msgid=="DISPATCH-FOUND") | .execution' "$WORK/again.log")" "$first_exec" \
	"the execution found is the first delivery's"
grep -q '^msg  *1 ' "$WORK/again.out" || fail "summary: $(cat "$WORK/again.out")"

# 3. a redelivery whose execution does not exist: looked up, not found, RunJob
replay lost "$WORK/jobrelay.yaml" "$(push m-2 2)"
assert_eq "$(lookups)" 2 "lookups after the lost first delivery"
assert_eq "$(runs)" 2 "RunJob calls after the lost first delivery"
assert_eq "$(msgids lost DISPATCH-OK)" m-2 "not found: started"
[ -z "$(msgids lost LOOKUP-FAILED)" ] || fail "a lookup that found nothing is no failure"

# 4. mode never: no lookup, RunJob again (a duplicate, as the setting says)
replay never "$WORK/never.yaml" "$(push m-1 3)"
assert_eq "$(lookups)" 2 "lookups with repeat_check.mode never"
assert_eq "$(runs)" 3 "RunJob calls with repeat_check.mode never"

[ ! -s "$WORK/dead.ndjson" ] || fail "nothing is dead-lettered: $(cat "$WORK/dead.ndjson")"
echo "test_repeat_lookup: ok"
