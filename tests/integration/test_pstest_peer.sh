#!/usr/bin/env bash
# test_pstest_peer.sh — self-test of what the pstest harness (tests/peers/pstest) adds to
# Google's pstest, read by a StreamingPull client that decodes with Google's current
# pubsub.proto (tests/peers/pstest/spclient.js; npm modules of tests/peers/runfake):
#   - delivery_attempt 1, 2, 3... on redeliveries (nack and lease expiry) with a dead-letter
#     policy, 0 without; after max attempts the message goes to the dead-letter topic (with
#     the service's attributes) and never to the client again;
#   - exactly-once: subscription_properties on every response, an ack id a delivery, acks and
#     modacks confirmed; injected temporary (message stays outstanding, a retry succeeds) and
#     invalid failures; the ack of an expired lease and of a stale delivery answered invalid;
#   - the service's flow control: a stream with max_outstanding_messages 2 is sent 2 of 5
#     messages, and one more once one of them is acked; a client's new stream inherits its
#     count (client_id);
#   - replyMaxMs, the longest wait from a delivery to the first ack or modack of it.
# Needs Go with Debian's Pub/Sub packages and the Node modules: exit 77 (skipped) without.
# No jobrelay binary involved.
set -euo pipefail

: "${JR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
skip() {
	echo "SKIP: $*" >&2
	[ "${CI:-}" = true ] && { echo "FAIL: skipped under CI=true" >&2; exit 1; }
	exit 77
}
command -v go >/dev/null || skip "no Go toolchain"
[ -d /usr/share/gocode/src/cloud.google.com/go/pubsub/pstest ] || skip "no golang-google-cloud-dev"
command -v node >/dev/null || skip "no node"
MODULES=${PSTEST_NODE_MODULES:-$JR_SOURCE_DIR/tests/peers/runfake/node_modules}
for m in @grpc/grpc-js @grpc/proto-loader google-proto-files; do
	[ -d "$MODULES/$m" ] || skip "no $MODULES/$m (npm ci in tests/peers/runfake)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobrelay-test.XXXXXX")
CLIENT_PID=
# shellcheck source=tests/peers/pstest/lib.sh
. "$JR_SOURCE_DIR/tests/peers/pstest/lib.sh"
cleanup() {
	[ -z "$CLIENT_PID" ] || kill "$CLIENT_PID" 2>/dev/null || true
	exec {CLIENT_IN}>&- 2>/dev/null || true
	stop_pstest
	if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	echo "--- client output:" >&2
	cat "$WORK/client.log" >&2 2>/dev/null || true
	echo "--- harness stderr:" >&2
	cat "$WORK/pstest.err" >&2 2>/dev/null || true
	exit 1
}

P=projects/test-project
T1=$P/topics/attempts S1=$P/subscriptions/with-policy S0=$P/subscriptions/without-policy
DLT=$P/topics/dead DLS=$P/subscriptions/dead
T2=$P/topics/eod S2=$P/subscriptions/eod

start_pstest "$WORK" --topic "$T1" --subscription "$S1" --dead-letter-topic "$DLT" --max-delivery-attempts 5 ||
	fail "the harness did not start"
ps_cmd create-subscription "$DLS" "$DLT" || fail "$PS_REPLY"
ps_cmd create-subscription "$S0" "$T1" || fail "$PS_REPLY"
ps_cmd create-topic "$T2" || fail "$PS_REPLY"
ps_cmd create-subscription "$S2" "$T2" 10 --exactly-once || fail "$PS_REPLY"
[ "$(ps_field exactlyOnce)" = true ] || fail "create-subscription --exactly-once: $PS_REPLY"
ps_cmd create-subscription "$P/subscriptions/bad" "$T1" --dead-letter-topic "$DLT" --max-delivery-attempts 4 &&
	fail "max delivery attempts 4 accepted: $PS_REPLY"

# The client: commands through a FIFO, its output into client.log (read with await).
mkfifo "$WORK/client.in"
: >"$WORK/client.log"
NODE_PATH=$MODULES node "$JR_SOURCE_DIR/tests/peers/pstest/spclient.js" "127.0.0.1:$PSTEST_PORT" \
	<"$WORK/client.in" >>"$WORK/client.log" 2>"$WORK/client.err" &
