#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve and start_fake take optional flags
# payload: json on a route: a plain JSON Pub/Sub message ({"orderId": "O-1",
# "kind": "refund"}) is routed on its body's "kind" and its orderId rendered
# into an env var, through `replay --dry-run` (a push body, and the event
# Eventarc delivers for it) and `serve` (a push body). A body that is not
# JSON is that event's invalid_event on the route, dead-lettered with the
# reason; a body of another kind matches no route.
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"

start_fake

cat >"$WORK/jobrelay.yaml" <<YAML
project: demo-project
region: europe-west2
topic: projects/demo-project/topics/orders
dead_letter: { file: $WORK/dead.ndjson }
routes:
  - name: refunds
    payload: json
    match:
      type: google.cloud.pubsub.topic.v1.messagePublished
      payload: { /kind: refund }
    job: refund-job
    overrides:
      env: { ORDER: "{{ payload.orderId }}", KIND: "{{ payload.kind | upper }}", NOTE: "{{ payload.note | default \"none\" }}" }
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"

b64() { printf '%s' "$1" | base64 -w0; }
push() { # push ID BODY: a Pub/Sub push body carrying BODY as the message data
	printf '{"message":{"data":"%s","messageId":"%s","attributes":{"origin":"shop"}},"subscription":"projects/demo-project/subscriptions/orders"}\n' \
		"$(b64 "$2")" "$1"
}
REFUND='{"orderId": "O-1", "kind": "refund"}'
SALE='{"orderId": "O-2", "kind": "sale"}'

echo "== replay --dry-run: a push body and Eventarc's event for the same message"
push m-1 "$REFUND" >"$WORK/push.json"
push m-2 "$SALE" >"$WORK/sale.json"
printf '{"specversion":"1.0","id":"e-1","source":"//pubsub.googleapis.com/projects/demo-project/topics/orders","type":"google.cloud.pubsub.topic.v1.messagePublished","datacontenttype":"application/json","data":{"message":{"data":"%s","messageId":"e-1"},"subscription":"projects/demo-project/subscriptions/orders"}}\n' \
	"$(b64 "$REFUND")" >"$WORK/eventarc.json"
for f in push sale eventarc; do
	"$JOBRELAY" replay --dry-run "$WORK/$f.json" >"$WORK/dry-$f.out" 2>"$WORK/dry-$f.err" ||
		{ cat "$WORK/dry-$f.err" >&2; fail "replay --dry-run $f.json"; }
done
[ ! -s "$WORK/dry-sale.out" ] || fail "a sale matched: $(cat "$WORK/dry-sale.out")"
node -e '
const fs = require("fs");
for (const [f, id] of [["push", "m-1"], ["eventarc", "e-1"]]) {
  const lines = fs.readFileSync(process.argv[1] + "/dry-" + f + ".out", "utf8").split("\n").filter(Boolean);
  if (lines.length !== 1) { console.error("FAIL: " + f + ": " + lines.length + " lines"); process.exit(1); }
  const l = JSON.parse(lines[0]);
  const env = Object.fromEntries(l.request.overrides.containerOverrides[0].env.map((e) => [e.name, e.value]));
  const ok = l.route === "refunds" && l.event.id === id && env.ORDER === "O-1" && env.KIND === "REFUND" &&
    env.NOTE === "none" && l.request.name === "projects/demo-project/locations/europe-west2/jobs/refund-job";
  if (!ok) { console.error("FAIL: " + f + ": " + lines[0]); process.exit(1); }
}
' "$WORK" || fail "dry-run lines"

echo "== serve: push bodies"
start_serve
client '
const push = (id, body) => post("/", { "content-type": "application/json" }, JSON.stringify({
  message: { data: Buffer.from(body).toString("base64"), messageId: id, attributes: { origin: "shop" } },
  subscription: "projects/demo-project/subscriptions/orders" }));
let r = await push("s-1", "{\"orderId\": \"O-1\", \"kind\": \"refund\"}");
expect(r.status === 204, "refund: " + r.status + " " + r.body);
let runs = records();
expect(runs.length === 1, "one RunJob, got " + runs.length);
const e = env(runs[0]);
expect(runs[0].request.name.endsWith("/jobs/refund-job") && e.ORDER === "O-1" && e.KIND === "REFUND" && e.CE_ID === "s-1",
  "refund overrides: " + JSON.stringify(e));
r = await push("s-2", "{\"orderId\": \"O-2\", \"kind\": \"sale\"}");
expect(r.status === 204, "sale (unrouted, dropped): " + r.status);
r = await push("s-3", "kind=refund");
expect(r.status === 204, "not JSON: dead-lettered, then 204: " + r.status + " " + r.body);
expect(records().length === 1, "no RunJob for the sale or the text body: " + records().length);
'
stop_serve
assert_eq "$SERVE_RC" 0 "serve exit code"
assert_eq "$(wc -l <"$WORK/dead.ndjson")" 1 "dead-letter records"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const ok = r.route === "refunds" && r.error.code === "INVALID_EVENT" && r.error.class === "invalid_event" &&
  /payload: invalid JSON/.test(r.error.message) && r.event && r.event.id === "s-3";
if (!ok) { console.error("dead letter: " + JSON.stringify(r)); process.exit(1); }
' "$WORK/dead.ndjson" || fail "dead letter of the text body on route refunds"
grep -q '"msgid":"ROUTE-RENDER-FAILED".*"route":"refunds"' "$SERVE_LOG" || fail "no ROUTE-RENDER-FAILED line naming the route"
echo "test_serve_payload: ok"
