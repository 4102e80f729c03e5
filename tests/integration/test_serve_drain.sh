#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve and start_fake take optional flags
# jobrelay serve on SIGTERM (docs/serve.md): requests in flight (held by the
# Run API fake's delay) finish within shutdown_grace, or get 503 when it
# runs out; new connections are refused and new requests on kept-alive
# connections get 503; exit 0. A second signal exits at once. Nothing is
# answered 2xx that the fake did not record as a RunJob that succeeded.
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"

cat >"$WORK/fake.json" <<'JSON'
{"rules": [
  {"job": "slow", "delay_ms": 4000},
  {"job": "stuck", "delay_ms": 60000}
]}
JSON
start_fake --config "$WORK/fake.json"

write_config() { # write_config FILE GRACE
	cat >"$1" <<YAML
project: demo-project
region: europe-west2
call_timeout: 120s
shutdown_grace: $2
routes:
  - name: slow
    match: { type: test.slow }
    job: slow
  - name: stuck
    match: { type: test.stuck }
    job: stuck
  - name: fast
    match: { type: test.fast }
    job: fast
YAML
}

# wait_records N: the fake has recorded N RunJob calls (it records a call
# when it arrives, before its delayed answer).
wait_records() {
	wait_lines "$WORK/record.jsonl" '"method":"RunJob"' "$1" || fail "the fake did not see $1 RunJob calls"
}

# wait_log MSGID: the server logged MSGID.
wait_log() {
	wait_lines "$SERVE_LOG" "\"msgid\":\"$1\"" 1 || fail "no $1 in the log"
}

# in_flight ID TYPE...: background client sending one request per ID:TYPE at
# once; its answers go to $WORK/answers-N.jsonl, one JSON line each.
CLIENT_N=0
in_flight() {
	CLIENT_N=$((CLIENT_N + 1))
	ANSWERS="$WORK/answers-$CLIENT_N.jsonl"
	ANSWERS="$ANSWERS" REQS="$*" REC="$WORK/record.jsonl" $CLIENT "$SERVE_PORT" '
const out = [];
await Promise.all(process.env.REQS.split(" ").map(async (it) => {
  const [id, type] = it.split(":");
  let r;
  try {
    r = await post("/", { "ce-specversion": "1.0", "ce-id": id, "ce-source": "s", "ce-type": type }, "");
  } catch (e) {
    r = { status: 0, headers: {}, body: String(e.code || e) };
  }
  out.push(JSON.stringify({ id, status: r.status, retryAfter: r.headers["retry-after"] || null, body: r.body }));
}));
fs.writeFileSync(process.env.ANSWERS, out.join("\n") + "\n");
' &
	CLIENT_PID=$!
}

# check_answers FILE EXPECTED: EXPECTED is "id:status ..."; and every 2xx has
# a RunJob the fake answered OK.
check_answers() {
	node -e '
const fs = require("fs");
const [file, rec, want] = process.argv.slice(1);
const ans = Object.fromEntries(fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map(JSON.parse).map((a) => [a.id, a]));
const runs = fs.readFileSync(rec, "utf8").split("\n").filter(Boolean).map(JSON.parse).filter((r) => r.method === "RunJob");
const ok = new Set(runs.filter((r) => r.status === 0).map((r) => r.request.overrides.containerOverrides[0].env.find((e) => e.name === "CE_ID").value));
const fail = (m) => { console.error("FAIL: " + m + "\n" + JSON.stringify(ans)); process.exit(1); };
for (const w of want.split(" ")) {
  const [id, st] = w.split(":");
  if (!ans[id] || String(ans[id].status) !== st) fail(id + ": expected " + st + ", got " + (ans[id] && ans[id].status));
  if (st === "503" && !/^[0-9]+$/.test(ans[id].retryAfter || "")) fail(id + ": 503 without Retry-After");
}
for (const a of Object.values(ans))
  if (a.status >= 200 && a.status < 300 && !ok.has(a.id)) fail(a.id + " answered " + a.status + " but not dispatched");
' "$1" "$WORK/record.jsonl" "$2"
}

