#!/usr/bin/env bash
# test_input_validity.sh — events whose ids differ only after a NUL byte, and
# events with control characters or invalid UTF-8 in attributes or data, are
# each an invalid_event named by its reason, never a duplicate of another
# event, under every source: serve (binary ce- headers, percent-encoded or
# raw, and structured JSON), pull (Pub/Sub messages with ce- attributes) and
# replay (NDJSON). Every dead-letter record written is valid JSON and UTF-8 and
# is read back by replay.
. "$(dirname "${BASH_SOURCE[0]}")/serve_lib.sh"
. "$JR_SOURCE_DIR/tests/peers/pstest/lib.sh"

TOPIC=projects/test-project/topics/events
SUB=projects/test-project/subscriptions/jobs
trap 'stop_pstest; serve_cleanup' EXIT

start_fake

# write_config FILE DEAD_LETTER_FILE [EXTRA]: one route for type t; dedup on.
write_config() {
	cat >"$1" <<YAML
project: test-project
region: europe-west2
call_timeout: 5s
dedup: { ttl: 10m }
dead_letter: { file: $2 }
${3:-}
routes:
  - name: all
    match: { type: t }
    job: valid-job
    overrides:
      env: { ID: "{{id}}", S: "{{data.s?}}" }
YAML
}

# records_readable FILE N: FILE has N lines, each valid UTF-8 and a JSON object with failed_at.
records_readable() {
	node - "$1" "$2" <<'JS' || fail "dead letters in $1 are not all readable"
const fs = require('fs');
const [file, n] = process.argv.slice(2);
const dec = new TextDecoder('utf-8', { fatal: true });
const text = dec.decode(fs.readFileSync(file));
if (!text.endsWith('\n')) { console.error('no newline at the end'); process.exit(1); }
const lines = text.split('\n').filter(Boolean);
if (lines.length !== Number(n)) { console.error(`${lines.length} records, not ${n}`); process.exit(1); }
for (const l of lines) {
  const r = JSON.parse(l);
  if (!r.failed_at || r.error.class !== 'invalid_event') { console.error('record: ' + l); process.exit(1); }
}
JS
}

# replay_back FILE N: replay reads every record of FILE (none fails to parse)
# and refuses each again by name.
replay_back() {
	local out rc
	out="$WORK/back-$(basename "$1").log"
	set +e
	"$JOBRELAY" --log-format json --config "$WORK/replay-back.yaml" replay --dry-run "$1" \
		>"$out.stdout" 2>"$out"
	rc=$?
	set -e
	assert_eq "$rc" 1 "replay of $1: exit code"
	grep -Eq "\"error\":\"[^\"]*$(basename "$1"):[0-9]+: invalid JSON" "$out" &&
		{ cat "$out" >&2; fail "a record of $1 is not JSON"; }
	local refused
	refused=$(grep -cE '"msgid":"(EVENT-INVALID|ROUTE-RENDER-FAILED)"' "$out" || true)
	assert_eq "$refused" "$2" "records of $1 refused again by name"
	grep -q DISPATCH-DUPLICATE "$out" && fail "replay of $1 saw a duplicate"
	return 0
}
write_config "$WORK/replay-back.yaml" "$WORK/unused.ndjson"

echo "== serve: binary and structured, percent-encoded and raw"
write_config "$WORK/serve.yaml" "$WORK/serve-dead.ndjson"
JOBRELAY_CONFIG="$WORK/serve.yaml" start_serve
client '
const bin = (id, extra) => Object.assign({ "ce-specversion": "1.0", "ce-id": id, "ce-source": "/s",
  "ce-type": "t" }, extra || {});
const st = (body) => ["/", { "content-type": "application/cloudevents+json" }, body];
const ok1 = await post("/", bin("nul"), "");
expect(ok1.status === 204, "a valid event: " + ok1.status);
const ok2 = await post(...st(JSON.stringify({ specversion: "1.0", id: "x", source: "/s", type: "t" })));
expect(ok2.status === 204, "a valid structured event: " + ok2.status);
const bad = [
  ["/", bin("nul%00one"), ""],
  ["/", bin("nul%00two"), ""],
  ["/", bin("dl-\u00ff"), ""],                       // a raw 0xFF byte in the header
  ["/", bin("y", { "ce-source": "/s%FF" }), ""],
  ["/", bin("y", { "ce-t": "t\u00fe" }), ""],
  ["/", bin("y", { "ce-t": "a%01b" }), ""],
  ["/", bin("y", { "ce-t": "%E0%80%AF" }), ""],       // overlong "/"
  st("{\"specversion\":\"1.0\",\"id\":\"x\\u0000y\",\"source\":\"/s\",\"type\":\"t\"}"),
  st("{\"specversion\":\"1.0\",\"id\":\"x\\u0000z\",\"source\":\"/s\",\"type\":\"t\"}"),
  st("{\"specversion\":\"1.0\",\"id\":\"c\\u001b\",\"source\":\"/s\",\"type\":\"t\"}"),
  st(Buffer.from("{\"specversion\":\"1.0\",\"id\":\"o\",\"source\":\"/s\",\"type\":\"t\",\"data\":{\"s\":\"\xc0\xaf\"}}", "latin1")),
  st(Buffer.from("{\"specversion\":\"1.0\",\"id\":\"s\",\"source\":\"/s\",\"type\":\"t\",\"data\":{\"s\":\"\xed\xa0\x80\"}}", "latin1")),
  st(Buffer.from([0xff, 0xfe, 0x7b, 0x7d])),           // a body that is not UTF-8 at all
  st("{\"specversion\":\"1.0\",\"id\":\"r\",\"source\":\"/s\",\"type\":\"t\",\"data\":{\"s\":\"a\\u0000b\"}}"),
  ["/", { "content-type": "application/json" }, JSON.stringify({ subscription: "projects/p/subscriptions/s",
    message: { messageId: "9", data: "", attributes: { "ce-specversion": "1.0", "ce-id": "nul\u0000one",
      "ce-source": "/s", "ce-type": "t" } } })],    // a Pub/Sub push body, ce- attributes
];
for (const [path, h, body] of bad) {
  const r = await post(path, h, body);
  expect(r.status === 204, "invalid event dead-lettered, then 204: " + r.status + " " + r.body);
}
expect(records().filter((r) => r.method === "RunJob").length === 2, "only the two valid events ran");
'
stop_serve
grep -q DISPATCH-DUPLICATE "$SERVE_LOG" && fail "serve took an invalid event for a duplicate"
invalid=$(grep -cE '"msgid":"(EVENT-INVALID|ROUTE-RENDER-FAILED)"' "$SERVE_LOG" || true)
assert_eq "$invalid" 15 "serve: invalid events logged"
grep -q 'attribute id holds a NUL byte at byte 3' "$SERVE_LOG" || fail "serve: the NUL byte is not named"
grep -q 'attribute source holds invalid UTF-8 at byte 2' "$SERVE_LOG" || fail "serve: %FF is not named"
grep -q 'in env S: the value holds a NUL byte' "$SERVE_LOG" || fail "serve: the NUL in data is not named"
grep -q 'message attribute ce-id holds a NUL byte' "$SERVE_LOG" || fail "serve: the NUL in a push attribute is not named"
records_readable "$WORK/serve-dead.ndjson" 15
grep -q '"raw_base64":"//57fQ=="' "$WORK/serve-dead.ndjson" || fail "the non-UTF-8 body is not kept as base64"
replay_back "$WORK/serve-dead.ndjson" 15

