#!/usr/bin/env bash
# test_pull_exactly_once.sh — an exactly-once subscription (docs/pull.md):
# pstest's harness with --exactly-once confirms every ack and modack, and
# fails some on request (eod-fail). Checked at the Run API fake and pstest:
#   m0  receipt modack invalid: the delivery is never dispatched; its
#       redelivery (m0-2) is, once: one RunJob
#   m1  receipt modack temporarily failed twice: retried, then dispatched once
#   m2  ack temporarily failed twice: retried until confirmed, one RunJob
#   m3  ack invalid: PULL-ACK-UNCONFIRMED; the message is redelivered (a
#       repeat: here dedup acks it without a second RunJob)
# and nothing is acked twice (ackedTwice 0), every message acked.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

N=30
counter() { ps_cmd counters >/dev/null && ps_field "$1"; }
# runjobs_of ID: RunJob calls whose MSG env is message ID
runjobs_of() {
	node -e '
const recs = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
let n = 0;
for (const r of recs.filter((x) => x.method === "RunJob"))
  for (const e of (r.request.overrides.containerOverrides || [{}])[0].env || []) if (e.name === "MSG" && e.value === process.argv[2]) n++;
console.log(n);' "$WORK/record.jsonl" "$1"
}

start_fake
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" --ack-deadline 10 --exactly-once
write_config "flow_control: { ack_deadline: 10s }"
write_messages "$WORK/msgs.jsonl"
ps_cmd eod-fail modack m0 invalid || fail "$PS_REPLY"
ps_cmd eod-fail modack m1 temporary 2 || fail "$PS_REPLY"
ps_cmd eod-fail ack m2 temporary 2 || fail "$PS_REPLY"
ps_cmd eod-fail ack m3 invalid || fail "$PS_REPLY"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" $N || fail "publish: $PS_REPLY"

start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
# every message acked at least once: m0's and m3's redeliveries included (their first
# receipt modack, or ack, was invalid and not applied)
ps_cmd wait-acked $N 90s || fail "not every message acked: $PS_REPLY"
ps_cmd wait-counter acksConfirmed $N 10s || fail "acks confirmed: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code"

assert_eq "$(grep -c '"msgid":"PULL-EXACTLY-ONCE"' "$PULL_LOG")" 1 "PULL-EXACTLY-ONCE lines"
assert_eq "$(counter ackedTwice)" 0 "messages acked twice"
assert_eq "$(counter modacksInvalid)" 1 "modacks answered invalid"
assert_eq "$(counter modacksTemporary)" 2 "modacks answered temporarily failed"
assert_eq "$(counter acksTemporary)" 2 "acks answered temporarily failed"
assert_eq "$(counter acksInvalid)" 1 "acks answered invalid"
log_has PULL-LEASE-LOST '"message_id":"m0"' || fail "m0's lost lease not logged"
log_has PULL-ACK-UNCONFIRMED '"message_id":"m3"' || fail "m3's unconfirmed ack not logged"
assert_eq "$(runjobs_of m0)" 1 "RunJobs of m0 (its first delivery had no lease)"
assert_eq "$(runjobs_of m1)" 1 "RunJobs of m1"
assert_eq "$(runjobs_of m2)" 1 "RunJobs of m2"
assert_eq "$(runjobs_of m3)" 1 "RunJobs of m3 (its redelivery is a repeat, for dedup)"
assert_eq "$(count_records RunJob)" $N "RunJob calls in all"
ps_cmd messages || fail "$PS_REPLY"
node -e '
const ms = JSON.parse(process.argv[1]);
for (const id of ["m0", "m3"]) {
  const m = ms.find((x) => x.id === id);
  if (!m || m.deliveries < 2) { console.error(id + " was not redelivered: " + JSON.stringify(m)); process.exit(1); }
}
' "$PS_REPLY" || fail "m0, m3 deliveries"

echo "test_pull_exactly_once: ok"
