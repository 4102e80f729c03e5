#!/usr/bin/env bash
# test_redrive.sh — `jobrelay redrive`, against Google's pstest and the Run API fake.
# jobrelay itself makes the dead letters: replay runs 100 events whose jobs the fake
# answers PERMISSION_DENIED (denied-job), NOT_FOUND (missing-job) and INVALID_ARGUMENT
# (bad-job), and dead-letters them to a topic with a subscription. Then:
#   - redrive --dry-run prints the 100 requests, the same lines as replay --dry-run, and
#     acks nothing: a second dry run at once gets all 100 again (released, not left leased);
#   - the filters --class (list and repeated), --route, --since, --until, --limit;
#   - a real run with the fake answering OK for two jobs: each of those 66 events is
#     started once and its dead letter acked once; the 34 that fail again stay (and are
#     not dead-lettered again); a second run starts nothing twice; once the fake answers
#     OK for all, the rest go and the subscription is empty;
#   - the file source: --dry-run as replay's, a real run writing the records that failed
#     again to --out, and that file redriven; EXECUTION_UNCONFIRMED records left alone.
# shellcheck source=tests/integration/pull_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

DLT=projects/test-project/topics/dead
DLS=projects/test-project/subscriptions/dead-sub

# fake_rules JOB...: the fake answers these jobs with their error (the others OK); it re-reads
# its config on the next call (a new file: a new inode)
fake_rules() {
	local rules=() j
	for j in "$@"; do
		case "$j" in
		denied-job) rules+=('{"job":"denied-job","code":"PERMISSION_DENIED","message":"no run.jobs.run"}') ;;
		missing-job) rules+=('{"job":"missing-job","code":"NOT_FOUND","message":"job missing-job not found"}') ;;
		bad-job) rules+=('{"job":"bad-job","code":"INVALID_ARGUMENT","message":"bad override"}') ;;
		esac
	done
	local IFS=,
	printf '{"rules": [%s]}\n' "${rules[*]}" >"$WORK/fake.json.new"
	mv "$WORK/fake.json.new" "$WORK/fake.json"
}
fake_rules denied-job missing-job bad-job
start_fake --config "$WORK/fake.json"
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB"
ps_cmd create-topic "$DLT" || fail "create-topic: $PS_REPLY"
ps_cmd create-subscription "$DLS" "$DLT" || fail "create-subscription: $PS_REPLY"

# config FILE DEAD_LETTER
config() {
	cat >"$1" <<YAML
project: test-project
region: europe-west2
topic: $TOPIC
call_timeout: 5s
circuit_breaker: { window: 1000, min_calls: 1000 }
dead_letter: $2
policies:
  permission: { max_attempts: 2, initial_backoff: 100ms, max_backoff: 200ms }
routes:
  - name: denied
    match: { type: test.denied }
    job: denied-job
    overrides: { env: { N: "{{data.n}}" } }
  - name: missing
    match: { type: test.missing }
    job: missing-job
    overrides: { env: { N: "{{data.n}}" } }
  - name: bad
    match: { type: test.bad }
    job: bad-job
    overrides: { args: [ "--n", "{{data.n}}" ] }
YAML
}
config "$WORK/topic.yaml" "{ topic: $DLT }"
config "$WORK/file.yaml" "{ file: $WORK/dead2.ndjson }"

# events PREFIX N: N events, types in turn denied, missing, bad
events() {
	local i types=(denied missing bad)
	for ((i = 0; i < $2; i++)); do
		printf '{"specversion":"1.0","id":"%s-%d","source":"//test/redrive","type":"test.%s","data":{"n":%d}}\n' \
			"$1" "$i" "${types[i % 3]}" "$i"
	done
}

# redrive OUT ARGS...: jobrelay redrive ARGS with stdout in OUT, stderr in OUT.err; sets RC
redrive() {
	local out=$1
	shift
	set +e
	timeout 120 "$JOBRELAY" --log-format json --config "${CFG:-$WORK/topic.yaml}" redrive "$@" \
		>"$out" 2>"$out.err"
	RC=$?
	set -e
}

# lines FILE: its line count
lines() { wc -l <"$1" | tr -d ' '; }

# started: prints {"<event id>": <RunJobs answered OK>, ...} from the fake's record
started() {
	node -e '
const recs = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
const ok = {};
for (const r of recs) {
  if (r.method !== "RunJob" || r.status !== 0) continue;
  const env = Object.fromEntries(((r.request.overrides || {}).containerOverrides || [{}])[0].env.map((e) => [e.name, e.value]));
  ok[env.CE_ID] = (ok[env.CE_ID] || 0) + 1;
}
console.log(JSON.stringify(ok));
' "$WORK/record.jsonl"
}