echo "== SIGTERM with requests in flight: they finish within shutdown_grace; exit 0"
write_config "$WORK/j1.yaml" 10s
JOBRELAY_CONFIG="$WORK/j1.yaml" start_serve
in_flight d1:test.slow d2:test.slow d3:test.slow
wait_records 3
# a kept-alive connection made before the signal, used after it
mkfifo "$WORK/ka.ready" "$WORK/ka.go"
KA_READY="$WORK/ka.ready" KA_GO="$WORK/ka.go" REC="$WORK/record.jsonl" $CLIENT "$SERVE_PORT" '
const c = await conn();
let r = await c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
expect(r.status === 200, "kept-alive connection: " + r.status);
fs.writeFileSync(process.env.KA_READY, "ready\n");
fs.readFileSync(process.env.KA_GO); // returns once the test saw SERVE-DRAIN
r = await c.send("POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: late1\r\nce-source: s\r\nce-type: test.fast\r\nContent-Length: 0\r\n\r\n");
expect(r.status === 503 && /shutting down/.test(r.body), "a new request while draining: 503, got " + r.status + " " + r.body);
' &
KA_PID=$!
read -r _ <"$WORK/ka.ready"
kill -TERM "$SERVE_PID"
wait_log SERVE-DRAIN
# open_requests: the three held requests, each counted once
open_n=$(sed -n 's/.*"msgid":"SERVE-DRAIN".*"open_requests":"\([0-9]*\)".*/\1/p' "$SERVE_LOG")
assert_eq "$open_n" 3 "SERVE-DRAIN open_requests"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$SERVE_PORT/" || true)
assert_eq "$code" 000 "a new connection while draining is refused"
echo go >"$WORK/ka.go"
wait "$KA_PID" || fail "kept-alive request while draining"
wait "$CLIENT_PID" || fail "in-flight client"
check_answers "$ANSWERS" "d1:204 d2:204 d3:204"
set +e
wait "$SERVE_PID"
rc=$?
set -e
assert_eq "$rc" 0 "exit code after the drain"
grep -q '"msgid":"SERVE-STOPPED"' "$SERVE_LOG" || fail "no SERVE-STOPPED"
[ "$(grep -c '"ce-id":"late1"\|"value":"late1"' "$WORK/record.jsonl")" = 0 ] || fail "late1 was dispatched"

echo "== shutdown_grace runs out: the rest gets 503; exit 0"
: >"$WORK/record.jsonl"
write_config "$WORK/j2.yaml" 1s
JOBRELAY_CONFIG="$WORK/j2.yaml" start_serve
in_flight s1:test.stuck s2:test.stuck
wait_records 2
kill -TERM "$SERVE_PID"
wait "$CLIENT_PID" || fail "in-flight client"
check_answers "$ANSWERS" "s1:503 s2:503"
set +e
wait "$SERVE_PID"
rc=$?
set -e
assert_eq "$rc" 0 "exit code after the grace ran out"
grep -q '"msgid":"SERVE-GRACE-OVER"' "$SERVE_LOG" || fail "no SERVE-GRACE-OVER"

echo "== a second signal exits at once"
: >"$WORK/record.jsonl"
write_config "$WORK/j3.yaml" 60s
JOBRELAY_CONFIG="$WORK/j3.yaml" start_serve
in_flight x1:test.stuck
wait_records 1
kill -TERM "$SERVE_PID"
wait_log SERVE-DRAIN
kill -INT "$SERVE_PID"
set +e
wait "$SERVE_PID"
rc=$?
set -e
assert_eq "$rc" 1 "exit code when requests were abandoned"
grep -q '"msgid":"SERVE-EXIT-NOW"' "$SERVE_LOG" || fail "no SERVE-EXIT-NOW"
wait "$CLIENT_PID" || fail "in-flight client"
check_answers "$ANSWERS" "x1:0"
echo "PASS"
