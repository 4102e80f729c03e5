#!/usr/bin/env bash
# test_pull.sh — jobrelay pull against Google's pstest and the Run API fake:
# messages of every kind (structured CloudEvent, binary-mode ce- attributes,
# plain) give exactly one RunJob each with the right overrides and are acked;
# an undecodable message is dead-lettered and acked, an unrouted one acked;
# /healthz, /readyz and /metrics on --port; SIGTERM exits 0; start-up errors
# (unknown subscription, unreachable Pub/Sub, no subscription) exit 3 or 2;
# messages past the size and attribute limits are dead-lettered and acked;
# googclient_traceparent becomes the execution's TRACEPARENT.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

start_fake --require-request-params
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB"
write_config

# --- 30 messages of three kinds, one undecodable, one that no route matches
write_messages "$WORK/msgs.jsonl"
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" 30 || fail "publish: $PS_REPLY"
cat >"$WORK/odd.jsonl" <<'JSONL'
{"data":"{\"specversion\":\"1.0\",\"id\":","attributes":{"content-type":"application/cloudevents+json"}}
{"data":"no route for me"}
JSONL
ps_cmd publish "$TOPIC" "$WORK/odd.jsonl" || fail "publish: $PS_REPLY"

start_pull --port 0 --bind 127.0.0.1
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start (exit $PULL_RC)"; }
HTTP_PORT=$(grep '"msgid":"PULL-HTTP"' "$PULL_LOG" | sed -n 's/.*"port":"\([0-9]*\)".*/\1/p')
[ -n "$HTTP_PORT" ] || fail "no PULL-HTTP line with the port"

ps_cmd wait-acked 32 60s || fail "not every message acked: $PS_REPLY"
ps_cmd stats
assert_eq "$(ps_field acked)" 32 "messages acked"
assert_eq "$(ps_field acks)" 32 "acks received by pstest (one per message)"
assert_eq "$(ps_field redelivered)" 0 "messages redelivered"

res=$(check_runjobs) || fail "RunJob requests"
echo "$res"
assert_eq "$res" '{"runjobs":30,"okMessages":30,"duplicates":0}' "RunJob calls for 30 messages"

# the StreamingPull call's metadata, as pstest's gRPC server received it
ps_cmd streams || fail "streams: $PS_REPLY"
grep -q '"x-goog-request-params":"subscription=projects%2Ftest-project%2Fsubscriptions%2Fjobs"' <<<"$PS_REPLY" ||
	fail "x-goog-request-params: $PS_REPLY"
grep -q '"x-goog-api-client":"gl-c/[0-9]* grpc/[0-9.]* jobrelay/' <<<"$PS_REPLY" || fail "x-goog-api-client: $PS_REPLY"
grep -q '"user-agent":"jobrelay/' <<<"$PS_REPLY" || fail "user-agent: $PS_REPLY"
! grep -q '"authorization"' <<<"$PS_REPLY" || fail "credentials sent to the emulator: $PS_REPLY"

# the undecodable message: one dead-letter record carrying it as a push body, with the subscription
[ -f "$WORK/dead.ndjson" ] || fail "no dead-letter file"
assert_eq "$(wc -l <"$WORK/dead.ndjson")" 1 "dead-letter records"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const raw = JSON.parse(r.raw);
const want = Buffer.from("{\"specversion\":\"1.0\",\"id\":").toString("base64");
if (r.error.class !== "invalid_event" || r.origin !== "pull") throw new Error("record " + JSON.stringify(r));
if (raw.subscription !== process.argv[2] || raw.message.data !== want || raw.message.messageId !== "m30")
  throw new Error("raw " + r.raw);
' "$WORK/dead.ndjson" "$SUB" || fail "dead-letter record of the undecodable message"
log_has EVENT-INVALID '"message_id":"m30"' || fail "no EVENT-INVALID log line for m30"

