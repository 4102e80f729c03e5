#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve takes optional flags
# test_dltopic.sh — dead letters to a Pub/Sub topic (Publisher/Publish), against
# Google's pstest and the Run API fake (job "missing" answers NOT_FOUND, so its
# events are dead-lettered as invalid_request at once):
#   - start-up: a missing dead-letter topic exits 3 naming it;
#   - replay, serve and pull each publish their dead letters; the dead-letter
#     subscription is pulled and every message's data and attributes checked,
#     undecodable input included (its raw bytes, or the original message);
#   - the routing header, user agent and no credentials on Publish and GetTopic;
#   - file + topic: both hold the record; metrics by sink;
#   - a message pulled back from the topic replays as the same event;
#   - the topic deleted at run time: replay exits 1 with the event printed,
#     serve answers 503, pull nacks (the message stays) and dead-letters it
#     once the topic is back — nothing lost.
# shellcheck source=tests/integration/pull_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/serve_lib.sh"
all_cleanup() {
	local p
	for p in "${SERVE_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	[ -z "${REPLAY_PID:-}" ] || kill -KILL "$REPLAY_PID" 2>/dev/null || true
	pull_cleanup
}
trap all_cleanup EXIT

DLT=projects/test-project/topics/dead
DLS=projects/test-project/subscriptions/dead-sub

cat >"$WORK/fake.json" <<'JSON'
{"rules": [{"job": "missing", "code": "NOT_FOUND", "message": "job missing not found"}]}
JSON
start_fake --config "$WORK/fake.json" --require-request-params
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB"
ps_cmd create-topic "$DLT" || fail "create-topic: $PS_REPLY"
ps_cmd create-subscription "$DLS" "$DLT" || fail "create-subscription: $PS_REPLY"

# config FILE DEAD_LETTER: a config with that dead_letter section
config() {
	cat >"$1" <<YAML
project: test-project
region: europe-west2
subscription: $SUB
topic: $TOPIC
call_timeout: 5s
dead_letter: $2
routes:
  - name: missing
    match: { type: test.missing }
    job: missing
  - name: pushed
    match: { type: google.cloud.pubsub.topic.v1.messagePublished, attributes: { kind: dl } }
    job: missing
  - name: fine
    match: { type: test.ok }
    job: ok-job
YAML
}
config "$WORK/topic.yaml" "{ topic: $DLT }"
config "$WORK/both.yaml" "{ topic: $DLT, file: $WORK/dead.ndjson }"
config "$WORK/nope.yaml" "{ topic: projects/test-project/topics/nope }"

# dl_pull N: pulls (and acks) N messages of the dead-letter subscription into PS_REPLY.
dl_pull() {
	ps_cmd pull "$DLS" "$1" 30s || fail "pull $1 dead letters: $PS_REPLY"
}

# dl_check SCRIPT [ARGS]: runs SCRIPT (ARGS in process.argv[3...]) with `msgs` (the last dl_pull: .text and .bytes hold the data,
# .a the attributes), expect(cond, what), byId(event id), and ours(m, cls, code, origin, attempts)
# which checks the attributes every dead letter carries.
dl_check() {
	node -e '
const msgs = JSON.parse(process.argv[1]).map((m) => {
  const bytes = Buffer.from(m.data_base64, "base64");
  return { id: m.id, bytes, text: bytes.toString(), a: m.attributes || {} };
});
function expect(c, what) {
  if (!c) { console.error("FAIL: " + what); console.error(JSON.stringify(msgs, null, 1)); process.exit(1); }
}
const byId = (id) => msgs.find((m) => m.a["jobrelay-event-id"] === id);
function ours(m, cls, code, origin, attempts) {
  expect(m, "a dead letter for " + origin);
  expect(m.a["jobrelay-error-class"] === cls, "class " + cls);
  expect(m.a["jobrelay-error-code"] === code, "code " + code);
  expect(typeof m.a["jobrelay-error-message"] === "string" && m.a["jobrelay-error-message"].length > 0, "error message");
  expect(m.a["jobrelay-attempts"] === String(attempts), "attempts " + attempts);
  expect(origin instanceof RegExp ? origin.test(m.a["jobrelay-origin"]) : m.a["jobrelay-origin"] === origin, "origin " + origin);
  const at = m.a["jobrelay-failed-at"] || "";
  expect(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(at), "failed-at RFC 3339: " + at);
  expect(Math.abs(Date.parse(at) - Date.now()) < 10 * 60 * 1000, "failed-at is now: " + at);
  for (const [k, v] of Object.entries(m.a)) expect(k.length <= 256 && Buffer.byteLength(v) <= 1024, "attribute limits: " + k);
}
eval(process.argv[2]);
' "$PS_REPLY" "$@" || fail "dead-letter messages"
}

