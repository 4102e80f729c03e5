#!/usr/bin/env bash
# shellcheck disable=SC2016 # single-quoted $ are for the shells the test starts
# deploy/gcloud.sh against the stand-in gcloud (tests/deploy/gcloud, first on PATH), which
# records every call and remembers what was created:
# - --dry-run calls nothing, and prints exactly the commands a first run makes;
# - a first run (nothing exists) creates every resource the platform needs, with its flags;
# - a second run (everything exists) describes each and creates nothing;
# - --mode pull, --only deploy; bad settings exit 2 naming the setting; a failing gcloud call
#   stops the script there;
# - metrics: the sidecar's config secret, readable by jobrelay's account, which may write
#   metrics; the breaker alert; the dashboard created once, then updated with its etag;
# - every RPC in src/ has its IAM permission granted, on the right resource, to jobrelay's
#   account (or to OPERATORS, for the CLI's), jobrelay gets no other Cloud Run permission, and
#   docs/deploy.md names each permission; a custom role that drifted is repaired.
# shellcheck source=tests/integration/lib.sh
. "$JR_SOURCE_DIR/tests/integration/lib.sh"
SCRIPT="$JR_SOURCE_DIR/deploy/gcloud.sh"
export PATH="$JR_SOURCE_DIR/tests/deploy:$PATH"
[ "$(command -v gcloud)" = "$JR_SOURCE_DIR/tests/deploy/gcloud" ] || fail "the stand-in gcloud is not first on PATH"
unset PROJECT_NUMBER GOOGLE_CLOUD_PROJECT MODE REGION
export PROJECT_ID=acme-prod
N=123456789012 # what the stand-in answers for `projects describe`
P=acme-prod
R=europe-west2
URL="https://jobrelay-$N.$R.run.app"
RELAY="jobrelay@$P.iam.gserviceaccount.com"
INVOKER="jobrelay-invoker@$P.iam.gserviceaccount.com"
RUNTIME="job-runtime@$P.iam.gserviceaccount.com"
BUILDER="jobrelay-build@$P.iam.gserviceaccount.com"
PUBSUB_AGENT="serviceAccount:service-$N@gcp-sa-pubsub.iam.gserviceaccount.com"
OPS=group:ops@example.com
export OPERATORS="$OPS,user:oncall@example.com"

# What each RPC jobrelay makes needs, from Google's references: the Cloud Run Admin API v2
# methods (https://cloud.google.com/run/docs/reference/rest/v2: run.jobs.run on the job and
# run.jobs.runWithOverrides for overrides; run.executions.get / .cancel on the execution;
# run.executions.list on the job; run.jobs.list on the location) and
# https://cloud.google.com/pubsub/docs/access-control. A job's executions are authorised
# through the job's policy, so "job" covers them. Columns: METHOD PERMISSION RESOURCE WHO;
# RESOURCE: job (example-job), project, dltopic (jobrelay-dead), subscription (jobrelay-pull),
# dlsubscription (jobrelay-dead-keep: jobrelay redrive);
# WHO: relay (the service's account), relay-pull (pull mode only), cli (OPERATORS).
NEEDS='
/google.cloud.run.v2.Jobs/RunJob run.jobs.run job relay,cli
/google.cloud.run.v2.Jobs/RunJob run.jobs.runWithOverrides job relay,cli
/google.cloud.run.v2.Executions/GetExecution run.executions.get job relay,cli
/google.cloud.run.v2.Executions/ListExecutions run.executions.list job relay,cli
/google.cloud.run.v2.Executions/CancelExecution run.executions.cancel job cli
/google.cloud.run.v2.Jobs/ListJobs run.jobs.list project cli
/google.pubsub.v1.Publisher/Publish pubsub.topics.publish dltopic relay
/google.pubsub.v1.Publisher/GetTopic pubsub.topics.get dltopic relay
/google.pubsub.v1.Subscriber/StreamingPull pubsub.subscriptions.consume subscription relay-pull
/google.pubsub.v1.Subscriber/Acknowledge pubsub.subscriptions.consume subscription relay-pull
/google.pubsub.v1.Subscriber/ModifyAckDeadline pubsub.subscriptions.consume subscription relay-pull
/google.pubsub.v1.Subscriber/Pull pubsub.subscriptions.consume dlsubscription cli
/google.pubsub.v1.Subscriber/Acknowledge pubsub.subscriptions.consume dlsubscription cli
/google.pubsub.v1.Subscriber/ModifyAckDeadline pubsub.subscriptions.consume dlsubscription cli
'
# The permissions of the predefined roles the script may bind, from
# https://cloud.google.com/iam/docs/roles-permissions/run, .../pubsub (pubsub.viewer: the
# part that applies to topics and subscriptions) and .../monitoring.
declare -A PREDEFINED=(
	[roles/run.invoker]="run.jobs.run run.routes.invoke"
	[roles/run.jobsExecutor]="run.executions.cancel run.jobs.run"
	[roles/run.jobsExecutorWithOverrides]="run.executions.cancel run.jobs.run run.jobs.runWithOverrides"
	[roles/pubsub.publisher]="pubsub.topics.publish"
	[roles/pubsub.subscriber]="pubsub.snapshots.seek pubsub.subscriptions.consume pubsub.topics.attachSubscription"
	[roles/monitoring.metricWriter]="monitoring.metricDescriptors.create monitoring.metricDescriptors.get monitoring.metricDescriptors.list monitoring.monitoredResourceDescriptors.get monitoring.monitoredResourceDescriptors.list monitoring.timeSeries.create"
	[roles/pubsub.viewer]="pubsub.topics.get pubsub.topics.list pubsub.subscriptions.get pubsub.subscriptions.list pubsub.snapshots.get pubsub.snapshots.list"
)

