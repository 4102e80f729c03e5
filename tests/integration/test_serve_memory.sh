#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve and start_fake take optional flags
# jobrelay serve's memory under hostile input (docs/serve.md, Limits): 60
# connections each sending a 10 MiB body slowly keep the server's RSS within
# limits.inflight_bytes (default 64 MiB) plus 16 MiB of its RSS at rest; the
# requests past the budget get 503 with Retry-After before their body is
# read; every 204 was dispatched; the memory goes back to the system after
# the burst. A batch past limits.batch_events is refused whole (400). A
# request alone is admitted even past the budget (so it is never refused for
# ever). With
# auth:, 60 such connections without a token each get 401 before any body
# byte is read (no 100 Continue is sent) and RSS does not move.
# RSS is read from /proc/PID/status (VmRSS), sampled every 10 ms. Under
# AddressSanitizer (its quarantine keeps freed memory) the RSS bounds are
# not checked; everything else is.
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"

SLOW="node $JR_SOURCE_DIR/tests/integration/slow_bodies.js"
MIB=1024 # kB

start_fake
write_config() { # write_config FILE [EXTRA YAML]
	cat >"$1" <<YAML
project: demo-project
region: europe-west2
limits: { batch_events: 100 }
routes:
  - name: all
    match: { type: test.ok }
    job: ok
${2:-}
YAML
}
write_config "$WORK/jobrelay.yaml"
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"
start_serve --request-timeout 60s

# ASAN: 1 when the binary is built with AddressSanitizer.
ASAN=0
if ldd "$JOBRELAY" 2>/dev/null | contains libasan; then ASAN=1; fi

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVE_PID/status"; }

# rss_back_under KB: polls (bounded: 10 s) until the server's RSS is at most KB.
rss_back_under() {
	[ "$ASAN" = 0 ] || return 0
	for _ in $(seq 100); do
		[ "$(rss_kb)" -le "$1" ] && return 0
		sleep 0.1
	done
	fail "RSS still $(rss_kb) kB after 10 s, expected at most $1 kB"
}

# check JSON JS-EXPR WHAT: fails with WHAT when JS-EXPR (over r = the helper's result) is false.
check() {
	case "$3" in *RSS*) [ "$ASAN" = 0 ] || return 0 ;; esac
	node -e 'const r = JSON.parse(process.argv[1]); if (!('"$2"')) { console.error("FAIL: " + process.argv[2] + ": " + JSON.stringify(r).slice(0, 600)); process.exit(1); }' "$1" "$3"
}

rest=$(rss_kb)
echo "== 60 connections, 10 MiB bodies sent slowly (256 KiB every 25 ms); RSS at rest ${rest} kB"
res=$($SLOW "$SERVE_PORT" "$SERVE_PID" '{"n": 60, "headers": {"ce-specversion": "1.0", "ce-id": "m{i}", "ce-source": "s", "ce-type": "test.ok", "Content-Type": "application/octet-stream"}}')
echo "$res" | node -e 'const r = JSON.parse(require("fs").readFileSync(0)); console.log("statuses", JSON.stringify(r.statuses), "RSS start", r.rssStartKb, "max", r.rssMaxKb, "end", r.rssEndKb, "kB")'
check "$res" 'Object.keys(r.statuses).every((s) => s === "204" || s === "503")' "every answer is 204 or 503"
check "$res" '(r.statuses["204"] || 0) >= 1 && (r.statuses["503"] || 0) >= 1' "some bodies accepted, the rest refused"
check "$res" 'r.retryAfter.length === r.statuses["503"] && r.retryAfter.every((s) => s >= 1)' "every 503 has Retry-After"
check "$res" 'r.rssMaxKb - r.rssStartKb <= 80 * 1024' "peak RSS within limits.inflight_bytes (64 MiB) + 16 MiB of RSS at rest"
check "$res" 'r.sentBeforeAnswer.filter((n) => n < 10 << 20).length >= r.statuses["503"]' "the refused bodies were not sent in full"
n204=$(echo "$res" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).statuses["204"])')
wait_lines "$WORK/record.jsonl" '"method":"RunJob"' "$n204"
assert_eq "$(count_records RunJob)" "$n204" "a RunJob for each 204, and for nothing else"
grep -q '"msgid":"HTTP-MEMORY-BUDGET"' "$SERVE_LOG" || fail "no HTTP-MEMORY-BUDGET log line"
rss_back_under $((rest + 16 * MIB))
echo "RSS after the burst: $(rss_kb) kB"
alive "10 MiB bodies"

