#!/usr/bin/env bash
# test_ambiguous.sh — a RunJob that ends DEADLINE_EXCEEDED or UNAVAILABLE is
# ambiguous: the execution may exist. jobrelay looks for it
# (ListExecutions, JOBRELAY_KEY in its env) before retrying:
#  - amb:     the fake creates the execution and answers DEADLINE_EXCEEDED
#  - slow:    the fake creates it and answers after the client's deadline
#  -> found: counted dispatched, no second RunJob;
#  - unav:    UNAVAILABLE, nothing created -> not found, retried;
#  - shared:  DEADLINE_EXCEEDED, nothing created, while the job has another
#             event's execution -> not taken for this one, retried.
. "$(dirname "$0")/lib.sh"

cat >"$WORK/fake.json" <<'JSON'
{"rules": [
  {"job": "amb", "code": "DEADLINE_EXCEEDED", "create_execution": true, "times": 1},
  {"job": "slow", "delay_ms": 3000, "times": 1},
  {"job": "unav", "code": "UNAVAILABLE", "times": 1},
  {"job": "shared", "code": "DEADLINE_EXCEEDED", "every": 2, "times": 1}
]}
JSON
start_fake --config "$WORK/fake.json" --require-request-params

cat >"$WORK/jobrelay.yaml" <<YAML
project: p1
region: europe-west2
concurrency: 1
call_timeout: 700ms
dead_letter: { file: $WORK/dead.ndjson }
policies:
  network: { initial_backoff: 10ms, max_backoff: 20ms }
  timeout: { initial_backoff: 10ms, max_backoff: 20ms }
routes:
  - { name: amb, match: { type: t.amb }, job: amb }
  - { name: slow, match: { type: t.slow }, job: slow }
  - { name: unav, match: { type: t.unav }, job: unav }
  - { name: shared, match: { type: t.shared }, job: shared }
YAML
for e in amb slow unav shared:a shared:b; do
	printf '{"specversion":"1.0","id":"ev-%s","source":"/test","type":"t.%s"}\n' "${e/:/-}" "${e%%:*}"
done >"$WORK/events.ndjson"
"$JOBRELAY" --log-format json --config "$WORK/jobrelay.yaml" replay "$WORK/events.ndjson" \
	>"$WORK/out.txt" 2>"$WORK/log.json" || fail "replay: $(tail -5 "$WORK/log.json")"

runs() { jq -r "select(.method==\"RunJob\" and (.request.name|endswith(\"/jobs/$1\"))) | .statusName" "$WORK/record.jsonl" | paste -sd' '; }
ok_msg() { jq -r "select(.msgid==\"DISPATCH-OK\" and .route==\"$1\") | .message" "$WORK/log.json" | paste -sd'|'; }

# found: one RunJob each, and the execution the fake created is the one logged
assert_eq "$(runs amb)" "DEADLINE_EXCEEDED" "RunJob calls for amb"
assert_eq "$(ok_msg amb)" "execution found after an ambiguous failure" "amb outcome"
assert_eq "$(jq -r 'select(.msgid=="DISPATCH-OK" and .route=="amb") | .execution' "$WORK/log.json")" \
	"$(jq -r 'select(.method=="RunJob" and (.request.name|endswith("/jobs/amb"))) | .execution' "$WORK/record.jsonl")" \
	"amb: the execution found is the one created"
assert_eq "$(runs slow)" "OK" "RunJob calls for slow (the fake answers OK after the client gave up)"
assert_eq "$(ok_msg slow)" "execution found after an ambiguous failure" "slow outcome"
grep '"msgid":"DISPATCH-OK"' "$WORK/log.json" | grep '"route":"slow"' | contains '"attempt":"1"' || fail "slow: not on attempt 1"

# not found: retried
assert_eq "$(runs unav)" "UNAVAILABLE OK" "RunJob calls for unav"
assert_eq "$(ok_msg unav)" "execution started" "unav outcome"
assert_eq "$(runs shared)" "OK DEADLINE_EXCEEDED OK" "RunJob calls for shared (another event's execution is not this one's)"

# the lookups: ListExecutions of the job, with the routing header of its http path (pages
# of 100; the start-up check of reads is one call of page size 1 per job)
lookups=$(jq -r 'select(.method=="ListExecutions" and .request.pageSize != 1) | .request.parent' "$WORK/record.jsonl" | sed 's|.*/jobs/||' | sort | paste -sd' ')
assert_eq "$lookups" "amb shared slow unav" "ListExecutions calls"
checks=$(jq -r 'select(.method=="ListExecutions" and .request.pageSize == 1) | .request.parent' "$WORK/record.jsonl" | sed 's|.*/jobs/||' | sort | paste -sd' ')
assert_eq "$checks" "amb shared slow unav" "start-up checks of reads"
assert_eq "$(jq -r 'select(.method=="ListExecutions") | .requestParams.ok' "$WORK/record.jsonl" | sort -u)" true "ListExecutions routing header"
grep -q '^amb  *1 ' "$WORK/out.txt" || fail "summary: $(cat "$WORK/out.txt")"
[ ! -s "$WORK/dead.ndjson" ] || fail "nothing is dead-lettered: $(cat "$WORK/dead.ndjson")"
echo "test_ambiguous: ok"