# role_permissions CALLS ROLE: the role's permissions, one a line (a custom role's from the
# call that created it)
role_permissions() {
	local line
	case "$2" in
	"projects/$P/roles/"*)
		line=$(grep -E "^iam roles create ${2##*/} " "$1" | tail -n 1)
		[ -n "$line" ] || fail "$(basename "$1"): $2 is bound but was not created"
		sed -n 's/.* --permissions=\([^ ]*\).*/\1/p' <<<"$line" | tr ',' '\n'
		;;
	*)
		[ -n "${PREDEFINED[$2]:-}" ] || fail "$2: its permissions are not in this test's table"
		tr ' ' '\n' <<<"${PREDEFINED[$2]}"
		;;
	esac
}

# granted CALLS MEMBER RESOURCE: the permissions MEMBER holds on RESOURCE (bound there or on
# the project), one a line
granted() {
	local calls=$1 member=$2 want=$3 line at
	while IFS= read -r line; do
		[[ " $line " == *" --member=$member "* ]] || continue
		case "$line" in
		"projects add-iam-policy-binding $P "*) at=project ;;
		"run jobs add-iam-policy-binding example-job "*) at=job ;;
		"pubsub topics add-iam-policy-binding jobrelay-dead "*) at=dltopic ;;
		"pubsub subscriptions add-iam-policy-binding jobrelay-pull "*) at=subscription ;;
		"pubsub subscriptions add-iam-policy-binding jobrelay-dead-keep "*) at=dlsubscription ;;
		*) continue ;;
		esac
		[ "$at" = "$want" ] || [ "$at" = project ] || continue
		role_permissions "$calls" "$(sed -n 's/.* --role=\([^ ]*\).*/\1/p' <<<"$line")"
	done < <(grep ' add-iam-policy-binding ' "$calls")
}

# check_grants CALLS MODE: every need of NEEDS is granted to whom it is for
check_grants() {
	local calls=$1 mode=$2 method perm at who w member
	while read -r method perm at who; do
		[ -n "$method" ] || continue
		for w in ${who//,/ }; do
			case "$w" in
			relay) member="serviceAccount:$RELAY" ;;
			relay-pull) [ "$mode" = pull ] || continue; member="serviceAccount:$RELAY" ;;
			cli) member=$OPS ;;
			esac
			granted "$calls" "$member" "$at" | grep -Fxq "$perm" ||
				fail "$mode: $member does not hold $perm on the $at ($method)"
		done
	done <<<"$NEEDS"
}

