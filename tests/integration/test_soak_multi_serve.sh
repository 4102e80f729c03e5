#!/usr/bin/env bash
# test_soak_multi_serve.sh — the fault soak with 3 `jobrelay serve` processes behind
# push_redeliver.js (soak_multi_lib.sh, soak_lib.sh): the client delivers SOAK_EVENTS
# events (2,000 here; bench/soak.sh runs 10,000) as Pub/Sub push does (wrapped bodies with
# deliveryAttempt, 32 outstanding), each attempt to one of the processes at random, and
# delivers again every non-2xx answer or broken connection (so a request to a killed
# process is redelivered, most likely to another one). The fake's faults and 300-600 ms
# RunJob answers are those of test_soak_serve.sh. At each of SOAK_KILLS progress points (at
# least 3) one process is SIGKILLed and restarted on its port, in turn, so each is killed
# at least once. The test waits (bounded poll of the client's progress file) until every
# event got a 2xx; then soak_check.js counts lost events and events started twice over all
# processes' logs, the client's log, the fake's records and the dead-letter topic and files.
SOAK_INSTANCES=${SOAK_INSTANCES:-3}
# shellcheck source=tests/integration/soak_multi_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/soak_multi_lib.sh"

# acked: events the client has had a 2xx for
acked() { sed -n 's/.*"acked":\([0-9]*\).*/\1/p' "$WORK/progress.json" 2>/dev/null || echo 0; }

soak_start_peers
urls=''
for ((slot = 1; slot <= SOAK_INSTANCES; slot++)); do
	multi_start "$slot" serve
	urls="$urls${urls:+,}http://127.0.0.1:${M_PORT[slot]}/"
done
echo '{"acked":0}' >"$WORK/progress.json"
start_t=$(now_ms)
node "$JR_SOURCE_DIR/tests/integration/push_redeliver.js" --url "$urls" --seed "$SOAK_SEED" \
	--messages "$WORK/msgs.jsonl" --count "$SOAK_EVENTS" --concurrency 32 \
	--log "$WORK/client.jsonl" --progress "$WORK/progress.json" --min-backoff-ms 100 --max-backoff-ms 2000 \
	2>"$WORK/client.err" &
CLIENT_PID=$!

end=$((SECONDS + SOAK_WAIT))
while kill -0 "$CLIENT_PID" 2>/dev/null; do
	done_n=$(acked)
	[ "$SECONDS" -lt "$end" ] || fail "after ${SOAK_WAIT}s only $done_n of $SOAK_EVENTS events acknowledged; work dir $WORK"
	multi_conns
	v=$(multi_victim)
	if soak_kill_due "$done_n" "${M_LOG[v]}" "${M_PID[v]}"; then
		multi_kill "$v"
		multi_start "$v" serve
	fi
	sleep 0.2 # poll interval of a bounded wait on the client's progress
done
wait "$CLIENT_PID" || fail "the push client failed: $(cat "$WORK/client.err")"
CLIENT_PID=
wall=$(($(now_ms) - start_t))
assert_eq "$SOAK_KILLS_DONE" "$SOAK_KILLS" "kills made"
assert_eq "$(acked)" "$SOAK_EVENTS" "events acknowledged"
multi_stop_all
soak_pull_dead
soak_stop_fake
note "\"ev\":\"end\",\"mode\":\"serve\",\"wall_ms\":$wall,\"cpu_s\":$SOAK_CPU,\"client_log\":\"$WORK/client.jsonl\",\"fake_stats\":\"$WORK/fake.stats.json\""
soak_check
echo "test_soak_multi_serve: ok"