echo "== start-up: a dead-letter topic that does not exist exits 3, naming it"
printf '%s\n' '{"specversion":"1.0","id":"x","source":"//t","type":"test.ok"}' >"$WORK/one.ndjson"
set +e
"$JOBRELAY" --log-format json --config "$WORK/nope.yaml" replay "$WORK/one.ndjson" >"$WORK/nope.out" 2>"$WORK/nope.err"
rc=$?
set -e
assert_eq "$rc" 3 "replay exit code with a missing dead-letter topic"
grep '"msgid":"DLTOPIC-UNREACHABLE"' "$WORK/nope.err" | contains 'projects/test-project/topics/nope' ||
	{ cat "$WORK/nope.err" >&2; fail "no DLTOPIC-UNREACHABLE naming the topic"; }
PULL_CONFIG="$WORK/nope.yaml" run_pull_to_exit
assert_eq "$PULL_RC" 3 "pull exit code with a missing dead-letter topic"
grep '"msgid":"DLTOPIC-UNREACHABLE"' "$PULL_LOG" | contains 'does not exist' || fail "pull: no DLTOPIC-UNREACHABLE"
assert_eq "$(count_records RunJob)" 0 "RunJob calls before the start-up check passed"

echo "== replay: a failed event and an undecodable line reach the topic"
cat >"$WORK/ev.ndjson" <<'NDJSON'
{"specversion":"1.0","id":"r-1","source":"//test/replay","type":"test.missing","data":{"k":"v"}}
this is not json
{"specversion":"1.0","id":"r-ok","source":"//test/replay","type":"test.ok"}
NDJSON
set +e
"$JOBRELAY" --log-format json --config "$WORK/topic.yaml" replay "$WORK/ev.ndjson" >"$WORK/replay.out" 2>"$WORK/replay.err"
rc=$?
set -e
assert_eq "$rc" 1 "replay exit code with dead letters"
grep -q '"msgid":"DLTOPIC-READY"' "$WORK/replay.err" || fail "no DLTOPIC-READY"
! grep -q '"failed_at"' "$WORK/replay.out" || fail "a record printed although the topic took it"
dl_pull 2
dl_check '
const m = byId("r-1");
ours(m, "invalid_request", "NOT_FOUND", /ev\.ndjson:1$/, 1);
expect(m.a["jobrelay-route"] === "missing", "route");
expect(m.a["jobrelay-event-source"] === "//test/replay", "event source");
expect(/not found/.test(m.a["jobrelay-error-message"]), "the Run API error text");
expect(m.a["content-type"] === "application/cloudevents+json; charset=UTF-8", "content-type of the structured event");
const ce = JSON.parse(m.text);
expect(ce.id === "r-1" && ce.type === "test.missing" && ce.source === "//test/replay" && ce.data.k === "v", "data: the structured CloudEvent");
const bad = msgs.find((x) => x !== m);
ours(bad, "invalid_event", "INVALID_EVENT", /ev\.ndjson:2$/, 0);
expect(bad.text === "this is not json", "data: the raw line");
expect(!("jobrelay-route" in bad.a) && !("jobrelay-event-id" in bad.a), "no route or event for raw input");
'
cp <(printf '%s' "$PS_REPLY") "$WORK/replayed-dl.json"
ps_cmd calls /google.pubsub.v1.Publisher/Publish || fail "calls: $PS_REPLY"
[ "$(ps_field calls)" -ge 2 ] || fail "Publish calls: $PS_REPLY"
grep -q '"x-goog-request-params":"topic=projects%2Ftest-project%2Ftopics%2Fdead"' <<<"$PS_REPLY" ||
	fail "Publish x-goog-request-params: $PS_REPLY"
