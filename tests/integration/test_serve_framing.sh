#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve and start_fake take optional flags
# jobrelay serve and HTTP/1.1 framing (RFC 9112): requests whose body length
# is ambiguous (Content-Length with Transfer-Encoding, differing
# Content-Lengths, a Transfer-Encoding other than chunked, Transfer-Encoding
# in HTTP/1.0, whitespace before a colon, no Host or two) are answered 400,
# once, and the connection is closed, so bytes after them are never read as
# a second request: nothing of them reaches the Run API. Then the lingering
# close: 20 MiB POSTs from Python's http.client and from Node's http read
# their 413 rather than a reset, and a client that goes on sending is cut
# after the lingering close's byte bound. The daemon serves after each.
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"

FRAMING="python3 $JR_SOURCE_DIR/tests/integration/framing_client.py"

start_fake
cat >"$WORK/jobrelay.yaml" <<YAML
project: demo-project
region: europe-west2
routes:
  - name: all
    match: { type: test.ok }
    job: ok
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"
start_serve --request-timeout 5s

echo "== ambiguous framing: 400 and the connection closed"
$FRAMING "$SERVE_PORT" framing
alive "ambiguous framing"
grep -q '"msgid":"HTTP-BAD-FRAMING"' "$SERVE_LOG" || fail "no HTTP-BAD-FRAMING log line"

echo "== nothing of them dispatched, the well-framed controls were"
client '
const r = await post("/", { "ce-specversion": "1.0", "ce-source": "s", "ce-type": "test.ok", "ce-id": "marker" }, "");
expect(r.status === 204, "a request after them: " + r.status + " " + r.body);
const ids = records().map((x) => env(x).CE_ID);
expect(ids.includes("marker"), "the marker reached the fake: " + ids);
expect(!ids.some((id) => /^f-/.test(id)), "no request with ambiguous framing dispatched: " + ids);
for (const id of ["ok-chunked", "ok-samecl", "ok-http10"])
  expect(ids.filter((x) => x === id).length === 1, id + " dispatched once: " + ids);
'

echo "== 20 MiB POSTs read their 413 (lingering close)"
$FRAMING "$SERVE_PORT" big $((20 << 20)) 3
client '
const big = Buffer.alloc(20 << 20, 120);
for (let i = 0; i < 3; i++) {
  let r;
  try {
    r = await post("/", { "ce-specversion": "1.0", "ce-source": "s", "ce-type": "test.ok", "ce-id": "big-node-" + i }, big);
  } catch (e) {
    expect(false, "node:http POST of 20 MiB (" + i + "): " + e.code + " instead of the 413");
  }
  expect(r.status === 413 && /too large/.test(r.body), "node:http POST of 20 MiB (" + i + "): " + r.status + " " + r.body);
}
expect(!records().some((x) => /^big-/.test(env(x).CE_ID)), "nothing of the oversized requests dispatched");
'
echo "ok: node:http read the 413 3 of 3 times"
alive "oversized bodies"

echo "== the lingering close is bounded: it reads 4 x event_bytes (40 MiB) at most"
$FRAMING "$SERVE_PORT" flood $((128 << 20)) # 40 MiB read, plus what socket buffers hold (tcp_rmem may reach 32 MiB)
alive "a flood after a 413"

stop_serve TERM
assert_eq "$SERVE_RC" 0 "exit code after SIGTERM"
echo "PASS"