# run_script NAME [ARGS...]: runs gcloud.sh with the stand-in's state $STATE (default main);
# the calls go to $WORK/NAME.calls, stdout and stderr to NAME.out, NAME.err; sets RC.
run_script() {
	local n=$1
	shift
	export GCLOUD_LOG="$WORK/$n.calls" GCLOUD_STATE="$WORK/state-${STATE:-main}"
	: >"$GCLOUD_LOG"
	set +e
	bash "$SCRIPT" --out "$WORK/out-${STATE:-main}" "$@" >"$WORK/$n.out" 2>"$WORK/$n.err"
	RC=$?
	set -e
}

# has CALLS PREFIX [WORD...]: some call in CALLS starts with PREFIX and holds every WORD.
has() {
	local calls=$1 prefix=$2 line w ok
	shift 2
	while IFS= read -r line; do
		[[ "$line" == "$prefix"* ]] || continue
		ok=1
		for w in "$@"; do
			[[ " $line " == *" $w "* ]] || { ok=0; break; }
		done
		[ "$ok" = 0 ] || return 0
	done <"$calls"
	echo "calls made:" >&2
	grep -F -- "${prefix%% *}" "$calls" >&2 || true
	fail "no call '$prefix ...' with: $*"
}
hasnt() { ! grep -q -- "$2" "$1" || fail "$(basename "$1"): unexpected call matching '$2': $(grep -- "$2" "$1" | head -n 1)"; }
creates() { grep -c -E '^[a-z -]+ create ' "$1" || true; }

echo "== --dry-run: nothing is called; every command is printed"
PROJECT_NUMBER=$N run_script dry --dry-run
[ "$RC" = 0 ] || { cat "$WORK/dry.err" >&2; fail "--dry-run exited $RC"; }
[ ! -s "$WORK/dry.calls" ] || fail "--dry-run called gcloud: $(head -n 3 "$WORK/dry.calls")"
grep -q '^+ gcloud ' "$WORK/dry.out" || fail "--dry-run printed no command"
# the printed commands, as the argument lines the stand-in would record
while IFS= read -r line; do
	eval "set -- ${line#+ }"
	shift
	printf '%s\n' "$*"
done < <(grep '^+ gcloud ' "$WORK/dry.out") >"$WORK/dry.printed"

echo "== first run: nothing exists, everything is created"
run_script first
[ "$RC" = 0 ] || { cat "$WORK/first.err" >&2; fail "first run exited $RC"; }
C="$WORK/first.calls"
has "$C" "projects describe $P" "--format=value(projectNumber)"
has "$C" "services enable" run.googleapis.com pubsub.googleapis.com eventarc.googleapis.com \
	cloudscheduler.googleapis.com secretmanager.googleapis.com artifactregistry.googleapis.com \
	cloudbuild.googleapis.com vpcaccess.googleapis.com compute.googleapis.com monitoring.googleapis.com
has "$C" "artifacts repositories create jobrelay" --repository-format=docker "--location=$R" "--project=$P"
for sa in jobrelay jobrelay-invoker job-runtime jobrelay-build; do
	has "$C" "iam service-accounts create $sa " "--project=$P"
done
has "$C" "pubsub topics create jobrelay-events"
has "$C" "pubsub topics create jobrelay-dead"
has "$C" "pubsub subscriptions create jobrelay-dead-keep" --topic=jobrelay-dead \
	--message-retention-duration=7d --expiration-period=never
has "$C" "pubsub subscriptions create jobrelay-push" --topic=jobrelay-events \
	"--dead-letter-topic=projects/$P/topics/jobrelay-dead" --max-delivery-attempts=10 \
	--min-retry-delay=10s --max-retry-delay=600s --ack-deadline=60 --expiration-period=never \
	"--push-endpoint=$URL/projects/$P/topics/jobrelay-events" \
	"--push-auth-service-account=$INVOKER" "--push-auth-token-audience=$URL"
