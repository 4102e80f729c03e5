#!/usr/bin/env bash
# jobrelay jobs list|run and executions list|get|cancel|wait against the Run
# API fake: every command and flag, pagination (more jobs and executions than
# one page), several projects and regions, --wait exit codes, cancel, the
# routing headers (the fake rejects a wrong x-goog-request-params), gcloud's
# names (jobs execute, --update-env-vars, --task-timeout, executions describe,
# --job), --format json and yaml, exit 2 and 3.
. "$(dirname "$0")/lib.sh"
J="$JOBRELAY"

# 230 jobs in p1/europe-west1 (three pages of 100), two in p1/us-east1, one in p2/us-east1
node -e '
const jobs = [];
for (let i = 0; i < 230; i++) jobs.push({name: `projects/p1/locations/europe-west1/jobs/bulk-${String(i).padStart(3, "0")}`, labels: {team: i % 2 ? "odd" : "even"}});
jobs.push({name: "projects/p1/locations/us-east1/jobs/ok", labels: {team: "core", tier: "gold"}});
jobs.push({name: "projects/p1/locations/us-east1/jobs/bad"});
jobs.push({name: "projects/p2/locations/us-east1/jobs/other"});
const executions = [
  {job: "bad", run_ms: 300, outcome: "failed", failure_reason: "exit code 3: input missing"},
  {job: "long", run_ms: 600000},
  {job: "*", run_ms: 300},
];
console.log(JSON.stringify({jobs, executions}));' >"$WORK/fake.json"
start_fake --config "$WORK/fake.json" --require-request-params

cat >"$WORK/jobrelay.yaml" <<YAML
project: p1
region: europe-west1
call_timeout: 5s
routes:
  - { name: a, job: ok, region: us-east1 }
  - { name: b, job: other, project: p2, region: us-east1 }
YAML
JC=(--config "$WORK/jobrelay.yaml")

# ---- jobs list: pagination, several regions, labels, formats
"$J" jobs list --project p1 --region europe-west1 >"$WORK/list1.json"
assert_eq "$(wc -l <"$WORK/list1.json")" 230 "jobs in europe-west1 (three pages)"
assert_eq "$(count_records ListJobs)" 3 "ListJobs pages"
assert_eq "$(jq -r .job "$WORK/list1.json" | sort -u | wc -l)" 230 "distinct jobs"
assert_eq "$(jq -r 'select(.job=="bulk-007") | .labels.team + " " + .region + " " + .project' "$WORK/list1.json")" \
	"odd europe-west1 p1" "a job's labels, region, project"

"$J" jobs list --project p1 --region europe-west1 --region us-east1 --label team=even >"$WORK/list2.json"
assert_eq "$(wc -l <"$WORK/list2.json")" 115 "--label team=even over two regions"
"$J" jobs list --project p1 --region europe-west1 --region us-east1 --label team=core --label tier=gold >"$WORK/list3.json"
assert_eq "$(jq -r .name "$WORK/list3.json")" "projects/p1/locations/us-east1/jobs/ok" "two --label filters"

# projects and regions from the config: (p1, p2) x (europe-west1, us-east1)
"$J" "${JC[@]}" jobs list >"$WORK/list4.json"
assert_eq "$(wc -l <"$WORK/list4.json")" 233 "jobs from the config's projects and regions"
assert_eq "$(jq -r 'select(.project=="p2") | .job' "$WORK/list4.json")" other "the route's project"

"$J" jobs list --project p1 --region us-east1 --format table >"$WORK/table.txt"
head -1 "$WORK/table.txt" | contains '^JOB  *PROJECT  *REGION  *LAST EXECUTION  *STATE' || fail "table header: $(head -1 "$WORK/table.txt")"
grep -Eq '^ok +p1 +us-east1 +- +- +- +team=core,tier=gold$|^ok +p1 +us-east1 +- +- +- +tier=gold,team=core$' "$WORK/table.txt" ||
	fail "table row: $(cat "$WORK/table.txt")"