CLIENT_PID=$!
exec {CLIENT_IN}>"$WORK/client.in"
MARK=0
cl() { printf '%s\n' "$*" >&"$CLIENT_IN"; }
# mark: later awaits see only client output from here on
mark() { MARK=$(wc -l <"$WORK/client.log"); }
# await ERE [SECONDS]: the first client line after the mark matching ERE, into LINE; polls
# the client's output until it comes or the time is up
await() {
	local end=$((SECONDS + ${2:-10}))
	while :; do
		LINE=$(tail -n +$((MARK + 1)) "$WORK/client.log" | grep -m1 -E -- "$1" || true)
		[ -n "$LINE" ] && return 0
		kill -0 "$CLIENT_PID" 2>/dev/null || fail "the client died: $(cat "$WORK/client.err")"
		[ "$SECONDS" -lt "$end" ] || fail "no client line matching /$1/ within ${2:-10}s"
		sleep 0.02
	done
}
# jf NAME: a string or number member of LINE's JSON
jf() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$LINE"; }
# message_field ID FIELD: deliveries or acks of a message, from the harness
message_field() {
	ps_cmd messages >/dev/null
	local m
	m=$(grep -o "{\"id\":\"$1\",[^}]*}" <<<"$PS_REPLY" || true)
	ps_field "$2" "$m"
}
counter() { ps_cmd counters >/dev/null && ps_field "$1"; }

# --- delivery_attempt and the dead-letter topic -----------------------------------------
printf '{"data":"attempts","attributes":{"k":"v"}}\n' >"$WORK/one.jsonl"
ps_cmd publish "$T1" "$WORK/one.jsonl" || fail "$PS_REPLY"
M0=$(ps_field first)
mark
cl open a "$S1"
for n in 1 2 3 4 5; do
	await "^MSG a .*\"deliveryAttempt\":$n[,}]"
	[ "$(jf ackId)" = "$M0" ] || fail "ack id without exactly-once: $LINE"
	[ "$(jf data)" = attempts ] || fail "data: $LINE"
	mark
	if [ "$n" = 2 ]; then
		cl modack a 1 "$M0" # let this lease run out: an expiry counts as an attempt too
	else
		cl modack a 0 "$M0" # nack
	fi
done
ps_cmd wait-counter deadLettered 1 15s || fail "not dead-lettered: $PS_REPLY"
grep -qE '^MSG a .*"deliveryAttempt":6' "$WORK/client.log" && fail "a 6th delivery went to the client"
rm -f "$WORK/dead.jsonl"
ps_cmd drain "$DLS" "$WORK/dead.jsonl" || fail "$PS_REPLY"
[ "$(ps_field pulled)" = 1 ] || fail "dead-letter topic: $PS_REPLY"
D=$(cat "$WORK/dead.jsonl")
grep -q "\"data_base64\":\"$(printf attempts | base64)\"" <<<"$D" || fail "dead letter data: $D"
for kv in '"k":"v"' '"CloudPubSubDeadLetterSourceDeliveryCount":"5"' \
	'"CloudPubSubDeadLetterSourceSubscription":"with-policy"' \
	'"CloudPubSubDeadLetterSourceSubscriptionProject":"test-project"' \
	'"CloudPubSubDeadLetterSourceTopicPublishTime":"20'; do
	grep -qF "$kv" <<<"$D" || fail "dead letter lacks $kv: $D"
done
[ "$(message_field "$M0" acks)" -ge 1 ] || fail "the dead-lettered message is not acked on $S1"

# the same message on a subscription without a dead-letter policy: delivery_attempt 0
mark
cl open b "$S0"
await "^MSG b .*\"messageId\":\"$M0\""
[ "$(jf deliveryAttempt)" = 0 ] || fail "delivery_attempt without a policy: $LINE"
grep '^RESP b' "$WORK/client.log" | grep -v '"props":null' && fail "subscription_properties without exactly-once"
mark
cl modack b 0 "$M0"
await "^MSG b .*\"messageId\":\"$M0\""
[ "$(jf deliveryAttempt)" = 0 ] || fail "delivery_attempt of a redelivery without a policy: $LINE"
# replyMaxMs: the longest wait from a delivery to the first ack or modack of its message
sleep 0.3 # the time under test: this delivery's reply comes at least 300 ms after it
cl ack b "$M0"
ps_cmd wait-counter replyMaxMs 300 10s || fail "replyMaxMs after a reply 300 ms late: $PS_REPLY"
cl close a
cl close b