# check_started PREFIX N 'EXPR': for every event PREFIX-i (i < N), EXPR (of i and c, its OK
# RunJobs) holds
check_started() {
	node -e '
const ok = JSON.parse(process.argv[1]), [p, n, expr] = process.argv.slice(2);
for (let i = 0; i < Number(n); i++) {
  const c = ok[`${p}-${i}`] || 0;
  if (!eval(expr)) { console.error(`FAIL: ${p}-${i} started ${c} times, expected ${expr}`); process.exit(1); }
}
' "$(started)" "$@" || fail "RunJobs per event"
}

# dl_acks 'EXPR': for every dead letter on the topic (pstest's messages with a
# jobrelay-route attribute), EXPR (of route and acks) holds; prints how many there are
dl_acks() {
	ps_cmd messages || fail "messages: $PS_REPLY"
	node -e '
const msgs = JSON.parse(process.argv[1]).filter((m) => m.attributes && m.attributes["jobrelay-route"]);
for (const m of msgs) {
  const route = m.attributes["jobrelay-route"], acks = m.acks;
  if (!eval(process.argv[2])) { console.error(`FAIL: dead letter ${m.id} (${route}) acked ${acks} times, expected ${process.argv[2]}`); process.exit(1); }
}
console.log(msgs.length);
' "$PS_REPLY" "$1" || fail "acks of the dead letters"
}

echo "== jobrelay dead-letters 100 events of three classes to the topic"
events e 100 >"$WORK/events.ndjson"
set +e
"$JOBRELAY" --log-format json --config "$WORK/topic.yaml" replay "$WORK/events.ndjson" >"$WORK/replay.out" 2>"$WORK/replay.err"
rc=$?
set -e
assert_eq "$rc" 1 "replay exit code"
assert_eq "$(grep -c '"msgid":"DEADLETTER-OK"' "$WORK/replay.err")" 100 "events dead-lettered"
for c in permission invalid_request invalid_event; do
	grep '"msgid":"DEADLETTER-OK"' "$WORK/replay.err" | contains "\"class\":\"$c\"" || fail "no dead letter of class $c"
done
assert_eq "$(dl_acks 'acks === 0')" 100 "dead letters on the topic"
RUNJOBS0=$(count_records RunJob)

echo "== --dry-run: 100 requests, the lines of replay --dry-run, nothing acked"
redrive "$WORK/dry1.out" --subscription "$DLS" --dry-run --wait 2s
assert_eq "$RC" 0 "dry-run exit code"
assert_eq "$(lines "$WORK/dry1.out")" 100 "dry-run lines"
"$JOBRELAY" --config "$WORK/topic.yaml" replay --dry-run "$WORK/events.ndjson" >"$WORK/replay-dry.out" 2>/dev/null
diff <(sort "$WORK/dry1.out") <(sort "$WORK/replay-dry.out") >&2 || fail "redrive --dry-run differs from replay --dry-run"
assert_eq "$(count_records RunJob)" "$RUNJOBS0" "RunJob calls in a dry run"
assert_eq "$(dl_acks 'acks === 0')" 100 "dead letters unacked after the dry run"
grep '"msgid":"REDRIVE-RELEASED"' "$WORK/dry1.out.err" | contains '"released":"100"' || fail "no REDRIVE-RELEASED of 100"
# the leases were given back at once: a second run gets them all (a lease lasts 60 s)
redrive "$WORK/dry2.out" --subscription "$DLS" --dry-run --wait 2s
assert_eq "$(lines "$WORK/dry2.out")" 100 "second dry-run lines"

echo "== filters"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --class permission
assert_eq "$(lines "$WORK/f.out")" 34 "--class permission"
assert_eq "$(grep -c '"route":"denied"' "$WORK/f.out")" 34 "--class permission: route denied"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --class invalid_request,invalid_event
assert_eq "$(lines "$WORK/f.out")" 66 "--class a comma list"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --class invalid_request --class invalid_event
assert_eq "$(lines "$WORK/f.out")" 66 "--class repeated"
! grep -q '"route":"denied"' "$WORK/f.out" || fail "--class invalid_*: a permission record"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --route missing
assert_eq "$(lines "$WORK/f.out")" 33 "--route missing"
assert_eq "$(grep -c '"route":"missing"' "$WORK/f.out")" 33 "--route missing: its lines"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --since 1h
assert_eq "$(lines "$WORK/f.out")" 100 "--since 1h"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --since 2099-01-01T00:00:00Z
assert_eq "$(lines "$WORK/f.out")" 0 "--since in the future"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --until 1h
assert_eq "$(lines "$WORK/f.out")" 0 "--until 1h (before an hour ago)"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --limit 10
assert_eq "$(lines "$WORK/f.out")" 10 "--limit 10"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --class nope
assert_eq "$RC" 2 "an unknown class: exit code"
grep -q "unknown --class 'nope'" "$WORK/f.out.err" || fail "the unknown class is not named"
redrive "$WORK/f.out" --subscription projects/test-project/subscriptions/none --wait 2s
assert_eq "$RC" 3 "a subscription that does not exist: exit code"
assert_eq "$(dl_acks 'acks === 0')" 100 "dead letters unacked after the filtered dry runs"
assert_eq "$(count_records RunJob)" "$RUNJOBS0" "RunJob calls in the dry runs"

