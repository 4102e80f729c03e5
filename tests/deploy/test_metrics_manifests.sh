#!/usr/bin/env bash
# The deployed monitoring against jobrelay's live /metrics: every metric the dashboard
# (deploy/dashboard.json) and the PromQL alert policies (deploy/alert-*.yaml) name, as
# deploy/gcloud.sh renders them, is exported by a running jobrelay, and every label they
# group by or match on is one of its labels (tests/deploy/check_metrics.py); the Managed
# Prometheus sidecar's config (deploy/rungmp.yaml) scrapes the path jobrelay answers on the
# port the service gives it. The metrics come from `jobrelay serve` and `jobrelay pull` on
# loopback, against the Run API fake and Google's pstest, made to produce every series the
# manifests use: dispatches, a denied job whose breaker opens and whose events are
# dead-lettered, a rate-limited route that waits, RESOURCE_EXHAUSTED that lowers a rate, a
# pulled message that is acked. A manifest naming a metric or label jobrelay does not export
# fails the test (the check is also run against a dashboard with a made-up metric).
# shellcheck source=tests/integration/pull_lib.sh
. "$JR_SOURCE_DIR/tests/integration/pull_lib.sh"
python3 -c 'import yaml' 2>/dev/null || fail "python3 cannot import yaml (Debian: python3-yaml; scripts/deps.sh installs it)"
unset PROJECT_NUMBER GOOGLE_CLOUD_PROJECT MODE REGION
SERVE_PID=
metrics_cleanup() {
	[ -z "$SERVE_PID" ] || kill -KILL "$SERVE_PID" 2>/dev/null || true
	pull_cleanup
}
trap metrics_cleanup EXIT

echo "== the manifests, rendered as deploy/gcloud.sh deploys them"
OUT="$WORK/rendered"
PROJECT_ID=acme-prod PROJECT_NUMBER=123456789012 \
	bash "$JR_SOURCE_DIR/deploy/gcloud.sh" --dry-run --out "$OUT" >"$WORK/dry.out" 2>&1 ||
	{ cat "$WORK/dry.out" >&2; fail "gcloud.sh --dry-run"; }
# where the sidecar scrapes (deploy/rungmp.yaml), and the port Cloud Run gives jobrelay
read -r SCRAPE_PORT SCRAPE_PATH CONTAINER_PORT < <(python3 - "$OUT" <<'PY'
import sys, yaml
out = sys.argv[1]
ep = yaml.safe_load(open(out + "/rungmp.yaml"))["spec"]["endpoints"][0]
svc = yaml.safe_load(open(out + "/service.yaml"))
(c,) = [c for c in svc["spec"]["template"]["spec"]["containers"] if c["name"] == "jobrelay"]
print(ep["port"], ep.get("path", "/metrics"), c["ports"][0]["containerPort"])
PY
)
assert_eq "$SCRAPE_PORT" "$CONTAINER_PORT" "the port the sidecar scrapes (jobrelay's containerPort, its \$PORT)"

echo "== jobrelay serve: dispatches, a breaker that opens, dead letters, rate limits"
cat >"$WORK/fake.json" <<'JSON'
{"rules": [
  {"job": "denied", "code": "PERMISSION_DENIED", "message": "caller lacks run.jobs.run"},
  {"job": "busy", "code": "RESOURCE_EXHAUSTED", "message": "quota", "times": 1}
]}
JSON
start_fake --config "$WORK/fake.json"
cat >"$WORK/serve.yaml" <<YAML
project: test-project
region: europe-west2
call_timeout: 5s
dead_letter: { file: $WORK/dead.ndjson }
policies:
  permission: { action: dead_letter }
  resource: { action: dead_letter }
circuit_breaker: { window: 4, min_calls: 2, failure_rate: 0.5, open_for: 10m, max_open_for: 10m, half_open_calls: 1 }
routes:
  - name: ok
    match: { type: test.ok }
    job: fine
  - name: denied
    match: { type: test.denied }
    job: denied
  - name: limited
    match: { type: test.limited }
    job: limited
    rate_limit: { per_second: 20, burst: 1 }
  - name: busy
    match: { type: test.busy }
    job: busy
YAML
"$JOBRELAY" --config "$WORK/serve.yaml" check-config >"$WORK/check.out" 2>&1 ||
	{ cat "$WORK/check.out" >&2; fail "the serve config does not pass check-config"; }
mkfifo "$WORK/serve.fifo"
"$JOBRELAY" --log-format json --config "$WORK/serve.yaml" serve --port 0 --bind 127.0.0.1 \
	>"$WORK/serve.fifo" 2>"$WORK/serve.err" &
SERVE_PID=$!
exec 8<"$WORK/serve.fifo"
SERVE_PORT=
while read -r -u 8 line; do
	case "$line" in *'"msgid":"SERVE-LISTENING"'*)
		SERVE_PORT=$(sed -n 's/.*"port":"\([0-9]*\)".*/\1/p' <<<"$line")
		break
		;;
	esac
