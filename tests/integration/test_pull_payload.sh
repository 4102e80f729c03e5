#!/usr/bin/env bash
# payload: json through `jobrelay pull` against pstest: a plain JSON message
# ({"orderId": "O-1", "kind": "refund"}) is routed on its body's "kind" and
# its orderId rendered into an env var; a message of another kind matches no
# route and is acked; a body that is not JSON is dead-lettered as that
# event's invalid_event on the route, and acked.
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

start_fake --require-request-params
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB"
cat >"$WORK/jobrelay.yaml" <<YAML
project: test-project
region: europe-west2
subscription: $SUB
topic: $TOPIC
dead_letter: { file: $WORK/dead.ndjson }
routes:
  - name: refunds
    payload: json
    match:
      type: google.cloud.pubsub.topic.v1.messagePublished
      payload: { /kind: refund }
    job: refund-job
    overrides:
      env: { ORDER: "{{ payload.orderId }}", KIND: "{{ payload.kind | upper }}" }
YAML
cat >"$WORK/msgs.jsonl" <<'JSONL'
{"data":"{\"orderId\": \"O-1\", \"kind\": \"refund\"}"}
{"data":"{\"orderId\": \"O-2\", \"kind\": \"sale\"}"}
{"data":"kind=refund"}
JSONL
ps_cmd publish "$TOPIC" "$WORK/msgs.jsonl" || fail "publish: $PS_REPLY"

start_pull
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start (exit $PULL_RC)"; }
ps_cmd wait-acked 3 30s || fail "not every message acked: $PS_REPLY"
stop_pull TERM
assert_eq "$PULL_RC" 0 "exit code after SIGTERM"

node - "$WORK/record.jsonl" <<'JS' || fail "RunJob requests"
const fs = require('fs');
const runs = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map(JSON.parse)
  .filter((r) => r.method === 'RunJob');
if (runs.length !== 1) { console.error('RunJob calls: ' + runs.length); process.exit(1); }
const q = runs[0].request, c = q.overrides.containerOverrides[0];
const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
if (!q.name.endsWith('/jobs/refund-job') || env.ORDER !== 'O-1' || env.KIND !== 'REFUND' || env.JOBRELAY_ROUTE !== 'refunds') {
  console.error('request: ' + JSON.stringify(q)); process.exit(1);
}
JS
assert_eq "$(wc -l <"$WORK/dead.ndjson")" 1 "dead-letter records"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const ok = r.route === "refunds" && r.error.class === "invalid_event" && /payload: invalid JSON/.test(r.error.message);
if (!ok) { console.error("dead letter: " + JSON.stringify(r)); process.exit(1); }
' "$WORK/dead.ndjson" || fail "dead letter of the text body on route refunds"
log_has ROUTE-RENDER-FAILED '"route":"refunds"' || fail "no ROUTE-RENDER-FAILED line naming the route"
echo "test_pull_payload: ok"
