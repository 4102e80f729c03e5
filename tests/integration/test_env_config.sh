#!/usr/bin/env bash
# A deploy without a config file (docs/configuration.md, "Without a file"): with no --config,
# no file at $JOBRELAY_CONFIG and $JOBRELAY_JOB set, jobrelay routes every event to that job
# with the event's data in the execution's env (CE_DATA). Checked: check-config shows the one route and the
# subscription; replay starts the job at the Run API fake with CE_DATA in its env; a bad job name is
# an error naming $JOBRELAY_JOB; a file, when there is one, wins; an explicit --config that
# does not exist is an error even with $JOBRELAY_JOB set.
. "$(dirname "$0")/lib.sh"
CHECK="node $JR_SOURCE_DIR/tests/integration/check_records.js"
start_fake
cd "$WORK"
export JOBRELAY_CONFIG="$WORK/absent.yaml"
export JOBRELAY_JOB=projects/env-project/locations/europe-west2/jobs/env-job
export JOBRELAY_SUBSCRIPTION=projects/env-project/subscriptions/jobrelay-pull

echo "== check-config"
"$JOBRELAY" check-config --format json >check.json 2>check.err || { cat check.err >&2; fail "check-config"; }
node -e '
const c = JSON.parse(require("fs").readFileSync("check.json", "utf8"));
const s = JSON.stringify(c);
const r = c.routes || [];
if (r.length !== 1 || r[0].name !== "default") { console.error(s); process.exit(1); }
if (!s.includes("projects/env-project/locations/europe-west2/jobs/env-job")) { console.error("job: " + s); process.exit(1); }
if (!s.includes("projects/env-project/subscriptions/jobrelay-pull")) { console.error("subscription: " + s); process.exit(1); }
' || fail "check-config does not show the route from the environment"

echo "== replay starts the job"
ev() { printf '{"specversion":"1.0","id":"%s","source":"//env/test","type":"test.env","subject":"s-%s","data":{"n":%s}}\n' "$1" "$1" "$2"; }
{ ev e-1 1; ev e-2 2; } >events.ndjson
"$JOBRELAY" replay events.ndjson >replay.out 2>replay.err || { cat replay.err >&2; fail "replay"; }
$CHECK "$WORK/record.jsonl" '
expect(runs.length === 2, "two RunJob calls, got " + runs.length);
for (const r of runs) {
  expect(r.request.name === "projects/env-project/locations/europe-west2/jobs/env-job", "job name " + r.request.name);
  const e = env(r);
  expect(e.CE_TYPE === "test.env" && e.CE_SOURCE === "//env/test", "type and source " + JSON.stringify(e));
  expect(e.CE_SUBJECT === "s-" + e.CE_ID, "subject " + JSON.stringify(e));
  expect(JSON.parse(e.CE_DATA).n === (e.CE_ID === "e-1" ? 1 : 2), "data " + JSON.stringify(e));
}
expect(JSON.stringify(runs.map((r) => env(r).CE_ID).sort()) === "[\"e-1\",\"e-2\"]", "ids");
'

echo "== a bad job name is an error naming the variable"
set +e
JOBRELAY_JOB='projects/p/jobs/x' "$JOBRELAY" check-config >bad.out 2>bad.err
rc=$?
set -e
assert_eq "$rc" 2 "exit code with a bad JOBRELAY_JOB"
grep -q 'JOBRELAY_JOB.*job name' bad.err || { cat bad.err >&2; fail "the error does not name JOBRELAY_JOB"; }

echo "== a config file wins"
printf 'project: file-project\nregion: us-east1\nroutes:\n  - name: from-file\n    job: file-job\n' >file.yaml
JOBRELAY_CONFIG="$WORK/file.yaml" "$JOBRELAY" check-config >file.out 2>&1 || { cat file.out >&2; fail "check-config of the file"; }
grep -q 'route from-file' file.out || { cat file.out >&2; fail "the file's route is not used"; }
if grep -q 'route default' file.out; then fail "the environment's route is used beside a file"; fi

echo "== an explicit --config that does not exist is an error"
set +e
"$JOBRELAY" --config "$WORK/nope.yaml" check-config >nope.out 2>nope.err
rc=$?
set -e
assert_eq "$rc" 2 "exit code with a missing --config file"
grep -q 'nope.yaml' nope.err || { cat nope.err >&2; fail "the error does not name the missing file"; }
echo "PASS"
