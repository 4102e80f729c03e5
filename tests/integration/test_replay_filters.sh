#!/usr/bin/env bash
# A route's filters: (docs/routing.md) end to end through `replay --dry-run`:
# each dialect, a Knative Trigger's filters block ported unchanged, a CESQL
# evaluation error (no match), check-config's normalised form, and a CESQL
# parse error at load (exit 2, the position named). The dry run calls nothing,
# so no Run API fake is started.
. "$(dirname "$0")/lib.sh"

cat >"$WORK/jobrelay.yaml" <<'YAML'
project: demo-project
region: europe-west2
routes:
  # Knative Trigger spec.filters, keys and values as in Knative's documentation
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
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"

echo "== check-config prints the filters in a normalised form"
"$JOBRELAY" check-config >"$WORK/check.out"
grep -qF "filters: sql(\"source LIKE '%commerce%' AND type IN ('order.created', 'order.updated', 'order.canceled')\")" "$WORK/check.out" ||
	fail "commerce filters: $(grep filters "$WORK/check.out")"
grep -qF 'filters: all(any(exact(type="com.github.push"), exact(type="com.github.pull.create")), not(exact(subject="https://github.com/cloudevents/spec")))' "$WORK/check.out" ||
	fail "github filters: $(grep filters "$WORK/check.out")"
grep -qF 'filters: all(suffix(subject=".csv"), prefix(source="//storage.googleapis.com/"), not(exact(bucket="scratch")))' "$WORK/check.out" ||
	fail "csv filters: $(grep filters "$WORK/check.out")"

echo "== replay --dry-run: which routes matched"
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
JSON
"$JOBRELAY" --log-level debug replay --dry-run --format ndjson "$WORK/events.ndjson" \
	>"$WORK/dry.out" 2>"$WORK/dry.err" || { cat "$WORK/dry.err" >&2; fail "replay exited $?"; }
got=$(node -e '
const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
console.log(l.map((s) => JSON.parse(s)).map((o) => o.event.id + ":" + o.route).sort().join(" "));
' "$WORK/dry.out")
assert_eq "$got" "c-1:big c-1:csv c-4:csv g-1:github o-1:commerce" "routes matched"

echo "== a CESQL evaluation error: no match, logged at debug"
# c-3: INT('abc') is a cast error; c-4: no size extension is a missing attribute
grep -q 'ROUTE-FILTER-ERROR' "$WORK/dry.err" || fail "no ROUTE-FILTER-ERROR line: $(cat "$WORK/dry.err")"
grep 'ROUTE-FILTER-ERROR' "$WORK/dry.err" | contains 'cast' || fail "the cast error is not named"
grep 'ROUTE-FILTER-ERROR' "$WORK/dry.err" | contains 'missingAttribute' || fail "the missing attribute is not named"

echo "== a CESQL parse error is a config error: exit 2, line and position"
printf 'project: p\nregion: r\nroutes:\n  - name: bad\n    job: j\n    filters:\n      - sql: "type = \x27x\x27 AND"\n' >"$WORK/bad.yaml"
set +e
"$JOBRELAY" --config "$WORK/bad.yaml" check-config >/dev/null 2>"$WORK/bad.err"
rc=$?
set -e
assert_eq "$rc" 2 "check-config exit code on a CESQL parse error"
grep -qF "bad.yaml:7: route 'bad': filters[0].sql: unexpected end of the expression at position 15" "$WORK/bad.err" ||
	fail "parse error not named: $(cat "$WORK/bad.err")"
echo "PASS"