grep -q '"x-goog-api-client":"gl-c/[0-9]* grpc/[0-9.]* jobrelay/' <<<"$PS_REPLY" || fail "Publish x-goog-api-client: $PS_REPLY"
grep -q '"user-agent":"jobrelay/' <<<"$PS_REPLY" || fail "Publish user-agent: $PS_REPLY"
! grep -q '"authorization"' <<<"$PS_REPLY" || fail "credentials sent to the emulator: $PS_REPLY"
ps_cmd calls /google.pubsub.v1.Publisher/GetTopic || fail "calls: $PS_REPLY"
grep -q '"x-goog-request-params":"topic=projects%2Ftest-project%2Ftopics%2Fdead"' <<<"$PS_REPLY" ||
	fail "GetTopic x-goog-request-params: $PS_REPLY"

echo "== a dead letter over Pub/Sub's 10 MB is refused, and the event printed, not dropped or cut"
sed 's/^dead_letter: .*/limits: { event_bytes: 20MiB }\ndead_letter: { topic: '"${DLT//\//\\/}"' }/' "$WORK/topic.yaml" >"$WORK/big.yaml"
node -e 'process.stdout.write(JSON.stringify({specversion: "1.0", id: "big-1", source: "//test/big", type: "test.missing",
  data: {blob: "x".repeat(10500000)}}) + "\n")' >"$WORK/big.ndjson"
set +e
"$JOBRELAY" --log-format json --config "$WORK/big.yaml" replay "$WORK/big.ndjson" >"$WORK/big.out" 2>"$WORK/big.err"
rc=$?
set -e
assert_eq "$rc" 1 "replay exit code for an oversized dead letter"
grep '"msgid":"DEADLETTER-FAILED"' "$WORK/big.err" | contains "over Pub/Sub's limit of 10000000" ||
	{ cat "$WORK/big.err" >&2; fail "no DEADLETTER-FAILED naming the limit"; }
node -e '
const line = require("fs").readFileSync(process.argv[1], "utf8").split("\n").find((l) => l.startsWith("{\"failed_at\""));
const r = JSON.parse(line);
if (r.event.id !== "big-1" || r.event.data.blob.length !== 10500000) { console.error("FAIL: printed record"); process.exit(1); }
' "$WORK/big.out" || fail "the oversized event was not printed whole"

echo "== a dead letter pulled back from the topic replays as the same event"
node -e '
const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).find((x) => x.attributes["jobrelay-event-id"] === "r-1");
console.log(JSON.stringify({ message: { data: m.data_base64, attributes: m.attributes, messageId: m.id }, subscription: process.argv[2] }));
' "$WORK/replayed-dl.json" "$DLS" >"$WORK/from-topic.ndjson"
"$JOBRELAY" --config "$WORK/topic.yaml" replay --dry-run "$WORK/from-topic.ndjson" >"$WORK/dry.out" 2>"$WORK/dry.err" ||
	{ cat "$WORK/dry.err" >&2; fail "replay --dry-run of a message from the topic"; }
grep -q '"route":"missing","event":{"id":"r-1","source":"//test/replay","type":"test.missing"}' "$WORK/dry.out" ||
	fail "the dead letter did not decode to the same event: $(cat "$WORK/dry.out")"