# ---- jobs run: overrides, output, --wait
"$J" jobs run ok --project p1 --region us-east1 --env A=1 --env B=two --args --input --args x.csv \
	--tasks 3 --timeout 90s >"$WORK/run1.json"
EX1=$(jq -r .execution "$WORK/run1.json")
case "$EX1" in projects/p1/locations/us-east1/jobs/ok/executions/ok-*) ;; *) fail "execution name: $EX1" ;; esac
jq -e '.logUri | startswith("https://console.cloud.google.com/logs/")' "$WORK/run1.json" >/dev/null || fail "log URI printed"
jq -c 'select(.method=="RunJob") | .request' "$WORK/record.jsonl" >"$WORK/runreq.json"
assert_eq "$(jq -c '.overrides.containerOverrides[0].env' "$WORK/runreq.json")" \
	'[{"name":"A","value":"1"},{"name":"B","value":"two"}]' "--env overrides"
assert_eq "$(jq -c '.overrides.containerOverrides[0].args' "$WORK/runreq.json")" '["--input","x.csv"]' "--args"
assert_eq "$(jq -r '.overrides.taskCount, .overrides.timeout' "$WORK/runreq.json" | paste -sd' ')" "3 90s" "--tasks, --timeout"

# args after --, full job name, --wait on a success: exit 0 and the final execution
"$J" jobs run projects/p1/locations/us-east1/jobs/ok --wait -- --mode fast >"$WORK/run2.json"
assert_eq "$(tail -1 "$WORK/run2.json" | jq -r .state)" SUCCEEDED "--wait: final state"
assert_eq "$(jq -c 'select(.method=="RunJob") | .request.overrides.containerOverrides[0].args' "$WORK/record.jsonl" | tail -1)" \
	'["--mode","fast"]' "args after --"

# --wait on a failure: exit 1 and the reason
set +e
"$J" jobs run bad --project p1 --region us-east1 --wait >"$WORK/run3.json" 2>"$WORK/run3.err"
rc=$?
set -e
assert_eq "$rc" 1 "jobs run --wait of a failing execution"
grep -q 'FAILED: exit code 3: input missing' "$WORK/run3.err" || fail "failure reason printed: $(cat "$WORK/run3.err")"
assert_eq "$(tail -1 "$WORK/run3.json" | jq -r '.state + " " + .executionReason + " " + (.failed|tostring)')" \
	"FAILED NON_ZERO_EXIT_CODE 1" "failed execution's fields"

# ---- executions get (full name and id), with the run's overrides as env
"$J" executions get "$EX1" >"$WORK/get1.json"
assert_eq "$(jq -r '.state + " " + .env.A + " " + .env.B + " " + (.taskCount|tostring)' "$WORK/get1.json")" \
	"SUCCEEDED 1 two 3" "executions get: state, env, task count"
jq -e '.createTime and .startTime and .completionTime and (.succeeded == 3)' "$WORK/get1.json" >/dev/null ||
	fail "times and counts: $(cat "$WORK/get1.json")"
"$J" executions get "${EX1##*/}" --project p1 --region us-east1 --format table >"$WORK/get2.txt"
grep -q "^state: *SUCCEEDED" "$WORK/get2.txt" || fail "table get by id: $(cat "$WORK/get2.txt")"
grep -q "^env: *A=1" "$WORK/get2.txt" || fail "table env"

# ---- executions list: newest first, two pages, --limit, several regions
for i in $(seq 1 104); do
	printf '{"specversion":"1.0","id":"m-%d","source":"/t","type":"t.many"}\n' "$i"
done >"$WORK/many.ndjson"
cat >"$WORK/many.yaml" <<YAML
project: p1
region: europe-west1
concurrency: 16
routes: [ { name: many, job: many } ]
YAML
"$J" --config "$WORK/many.yaml" replay "$WORK/many.ndjson" >/dev/null 2>&1 || fail "replay to make executions"
before=$(count_records ListExecutions)
"$J" executions list many --project p1 --region europe-west1 >"$WORK/ex1.json"
assert_eq "$(wc -l <"$WORK/ex1.json")" 104 "executions over two pages"
assert_eq "$(($(count_records ListExecutions) - before))" 2 "ListExecutions pages"
jq -rs 'map(.createTime) | . == (sort | reverse)' "$WORK/ex1.json" | contains true || fail "newest first"
# a page of 100 executions whose overrides carry 2 x 30,000-byte env values is over 6 MB:
# more than gRPC's default 4 MiB, still read whole
big=$(head -c 30000 /dev/zero | tr '\0' b)
for i in $(seq 1 100); do
	printf '{"specversion":"1.0","id":"b-%d","source":"/t","type":"t.big","data":{"v":"%s"}}\n' "$i" "$big"