echo "== replay: NDJSON events"
write_config "$WORK/replay.yaml" "$WORK/replay-dead.ndjson"
{
	printf '%s\n' '{"specversion":"1.0","id":"nul","source":"/s","type":"t"}'
	printf '%s\n' '{"specversion":"1.0","id":"nul\u0000one","source":"/s","type":"t"}'
	printf '%s\n' '{"specversion":"1.0","id":"nul\u0000two","source":"/s","type":"t"}'
	printf '%s\n' '{"specversion":"1.0","id":"e","source":"/s","type":"t","ext":"t\u0007"}'
	printf '{"specversion":"1.0","id":"dl-\xff","source":"/s","type":"t"}\n'
	printf '{"specversion":"1.0","id":"\xf4\x90\x80\x80","source":"/s","type":"t"}\n'
	printf '%s\n' '{"specversion":"1.0","id":"u","source":"/s","type":"t","data":{"s":"\ud800"}}'
} >"$WORK/events.ndjson"
set +e
"$JOBRELAY" --log-format json --config "$WORK/replay.yaml" replay "$WORK/events.ndjson" \
	>"$WORK/replay.out" 2>"$WORK/replay.log"
rc=$?
set -e
assert_eq "$rc" 1 "replay exit code with invalid events"
grep -q DISPATCH-DUPLICATE "$WORK/replay.log" && fail "replay took an invalid event for a duplicate"
assert_eq "$(grep -c '"msgid":"EVENT-INVALID"' "$WORK/replay.log")" 6 "replay: invalid events"
grep -q 'events.ndjson:2: attribute id holds a NUL byte at byte 3' "$WORK/replay.log" ||
	fail "replay: the NUL byte is not named with its line"
assert_eq "$(count_records RunJob)" 3 "RunJob calls after replay (2 serve + 1)"
records_readable "$WORK/replay-dead.ndjson" 6
replay_back "$WORK/replay-dead.ndjson" 6

echo "== pull: Pub/Sub messages with ce- attributes"
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB"
write_config "$WORK/pull.yaml" "$WORK/pull-dead.ndjson" "subscription: $SUB
topic: $TOPIC"
cat >"$WORK/msgs.jsonl" <<'JSONL'
{"data":"","attributes":{"ce-specversion":"1.0","ce-id":"pnul","ce-source":"/s","ce-type":"t"}}
{"data":"","attributes":{"ce-specversion":"1.0","ce-id":"pnul\u0000one","ce-source":"/s","ce-type":"t"}}
{"data":"","attributes":{"ce-specversion":"1.0","ce-id":"pnul\u0000two","ce-source":"/s","ce-type":"t"}}
{"data":"","attributes":{"ce-specversion":"1.0","ce-id":"c","ce-source":"/s","ce-type":"t","ce-x":"a\u0001"}}
{"data":"{\"specversion\":\"1.0\",\"id\":\"q\\u0000r\",\"source\":\"/s\",\"type\":\"t\"}","attributes":{"content-type":"application/cloudevents+json"}}
JSONL
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" || fail "publish: $PS_REPLY"
run_log="$WORK/pull.log"
"$JOBRELAY" --log-format json --config "$WORK/pull.yaml" pull >"$run_log" 2>&1 &
PULL_PID=$!
ps_cmd wait-acked 5 60s || { kill "$PULL_PID"; cat "$run_log" >&2; fail "not every message acked: $PS_REPLY"; }
kill -TERM "$PULL_PID"
wait "$PULL_PID" || true
grep -q DISPATCH-DUPLICATE "$run_log" && fail "pull took an invalid event for a duplicate"
grep -q 'message attribute ce-id holds a NUL byte at byte 4' "$run_log" ||
	{ cat "$run_log" >&2; fail "pull: the NUL byte is not named"; }
assert_eq "$(count_records RunJob)" 4 "RunJob calls after pull (3 before + 1)"
records_readable "$WORK/pull-dead.ndjson" 4
replay_back "$WORK/pull-dead.ndjson" 4
echo "PASS"