echo "== serve: a binary event, a push message and an undecodable body"
post() { # post BODY HEADERS...: prints the status code
	local body=$1
	shift
	local h=() x
	for x in "$@"; do h+=(-H "$x"); done
	curl -s -o /dev/null -w '%{http_code}' "${h[@]}" --data-binary "$body" "http://127.0.0.1:$SERVE_PORT/"
}
JOBRELAY_CONFIG="$WORK/topic.yaml" start_serve
assert_eq "$(post '{"x":1}' 'ce-specversion: 1.0' 'ce-id: s-1' 'ce-source: //test/serve' 'ce-type: test.missing' 'content-type: application/json')" 204 "binary event dead-lettered"
PUSH_DATA=$(printf 'push payload \001\377' | base64)
assert_eq "$(post "{\"message\":{\"data\":\"$PUSH_DATA\",\"attributes\":{\"kind\":\"dl\",\"color\":\"blue\"},\"messageId\":\"p-1\"},\"subscription\":\"projects/test-project/subscriptions/push\"}" 'content-type: application/json')" 204 "push message dead-lettered"
BAD_BODY='{"specversion": "1.0", "id": '
assert_eq "$(post "$BAD_BODY" 'content-type: application/cloudevents+json')" 204 "undecodable body dead-lettered"
dl_pull 3
dl_check '
const b = byId("s-1");
ours(b, "invalid_request", "NOT_FOUND", "http", 1);
expect(b.a["jobrelay-route"] === "missing" && b.a["jobrelay-event-source"] === "//test/serve", "binary event attributes");
const ce = JSON.parse(b.text);
expect(ce.id === "s-1" && ce.data.x === 1 && ce.datacontenttype === "application/json", "binary event data: structured CloudEvent");
const p = byId("p-1");
ours(p, "invalid_request", "NOT_FOUND", "http", 1);
expect(p.a["jobrelay-route"] === "pushed", "push route");
expect(p.a.kind === "dl" && p.a.color === "blue", "the original attributes kept");
expect(p.bytes.equals(Buffer.concat([Buffer.from("push payload "), Buffer.from([1, 255])])), "push data: the original bytes");
const r = msgs.find((m) => m.a["jobrelay-error-class"] === "invalid_event");
ours(r, "invalid_event", "INVALID_EVENT", "http", 0);
expect(r.text === process.argv[3], "undecodable body: the raw bytes, " + JSON.stringify(r.text));
' "$BAD_BODY"
curl -sf "http://127.0.0.1:$SERVE_PORT/metrics" >"$WORK/metrics.txt" || fail "/metrics"
grep -q '^jobrelay_dead_letter_writes_total{sink="topic",result="ok"} 3$' "$WORK/metrics.txt" ||
	fail "metrics: $(grep dead_letter "$WORK/metrics.txt")"
stop_serve TERM
assert_eq "$SERVE_RC" 0 "serve exit code"

echo "== pull: a failed message and an undecodable one, with their original data and attributes"
cat >"$WORK/msgs.jsonl" <<'JSONL'
{"data":"{\"specversion\":\"1.0\",\"id\":\"pl-1\",\"source\":\"//test/pull\",\"type\":\"test.missing\",\"data\":{\"n\":1}}","attributes":{"content-type":"application/cloudevents+json","extra":"x"}}
{"data":"{\"specversion\":\"1.0\",\"id\":","attributes":{"content-type":"application/cloudevents+json","broken":"yes"}}
JSONL
ps_cmd stats
acked0=$(ps_field acked)
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" || fail "publish: $PS_REPLY"
PULL_CONFIG="$WORK/topic.yaml" start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start (exit $PULL_RC)"; }
ps_cmd wait-acked $((acked0 + 2)) 30s || fail "messages not acked: $PS_REPLY"
dl_pull 2
dl_check '
const m = byId("pl-1");
ours(m, "invalid_request", "NOT_FOUND", "pull", 1);
expect(m.a["jobrelay-route"] === "missing" && m.a["jobrelay-event-source"] === "//test/pull", "pull event attributes");
expect(m.a.extra === "x" && m.a["content-type"] === "application/cloudevents+json", "original attributes kept");
expect(JSON.parse(m.text).id === "pl-1", "data: the original message data");
const u = msgs.find((x) => x !== m);
ours(u, "invalid_event", "INVALID_EVENT", "pull", 0);
expect(u.text === "{\"specversion\":\"1.0\",\"id\":", "undecodable message: its own data, " + JSON.stringify(u.text));
expect(u.a.broken === "yes", "undecodable message: its own attributes");
'