done >"$WORK/big.ndjson"
cat >"$WORK/big.yaml" <<YAML
project: p1
region: europe-west1
concurrency: 16
routes: [ { name: big, job: big, overrides: { env: { A: "{{data.v}}", B: "{{data.v}}" } } } ]
YAML
"$J" --config "$WORK/big.yaml" replay "$WORK/big.ndjson" >/dev/null 2>&1 || fail "replay to make large executions"
"$J" executions list big --project p1 --region europe-west1 >"$WORK/exbig.json" ||
	fail "executions list of large executions"
assert_eq "$(wc -l <"$WORK/exbig.json")" 100 "a page of large executions"
"$J" executions list many --project p1 --region europe-west1 --limit 7 >"$WORK/ex2.json"
assert_eq "$(wc -l <"$WORK/ex2.json")" 7 "--limit"
"$J" "${JC[@]}" executions list ok --region us-east1 --region europe-west1 >"$WORK/ex3.json"
assert_eq "$(jq -r .name "$WORK/ex3.json" | grep -c '/jobs/ok/')" 2 "executions of ok in two regions"
"$J" executions list many --project p1 --region europe-west1 --limit 2 --format table >"$WORK/ex4.txt"
head -1 "$WORK/ex4.txt" | contains '^EXECUTION  *STATE  *TASKS' || fail "executions table header"
assert_eq "$(wc -l <"$WORK/ex4.txt")" 3 "table rows"

# ---- cancel and wait
"$J" jobs run long --project p1 --region us-east1 >"$WORK/run4.json"
EX4=$(jq -r .execution "$WORK/run4.json")
set +e
"$J" executions wait "$EX4" --timeout 1s >"$WORK/w1.json" 2>"$WORK/w1.err"
rc=$?
set -e
assert_eq "$rc" 1 "wait --timeout on a running execution"
grep -q "is still RUNNING" "$WORK/w1.err" || fail "wait timeout message: $(cat "$WORK/w1.err")"
"$J" executions cancel "$EX4" >"$WORK/c1.json"
assert_eq "$(jq -r .name "$WORK/c1.json")" "$EX4" "cancel answers the execution"
set +e
"$J" executions wait "$EX4" >"$WORK/w2.json" 2>"$WORK/w2.err"
rc=$?
set -e
assert_eq "$rc" 1 "wait on a cancelled execution"
assert_eq "$(jq -r '.state + " " + .executionReason' "$WORK/w2.json")" "CANCELLED CANCELLED" "cancelled state"
set +e
"$J" executions cancel "$EX4" >/dev/null 2>"$WORK/c2.err"
rc=$?
set -e
assert_eq "$rc" 1 "cancel of a finished execution"
grep -q FAILED_PRECONDITION "$WORK/c2.err" || fail "cancel error: $(cat "$WORK/c2.err")"
"$J" executions wait "$EX1" >"$WORK/w3.json" || fail "wait on a succeeded execution exits 0"

# ---- every call carried the routing header its method asks for
assert_eq "$(jq -r 'select(.requestParams.ok != true) | .method' "$WORK/record.jsonl" | wc -l)" 0 "x-goog-request-params"
assert_eq "$(jq -r 'select(.method=="ListJobs") | .metadata["x-goog-request-params"]' "$WORK/record.jsonl" | sort -u | paste -sd' ')" \
	"location=europe-west1 location=us-east1" "ListJobs routing"

