#!/usr/bin/env bash
# test_soak_multi_pull.sh — the fault soak with 3 `jobrelay pull` processes on one
# subscription (soak_multi_lib.sh, soak_lib.sh): SOAK_EVENTS events (2,000 here;
# bench/soak.sh runs 10,000) published to pstest, which cuts every stream every 3 s;
# the Run API fake's faults and 300-600 ms RunJob answers as in test_soak_pull.sh. At
# each of SOAK_KILLS progress points (at least 3: 1/4, 2/4, 3/4 of the events done) one
# process is SIGKILLed and restarted, in turn, so each is killed at least once. The test
# waits (bounded poll of pstest's counters) until every event is acked, then
# soak_check.js counts lost events and events started twice over all processes' logs,
# the fake's records and the dead-letter topics and files.
SOAK_INSTANCES=${SOAK_INSTANCES:-3}
# shellcheck source=tests/integration/soak_multi_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/soak_multi_lib.sh"

soak_start_peers
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" "$SOAK_EVENTS" || fail "publish: $PS_REPLY"
note "\"ev\":\"published\",\"first\":\"$(ps_field first)\",\"last\":\"$(ps_field last)\""

start_t=$(now_ms)
for ((slot = 1; slot <= SOAK_INSTANCES; slot++)); do
	multi_start "$slot" pull
done

done_n=0
end=$((SECONDS + SOAK_WAIT))
while :; do
	soak_pull_dead
	ps_cmd stats || fail "stats: $PS_REPLY"
	# pstest counts the dead-letter messages this test pulled (and acked) too
	done_n=$(($(ps_field acked) - DL_PULLED))
	[ "$done_n" -lt "$SOAK_EVENTS" ] || break
	[ "$SECONDS" -lt "$end" ] || fail "after ${SOAK_WAIT}s only $done_n of $SOAK_EVENTS events acked ($PS_REPLY); work dir $WORK"
	multi_conns
	v=$(multi_victim)
	if soak_kill_due "$done_n" "${M_LOG[v]}" "${M_PID[v]}"; then
		multi_kill "$v" "$WORK/kill-$SOAK_KILLS_DONE.json"
		multi_start "$v" pull
	fi
	sleep 0.2 # poll interval of a bounded wait on pstest's counters
done
wall=$(($(now_ms) - start_t))
assert_eq "$SOAK_KILLS_DONE" "$SOAK_KILLS" "kills made"
multi_stop_all
soak_pull_dead
ps_cmd messages "$WORK/final.json" || fail "messages: $PS_REPLY"
ps_cmd counters || fail "counters: $PS_REPLY"
printf '%s\n' "$PS_REPLY" >"$WORK/counters.json"
soak_stop_fake
note "\"ev\":\"end\",\"mode\":\"pull\",\"wall_ms\":$wall,\"cpu_s\":$SOAK_CPU,\"snapshot\":\"$WORK/final.json\",\"counters\":\"$WORK/counters.json\",\"fake_stats\":\"$WORK/fake.stats.json\""
soak_check
echo "test_soak_multi_pull: ok"