# dead-lettering: the Pub/Sub service agent publishes to the dead-letter topic and
# acknowledges on the source subscription; it mints the invoker's OIDC tokens
has "$C" "pubsub topics add-iam-policy-binding jobrelay-dead" "--member=$PUBSUB_AGENT" --role=roles/pubsub.publisher
has "$C" "pubsub subscriptions add-iam-policy-binding jobrelay-push" "--member=$PUBSUB_AGENT" --role=roles/pubsub.subscriber
has "$C" "iam service-accounts add-iam-policy-binding $INVOKER" "--member=$PUBSUB_AGENT" --role=roles/iam.serviceAccountTokenCreator
has "$C" "pubsub topics add-iam-policy-binding jobrelay-dead" "--member=serviceAccount:$RELAY" --role=roles/pubsub.publisher
has "$C" "pubsub topics add-iam-policy-binding jobrelay-dead" "--member=serviceAccount:$RELAY" --role=roles/pubsub.viewer
# secrets: jobrelay's config (rendered) and the job's, each readable by one account only
has "$C" "secrets create jobrelay-config" --replication-policy=automatic "--data-file=$WORK/out-main/jobrelay.yaml"
has "$C" "secrets create job-api-token" --replication-policy=automatic
has "$C" "secrets add-iam-policy-binding jobrelay-config" "--member=serviceAccount:$RELAY" --role=roles/secretmanager.secretAccessor
has "$C" "secrets add-iam-policy-binding job-api-token" "--member=serviceAccount:$RUNTIME" --role=roles/secretmanager.secretAccessor
# egress: connector, router, static address, NAT on it
has "$C" "compute networks vpc-access connectors create jobrelay-conn" "--region=$R" --network=default --range=10.8.0.0/28
has "$C" "compute routers create jobrelay-router" --network=default "--region=$R"
has "$C" "compute addresses create jobrelay-egress" "--region=$R"
has "$C" "compute routers nats create jobrelay-nat" --router=jobrelay-router "--region=$R" \
	--nat-all-subnet-ip-ranges --nat-external-ip-pool=jobrelay-egress
# Cloud Scheduler publishes to the topic the body the "nightly" route matches
has "$C" "scheduler jobs create pubsub jobrelay-nightly" "--location=$R" --topic=jobrelay-events \
	--message-body='{"schedule":"nightly"}' --time-zone=Etc/UTC
grep -q -- '--schedule=0 3 \* \* \*' "$C" || fail "the scheduler job has no --schedule"
! grep -q -- '--attributes=jobrelay-schedule' "$C" || fail "the scheduler job still sets the attribute"
# Eventarc: a bucket, its service agent may publish, the invoker receives
has "$C" "storage buckets create gs://$P-jobrelay-inbox" "--location=$R" --uniform-bucket-level-access
has "$C" "projects add-iam-policy-binding $P" "--member=serviceAccount:service-$N@gs-project-accounts.iam.gserviceaccount.com" --role=roles/pubsub.publisher
has "$C" "projects add-iam-policy-binding $P" "--member=serviceAccount:$INVOKER" --role=roles/eventarc.eventReceiver
has "$C" "eventarc triggers create jobrelay-inbox" "--location=$R" --destination-run-service=jobrelay \
	"--destination-run-region=$R" --event-filters=type=google.cloud.storage.object.v1.finalized \
	"--event-filters=bucket=$P-jobrelay-inbox" "--service-account=$INVOKER"