echo "== a batch past limits.batch_events (100) is refused whole; one at the limit goes through"
client '
const batch = (n, tag) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ specversion: "1.0", id: tag + i, source: "s", type: "test.ok" })));
let r = await post("/", { "content-type": "application/cloudevents-batch+json" }, batch(101, "over"));
expect(r.status === 400 && /batch of 101 events is over the limit of 100 events/.test(r.body), "101 events: " + r.status + " " + r.body);
r = await post("/", { "content-type": "application/cloudevents-batch+json" }, batch(100000, "huge"));
expect(r.status === 400 && /batch of 100000 events/.test(r.body), "100,000 events: " + r.status + " " + r.body);
r = await post("/", { "content-type": "application/cloudevents-batch+json" }, batch(100, "at"));
expect(r.status === 204, "100 events: " + r.status + " " + r.body);
expect(!records().some((x) => /^(over|huge)/.test(env(x).CE_ID)), "nothing of a refused batch dispatched");
expect(records().filter((x) => /^at/.test(env(x).CE_ID)).length === 100, "the batch at the limit dispatched");
'
rss_back_under $((rest + 16 * MIB))
stop_serve TERM
assert_eq "$SERVE_RC" 0 "exit code after SIGTERM"

echo "== a request alone is admitted even when it and its events pass the budget"
cat >"$WORK/small.yaml" <<YAML
project: demo-project
region: europe-west2
limits: { event_bytes: 1MiB, inflight_bytes: 1MiB }
routes:
  - name: all
    match: { type: test.ok }
    job: ok
YAML
export JOBRELAY_CONFIG="$WORK/small.yaml"
start_serve
client '
const r = await post("/", { "ce-specversion": "1.0", "ce-id": "alone", "ce-source": "s", "ce-type": "test.ok", "content-type": "application/octet-stream" }, "x".repeat(1 << 20));
expect(r.status === 204, "a 1 MiB event with inflight_bytes 1MiB: " + r.status + " " + r.body);
expect(records().some((x) => env(x).CE_ID === "alone"), "and it was dispatched");
'
stop_serve TERM
assert_eq "$SERVE_RC" 0 "exit code after SIGTERM"

echo "== auth: 60 connections without a valid token: 401 before any body byte"
node -e '
const crypto = require("crypto"), fs = require("fs");
const k = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
fs.writeFileSync(process.argv[1], JSON.stringify({ keys: [Object.assign(k.publicKey.export({ format: "jwk" }), { kid: "k1", alg: "RS256", use: "sig" })] }));
' "$WORK/jwks.json"
write_config "$WORK/auth.yaml" "auth:
  audience: https://jobrelay.example/
  allowed_emails: [ trigger@demo-project.iam.gserviceaccount.com ]
  jwks_file: $WORK/jwks.json"
export JOBRELAY_CONFIG="$WORK/auth.yaml"
start_serve --request-timeout 60s
before=$(count_records RunJob)
headers='"headers": {"ce-specversion": "1.0", "ce-id": "a{i}", "ce-source": "s", "ce-type": "test.ok", "Authorization": "Bearer not.a.token"}'
res=$($SLOW "$SERVE_PORT" "$SERVE_PID" "{\"n\": 30, $headers}")
check "$res" 'r.statuses["401"] === 30' "30 without Expect: 401"
check "$res" 'r.rssMaxKb - r.rssStartKb <= 4 * 1024' "RSS moved less than 4 MiB"
res=$($SLOW "$SERVE_PORT" "$SERVE_PID" "{\"n\": 30, \"expect100\": true, $headers}")
check "$res" 'r.statuses["401"] === 30' "30 with Expect: 100-continue: 401"
check "$res" 'r.continues === 0 && r.sentBeforeAnswer.every((n) => n === 0)' "no 100 Continue, no body byte sent"
check "$res" 'r.rssMaxKb - r.rssStartKb <= 4 * 1024' "RSS moved less than 4 MiB"
wait_lines "$SERVE_LOG" '"msgid":"AUTH-REJECTED"' 60
assert_eq "$(count_records RunJob)" "$before" "nothing dispatched without a token"
alive "requests without a token"
stop_serve TERM
assert_eq "$SERVE_RC" 0 "exit code after SIGTERM"
echo "PASS"
