#!/usr/bin/env bash
# test_pull_paused_cut.sh — the server ends the stream while jobrelay is not reading it (flow
# control full: 3 messages outstanding, each RunJob takes 1 s) and acks wait to go out. The
# first send on the ended stream fails; jobrelay then sends nothing more on it and reads it to
# its end, paused or not, so that its status arrives and a new stream carries the acks. Before,
# every failed send was retried on the same stream at once, a busy loop at full CPU until the
# flow control let reading go on (acks stuck meanwhile). Checked: every message acked and
# dispatched; at most one failed send a stream (PULL-SUMMARY's sends_failed and streams).
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

N=30
start_fake --latency-ms 1000
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" --stream-timeout 700ms
write_config "flow_control: { max_messages: 3 }
dedup: { ttl: 0s }"
write_messages "$WORK/msgs.jsonl"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" $N || fail "publish: $PS_REPLY"

start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
ps_cmd wait-acked $N 120s || fail "not every message acked: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"

summary=$(grep '"msgid":"PULL-SUMMARY"' "$PULL_LOG") || fail "no PULL-SUMMARY line"
field() { sed -n "s/.*\"$1\":\"\([0-9]*\)\".*/\1/p" <<<"$summary"; }
streams=$(field streams) failed=$(field sends_failed)
[ -n "$streams" ] && [ -n "$failed" ] || fail "PULL-SUMMARY lacks streams or sends_failed: $summary"
[ "$streams" -ge 3 ] || fail "only $streams streams: the server did not end them while busy"
[ "$failed" -le "$streams" ] || fail "$failed failed sends on $streams streams: sends retried on an ended stream"
check_runjobs "$N"
echo "test_pull_paused_cut: ok ($streams streams, $failed failed sends)"
