#!/usr/bin/env bash
# test_lab_token_outage.sh — the production lab (tests/lab/README.md) with credentials from
# the metadata server, and the metadata server failing to give tokens:
#  1. at start-up: replay, serve and pull exit 3, naming the source and its error, and
#     nothing reaches the Run API;
#  2. for 20 s in the middle of a pull of 200 events, with tokens that live 3 s: /readyz
#     turns 503 and back to 200, the events are held (class credentials), none is
#     dead-lettered, and each is dispatched exactly once and acked after the outage.
# shellcheck source=tests/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=tests/lab/paths.sh
. "$LAB_SRC/paths.sh"
lab_start
lab_creds metadata
lab_config
N=200

echo "== start-up with no token: exit 3, the source named"
lab_gauth_control '{"fail":{"metadata":500}}'
ce startup-1 lab.ok >"$LAB/one.ndjson"
for cmd in replay serve pull; do
	args=("$cmd")
	case $cmd in
	replay) args+=("$LAB/one.ndjson") ;;
	serve) args+=(--port 0 --bind 127.0.0.1) ;;
	esac
	set +e
	timeout 60 "${LAB_ENV[@]}" "$JOBRELAY" --log-format json --config "$LAB/jobrelay.yaml" "${args[@]}" \
		>"$LAB/$cmd-nostart.log" 2>&1 {PSTEST_IN}>&- {PSTEST_OUT}<&-
	rc=$?
	set -e
	assert_eq "$rc" 3 "$cmd without a token: exit code"
	grep '"msgid":"CREDENTIALS-UNAVAILABLE"' "$LAB/$cmd-nostart.log" |
		grep -F '"source":"metadata server metadata.google.internal"' | contains -F 'HTTP 500' ||
		{ cat "$LAB/$cmd-nostart.log" >&2; fail "$cmd: CREDENTIALS-UNAVAILABLE naming the source and its error"; }
done
! grep -q '"method":"RunJob"' "$LAB/run.jsonl" 2>/dev/null || fail "a RunJob reached the Run API without a token"

echo "== a pull of $N events with a 20 s token outage"
lab_gauth_control '{"expires_in":3}'
start_bg pull '"msgid":"PULL-STATE".*"state":"running"' pull --port 0 --bind 127.0.0.1
port=$(sed -n 's/.*"msgid":"PULL-HTTP".*"port":"\([0-9]*\)".*/\1/p' "$LAB/pull.log")
[ -n "$port" ] || fail "pull: no health port"
readyz() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://127.0.0.1:$port/readyz"; }
is_ready() { [ "$(readyz)" = 200 ]; }
not_ready() { [ "$(readyz)" = 503 ]; }
wait_until 10 is_ready || fail "pull not ready before the outage"
ps_cmd stats || fail "stats: $PS_REPLY"
acked0=$(ps_field acked)
# messages: the structured event as the data, its content type as an attribute
messages() {
	for i in $(seq "$1" "$2"); do ce "out-$i" lab.ok; done |
		node -e 'for (const l of require("fs").readFileSync(0, "utf8").trim().split("\n"))
  console.log(JSON.stringify({ data: l, attributes: { "content-type": "application/cloudevents+json" } }));'
}
messages 1 20 >"$LAB/before.jsonl"
messages 21 "$N" >"$LAB/during.jsonl"
ps_cmd publish "$TOPIC" "$LAB/before.jsonl" || fail "publish: $PS_REPLY"
ps_cmd wait-acked $((acked0 + 20)) 30s || fail "the first 20 events: $PS_REPLY"

lab_gauth_control '{"fail":{"metadata":500},"expires_in":3}'
outage_end=$((SECONDS + 20))
wait_until 15 not_ready || fail "/readyz did not turn 503 while no token could be had"
# the rest is published while no token can be had: every one of them must wait
ps_cmd publish "$TOPIC" "$LAB/during.jsonl" || fail "publish: $PS_REPLY"
# the outage lasts 20 s: meanwhile pull keeps running and nothing may be dead-lettered
while [ "$SECONDS" -lt "$outage_end" ]; do
	kill -0 "$BG_PID" 2>/dev/null || fail "pull exited during the outage"
	! grep -q '"msgid":"DEADLETTER-' "$LAB/pull.log" || fail "dead-lettered during the outage"
	sleep 0.5
done
ps_cmd stats || fail "stats: $PS_REPLY"
acked_in_outage=$(ps_field acked)
lab_gauth_control '{"expires_in":3}'
wait_until 20 is_ready || fail "/readyz did not turn 200 after the outage"
ps_cmd wait-acked $((acked0 + N)) 120s || { tail -n 20 "$LAB/pull.log" >&2; fail "not every event acked: $PS_REPLY"; }
stop_bg
assert_eq "$BG_RC" 0 "pull exit code"

[ "$acked_in_outage" -lt $((acked0 + N)) ] || fail "every event was acked before the outage ended: nothing was held"
grep -q '"msgid":"DISPATCH-HELD".*"class":"credentials"' "$LAB/pull.log" || fail "no event held for want of a token"
grep -q '"msgid":"CREDENTIALS-FAILED"' "$LAB/pull.log" || fail "no CREDENTIALS-FAILED"
grep -q '"msgid":"CREDENTIALS-OK"' "$LAB/pull.log" || fail "no CREDENTIALS-OK"
! grep -q '"msgid":"DEADLETTER-' "$LAB/pull.log" || fail "an event was dead-lettered"
ps_cmd drain "$DLS" "$LAB/dead.jsonl" || fail "drain: $PS_REPLY"
assert_eq "$(ps_field pulled)" 0 "dead letters on the topic"
# each event started exactly one execution
dups=$(grep '"method":"RunJob"' "$LAB/run.jsonl" | grep -o '{"name":"EVENT","value":"out-[0-9]*"}' | sort | uniq -d | wc -l)
assert_eq "$dups" 0 "events dispatched twice"
assert_eq "$(grep '"method":"RunJob"' "$LAB/run.jsonl" | grep -c '"value":"out-')" "$N" "RunJob calls for the $N events"
assert_eq "$(grep '"method":"RunJob"' "$LAB/run.jsonl" | grep '"value":"out-' | grep -c '"statusName":"OK"')" "$N" "RunJob OK"
echo PASS