# --- health, readiness and metrics on --port
curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null || fail "/healthz"
readyz_ok() { curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz"; }
wait_until 10 readyz_ok || fail "/readyz never 200 while the stream is open"
curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" >"$WORK/metrics.txt" || fail "/metrics"
metric() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/metrics.txt"; }
assert_eq "$(metric 'jobrelay_events_received_total{source="pull"}')" 32 "received metric"
assert_eq "$(metric jobrelay_pubsub_acks_total)" 32 "acks metric"
assert_eq "$(metric 'jobrelay_events_invalid_total{source="pull"}')" 1 "invalid metric"
assert_eq "$(metric jobrelay_pubsub_outstanding_messages)" 0 "outstanding messages"
grep -q '^jobrelay_dispatch_total{route="plain",outcome="dispatched"} 10$' "$WORK/metrics.txt" ||
	fail "dispatch metric of route plain"

# --- SIGTERM: clean exit, a summary line
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"
log_has PULL-SUMMARY '"received":"32","acked":"32"' || fail "summary line"
log_has PUBSUB-STATE '"state":"closed"' || fail "stream not closed"
readyz_down() { ! curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null; }
readyz_down || fail "the health endpoint still answers after exit"

# --- messages past the limits cost only themselves: dead-lettered as invalid_event and acked
write_config "limits: { event_bytes: 1KiB, attributes: 3 }"
head -c 2000 /dev/zero | tr '\0' 'y' >"$WORK/2000"
{
	printf '{"data":"%s","attributes":{"kind":"plain"}}\n' "$(cat "$WORK/2000")"
	printf '{"data":"x","attributes":{"kind":"plain","a":"1","b":"2","c":"3"}}\n'
	printf '{"data":"small {{n}}","attributes":{"kind":"plain"}}\n'
} >"$WORK/limits.jsonl"
ps_cmd publish "$TOPIC" "$WORK/limits.jsonl" || fail "publish: $PS_REPLY"
PORT=0 start_pull --bind 127.0.0.1 # $PORT (0: any free port) serves the GET endpoints too
HTTP_PORT=$(grep '"msgid":"PULL-HTTP"' "$PULL_LOG" | sed -n 's/.*"port":"\([0-9]*\)".*/\1/p')
[ -n "$HTTP_PORT" ] || fail "no PULL-HTTP line with \$PORT set"
curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null || fail "/healthz on \$PORT"
ps_cmd wait-acked 35 30s || fail "messages past the limits not acked: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code"
assert_eq "$(wc -l <"$WORK/dead.ndjson")" 3 "dead-letter records"
grep -q 'message data of 2000 bytes is over the limit of 1024 bytes' "$WORK/dead.ndjson" ||
	fail "no dead letter for the oversized message"
grep -q 'more than 3 message attributes' "$WORK/dead.ndjson" || fail "no dead letter for too many attributes"
assert_eq "$(count_records RunJob)" 31 "RunJob calls (the small message only)"

# --- trace context: googclient_traceparent (Google's client libraries with OpenTelemetry on)
# becomes the execution's TRACEPARENT with the same trace and flags and the dispatch span;
# a malformed one is ignored (no TRACEPARENT, the message still runs)
write_config
cat >"$WORK/traced.jsonl" <<'JSONL'
{"data":"traced","attributes":{"kind":"plain","googclient_traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
{"data":"badtrace","attributes":{"kind":"plain","googclient_traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"}}
JSONL
ps_cmd publish "$TOPIC" "$WORK/traced.jsonl" || fail "publish: $PS_REPLY"
start_pull
ps_cmd wait-acked 37 30s || fail "traced messages not acked: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code"
node -e '
const fs = require("fs");
const [rec, log] = process.argv.slice(1);
const env = (r) => Object.fromEntries(r.request.overrides.containerOverrides[0].env.map((e) => [e.name, e.value]));
const runs = fs.readFileSync(rec, "utf8").split("\n").filter((l) => l.includes("\"RunJob\"")).map(JSON.parse).map(env);
const b64 = (s) => Buffer.from(s).toString("base64");
const traced = runs.filter((e) => e.PAYLOAD === b64("traced")), bad = runs.filter((e) => e.PAYLOAD === b64("badtrace"));
const fail = (m) => { console.error("FAIL: " + m); process.exit(1); };
if (traced.length !== 1 || bad.length !== 1) fail("RunJob calls of the traced messages: " + traced.length + ", " + bad.length);
const tp = traced[0].TRACEPARENT || "";
if (!/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/.test(tp) || /-(b7ad6b7169203331|0{16})-/.test(tp))
  fail("TRACEPARENT " + tp);
if ("TRACEPARENT" in bad[0]) fail("TRACEPARENT from a malformed googclient_traceparent: " + bad[0].TRACEPARENT);
const lines = fs.readFileSync(log, "utf8").split("\n").filter((l) => l.startsWith("{")).map(JSON.parse);
const ok = lines.filter((l) => l.msgid === "DISPATCH-OK" && l["logging.googleapis.com/trace"] === "projects/test-project/traces/0af7651916cd43dd8448eb211c80319c");
if (ok.length !== 1 || ok[0]["logging.googleapis.com/spanId"] !== tp.slice(36, 52) || ok[0]["logging.googleapis.com/trace_sampled"] !== true)
  fail("DISPATCH-OK of the traced message: " + JSON.stringify(ok));
' "$WORK/record.jsonl" "$PULL_LOG" || fail "trace context of pulled messages"

# --- start-up errors
SUB=projects/test-project/subscriptions/nope PULL_CONFIG="$WORK/nope.yaml" write_config
PULL_CONFIG="$WORK/nope.yaml" run_pull_to_exit
assert_eq "$PULL_RC" 3 "exit code for a subscription that does not exist"
log_has PULL-SUBSCRIPTION 'projects/test-project/subscriptions/nope' || fail "error does not name the subscription"
log_has PULL-SUBSCRIPTION '"code":"NOT_FOUND"' || fail "error does not say NOT_FOUND"

PUBSUB_EMULATOR_HOST=127.0.0.1:1 run_pull_to_exit
assert_eq "$PULL_RC" 3 "exit code for an unreachable Pub/Sub"
log_has PUBSUB-UNREACHABLE '127.0.0.1:1' || fail "PUBSUB-UNREACHABLE line"

PUBSUB_EMULATOR_HOST=nohost run_pull_to_exit
assert_eq "$PULL_RC" 3 "exit code for a malformed PUBSUB_EMULATOR_HOST"
log_has PUBSUB-INIT "pubsub endpoint 'nohost'" || fail "PUBSUB-INIT line"

grep -v '^subscription:' "$WORK/jobrelay.yaml" >"$WORK/nosub.yaml"
PULL_CONFIG="$WORK/nosub.yaml" run_pull_to_exit
assert_eq "$PULL_RC" 2 "exit code without a subscription"
log_has PULL-CONFIG 'subscription' || fail "PULL-CONFIG line"

set +e
"$JOBRELAY" --config "$WORK/jobrelay.yaml" --dry-run pull 2>"$WORK/dry.err"
rc=$?
set -e
assert_eq "$rc" 2 "exit code of pull --dry-run"
grep -q 'dry-run is not supported' "$WORK/dry.err" || fail "pull --dry-run message"

echo "test_pull: ok"
