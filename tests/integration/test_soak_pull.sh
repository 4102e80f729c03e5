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
denied=$(soak_denied_events)

start_t=$(now_ms)
soak_start_pull() {
	local t
	t=$(now_ms)
	start_pull
	[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
	note "\"ev\":\"start\",\"run\":$PULL_N,\"start\":$t,\"log\":\"$PULL_LOG\",\"pid\":$PULL_PID"
}
soak_start_pull

kills=0 cpu=0 done_n=0
end=$((SECONDS + SOAK_WAIT))
while :; do
	soak_pull_dead
	ps_cmd stats || fail "stats: $PS_REPLY"
	# pstest counts the dead-letter messages this test pulled (and acked) too
	done_n=$(($(ps_field acked) - DL_PULLED))
	[ "$done_n" -lt "$SOAK_EVENTS" ] || break
	[ "$SECONDS" -lt "$end" ] || fail "after ${SOAK_WAIT}s only $done_n of $SOAK_EVENTS events acked ($PS_REPLY); work dir $WORK"
	others=0
	[ "$done_n" -lt $((SOAK_EVENTS - denied)) ] || others=1
	soak_deny_off_when "$done_n" "$others" "$PULL_LOG"
	if [ "$kills" -lt "$SOAK_KILLS" ] && [ "$done_n" -ge $(((kills + 1) * SOAK_EVENTS / (SOAK_KILLS + 1))) ] &&
		soak_may_kill "$PULL_LOG"; then
		cpu=$(awk -v a="$cpu" -v b="$(soak_cpu "$PULL_PID")" 'BEGIN { print a + b }')
		stop_pull KILL
		kills=$((kills + 1))
		ps_cmd messages "$WORK/kill-$kills.json" || fail "messages: $PS_REPLY"
		note "\"ev\":\"kill\",\"run\":$PULL_N,\"snapshot\":\"$WORK/kill-$kills.json\""
		soak_start_pull
	fi
	sleep 0.2 # poll interval of a bounded wait on pstest's counters
done
wall=$(($(now_ms) - start_t))
cpu=$(awk -v a="$cpu" -v b="$(soak_cpu "$PULL_PID")" 'BEGIN { print a + b }')
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"
soak_pull_dead
ps_cmd messages "$WORK/final.json" || fail "messages: $PS_REPLY"
soak_stop_fake
note "\"ev\":\"end\",\"mode\":\"pull\",\"wall_ms\":$wall,\"cpu_s\":$cpu,\"snapshot\":\"$WORK/final.json\",\"fake_stats\":\"$WORK/fake.stats.json\""
soak_check
echo "test_soak_pull: ok"