echo "== a real run: two jobs fixed, one still denied"
fake_rules denied-job
redrive "$WORK/run1.out" --subscription "$DLS" --wait 2s
assert_eq "$RC" 1 "exit code with records that failed again"
grep -q 'redrive: 100 read, 100 selected, 66 re-dispatched, 34 failed again' "$WORK/run1.out.err" ||
	fail "summary: $(grep '^redrive' "$WORK/run1.out.err")"
grep -q 'acks: 66 sent, 66 confirmed' "$WORK/run1.out.err" || fail "acks: $(grep '^acks' "$WORK/run1.out.err")"
assert_eq "$(grep -c '"msgid":"REDRIVE-FAILED-AGAIN"' "$WORK/run1.out.err")" 34 "REDRIVE-FAILED-AGAIN lines"
check_started e 100 'i % 3 === 0 ? c === 0 : c === 1'
assert_eq "$(dl_acks '(route === "denied") === (acks === 0) && acks <= 1')" 100 "acked: the re-dispatched ones, once each"
# nothing was dead-lettered again: the topic holds the same 100 messages
ps_cmd calls /google.pubsub.v1.Publisher/Publish || fail "calls: $PS_REPLY"
assert_eq "$(ps_field calls)" 100 "Publish calls (replay's 100 only)"
redrive "$WORK/left.out" --subscription "$DLS" --dry-run --wait 2s
assert_eq "$(lines "$WORK/left.out")" 34 "records left in the subscription"
assert_eq "$(grep -c '"route":"denied"' "$WORK/left.out")" 34 "the records left are the denied ones"

echo "== a second run starts nothing twice"
redrive "$WORK/run2.out" --subscription "$DLS" --wait 2s
assert_eq "$RC" 1 "second run exit code"
grep -q 'redrive: 34 read, 34 selected, 0 re-dispatched, 34 failed again' "$WORK/run2.out.err" ||
	fail "second summary: $(grep '^redrive' "$WORK/run2.out.err")"
check_started e 100 'i % 3 === 0 ? c === 0 : c === 1'

echo "== SIGTERM mid-run: the dead letters in flight finish and are acked, the rest stay"
# the denied job answers OK now, after 1.5 s; 4 calls at a time, so most wait when the signal comes
printf '{"rules": [{"job":"denied-job","delay_ms":1500}]}\n' >"$WORK/fake.json.new"
mv "$WORK/fake.json.new" "$WORK/fake.json"
sed 's/^call_timeout: 5s$/call_timeout: 5s\nconcurrency: 4/' "$WORK/topic.yaml" >"$WORK/slow.yaml"
"$JOBRELAY" --log-format json --config "$WORK/slow.yaml" redrive --subscription "$DLS" --wait 2s \
	>"$WORK/sig.out" 2>"$WORK/sig.out.err" &
RD_PID=$!
first_ok() { grep -q '"msgid":"DISPATCH-OK"' "$WORK/sig.out.err"; }
wait_until 60 first_ok || fail "redrive dispatched nothing: $(tail -5 "$WORK/sig.out.err")"
kill -TERM "$RD_PID"
set +e
wait "$RD_PID"
RC=$?
set -e
assert_eq "$RC" 1 "exit code after SIGTERM"
grep -q '"msgid":"REDRIVE-STOPPING"' "$WORK/sig.out.err" || fail "no REDRIVE-STOPPING line"
done_n=$(sed -n 's/^redrive: [0-9]* read, [0-9]* selected, \([0-9]*\) re-dispatched.*/\1/p' "$WORK/sig.out.err")
[ -n "$done_n" ] && [ "$done_n" -ge 1 ] && [ "$done_n" -lt 34 ] ||
	fail "after SIGTERM: $(grep '^redrive' "$WORK/sig.out.err") (expected some, not all 34)"
