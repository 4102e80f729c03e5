#!/usr/bin/env bash
# test_soak_pull.sh — the fault soak for `jobrelay pull` (issue 5; soak_lib.sh has
# the faults and the config). SOAK_EVENTS events (2,000 here to stay within a few
# minutes; bench/soak.sh runs 10,000) are published to pstest, which cuts the
# stream every 3 s; jobrelay pull is SIGKILLed and restarted SOAK_KILLS times, when
# 1/3 and 2/3 of the events are done; PERMISSION_DENIED stops once half are done
# and the denied job's breaker has opened twice. The test waits (bounded poll of
# pstest's counters) until every event is acked, then soak_check.js counts at the
# fake, in the dead-letter topic and file, and in jobrelay's logs.
# shellcheck source=tests/integration/soak_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/soak_lib.sh"

soak_start_peers
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" "$SOAK_EVENTS" || fail "publish: $PS_REPLY"
first=$(ps_field first)
note "\"ev\":\"published\",\"first\":\"$first\",\"last\":\"$(ps_field last)\""

start_t=$(now_ms)
soak_start_pull() {
	local t
	t=$(now_ms)
	start_pull
	[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
	note "\"ev\":\"start\",\"run\":$PULL_N,\"start\":$t,\"log\":\"$PULL_LOG\",\"pid\":$PULL_PID"
}
soak_start_pull

done_n=0
end=$((SECONDS + SOAK_WAIT))
while :; do
	soak_pull_dead
	ps_cmd stats || fail "stats: $PS_REPLY"
	# pstest counts the dead-letter messages this test pulled (and acked) too
	done_n=$(($(ps_field acked) - DL_PULLED))
	[ "$done_n" -lt "$SOAK_EVENTS" ] || break
	[ "$SECONDS" -lt "$end" ] || fail "after ${SOAK_WAIT}s only $done_n of $SOAK_EVENTS events acked ($PS_REPLY); work dir $WORK"
	if soak_kill_due "$done_n" "$PULL_LOG" "$PULL_PID"; then
		at=$(now_ms)
		stop_pull KILL
		ps_cmd messages "$WORK/kill-$SOAK_KILLS_DONE.json" || fail "messages: $PS_REPLY"
		note "\"ev\":\"kill\",\"run\":$PULL_N,\"at\":$at,\"snapshot\":\"$WORK/kill-$SOAK_KILLS_DONE.json\""
		soak_start_pull
	fi
	sleep 0.2 # poll interval of a bounded wait on pstest's counters
done
wall=$(($(now_ms) - start_t))
assert_eq "$SOAK_KILLS_DONE" "$SOAK_KILLS" "kills made"
soak_add_cpu "$PULL_PID"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"
soak_pull_dead
ps_cmd messages "$WORK/final.json" || fail "messages: $PS_REPLY"
ps_cmd counters || fail "counters: $PS_REPLY"
printf '%s\n' "$PS_REPLY" >"$WORK/counters.json"
soak_stop_fake
note "\"ev\":\"end\",\"mode\":\"pull\",\"wall_ms\":$wall,\"cpu_s\":$SOAK_CPU,\"snapshot\":\"$WORK/final.json\",\"counters\":\"$WORK/counters.json\",\"fake_stats\":\"$WORK/fake.stats.json\""
soak_check
echo "test_soak_pull: ok"
