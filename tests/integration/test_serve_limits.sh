#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve and start_fake take optional flags
# jobrelay serve past its limits: oversized bodies (413, with Content-Length
# and chunked), oversized headers (431, under and over MHD's own buffer),
# slow clients sending a byte a second (408 while others are still served),
# more connections than --max-connections, all busy (503 for the extra ones only);
# after each the daemon is alive and serves.
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"

start_fake
cat >"$WORK/jobrelay.yaml" <<YAML
project: demo-project
region: europe-west2
limits: { event_bytes: 64KiB, header_bytes: 8KiB }
routes:
  - name: all
    match: { type: test.ok }
    job: ok
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"
start_serve --request-timeout 2s --max-connections 4

ok_event='"ce-specversion": "1.0", "ce-source": "s", "ce-type": "test.ok"'

echo "== bodies past limits.event_bytes: 413"
client '
const big = "x".repeat(100 * 1024);
let r = await post("/", { '"$ok_event"', "ce-id": "big1" }, big);
expect(r.status === 413, "Content-Length over the limit: " + r.status);
expect(/too large/.test(r.body), "413 says why: " + r.body);
const chunked = "POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: big2\r\nce-source: s\r\nce-type: test.ok\r\nTransfer-Encoding: chunked\r\n\r\n" +
  ("8000\r\n" + "y".repeat(0x8000) + "\r\n").repeat(3) + "0\r\n\r\n";
r = await raw(chunked);
expect(r.status === 413, "chunked body over the limit: " + r.status + " " + r.text.slice(0, 80));
r = await post("/", { '"$ok_event"', "ce-id": "small1" }, "x".repeat(60 * 1024));
expect(r.status === 204, "a body under the limit still goes through: " + r.status + " " + r.body);
expect(!records().some((x) => /^big/.test(env(x).CE_ID)), "nothing of the oversized requests dispatched");
'
alive "oversized bodies"

echo "== headers past limits.header_bytes: 431"
client '
let r = await post("/", { '"$ok_event"', "ce-id": "h1", "x-filler": "a".repeat(12 * 1024) }, "");
expect(r.status === 431, "headers over header_bytes: " + r.status);
r = await raw("POST / HTTP/1.1\r\nHost: x\r\nx-filler: " + "b".repeat(200 * 1024) + "\r\nContent-Length: 0\r\n\r\n");
expect(r.status === 431, "headers past the server buffer: " + r.status + " " + r.text.slice(0, 60));
r = await post("/", { '"$ok_event"', "ce-id": "h2", "x-filler": "c".repeat(4 * 1024) }, "");
expect(r.status === 204, "headers under the limit: " + r.status + " " + r.body);
'
alive "oversized headers"

echo "== slow clients (a byte a second) get 408; others are served meanwhile"
client '
let slowDone = false;
const req = "POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: slow1\r\nce-source: s\r\nce-type: test.ok\r\nContent-Length: 5\r\n\r\nhello";
const slowHead = raw(req, { chunk: 1, delayMs: 1000 }).then((r) => { slowDone = true; return r; });
const body = "POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: slow2\r\nce-source: s\r\nce-type: test.ok\r\nContent-Length: 40\r\n\r\n" + "z".repeat(10);
const slowBody = raw(body, { chunk: 1, delayMs: 1000 });
const fast = [];
for (let i = 0; i < 20; i++) {
  const r = await post("/", { '"$ok_event"', "ce-id": "fast" + i }, "");
  expect(r.status === 204, "fast request " + i + " while slow clients hang on: " + r.status);
  fast.push(slowDone);
}
expect(fast.every((d) => !d), "every fast request was answered before the slow client was cut");
const [a, b] = await Promise.all([slowHead, slowBody]);
expect(a.status === 408 && a.closedEarly, "slow headers: 408 and the connection closed before the request was sent: " + a.status + " " + a.text.slice(0, 40));
expect(b.status === 408 && b.closedEarly, "slow body: 408: " + b.status + " " + b.text.slice(0, 40));
expect(!records().some((x) => /^slow/.test(env(x).CE_ID)), "nothing of the slow requests dispatched");
const fastIds = records().map((x) => env(x).CE_ID).filter((id) => /^fast/.test(id));
expect(fastIds.length === 20, "the 20 fast requests dispatched: " + fastIds.length);
'
alive "slow clients"
grep -q '"msgid":"HTTP-REQUEST-TIMEOUT"' "$SERVE_LOG" || fail "no HTTP-REQUEST-TIMEOUT log line"

echo "== connections past --max-connections, none of them idle: 503 for those, the others go on"
client '
const cs = [];
for (let i = 0; i < 6; i++) cs.push(await conn());
// the first four each begin a request and leave it unfinished: busy, not idle, so
// no connection may be closed to make room for the last two
const head = (id, len) => "POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: " + id + "\r\nce-source: s\r\nce-type: test.ok\r\nContent-Length: " + len + "\r\n\r\n";
for (let i = 0; i < 4; i++) cs[i].send(head("c" + i, 4) + "ab");
let r = await cs[5].send(head("c5", 0));
expect(r.status === 503 && r.headers["retry-after"] && /too many connections/.test(r.body), "a connection past the limit gets 503: " + r.status + " " + r.body);
r = await cs[0].send("cd");
expect(r.status === 204, "a connection within the limit is served: " + r.status);
r = await cs[1].send("cd");
expect(r.status === 204, "and the others still are: " + r.status);
for (const c of cs) c.close();
expect(!records().some((x) => env(x).CE_ID === "c5"), "the refused request was not dispatched");
'
alive "too many connections"
grep -q '"msgid":"HTTP-TOO-MANY-CONNECTIONS"' "$SERVE_LOG" || fail "no HTTP-TOO-MANY-CONNECTIONS log line"

stop_serve TERM
assert_eq "$SERVE_RC" 0 "exit code after SIGTERM"
echo "PASS"