grep -q "acks: $done_n sent, $done_n confirmed" "$WORK/sig.out.err" || fail "acks after SIGTERM: $(grep '^acks' "$WORK/sig.out.err")"
check_started e 100 'i % 3 === 0 ? c <= 1 : c === 1'
assert_eq "$(dl_acks '(route !== "denied" || acks <= 1) && (route === "denied" || acks === 1)')" 100 "acks after SIGTERM"
redrive "$WORK/left2.out" --subscription "$DLS" --dry-run --wait 2s
assert_eq "$(lines "$WORK/left2.out")" $((34 - done_n)) "records left after SIGTERM"
# the output the records that fail again go to must not be the file being read
: >"$WORK/same.ndjson"
redrive "$WORK/same.out" --file "$WORK/same.ndjson" --out "$WORK/same.ndjson"
assert_eq "$RC" 2 "--out the file being read: exit code"
grep -q "the file being read" "$WORK/same.out.err" || fail "--out the file being read: $(cat "$WORK/same.out.err")"
redrive "$WORK/f.out" --subscription "$DLS" --dry-run --wait 2s --class ''
assert_eq "$RC" 2 "an empty --class: exit code"

echo "== the last job fixed: the rest go, the subscription is empty"
fake_rules
redrive "$WORK/run3.out" --subscription "$DLS" --wait 2s
assert_eq "$RC" 0 "exit code when every record was re-dispatched"
check_started e 100 'c === 1'
assert_eq "$(dl_acks 'acks === 1')" 100 "every dead letter acked once"
redrive "$WORK/empty.out" --subscription "$DLS" --dry-run --wait 1s
assert_eq "$RC" 0 "dry run of an empty subscription"
assert_eq "$(lines "$WORK/empty.out")" 0 "records left"

echo "== the file source"
fake_rules denied-job missing-job bad-job
events f 9 >"$WORK/events2.ndjson"
set +e
"$JOBRELAY" --log-format json --config "$WORK/file.yaml" replay "$WORK/events2.ndjson" >/dev/null 2>"$WORK/replay2.err"
set -e
assert_eq "$(lines "$WORK/dead2.ndjson")" 9 "records in the dead-letter file"
CFG=$WORK/file.yaml redrive "$WORK/fd.out" --file "$WORK/dead2.ndjson" --dry-run
assert_eq "$RC" 0 "file dry-run exit code"
"$JOBRELAY" --config "$WORK/file.yaml" replay --dry-run "$WORK/dead2.ndjson" >"$WORK/replay-dry2.out" 2>/dev/null
diff <(sort "$WORK/fd.out") <(sort "$WORK/replay-dry2.out") >&2 || fail "file: redrive --dry-run differs from replay --dry-run"
assert_eq "$(lines "$WORK/fd.out")" 9 "file dry-run lines"
CFG=$WORK/file.yaml redrive "$WORK/fd.out" --file "$WORK/dead2.ndjson" --dry-run --class invalid_request
assert_eq "$(lines "$WORK/fd.out")" 3 "file --class invalid_request"
# a record of a job that started (EXECUTION_UNCONFIRMED) is left alone unless asked for
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[1]);
r.error.code = "EXECUTION_UNCONFIRMED"; r.event.id = "f-unconfirmed";
console.log(JSON.stringify(r));
' "$WORK/dead2.ndjson" | cat "$WORK/dead2.ndjson" - >"$WORK/dead3.ndjson"
CFG=$WORK/file.yaml redrive "$WORK/fd.out" --file "$WORK/dead3.ndjson" --dry-run
assert_eq "$(lines "$WORK/fd.out")" 9 "EXECUTION_UNCONFIRMED left alone"
! grep -q f-unconfirmed "$WORK/fd.out" || fail "an EXECUTION_UNCONFIRMED record was selected"
CFG=$WORK/file.yaml redrive "$WORK/fd.out" --file "$WORK/dead3.ndjson" --dry-run --include-unconfirmed
assert_eq "$(lines "$WORK/fd.out")" 10 "--include-unconfirmed"
fake_rules denied-job
CFG=$WORK/file.yaml redrive "$WORK/fr.out" --file "$WORK/dead2.ndjson" --out "$WORK/again.ndjson"
assert_eq "$RC" 1 "file run exit code"
assert_eq "$(lines "$WORK/fr.out")" 0 "stdout with --out"
assert_eq "$(lines "$WORK/again.ndjson")" 3 "records that failed again in --out"
node -e '
const recs = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
for (const r of recs)
  if (r.route !== "denied" || r.error.class !== "permission" || r.attempts !== 2 || !/^f-[036]$/.test(r.event.id)) {
    console.error("FAIL: record " + JSON.stringify(r)); process.exit(1);
  }
' "$WORK/again.ndjson" || fail "the records in --out"
assert_eq "$(lines "$WORK/dead2.ndjson")" 9 "the dead-letter file is not rewritten"
check_started f 9 'i % 3 === 0 ? c === 0 : c === 1'
fake_rules
CFG=$WORK/file.yaml redrive "$WORK/fr2.out" --file "$WORK/again.ndjson"
assert_eq "$RC" 0 "the records of --out redriven"
assert_eq "$(lines "$WORK/fr2.out")" 0 "nothing failed again"
check_started f 9 'c === 1'
echo "PASS"
