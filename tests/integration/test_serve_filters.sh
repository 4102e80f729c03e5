#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve takes optional flags
# A route's filters: (docs/routing.md) through `serve --dry-run`: events
# posted as binary and structured CloudEvents (alternately) and as Pub/Sub
# push bodies; which routes matched each one is read from the DISPATCH-OK
# lines (the dry run answers a request once its RunJobs "succeeded", so the
# lines are written when the response arrives). Checked: every dialect
# (exact, prefix, suffix, all, any, not, sql, cesql) and their nesting; the
# Knative Trigger block and events of test_replay_filters.sh, routed as
# replay routes them; and the payload's extensions (payloadkind) on a plain
# JSON Pub/Sub message, by sql and by exact. The same event set through
# `replay --dry-run` must give the same (event, route) pairs.
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"

cat >"$WORK/jobrelay.yaml" <<'YAML'
project: demo-project
region: europe-west2
routes:
  # test_replay_filters.sh's routes: a Knative Trigger's filters, unchanged, and three more
  - name: commerce
    job: orders
    filters:
      - cesql: "source LIKE '%commerce%' AND type IN ('order.created', 'order.updated', 'order.canceled')"
  - name: github
    job: gh
    filters:
      - any:
          - exact:
              type: com.github.push
          - exact:
              type: com.github.pull.create
      - not:
          exact:
            subject: https://github.com/cloudevents/spec
  - name: csv
    job: csv
    match: { type: google.cloud.storage.object.v1.finalized }
    filters:
      - suffix: { subject: .csv }
      - prefix: { source: //storage.googleapis.com/ }
      - not: { exact: { bucket: scratch } }
  - name: big
    job: big
    filters:
      - all:
          - exact: { type: google.cloud.storage.object.v1.finalized }
          - sql: "INT(size) >= 1000000"
  # one route per dialect, over the x.* events only
  - name: d-exact
    job: d
    match: { type: { prefix: x. } }
    filters: [ { exact: { type: x.order.created, tenant: acme } } ]
  - name: d-prefix
    job: d
    match: { type: { prefix: x. } }
    filters: [ { prefix: { source: /shop/ } } ]
  - name: d-suffix
    job: d
    match: { type: { prefix: x. } }
    filters: [ { suffix: { subject: .csv } } ]
  - name: d-all
    job: d
    match: { type: { prefix: x. } }
    filters:
      - all: [ { exact: { type: x.order.created } }, { prefix: { source: /crm/ } } ]
  - name: d-any
    job: d
    match: { type: { prefix: x. } }
    filters:
      - any: [ { exact: { tenant: other } }, { suffix: { source: /eu } } ]
  - name: d-not
    job: d
    match: { type: { prefix: x. } }
    filters: [ { not: { exact: { tenant: acme } } } ]
  - name: d-sql
    job: d
    match: { type: { prefix: x. } }
    filters: [ { sql: "INT(amount) >= 100 AND type LIKE 'x.order.%'" } ]
  - name: d-cesql
    job: d
    match: { type: { prefix: x. } }
    filters: [ { cesql: "source IN ('/shop/us', '/crm/us') OR subject = 'a.csv'" } ]
  - name: d-nested
    job: d
    match: { type: { prefix: x. } }
    filters:
      - any:
          - all:
              - suffix: { subject: .json }
              - not: { exact: { tenant: acme } }
          - all:
              - prefix: { type: x.user. }
              - sql: "NOT EXISTS subject"
  # the body of a plain Pub/Sub message, as extensions
  - name: pay-sql
    job: refund
    payload: json
    match: { type: google.cloud.pubsub.topic.v1.messagePublished }
    filters: [ { sql: "payloadkind = 'refund'" } ]
  - name: pay-exact
    job: refund
    payload: json
    match: { type: google.cloud.pubsub.topic.v1.messagePublished }
    filters: [ { exact: { payloadkind: refund } } ]
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"

GCS='"source":"//storage.googleapis.com/projects/_/buckets/in","type":"google.cloud.storage.object.v1.finalized"'
cat >"$WORK/events.ndjson" <<JSON
{"specversion":"1.0","id":"o-1","source":"/shop/commerce/eu","type":"order.created"}
{"specversion":"1.0","id":"o-2","source":"/shop/commerce/eu","type":"order.shipped"}
{"specversion":"1.0","id":"o-3","source":"/shop/billing","type":"order.created"}
{"specversion":"1.0","id":"g-1","source":"https://github.com/x","type":"com.github.push","subject":"https://github.com/x/y"}
{"specversion":"1.0","id":"g-2","source":"https://github.com/x","type":"com.github.pull.create","subject":"https://github.com/cloudevents/spec"}
{"specversion":"1.0","id":"g-3","source":"https://github.com/x","type":"com.github.issue"}
{"specversion":"1.0","id":"c-1",$GCS,"subject":"objects/a.csv","bucket":"in","size":"2000000"}
{"specversion":"1.0","id":"c-2",$GCS,"subject":"objects/a.csv","bucket":"scratch","size":"10"}
{"specversion":"1.0","id":"c-3",$GCS,"subject":"objects/a.png","size":"abc"}
{"specversion":"1.0","id":"c-4",$GCS,"subject":"objects/b.csv"}
{"specversion":"1.0","id":"d-1","source":"/shop/eu","type":"x.order.created","subject":"a.csv","tenant":"acme","amount":"150"}
{"specversion":"1.0","id":"d-2","source":"/shop/us","type":"x.order.shipped","subject":"b.json","tenant":"other","amount":"50"}
{"specversion":"1.0","id":"d-3","source":"/crm/eu","type":"x.user.created","amount":"abc"}
{"specversion":"1.0","id":"d-4","source":"/crm/us","type":"x.order.created","subject":"c.csv","tenant":"acme","amount":"1000"}
JSON
b64() { printf '%s' "$1" | base64 -w0; }
push() { # push ID BODY: a Pub/Sub push body carrying BODY as the message data
	printf '{"message":{"data":"%s","messageId":"%s"},"subscription":"projects/demo-project/subscriptions/orders"}\n' \
		"$(b64 "$2")" "$1"
}
push p-1 '{"orderId":"O-1","kind":"refund"}' >"$WORK/p-1.json"
push p-2 '{"orderId":"O-2","kind":"sale"}' >"$WORK/p-2.json"

EXPECTED="c-1:big c-1:csv c-4:csv d-1:d-any d-1:d-cesql d-1:d-exact d-1:d-prefix d-1:d-sql d-1:d-suffix \
d-2:d-any d-2:d-cesql d-2:d-nested d-2:d-not d-2:d-prefix d-3:d-any d-3:d-nested d-3:d-not \
d-4:d-all d-4:d-cesql d-4:d-exact d-4:d-sql d-4:d-suffix g-1:github o-1:commerce p-1:pay-exact p-1:pay-sql"

echo "== serve --dry-run: binary and structured events, push bodies"
SERVE_LOG_LEVEL=debug start_serve --dry-run
WORK="$WORK" client '
const lines = fs.readFileSync(process.env.WORK + "/events.ndjson", "utf8").split("\n").filter(Boolean);
for (const [i, l] of lines.entries()) {
  const ev = JSON.parse(l);
  let r;
  if (i % 2 === 0) { // binary: every attribute a ce- header, no body
    const h = Object.fromEntries(Object.entries(ev).map(([k, v]) => ["ce-" + k, String(v)]));
    r = await post("/", h, "");
  } else {
    r = await post("/", { "content-type": "application/cloudevents+json" }, l);
  }
  expect(r.status === 204, ev.id + ": " + r.status + " " + r.body);
}
for (const id of ["p-1", "p-2"]) {
  const r = await post("/", { "content-type": "application/json" }, fs.readFileSync(process.env.WORK + "/" + id + ".json"));
  expect(r.status === 204, id + ": " + r.status + " " + r.body);
}
'
stop_serve
assert_eq "$SERVE_RC" 0 "serve exit code"
pairs() { # pairs FILE MSGID: the sorted event:route pairs of the JSON lines of FILE with that msgid, or replay's lines
	node -e '
const [file, msgid] = process.argv.slice(1);
const out = [];
for (const s of require("fs").readFileSync(file, "utf8").split("\n")) {
  let o;
  try { o = JSON.parse(s); } catch { continue; }
  if (msgid && o.msgid === msgid) out.push(o.event_id + ":" + o.route);
  if (!msgid && o.event && o.route) out.push(o.event.id + ":" + o.route);
}
console.log(out.sort().join(" "));
' "$1" "${2:-}"
}
assert_eq "$(pairs "$SERVE_LOG" DISPATCH-OK)" "$EXPECTED" "routes matched by serve"
grep '"msgid":"ROUTE-FILTER-ERROR"' "$SERVE_LOG" | contains '"event_id":"d-3".*"error":"cast"' ||
	fail "d-3's INT('abc') not logged as a cast error on d-sql"

echo "== replay --dry-run of the same events routes them the same way"
"$JOBRELAY" replay --dry-run --format ndjson "$WORK/events.ndjson" "$WORK/p-1.json" "$WORK/p-2.json" \
	>"$WORK/dry.out" 2>"$WORK/dry.err" || { cat "$WORK/dry.err" >&2; fail "replay exited $?"; }
assert_eq "$(pairs "$WORK/dry.out")" "$EXPECTED" "routes matched by replay"
echo "test_serve_filters: ok"