# the build account: push, deploy as the two runtime accounts, scan
has "$C" "artifacts repositories add-iam-policy-binding jobrelay" "--member=serviceAccount:$BUILDER" --role=roles/artifactregistry.writer
has "$C" "projects add-iam-policy-binding $P" "--member=serviceAccount:$BUILDER" --role=roles/run.developer
has "$C" "iam service-accounts add-iam-policy-binding $RELAY" "--member=serviceAccount:$BUILDER" --role=roles/iam.serviceAccountUser
has "$C" "iam service-accounts add-iam-policy-binding $RUNTIME" "--member=serviceAccount:$BUILDER" --role=roles/iam.serviceAccountUser
# alerts
has "$C" "alpha monitoring policies create" "--policy-from-file=$WORK/out-main/alert-job-failure-rate.yaml"
has "$C" "alpha monitoring policies create" "--policy-from-file=$WORK/out-main/alert-dead-letters.yaml"
has "$C" "alpha monitoring policies create" "--policy-from-file=$WORK/out-main/alert-breaker-open.yaml"
# metrics: the sidecar's scrape config in a secret jobrelay's account reads; it writes the
# series; the dashboard under its fixed id
has "$C" "secrets create jobrelay-metrics-config" --replication-policy=automatic "--data-file=$WORK/out-main/rungmp.yaml"
has "$C" "secrets add-iam-policy-binding jobrelay-metrics-config" "--member=serviceAccount:$RELAY" --role=roles/secretmanager.secretAccessor
has "$C" "projects add-iam-policy-binding $P" "--member=serviceAccount:$RELAY" --role=roles/monitoring.metricWriter
has "$C" "monitoring dashboards create" "--config-from-file=$WORK/out-main/dashboard.json" "--project=$P"
grep -q "\"name\": \"projects/$P/dashboards/jobrelay\"" "$WORK/out-main/dashboard.json" ||
	fail "the rendered dashboard does not carry its fixed name"
# the service and the job; jobrelay may start this job only, the invoker may call jobrelay only
has "$C" "run jobs replace $WORK/out-main/job.yaml" "--region=$R"
has "$C" "run services replace $WORK/out-main/service.yaml" "--region=$R"
has "$C" "iam roles create jobrelayDispatcher" --stage=GA \
	--permissions=run.executions.get,run.executions.list,run.jobs.run,run.jobs.runWithOverrides
has "$C" "run jobs add-iam-policy-binding example-job" "--member=serviceAccount:$RELAY" "--role=projects/$P/roles/jobrelayDispatcher" "--region=$R"
has "$C" "run jobs add-iam-policy-binding example-job" "--member=user:oncall@example.com" "--role=projects/$P/roles/jobrelayOperator" "--region=$R"
has "$C" "projects add-iam-policy-binding $P" "--member=user:oncall@example.com" "--role=projects/$P/roles/jobrelayJobLister"
has "$C" "run services add-iam-policy-binding jobrelay" "--member=serviceAccount:$INVOKER" --role=roles/run.invoker "--region=$R"
# least privilege: no account gets a project-wide Run, Pub/Sub or Secret Manager role
# beyond the ones checked above
hasnt "$C" "projects add-iam-policy-binding .*--role=roles/\(run.admin\|run.invoker\|run.jobsExecutor\|editor\|owner\|secretmanager\|pubsub.admin\|pubsub.subscriber\)"
# every call ran with the project
if grep -v -- "--project=$P" "$C" | grep -v "^projects describe $P " | contains .; then
	fail "calls without --project: $(grep -v -- "--project=$P" "$C" | grep -v '^projects describe' | head -n 3)"
fi
for f in jobrelay.yaml rungmp.yaml service.yaml job.yaml alert-job-failure-rate.yaml alert-dead-letters.yaml \
	alert-breaker-open.yaml dashboard.json; do
	[ -s "$WORK/state-main/files/$f" ] || fail "$f was not handed to gcloud"
done
n_created=$(creates "$C")
echo "first run: $(wc -l <"$C") calls, $n_created creates"

echo "== --dry-run printed exactly the first run's commands"
grep -v -E '^[a-z -]+ (describe|list) |^projects describe ' "$C" >"$WORK/first.acting"
diff "$WORK/dry.printed" "$WORK/first.acting" >&2 || fail "--dry-run and the first run differ"

echo "== second run: everything exists; nothing is created"
run_script second
[ "$RC" = 0 ] || { cat "$WORK/second.err" >&2; fail "second run exited $RC"; }
assert_eq "$(creates "$WORK/second.calls")" 0 "creates on the second run"
# each resource the first run created was described (or listed) on the second
while IFS= read -r key; do
	case "$key" in
	policy:*) has "$WORK/second.calls" "alpha monitoring policies list" "--filter=displayName=\"${key#policy:}\"" ;;
	*) grep -q "^${key% *} describe ${key##* }" "$WORK/second.calls" || fail "second run did not describe $key" ;;
	esac
