#!/usr/bin/env bash
# test_soak_serve.sh — the fault soak for `jobrelay serve` (issue 5; soak_lib.sh has the
# faults and the config). push_redeliver.js delivers SOAK_EVENTS events (2,000 here;
# bench/soak.sh runs 10,000) as Pub/Sub push does: wrapped push bodies, 32 outstanding,
# every non-2xx answer or broken connection delivered again after an exponential
# backoff. jobrelay serve is SIGKILLed and restarted on the same port SOAK_KILLS times,
# when 1/3 and 2/3 of the events are acknowledged (the client keeps redelivering);
# PERMISSION_DENIED stops once half are done and the denied job's breaker has opened
# twice. The test waits (bounded poll of the client's progress file) until every event
# got a 2xx; then soak_check.js counts at the fake, in the dead-letter topic and file,
# in the client's log and in jobrelay's logs.
# shellcheck source=tests/integration/soak_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/soak_lib.sh"

SERVE_N=0
SERVE_PORT=0
# soak_start_serve: jobrelay serve on $SERVE_PORT (0 the first time: any free port, kept
# for the restarts); waits for its SERVE-LISTENING line through a FIFO.
soak_start_serve() {
	SERVE_N=$((SERVE_N + 1))
	local fifo="$WORK/serve-$SERVE_N.fifo" line='' t='' port=''
	SERVE_LOG="$WORK/serve-$SERVE_N.log"
	mkfifo "$fifo"
	: >"$SERVE_LOG"
	t=$(now_ms)
	"$JOBRELAY" --log-format json --config "$WORK/jobrelay.yaml" serve --port "$SERVE_PORT" --bind 127.0.0.1 \
		>"$fifo" 2>>"$SERVE_LOG" &
	SERVE_PID=$!
	SERVE_PIDS+=("$SERVE_PID")
	exec 8<"$fifo"
	while read -r -u 8 line; do
		printf '%s\n' "$line" >>"$SERVE_LOG"
		case "$line" in *'"msgid":"SERVE-LISTENING"'*)
			port=$(printf '%s' "$line" | sed -n 's/.*"port":"\([0-9]*\)".*/\1/p')
			break
			;;
		esac
	done
	[ -n "$port" ] || { cat "$SERVE_LOG" >&2; fail "jobrelay serve did not start"; }
	SERVE_PORT=$port
	cat <&8 >>"$SERVE_LOG" &
	SERVE_CAT=$!
	exec 8<&-
	note "\"ev\":\"start\",\"run\":$SERVE_N,\"start\":$t,\"log\":\"$SERVE_LOG\",\"pid\":$SERVE_PID"
}

# acked: events the client has had a 2xx for
acked() { sed -n 's/.*"acked":\([0-9]*\).*/\1/p' "$WORK/progress.json" 2>/dev/null || echo 0; }

soak_start_peers
soak_start_serve
echo '{"acked":0}' >"$WORK/progress.json"
start_t=$(now_ms)
node "$JR_SOURCE_DIR/tests/integration/push_redeliver.js" --url "http://127.0.0.1:$SERVE_PORT/" \
	--messages "$WORK/msgs.jsonl" --count "$SOAK_EVENTS" --concurrency 32 \
	--log "$WORK/client.jsonl" --progress "$WORK/progress.json" --min-backoff-ms 100 --max-backoff-ms 2000 \
	2>"$WORK/client.err" &
CLIENT_PID=$!

end=$((SECONDS + SOAK_WAIT))
while kill -0 "$CLIENT_PID" 2>/dev/null; do
	done_n=$(acked)
	[ "$SECONDS" -lt "$end" ] || fail "after ${SOAK_WAIT}s only $done_n of $SOAK_EVENTS events acknowledged; work dir $WORK"
	if soak_kill_due "$done_n" "$SERVE_LOG" "$SERVE_PID"; then
		at=$(now_ms)
		kill -KILL "$SERVE_PID"
		wait "$SERVE_PID" 2>/dev/null || true
		wait "$SERVE_CAT" || true
		note "\"ev\":\"kill\",\"run\":$SERVE_N,\"at\":$at"
		soak_start_serve
	fi
	sleep 0.2 # poll interval of a bounded wait on the client's progress
done
wait "$CLIENT_PID" || fail "the push client failed: $(cat "$WORK/client.err")"
CLIENT_PID=
wall=$(($(now_ms) - start_t))
assert_eq "$SOAK_KILLS_DONE" "$SOAK_KILLS" "kills made"
assert_eq "$(acked)" "$SOAK_EVENTS" "events acknowledged"
soak_add_cpu "$SERVE_PID"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || fail "jobrelay serve exited $? after SIGTERM"
wait "$SERVE_CAT" || true
soak_pull_dead
soak_stop_fake
note "\"ev\":\"end\",\"mode\":\"serve\",\"wall_ms\":$wall,\"cpu_s\":$SOAK_CPU,\"client_log\":\"$WORK/client.jsonl\",\"fake_stats\":\"$WORK/fake.stats.json\""
soak_check
echo "test_soak_serve: ok"