# ---- gcloud's names; --format json (one array) and yaml (one list)
"$J" jobs list --project p1 --region us-east1 --format json >"$WORK/arr.json"
"$J" jobs list --project p1 --region us-east1 >"$WORK/arr.ndjson"
assert_eq "$(jq -c . "$WORK/arr.json")" "$(jq -cs . "$WORK/arr.ndjson")" "--format json: one array of the ndjson records"
assert_eq "$(jq -r 'type + " " + (map(.job) | index("ok") != null | tostring)' "$WORK/arr.json")" "array true" "--format json: the jobs"
assert_eq "$("$J" jobs list --project p1 --region europe-west1 --limit 5 --format json | jq length)" 5 "jobs list --limit"
"$J" jobs list --project p1 --region us-east1 --format yaml >"$WORK/list.yaml"
python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$WORK/list.yaml" >"$WORK/list.yaml.json"
assert_eq "$(jq -S . "$WORK/list.yaml.json")" "$(jq -S . "$WORK/arr.json")" "--format yaml: the same records as a YAML list"
"$J" jobs execute ok --project p1 --region us-east1 --update-env-vars A=1,B=x=y --args=--in,a.csv --args '^:^p,q:r' \
	--task-timeout 1h30m --tasks 2 --async --format json >"$WORK/exec.json"
assert_eq "$(jq -r 'type + " " + (.[0].execution | split("/")[5])' "$WORK/exec.json")" "array ok" "jobs execute --format json"
jq -c 'select(.method=="RunJob") | .request' "$WORK/record.jsonl" | tail -1 >"$WORK/execreq.json"
assert_eq "$(jq -c '.overrides.containerOverrides[0].env' "$WORK/execreq.json")" \
	'[{"name":"A","value":"1"},{"name":"B","value":"x=y"}]' "--update-env-vars"
assert_eq "$(jq -c '.overrides.containerOverrides[0].args' "$WORK/execreq.json")" '["--in","a.csv","p,q","r"]' \
	"--args, comma-separated, and with gcloud's ^:^ delimiter"
assert_eq "$(jq -r '.overrides.taskCount, .overrides.timeout' "$WORK/execreq.json" | paste -sd' ')" "2 5400s" \
	"--tasks, --task-timeout"
"$J" executions describe "${EX1##*/}" --project p1 --region us-east1 --format yaml >"$WORK/get.yaml"
grep -q '^  state: "SUCCEEDED"$' "$WORK/get.yaml" || fail "executions describe --format yaml: $(cat "$WORK/get.yaml")"
assert_eq "$("$J" executions list --job many --project p1 --region europe-west1 --limit 3 --format json | jq length)" 3 \
	"executions list --job"
assert_eq "$("$J" executions list --job nothing-ran --project p1 --region europe-west1 --format json)" "[]" \
	"an empty list is []"

# ---- usage errors (2) and an unreachable Run API (3)
expect_rc() {
	local want=$1
	shift
	set +e
	"$@" >/dev/null 2>"$WORK/rc.err"
	local rc=$?
	set -e
	assert_eq "$rc" "$want" "exit code of: $* ($(head -2 "$WORK/rc.err"))"
}
expect_rc 2 "$J" jobs frobnicate
expect_rc 2 "$J" jobs list --project p1 --region r --format xml
expect_rc 2 "$J" jobs run ok --project p1 --region r --wait --async
expect_rc 2 "$J" executions list many --job many --project p1 --region r
expect_rc 2 "$J" jobs list --project p1
expect_rc 2 "$J" jobs run ok --project p1 --region r --tasks 0
expect_rc 2 "$J" executions get not-a-name
expect_rc 2 "$J" executions list
expect_rc 1 "$J" executions get projects/p1/locations/us-east1/jobs/ok/executions/ok-zzzzz
cat >"$WORK/short.yaml" <<YAML
project: p1
region: us-east1
call_timeout: 1s
YAML
JOBRELAY_RUN_ENDPOINT=127.0.0.1:1 expect_rc 3 "$J" --config "$WORK/short.yaml" jobs list
grep -q "cannot reach the Run API" "$WORK/rc.err" || fail "exit 3 message: $(cat "$WORK/rc.err")"
echo "test_jobctl: ok"