echo "== both sinks: the file and the topic hold the record"
JOBRELAY_CONFIG="$WORK/both.yaml" start_serve
assert_eq "$(post '{"y":2}' 'ce-specversion: 1.0' 'ce-id: b-1' 'ce-source: //test/both' 'ce-type: test.missing' 'content-type: application/json')" 204 "dead-lettered to both"
dl_pull 1
dl_check 'ours(byId("b-1"), "invalid_request", "NOT_FOUND", "http", 1);'
node -e '
const recs = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
const r = recs.filter((x) => x.event && x.event.id === "b-1");
if (r.length !== 1 || r[0].error.code !== "NOT_FOUND" || r[0].route !== "missing") { console.error("FAIL: file record", JSON.stringify(recs)); process.exit(1); }
' "$WORK/dead.ndjson" || fail "the file record"
curl -sf "http://127.0.0.1:$SERVE_PORT/metrics" >"$WORK/metrics.txt" || fail "/metrics"
for s in file topic; do
	grep -q "^jobrelay_dead_letter_writes_total{sink=\"$s\",result=\"ok\"} 1\$" "$WORK/metrics.txt" ||
		fail "metrics of the $s sink: $(grep dead_letter "$WORK/metrics.txt")"
done

echo "== the topic deleted at run time: replay exits 1 with the event printed"
mkfifo "$WORK/replay.in"
"$JOBRELAY" --log-format json --config "$WORK/topic.yaml" replay - <"$WORK/replay.in" \
	>"$WORK/held.out" 2>"$WORK/held.err" &
REPLAY_PID=$!
exec 9>"$WORK/replay.in"
wait_until 20 grep -q '"msgid":"DLTOPIC-READY"' "$WORK/held.err" || fail "replay did not get ready"
ps_cmd delete-subscription "$DLS" || fail "delete-subscription: $PS_REPLY"
ps_cmd delete-topic "$DLT" || fail "delete-topic: $PS_REPLY"
printf '%s\n' '{"specversion":"1.0","id":"h-1","source":"//test/held","type":"test.missing"}' >&9
exec 9>&-
set +e
wait "$REPLAY_PID"
rc=$?
set -e
REPLAY_PID=
assert_eq "$rc" 1 "replay exit code when the topic is gone"
grep -q '"msgid":"DEADLETTER-FAILED"' "$WORK/held.err" || fail "no DEADLETTER-FAILED"
grep '"failed_at"' "$WORK/held.out" | contains '"id":"h-1"' || fail "the event was not printed: $(cat "$WORK/held.out")"

echo "== ... serve answers 503 (event and undecodable body)"
assert_eq "$(post '{}' 'ce-specversion: 1.0' 'ce-id: h-2' 'ce-source: //test/held' 'ce-type: test.missing' 'content-type: application/json')" 503 "serve when the topic is gone"
assert_eq "$(post "$BAD_BODY" 'content-type: application/cloudevents+json')" 503 "undecodable body when the topic is gone"
curl -sf "http://127.0.0.1:$SERVE_PORT/metrics" >"$WORK/metrics.txt" || fail "/metrics"
grep -q '^jobrelay_dead_letter_writes_total{sink="topic",result="failed"} 2$' "$WORK/metrics.txt" ||
	fail "failed writes: $(grep dead_letter "$WORK/metrics.txt")"
stop_serve TERM

echo "== ... pull nacks; the message stays and is dead-lettered once the topic is back"
printf '%s\n' '{"data":"{\"specversion\":\"1.0\",\"id\":\"h-3\",\"source\":\"//test/held\",\"type\":\"test.missing\"}"}' >"$WORK/held.jsonl"
ps_cmd stats
acked0=$(ps_field acked)
ps_cmd publish "$TOPIC" "$WORK/held.jsonl" || fail "publish: $PS_REPLY"
wait_until 30 log_has PULL-REDELIVER 'dead letter not written' || fail "pull did not nack the held message"
ps_cmd stats
assert_eq "$(ps_field acked)" "$acked0" "acked while the topic is gone"
ps_cmd create-topic "$DLT" || fail "create-topic: $PS_REPLY"
ps_cmd create-subscription "$DLS" "$DLT" || fail "create-subscription: $PS_REPLY"
ps_cmd wait-acked $((acked0 + 1)) 60s || fail "the held message was not dead-lettered: $PS_REPLY"
ps_cmd stats
[ "$(ps_field redelivered)" -ge 1 ] || fail "no redelivery: $PS_REPLY"
dl_pull 1
dl_check '
const m = byId("h-3");
ours(m, "invalid_request", "NOT_FOUND", "pull", 2);
'
stop_pull TERM
assert_eq "$PULL_RC" 0 "pull exit code"
echo "PASS"