# --- exactly-once delivery -----------------------------------------------------------------
printf '{"data":"eod-{{n}}"}\n' >"$WORK/eod.jsonl"
mark
cl open e "$S2"
ps_cmd publish "$T2" "$WORK/eod.jsonl" 5 || fail "$PS_REPLY"
declare -A ID ACK
for n in 0 1 2 3 4; do
	await "^MSG e .*\"data\":\"eod-$n\""
	ID[$n]=$(jf messageId) ACK[$n]=$(jf ackId)
	[ "${ACK[$n]}" = "${ID[$n]}-1" ] || fail "first delivery's ack id: $LINE"
	[ "$(jf deliveryAttempt)" = 0 ] || fail "delivery_attempt without a dead-letter policy: $LINE"
done
grep '^RESP e' "$WORK/client.log" | grep -v '"props":{"exactlyOnceDeliveryEnabled":true}' &&
	fail "a response without subscription_properties.exactly_once_delivery_enabled"

# an ack, confirmed, and applied
mark
cl ack e "${ACK[0]}"
await "^ACKCONF e "
[ "$LINE" = "ACKCONF e {\"ackIds\":[\"${ACK[0]}\"],\"invalidAckIds\":[],\"unorderedAckIds\":[],\"temporaryFailedAckIds\":[]}" ] ||
	fail "ack confirmation: $LINE"
[ "$(message_field "${ID[0]}" acks)" = 1 ] || fail "confirmed ack not applied: $PS_REPLY"
await '^RESP e \{"messages":0,"props":\{"exactlyOnceDeliveryEnabled":true\}\}'

# a modack, confirmed
mark
cl modack e 30 "${ACK[1]}"
await "^MODCONF e "
[ "$LINE" = "MODCONF e {\"ackIds\":[\"${ACK[1]}\"],\"invalidAckIds\":[],\"temporaryFailedAckIds\":[]}" ] ||
	fail "modack confirmation: $LINE"

# an injected temporary failure: not applied, the message stays outstanding; a retry succeeds
ps_cmd eod-fail ack "${ACK[2]}" temporary || fail "$PS_REPLY"
mark
cl ack e "${ACK[2]}"
await "^ACKCONF e "
[ "$LINE" = "ACKCONF e {\"ackIds\":[],\"invalidAckIds\":[],\"unorderedAckIds\":[],\"temporaryFailedAckIds\":[\"${ACK[2]}\"]}" ] ||
	fail "temporary failure: $LINE"
[ "$(message_field "${ID[2]}" acks)" = 0 ] || fail "a temporarily failed ack was applied: $PS_REPLY"
ps_cmd stats || fail "$PS_REPLY"
[ "$(ps_field outstanding)" -ge 1 ] || fail "nothing outstanding: $PS_REPLY"
mark
cl ack e "${ACK[2]}"
await "^ACKCONF e "
grep -qF "\"ackIds\":[\"${ACK[2]}\"]" <<<"$LINE" || fail "retried ack: $LINE"
[ "$(message_field "${ID[2]}" acks)" = 1 ] || fail "retried ack not applied: $PS_REPLY"

# an injected invalid (modack)
ps_cmd eod-fail modack "${ID[3]}" invalid || fail "$PS_REPLY"
mark
cl modack e 20 "${ACK[3]}"
await "^MODCONF e "
[ "$LINE" = "MODCONF e {\"ackIds\":[],\"invalidAckIds\":[\"${ACK[3]}\"],\"temporaryFailedAckIds\":[]}" ] ||
	fail "injected invalid: $LINE"
[ "$(counter invalidInjected)" = 1 ] || fail "invalidInjected: $PS_REPLY"

# an expired lease: a 1 s lease, the stream closed (nothing redelivers it), the lease runs
# out, then its ack (in the first request of a new stream) is invalid, and the message comes
# again with a new ack id
mark
cl modack e 1 "${ACK[4]}"
await "^MODCONF e .*\"ackIds\":\[\"${ACK[4]}\"\]"
cl close e
await "^END e "
sleep 1.5 # the time under test: the 1 s lease must run out (not a stand-in for a reply)
mark
cl open f "$S2" "${ACK[4]}"
await "^ACKCONF f "
[ "$LINE" = "ACKCONF f {\"ackIds\":[],\"invalidAckIds\":[\"${ACK[4]}\"],\"unorderedAckIds\":[],\"temporaryFailedAckIds\":[]}" ] ||
	fail "ack of an expired lease: $LINE"
[ "$(counter invalidExpired)" = 1 ] || fail "invalidExpired: $PS_REPLY"
await "^MSG f .*\"messageId\":\"${ID[4]}\""
NEW=$(jf ackId)
[ "$NEW" = "${ID[4]}-2" ] || fail "redelivery's ack id: $LINE"