done
[ -n "$SERVE_PORT" ] || { cat "$WORK/serve.err" >&2; fail "jobrelay serve did not start"; }
cat <&8 >"$WORK/serve.log" &
exec 8<&-
# post TYPE ID: one binary-mode CloudEvent; prints the answer's status
post() {
	curl -sS -o /dev/null -w '%{http_code}\n' -X POST "http://127.0.0.1:$SERVE_PORT/" \
		-H 'ce-specversion: 1.0' -H "ce-id: $2" -H 'ce-source: //test' -H "ce-type: $1" \
		-H 'content-type: application/json' -d '{"n":1}'
}
assert_eq "$(post test.ok ok-1)" 204 "an event for a job that starts"
assert_eq "$(post test.denied d-1)" 204 "a denied event, dead-lettered"
assert_eq "$(post test.denied d-2)" 204 "a second denied event, dead-lettered (the breaker opens)"
assert_eq "$(post test.denied d-3)" 503 "an event for the job whose breaker is open (held)"
# three at once on a route with burst 1: two wait for a token
posts=()
for i in 1 2 3; do
	post test.limited "l-$i" >"$WORK/limited-$i.code" &
	posts+=($!)
done
for p in "${posts[@]}"; do wait "$p" || fail "a post to the rate-limited route"; done
for i in 1 2 3; do assert_eq "$(cat "$WORK/limited-$i.code")" 204 "rate-limited event $i"; done
assert_eq "$(post test.busy b-1)" 204 "RESOURCE_EXHAUSTED, dead-lettered"
curl -fsS "http://127.0.0.1:$SERVE_PORT$SCRAPE_PATH" >"$WORK/serve.metrics" ||
	fail "GET $SCRAPE_PATH from serve (the sidecar's path)"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || fail "serve did not exit 0 on SIGTERM"
SERVE_PID=

echo "== jobrelay pull: a message pulled, dispatched and acked"
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" || fail "pstest did not start"
write_config
write_messages "$WORK/messages.jsonl"
start_pull --port 0 --bind 127.0.0.1
HTTP_PORT=$(grep '"msgid":"PULL-HTTP"' "$PULL_LOG" | sed -n 's/.*"port":"\([0-9]*\)".*/\1/p')
[ -n "$HTTP_PORT" ] || fail "no PULL-HTTP line with the port"
ps_cmd publish "$TOPIC" "$WORK/messages.jsonl" || fail "publish: $PS_REPLY"
ps_cmd wait-acked 3 30s || fail "the messages were not acked: $PS_REPLY"
curl -fsS "http://127.0.0.1:$HTTP_PORT$SCRAPE_PATH" >"$WORK/pull.metrics" ||
	fail "GET $SCRAPE_PATH from pull (the sidecar's path)"
stop_pull
assert_eq "$PULL_RC" 0 "pull's exit on SIGTERM"

echo "== every metric and label the manifests use is exported"
grep -q '^jobrelay_breaker_state{job="projects/test-project/locations/europe-west2/jobs/denied"} 2$' "$WORK/serve.metrics" ||
	{ grep breaker "$WORK/serve.metrics" >&2; fail "the denied job's breaker is not open"; }
grep -q '^jobrelay_pubsub_acks_total [1-9]' "$WORK/pull.metrics" || fail "pull acked nothing"
python3 "$JR_SOURCE_DIR/tests/deploy/check_metrics.py" "$OUT" "$WORK/serve.metrics" "$WORK/pull.metrics" ||
	fail "the dashboard or an alert names what jobrelay does not export"

echo "== the check fails on a metric or a label that does not exist"
for bad in 'sum(rate(jobrelay_no_such_metric_total[5m]))' \
	'sum by (job) (jobrelay_breaker_state)' \
	'sum by (route) (rate(jobrelay_dispatch_total{reason="x"}[5m]))' \
	'histogram_quantile(0.9, sum by (le) (rate(jobrelay_runjob_latency_seconds[5m])))'; do
	rm -rf "$WORK/bad" && cp -r "$OUT" "$WORK/bad"
	python3 - "$WORK/bad/dashboard.json" "$bad" <<'PY'
import json, sys
path, query = sys.argv[1:3]
d = json.load(open(path))
d["mosaicLayout"]["tiles"][0]["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"]["prometheusQuery"] = query
json.dump(d, open(path, "w"))
PY
	if python3 "$JR_SOURCE_DIR/tests/deploy/check_metrics.py" "$WORK/bad" "$WORK/serve.metrics" "$WORK/pull.metrics" >"$WORK/bad.out"; then
		fail "the check passed a dashboard querying: $bad"
	fi
	grep -q '^FAIL: dashboard.json: ' "$WORK/bad.out" || { cat "$WORK/bad.out" >&2; fail "no failure named for: $bad"; }
done
rm -rf "$WORK/bad" && cp -r "$OUT" "$WORK/bad"
sed -i 's/jobrelay_breaker_state/jobrelay_breaker_open/' "$WORK/bad/alert-breaker-open.yaml"
if python3 "$JR_SOURCE_DIR/tests/deploy/check_metrics.py" "$WORK/bad" "$WORK/serve.metrics" "$WORK/pull.metrics" >"$WORK/bad.out"; then
	fail "the check passed an alert policy on jobrelay_breaker_open"
fi
grep -q '^FAIL: alert-breaker-open.yaml: jobrelay_breaker_open is not a metric' "$WORK/bad.out" ||
	{ cat "$WORK/bad.out" >&2; fail "no failure named for the alert's metric"; }
echo "PASS"
