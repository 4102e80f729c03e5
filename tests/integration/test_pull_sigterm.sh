#!/usr/bin/env bash
# test_pull_sigterm.sh — SIGTERM with messages in flight (docs/pull.md):
# the deliveries in flight finish within shutdown_grace and are acked, the
# messages not yet dispatched are nacked, jobrelay exits 0, and a second
# jobrelay dispatches the rest: nothing is lost. With a grace shorter than
# the RunJob calls, the calls in flight are nacked too and come back. A
# second signal exits at once.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

# fake_delay MS: every RunJob is answered after MS (0: at once); the fake re-reads its config per call
fake_delay() {
	if [ "$1" = 0 ]; then echo '{}' >"$WORK/fake.tmp"; else
		printf '{"rules":[{"job":"*","delay_ms":%d}]}\n' "$1" >"$WORK/fake.tmp"; fi
	mv "$WORK/fake.tmp" "$WORK/fake.json"
}
# ok_messages [any]: messages with at least one RunJob answered (or to be answered) OK; with
# "any", with at least one RunJob whatever its answer (the fake creates the execution when the
# request arrives, so a call cancelled by a process that exits still started the job, and a
# later delivery may find that execution instead of calling RunJob again)
ok_messages() {
	node -e '
const recs = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
const ids = new Set();
for (const r of recs.filter((x) => x.method === "RunJob" && (process.argv[2] === "any" || x.status === 0)))
  for (const e of (r.request.overrides.containerOverrides || [{}])[0].env || []) if (e.name === "MSG") ids.add(e.value);
console.log(ids.size);' "$WORK/record.jsonl" "${1:-}"
}

fake_delay 2000
start_fake --config "$WORK/fake.json"
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB"
GRACE=6s write_config "flow_control: { max_messages: 2 }"
write_messages "$WORK/msgs.jsonl"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 6 || fail "publish: $PS_REPLY"

# --- A: the two calls in flight finish within the grace; the four others go back
start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
wait_until 30 runjob_count_at_least 2 || fail "no RunJob in flight"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"
assert_eq "$(count_records RunJob)" 2 "RunJob calls (max_messages 2)"
log_has PULL-STATE '"state":"draining"' || fail "no draining state"
! log_has PULL-GRACE-OVER || fail "the grace ran out although the calls take 2 s of 6 s"
ps_cmd stats
assert_eq "$(ps_field acked)" 2 "acked by the first jobrelay"

fake_delay 0
start_pull
ps_cmd wait-acked 6 60s || fail "the rest was not dispatched by the second jobrelay: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code of the second jobrelay"
assert_eq "$(ok_messages)" 6 "messages dispatched"
assert_eq "$(count_records RunJob)" 6 "RunJob calls in all (no message twice)"

# --- B: the grace (500 ms) is shorter than the calls (3 s): the calls in flight are nacked
fake_delay 3000
GRACE=500ms write_config "flow_control: { max_messages: 2 }"
# new events (the ids of A's would be repeats, rightly found by a lookup instead of started)
sed 's/"st-{{n}}/"b-st-{{n}}/; s/"bin-{{n}}/"b-bin-{{n}}/' "$WORK/msgs.jsonl" >"$WORK/msgs-b.jsonl"
ps_cmd publish "$TOPIC" "$WORK/msgs-b.jsonl" 4 || fail "publish: $PS_REPLY"
start_pull
wait_until 30 runjob_count_at_least 8 || fail "no RunJob in flight"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM with the grace over"
log_has PULL-GRACE-OVER '"messages":"2"' || fail "PULL-GRACE-OVER with 2 messages"
ps_cmd stats
assert_eq "$(ps_field acked)" 6 "nothing new acked"

fake_delay 0
start_pull
ps_cmd wait-acked 10 60s || fail "the nacked messages did not come back: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code"
assert_eq "$(ok_messages any)" 10 "messages dispatched (a RunJob, or an execution found)"

# --- C: a second signal exits at once
fake_delay 30000
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 3 || fail "publish: $PS_REPLY"
GRACE=60s write_config
start_pull
n=$(count_records RunJob)
wait_until 30 runjob_count_at_least $((n + 1)) || fail "no RunJob in flight"
kill -TERM "$PULL_PID"
wait_until 10 log_has PULL-STATE '"state":"draining"' || fail "no draining state"
stop_pull TERM
assert_eq "$PULL_RC" 1 "exit code of a second signal with calls in flight"
log_has PULL-EXIT-NOW 'second signal' || fail "PULL-EXIT-NOW line"

echo "test_pull_sigterm: ok"