# a stale delivery's ack id: invalid; the current one: confirmed
mark
cl ack f "${ACK[4]}"
await "^ACKCONF f "
[ "$LINE" = "ACKCONF f {\"ackIds\":[],\"invalidAckIds\":[\"${ACK[4]}\"],\"unorderedAckIds\":[],\"temporaryFailedAckIds\":[]}" ] ||
	fail "stale ack id: $LINE"
[ "$(counter invalidStale)" = 1 ] || fail "invalidStale: $PS_REPLY"
mark
cl ack f "$NEW"
await "^ACKCONF f .*\"ackIds\":\[\"$NEW\"\]"
[ "$(message_field "${ID[4]}" acks)" = 1 ] || fail "ack of the redelivery not applied: $PS_REPLY"

# acking an acked message again: no error (as the service), counted
mark
cl ack f "${ACK[0]}"
await "^ACKCONF f .*\"ackIds\":\[\"${ACK[0]}\"\]"
ps_cmd eod || fail "$PS_REPLY"
[ "$(ps_field ackedTwice)" = 1 ] || fail "ackedTwice: $PS_REPLY"
[ "$(ps_field acksConfirmed)" = 4 ] || fail "acksConfirmed: $PS_REPLY"
[ "$(ps_field acksTemporary)" = 1 ] || fail "acksTemporary: $PS_REPLY"
[ "$(ps_field acksInvalid)" = 2 ] || fail "acksInvalid: $PS_REPLY"
[ "$(ps_field modacksConfirmed)" = 2 ] || fail "modacksConfirmed: $PS_REPLY"
[ "$(ps_field modacksInvalid)" = 1 ] || fail "modacksInvalid: $PS_REPLY"
cl close f

# --- server-side flow control ---------------------------------------------------------------
T3=$P/topics/flow S3=$P/subscriptions/flow
ps_cmd create-topic "$T3" || fail "$PS_REPLY"
ps_cmd create-subscription "$S3" "$T3" 10 || fail "$PS_REPLY"
for n in 1 2 3 4 5; do printf '{"data":"flow-%d"}\n' "$n"; done >"$WORK/five.jsonl"
ps_cmd publish "$T3" "$WORK/five.jsonl" 5 || fail "$PS_REPLY"
mark
cl openfc g "$S3" 2
await '^MSG g '
first=$(jf ackId)
# msgs NAME: the messages stream NAME received since the mark
msgs() { tail -n +$((MARK + 1)) "$WORK/client.log" | grep -c "^MSG $1 " || true; }
# await_msgs NAME N WHAT: polls until stream NAME has received N messages since the mark
await_msgs() {
	local end=$((SECONDS + 10))
	until [ "$(msgs "$1")" -ge "$2" ]; do
		[ "$SECONDS" -lt "$end" ] || fail "$3"
		sleep 0.02
	done
}
await_msgs g 2 "a second message did not come"
cl ack g "$first"
await_msgs g 3 "no message after an ack freed room"
# without flow control all five went out at once, before the ack
[ "$(msgs g)" = 3 ] || fail "flow control: $(msgs g) messages sent with max_outstanding_messages 2"
cl close g

# the count belongs to the client (client_id), across its streams: a new stream of a client
# holding 2 of 2 is sent nothing until one is acked
T4=$P/topics/flow-client S4=$P/subscriptions/flow-client
ps_cmd create-topic "$T4" || fail "$PS_REPLY"
ps_cmd create-subscription "$S4" "$T4" 10 || fail "$PS_REPLY"
ps_cmd publish "$T4" "$WORK/five.jsonl" 2 || fail "$PS_REPLY"
mark
cl openfc h1 "$S4" 2 client-9
await '^MSG h1 '
held=$(jf ackId)
await_msgs h1 2 "h1: a second message did not come"
cl close h1
await '^END h1 '
waits=$(counter flowWaits)
mark
cl openfc h2 "$S4" 2 client-9
ps_cmd publish "$T4" "$WORK/five.jsonl" 1 || fail "$PS_REPLY"
# pstest hands it to h2, the subscription's only stream; the harness holds it there
ps_cmd wait-counter flowWaits $((waits + 1)) 10s || fail "a new stream of a full client was not held: $PS_REPLY"
[ "$(msgs h2)" = 0 ] || fail "a new stream of a client holding 2 of 2 was sent a message"
cl ack h2 "$held"
await '^MSG h2 '
cl close h2
echo "PASS: test_pstest_peer"