done <"$WORK/state-main/created"
assert_eq "$(wc -l <"$WORK/state-main/created")" "$n_created" "resources recorded by the stand-in"
grep -q 'exists' "$WORK/second.err" || fail "second run did not say what exists"
# the dashboard is replaced with the file's content, carrying the etag the describe returned
# (the stand-in refuses an update without the current one)
has "$WORK/second.calls" "monitoring dashboards describe projects/$P/dashboards/jobrelay" "--format=value(etag)"
has "$WORK/second.calls" "monitoring dashboards update projects/$P/dashboards/jobrelay" \
	"--config-from-file=$WORK/out-main/dashboard-update.json" "--project=$P"
grep -q '^  "etag": "etag-1",$' "$WORK/out-main/dashboard-update.json" || fail "the update does not carry the etag"

echo "== --mode pull: a pull subscription, the worker may pull; no HTTP deliveries"
STATE=pull run_script pull --mode pull
[ "$RC" = 0 ] || { cat "$WORK/pull.err" >&2; fail "--mode pull exited $RC"; }
has "$WORK/pull.calls" "pubsub subscriptions create jobrelay-pull" --topic=jobrelay-events \
	"--dead-letter-topic=projects/$P/topics/jobrelay-dead" --max-delivery-attempts=10 --min-retry-delay=10s
has "$WORK/pull.calls" "pubsub subscriptions add-iam-policy-binding jobrelay-pull" "--member=serviceAccount:$RELAY" --role=roles/pubsub.subscriber
has "$WORK/pull.calls" "pubsub subscriptions add-iam-policy-binding jobrelay-pull" "--member=$PUBSUB_AGENT" --role=roles/pubsub.subscriber
hasnt "$WORK/pull.calls" "--push-endpoint"
hasnt "$WORK/pull.calls" "eventarc triggers create"
hasnt "$WORK/pull.calls" "--role=roles/run.invoker"
grep -q 'args: \["pull"\]' "$WORK/out-pull/service.yaml" || fail "pull: the service does not run pull"

echo "== --only deploy (Cloud Build's step): only the service, the job and their IAM"
STATE=deploy run_script deploy --only deploy --image img:1 --job-image job:1
[ "$RC" = 0 ] || { cat "$WORK/deploy.err" >&2; fail "--only deploy exited $RC"; }
assert_eq "$(creates "$WORK/deploy.calls")" 0 "creates with --only deploy"
has "$WORK/deploy.calls" "run services replace"
has "$WORK/deploy.calls" "run jobs replace"
grep -q 'image: img:1' "$WORK/out-deploy/service.yaml" || fail "--image not in the service"
grep -q 'image: job:1' "$WORK/out-deploy/job.yaml" || fail "--job-image not in the job"

echo "== every RPC jobrelay makes has its permission granted, and jobrelay no other Run permission"
mapfile -t rpcs < <(grep -rhoE '"/google\.[A-Za-z0-9_.]+/[A-Za-z]+"' "$JR_SOURCE_DIR/src" | tr -d '"' | sort -u)
[ "${#rpcs[@]}" -ge 8 ] || fail "found only ${#rpcs[@]} RPC names in src/: ${rpcs[*]}"
for m in "${rpcs[@]}"; do
	grep -q "^$m " <<<"$NEEDS" || fail "src/ calls $m: add its permission to NEEDS, deploy/gcloud.sh and docs/deploy.md"
done
check_grants "$C" push
check_grants "$WORK/pull.calls" pull
assert_eq "$(granted "$C" "serviceAccount:$RELAY" job | grep '^run\.' | sort -u | paste -sd, -)" \
	"$(awk '$4 ~ /relay/ && $2 ~ /^run\./ {print $2}' <<<"$NEEDS" | sort -u | paste -sd, -)" \
	"the Cloud Run permissions jobrelay holds"
# on the project, jobrelay's account may only write metrics (roles/monitoring.metricWriter
# exists only there)
relay_project_roles=$(grep "^projects add-iam-policy-binding .*--member=serviceAccount:$RELAY " "$C" |
	sed -n 's/.* --role=\([^ ]*\).*/\1/p' | sort -u | paste -sd, -)
assert_eq "$relay_project_roles" roles/monitoring.metricWriter "jobrelay's roles on the project"
hasnt "$C" "--role=roles/run.jobsExecutor"
while read -r m perm _; do
	[ -z "$m" ] || contains -F "\`$perm\`" "$JR_SOURCE_DIR/docs/deploy.md" ||
		fail "docs/deploy.md does not name $perm ($m)"
done <<<"$NEEDS"

echo "== without OPERATORS nothing is granted to the CLI's users; the roles are still made"
OPERATORS='' PROJECT_NUMBER=$N STATE=noops run_script noops --dry-run
[ "$RC" = 0 ] || { cat "$WORK/noops.err" >&2; fail "--dry-run without OPERATORS exited $RC"; }
hasnt "$WORK/noops.out" "roles/jobrelayOperator --region"
hasnt "$WORK/noops.out" "roles/jobrelayJobLister"
grep -q 'iam roles create jobrelayOperator' "$WORK/noops.out" || fail "the operator role was not made"

echo "== a custom role that drifted is repaired: permissions updated, a deleted role undeleted"
printf 'run.jobs.run\n' >"$WORK/state-main/roles/jobrelayDispatcher"
touch "$WORK/state-main/roles/jobrelayOperator.deleted"
run_script repair --only infra
[ "$RC" = 0 ] || { cat "$WORK/repair.err" >&2; fail "the repairing run exited $RC"; }
has "$WORK/repair.calls" "iam roles update jobrelayDispatcher" \
	--permissions=run.executions.get,run.executions.list,run.jobs.run,run.jobs.runWithOverrides
has "$WORK/repair.calls" "iam roles undelete jobrelayOperator"
hasnt "$WORK/repair.calls" "^iam roles update jobrelayOperator"
hasnt "$WORK/repair.calls" "^iam roles update jobrelayJobLister"
assert_eq "$(creates "$WORK/repair.calls")" 0 "creates on the repairing run"
run_script repaired --only infra
hasnt "$WORK/repaired.calls" "^iam roles \(update\|undelete\)"

echo "== bad settings: exit 2 naming the setting, nothing called"
expect_usage() { # expect_usage WORD ARGS... (env set by the caller)
	local word=$1
	shift
	STATE=bad run_script bad "$@"
	assert_eq "$RC" 2 "exit for $*"
	grep -q -- "$word" "$WORK/bad.err" || fail "no '$word' in: $(cat "$WORK/bad.err")"
	[ ! -s "$WORK/bad.calls" ] || fail "gcloud called despite bad settings ($*)"
}
PROJECT_ID='' expect_usage PROJECT_ID
PROJECT_ID='Not_A_Project' expect_usage PROJECT_ID
expect_usage MODE --mode both
expect_usage "unknown argument '--frobnicate'" --frobnicate
expect_usage "--region needs a value" --region
MAX_DELIVERY_ATTEMPTS=3 expect_usage MAX_DELIVERY_ATTEMPTS
REGION=mars expect_usage REGION
OPERATORS='ops@example.com' expect_usage OPERATORS
printf 'project: ${PROJECT_ID}\nx: ${NOT_A_SETTING}\n' >"$WORK/bad-template.yaml"
CONFIG_TEMPLATE="$WORK/bad-template.yaml" PROJECT_NUMBER=$N expect_usage 'NOT_A_SETTING' --dry-run

echo "== a failing gcloud call stops the script there"
GCLOUD_FAIL='^pubsub topics create jobrelay-events' STATE=fail run_script fail
[ "$RC" != 0 ] || fail "a failed create did not fail the script"
grep -q 'PERMISSION_DENIED' "$WORK/fail.err" || fail "gcloud's error was not shown"
hasnt "$WORK/fail.calls" "^scheduler "
hasnt "$WORK/fail.calls" "^run services replace"

echo "PASS"
