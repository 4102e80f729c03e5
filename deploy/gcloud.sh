#!/usr/bin/env bash
# shellcheck disable=SC2034 # many settings are read by render() through ${!name}
# deploy/gcloud.sh — creates, idempotently, everything jobrelay needs on Google Cloud, then
# deploys the jobrelay service and the example job (docs/deploy.md walks through it):
#
#   APIs; an Artifact Registry repository; the service accounts (jobrelay's own, which may
#   only start the jobs and read their executions; the invoker that Pub/Sub push and Eventarc use to call jobrelay; the
#   jobs' runtime account; the build account) and their IAM bindings; the events topic and
#   jobrelay's subscription (push with OIDC, or pull) with a retry policy and a dead-letter
#   policy; the dead-letter topic and a subscription that keeps the dead letters; the Pub/Sub
#   service agent's grants that dead-lettering needs; the custom roles holding exactly the
#   Cloud Run permissions jobrelay and its CLI use (docs/deploy.md lists them); a bucket and an Eventarc trigger on it; a
#   Cloud Scheduler job that publishes to the topic; the Secret Manager secrets (jobrelay's
#   config, the job's secret); a Serverless VPC Access connector and Cloud NAT (router, static
#   egress address, NAT) for the jobs' egress; alert policies on the jobs' failure rate, on
#   dead-letter volume and on a circuit breaker that stays open; the dashboard of jobrelay's
#   own metrics (deploy/dashboard.json), which the service's Managed Service for Prometheus
#   sidecar writes (its config deploy/rungmp.yaml, in a secret; jobrelay's account may write
#   metrics); and the service (deploy/service.yaml) and job (deploy/job.yaml).
#
# Each resource is described first and created only when missing, so a second run changes
# nothing that exists (IAM bindings and `replace` are idempotent in themselves). It stops at
# the first command that fails.
#
#   deploy/gcloud.sh [--dry-run] [--project P] [--region R] [--mode push|pull]
#                    [--image IMAGE] [--job-image IMAGE] [--only all|infra|deploy]
#
#   --dry-run      print the gcloud commands that would create what is missing (every
#                  resource, as if none existed) and the rendered files; call nothing
#   --only infra   only the platform (no service or job deploy); --only deploy: only render
#                  and replace the service and the job, and their run-level IAM (Cloud Build)
#   --out DIR      where the rendered manifests go (default: a temporary folder, kept)
#
# Settings come from flags or the environment (defaults in brackets). Required: PROJECT_ID.
#   REGION [europe-west2]  MODE [push]  PROJECT_NUMBER [looked up]
#   SERVICE [jobrelay]  JOB [example-job]  AR_REPO [jobrelay]
#   IMAGE [REGION-docker.pkg.dev/PROJECT_ID/AR_REPO/jobrelay:latest]
#   JOB_IMAGE [REGION-docker.pkg.dev/PROJECT_ID/AR_REPO/job-runner:latest]
#   RELAY_SA [jobrelay]  INVOKER_SA [jobrelay-invoker]  RUNTIME_SA [job-runtime]
#   BUILD_SA [jobrelay-build]
#   TOPIC [jobrelay-events]  SUBSCRIPTION [jobrelay-push | jobrelay-pull]
#   DL_TOPIC [jobrelay-dead]  DL_SUBSCRIPTION [jobrelay-dead-keep]
#   ACK_DEADLINE [60]  MAX_DELIVERY_ATTEMPTS [10]  MIN_RETRY_DELAY [10s]  MAX_RETRY_DELAY [600s]
#   DL_RETENTION [7d]
#   CONFIG_SECRET [jobrelay-config]  CONFIG_TEMPLATE [deploy/jobrelay.yaml]
#   JOB_SECRET [job-api-token]  JOB_SECRET_FILE [none: the secret is made without a version]
#   EVENT_BUCKET [PROJECT_ID-jobrelay-inbox]  TRIGGER [jobrelay-inbox]
#   SCHEDULER_JOB [jobrelay-nightly]  SCHEDULE [0 3 * * *]  TIME_ZONE [Etc/UTC]
#   NETWORK [default]  CONNECTOR [jobrelay-conn]  CONNECTOR_RANGE [10.8.0.0/28]
#   ROUTER [jobrelay-router]  NAT [jobrelay-nat]  NAT_ADDRESS [jobrelay-egress]
#   INGRESS [internal]  MIN_INSTANCES [0 push, 1 pull]  MAX_INSTANCES [10]
#   CONCURRENCY [250]  ALERT_CHANNELS [none: comma list of notification channel names]
#   JOB_FAILURE_RATE [0.05]  DEAD_LETTER_THRESHOLD [0]  BREAKER_OPEN_SECONDS [600]
#   METRICS_SECRET [jobrelay-metrics-config]  DASHBOARD_ID [jobrelay]
#   METRICS_SIDECAR_IMAGE [us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/
#                          cloud-run-gmp-sidecar:1.2.0]
#   OPERATORS [none: comma list of members, like group:ops@example.com, who run the CLI]
#
# Exit codes: 0 done; 1 a gcloud command failed; 2 bad usage or settings.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DRY_RUN=0
ONLY=all
OUT_DIR=${OUT_DIR:-}

die() { printf 'gcloud.sh: %s\n' "$*" >&2; exit 2; }
say() { printf 'gcloud.sh: %s\n' "$*" >&2; }
usage() { sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--dry-run) DRY_RUN=1 ;;
	--project | --region | --mode | --image | --job-image | --only | --out)
		[ $# -ge 2 ] || die "$1 needs a value"
		case "$1" in
		--project) PROJECT_ID=$2 ;;
		--region) REGION=$2 ;;
		--mode) MODE=$2 ;;
		--image) IMAGE=$2 ;;
		--job-image) JOB_IMAGE=$2 ;;
		--only) ONLY=$2 ;;
		--out) OUT_DIR=$2 ;;
		esac
		shift
		;;
	--project=* | --region=* | --mode=* | --image=* | --job-image=* | --only=* | --out=*)
		set -- "${1%%=*}" "${1#*=}" "${@:2}"
		continue
		;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done

# ---- settings ----
: "${PROJECT_ID:=${GOOGLE_CLOUD_PROJECT:-}}"
[ -n "$PROJECT_ID" ] || die "PROJECT_ID is not set (--project P, or PROJECT_ID=P)"
[[ "$PROJECT_ID" =~ ^[a-z][-a-z0-9]{4,28}[a-z0-9]$ ]] || die "PROJECT_ID '$PROJECT_ID' is not a project id"
REGION=${REGION:-europe-west2}
[[ "$REGION" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "REGION '$REGION' is not a region (like europe-west2)"
MODE=${MODE:-push}
case "$MODE" in push | pull) ;; *) die "MODE '$MODE' must be push or pull" ;; esac
case "$ONLY" in all | infra | deploy) ;; *) die "--only '$ONLY' must be all, infra or deploy" ;; esac

SERVICE=${SERVICE:-jobrelay}
JOB=${JOB:-example-job}
AR_REPO=${AR_REPO:-jobrelay}
REGISTRY="$REGION-docker.pkg.dev/$PROJECT_ID/$AR_REPO"
IMAGE=${IMAGE:-$REGISTRY/jobrelay:latest}
JOB_IMAGE=${JOB_IMAGE:-$REGISTRY/job-runner:latest}
RELAY_SA=${RELAY_SA:-jobrelay}
INVOKER_SA=${INVOKER_SA:-jobrelay-invoker}
RUNTIME_SA=${RUNTIME_SA:-job-runtime}
BUILD_SA=${BUILD_SA:-jobrelay-build}
TOPIC=${TOPIC:-jobrelay-events}
SUBSCRIPTION=${SUBSCRIPTION:-jobrelay-$MODE}
DL_TOPIC=${DL_TOPIC:-jobrelay-dead}
DL_SUBSCRIPTION=${DL_SUBSCRIPTION:-jobrelay-dead-keep}
ACK_DEADLINE=${ACK_DEADLINE:-60}
MAX_DELIVERY_ATTEMPTS=${MAX_DELIVERY_ATTEMPTS:-10}
MIN_RETRY_DELAY=${MIN_RETRY_DELAY:-10s}
MAX_RETRY_DELAY=${MAX_RETRY_DELAY:-600s}
DL_RETENTION=${DL_RETENTION:-7d}
CONFIG_SECRET=${CONFIG_SECRET:-jobrelay-config}
CONFIG_TEMPLATE=${CONFIG_TEMPLATE:-$HERE/jobrelay.yaml}
JOB_SECRET=${JOB_SECRET:-job-api-token}
JOB_SECRET_FILE=${JOB_SECRET_FILE:-}
EVENT_BUCKET=${EVENT_BUCKET:-$PROJECT_ID-jobrelay-inbox}
TRIGGER=${TRIGGER:-jobrelay-inbox}
SCHEDULER_JOB=${SCHEDULER_JOB:-jobrelay-nightly}
SCHEDULE=${SCHEDULE:-0 3 * * *}
TIME_ZONE=${TIME_ZONE:-Etc/UTC}
NETWORK=${NETWORK:-default}
CONNECTOR=${CONNECTOR:-jobrelay-conn}
CONNECTOR_RANGE=${CONNECTOR_RANGE:-10.8.0.0/28}
ROUTER=${ROUTER:-jobrelay-router}
NAT=${NAT:-jobrelay-nat}
NAT_ADDRESS=${NAT_ADDRESS:-jobrelay-egress}
INGRESS=${INGRESS:-internal}
if [ "$MODE" = pull ]; then
	MIN_INSTANCES=${MIN_INSTANCES:-1}
	CPU_THROTTLING=false # a pull worker works between requests: CPU always allocated
	RELAY_COMMAND=pull
else
	MIN_INSTANCES=${MIN_INSTANCES:-0}
	CPU_THROTTLING=true # serve works only while a delivery is open
	RELAY_COMMAND=serve
fi
MAX_INSTANCES=${MAX_INSTANCES:-10}
CONCURRENCY=${CONCURRENCY:-250}
ALERT_CHANNELS=${ALERT_CHANNELS:-}
OPERATORS=${OPERATORS:-}
OPERATOR_MEMBERS=()
[ -z "$OPERATORS" ] || IFS=, read -ra OPERATOR_MEMBERS <<<"$OPERATORS"
for m in "${OPERATOR_MEMBERS[@]}"; do
	[[ "$m" =~ ^(user|group|serviceAccount|domain):[^[:space:]*?]+$ ]] ||
		die "OPERATORS: '$m' is not a member (user:, group:, serviceAccount: or domain:)"
done
JOB_FAILURE_RATE=${JOB_FAILURE_RATE:-0.05}
DEAD_LETTER_THRESHOLD=${DEAD_LETTER_THRESHOLD:-0}
BREAKER_OPEN_SECONDS=${BREAKER_OPEN_SECONDS:-600}
METRICS_SECRET=${METRICS_SECRET:-jobrelay-metrics-config}
METRICS_SIDECAR_IMAGE=${METRICS_SIDECAR_IMAGE:-us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0}
DASHBOARD_ID=${DASHBOARD_ID:-jobrelay}

for v in MAX_DELIVERY_ATTEMPTS ACK_DEADLINE MIN_INSTANCES MAX_INSTANCES CONCURRENCY DEAD_LETTER_THRESHOLD \
	BREAKER_OPEN_SECONDS; do
	[[ "${!v}" =~ ^[0-9]+$ ]] || die "$v '${!v}' is not a whole number"
done
if [ "$MAX_DELIVERY_ATTEMPTS" -lt 5 ] || [ "$MAX_DELIVERY_ATTEMPTS" -gt 100 ]; then
	die "MAX_DELIVERY_ATTEMPTS must be 5..100 (Pub/Sub's range), not $MAX_DELIVERY_ATTEMPTS"
fi
if [ "$ACK_DEADLINE" -lt 10 ] || [ "$ACK_DEADLINE" -gt 600 ]; then
	die "ACK_DEADLINE must be 10..600 seconds, not $ACK_DEADLINE"
fi
[ -f "$CONFIG_TEMPLATE" ] || die "CONFIG_TEMPLATE '$CONFIG_TEMPLATE' does not exist"
[ -z "$JOB_SECRET_FILE" ] || [ -f "$JOB_SECRET_FILE" ] || die "JOB_SECRET_FILE '$JOB_SECRET_FILE' does not exist"

sa_email() { printf '%s@%s.iam.gserviceaccount.com' "$1" "$PROJECT_ID"; }
RELAY_EMAIL=$(sa_email "$RELAY_SA")
INVOKER_EMAIL=$(sa_email "$INVOKER_SA")
RUNTIME_EMAIL=$(sa_email "$RUNTIME_SA")
BUILD_EMAIL=$(sa_email "$BUILD_SA")
TOPIC_PATH="projects/$PROJECT_ID/topics/$TOPIC"
DL_TOPIC_PATH="projects/$PROJECT_ID/topics/$DL_TOPIC"
SUBSCRIPTION_PATH="projects/$PROJECT_ID/subscriptions/$SUBSCRIPTION"
CONNECTOR_PATH="projects/$PROJECT_ID/locations/$REGION/connectors/$CONNECTOR"

# ---- the Cloud Run permissions, as custom roles of the project (docs/deploy.md) ----
# jobrelay (serve, pull, replay; granted on each job it starts): RunJob with overrides,
# GetExecution (ack: on_completion), ListExecutions (the lookup after an ambiguous RunJob
# failure, so that the job is not started twice).
DISPATCH_ROLE=jobrelayDispatcher
DISPATCH_PERMISSIONS=(run.jobs.run run.jobs.runWithOverrides run.executions.get run.executions.list)
# the CLI's users (OPERATORS; on each job): the above (jobs run, executions list|get|wait,
# replay) and executions cancel
OPERATE_ROLE=jobrelayOperator
OPERATE_PERMISSIONS=("${DISPATCH_PERMISSIONS[@]}" run.executions.cancel)
# the CLI's users (on the project, where ListJobs is authorised): jobs list
LIST_ROLE=jobrelayJobLister
LIST_PERMISSIONS=(run.jobs.list)
role_path() { printf 'projects/%s/roles/%s' "$PROJECT_ID" "$1"; }

# ---- running gcloud ----
export CLOUDSDK_CORE_DISABLE_PROMPTS=1

# run CMD...: runs it, or with --dry-run prints it (shell-quoted) on stdout.
run() {
	if [ "$DRY_RUN" -eq 1 ]; then
		local out="+" a
		for a in "$@"; do out+=" $(printf '%q' "$a")"; done
		printf '%s\n' "$out"
	else
		"$@"
	fi
}
g() { run gcloud "$@" --project="$PROJECT_ID"; }

# exists DESCRIBE-ARGS...: the describe succeeds (never with --dry-run: nothing is asked).
exists() {
	[ "$DRY_RUN" -eq 0 ] || return 1
	gcloud "$@" --project="$PROJECT_ID" >/dev/null 2>&1
}

# ensure WHAT DESCRIBE-ARGS... -- CREATE-ARGS...: create unless the describe finds it.
ensure() {
	local what=$1 d=()
	shift
	while [ "$1" != -- ]; do d+=("$1"); shift; done
	shift
	if exists "${d[@]}"; then
		say "$what: exists"
	else
		say "$what: creating"
		g "$@"
	fi
}

# bind KIND NAME MEMBER ROLE [EXTRA...]: add an IAM binding (idempotent in IAM itself).
bind() {
	local kind=$1 name=$2 member=$3 role=$4
	shift 4
	say "IAM: $role for $member on ${kind#* } ${name:-$PROJECT_ID}"
	case "$kind" in
	project) g projects add-iam-policy-binding "$PROJECT_ID" --member="$member" --role="$role" --condition=None ;;
	*)
		# shellcheck disable=SC2086 # KIND is the command group, two words
		g $kind add-iam-policy-binding "$name" --member="$member" --role="$role" "$@"
		;;
	esac
}

# ensure_role ID TITLE PERMISSION...: the project's custom role ID holds exactly these
# permissions: created when missing, undeleted when deleted, updated when they differ.
ensure_role() {
	local id=$1 title=$2 want have deleted
	shift 2
	want=$(printf '%s\n' "$@" | sort -u | paste -sd, -)
	if [ "$DRY_RUN" -eq 0 ] &&
		have=$(gcloud iam roles describe "$id" --project="$PROJECT_ID" \
			--format='value(deleted,includedPermissions)' 2>/dev/null); then
		deleted=${have%%$'\t'*}
		have=$(printf '%s' "${have#*$'\t'}" | tr ';' '\n' | sort -u | paste -sd, -)
		if [ "$deleted" = True ]; then
			say "custom role $id: deleted; undeleting"
			g iam roles undelete "$id"
		fi
		if [ "$have" = "$want" ]; then
			say "custom role $id: exists"
		else
			say "custom role $id: updating its permissions to $want"
			g iam roles update "$id" --permissions="$want"
		fi
	else
		say "custom role $id: creating ($want)"
		g iam roles create "$id" --title="$title" --permissions="$want" --stage=GA \
			--description="jobrelay (deploy/gcloud.sh, docs/deploy.md)"
	fi
}

# render TEMPLATE OUT: replaces ${NAME} for the settings above; any other ${...} is an error.
RENDER_VARS=(PROJECT_ID PROJECT_NUMBER REGION SERVICE JOB IMAGE JOB_IMAGE RELAY_EMAIL
	INVOKER_EMAIL RUNTIME_EMAIL TOPIC TOPIC_PATH DL_TOPIC DL_TOPIC_PATH SUBSCRIPTION
	SUBSCRIPTION_PATH CONFIG_SECRET JOB_SECRET CONNECTOR_PATH INGRESS MIN_INSTANCES
	MAX_INSTANCES CONCURRENCY CPU_THROTTLING RELAY_COMMAND JOB_FAILURE_RATE
	DEAD_LETTER_THRESHOLD SCHEDULER_JOB DL_SUBSCRIPTION METRICS_SECRET METRICS_SIDECAR_IMAGE
	BREAKER_OPEN_SECONDS DASHBOARD_ID)
render() {
	local text v left
	text=$(<"$1")
	for v in "${RENDER_VARS[@]}"; do
		text=${text//"\${$v}"/${!v}}
	done
	# shellcheck disable=SC2016 # a literal ${
	left=$(grep -o '\${[A-Za-z_]*}' <<<"$text" | sort -u | tr '\n' ' ' || true)
	[ -z "$left" ] || die "$1: unknown placeholders: $left"
	printf '%s\n' "$text" >"$2"
}

# ---- the project number (the service agents' emails carry it) ----
if [ -z "${PROJECT_NUMBER:-}" ]; then
	if [ "$DRY_RUN" -eq 1 ]; then
		PROJECT_NUMBER=PROJECT_NUMBER
	else
		PROJECT_NUMBER=$(gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)')
	fi
fi
[[ "$PROJECT_NUMBER" =~ ^([0-9]+|PROJECT_NUMBER)$ ]] || die "PROJECT_NUMBER '$PROJECT_NUMBER' is not a number"
PUBSUB_AGENT="serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
STORAGE_AGENT="serviceAccount:service-$PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com"
# Cloud Run's deterministic URL, known before the first deploy
SERVICE_URL="https://$SERVICE-$PROJECT_NUMBER.$REGION.run.app"

if [ -z "$OUT_DIR" ]; then
	OUT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/jobrelay-deploy.XXXXXX")
fi
mkdir -p "$OUT_DIR"
say "project $PROJECT_ID ($PROJECT_NUMBER), region $REGION, mode $MODE; rendered files in $OUT_DIR"
[ "$DRY_RUN" -eq 0 ] || say "dry run: printing the commands, calling nothing"

# ---- the platform ----
infra() {
	say "enabling the APIs"
	g services enable run.googleapis.com pubsub.googleapis.com eventarc.googleapis.com \
		cloudscheduler.googleapis.com secretmanager.googleapis.com \
		artifactregistry.googleapis.com cloudbuild.googleapis.com \
		ondemandscanning.googleapis.com vpcaccess.googleapis.com compute.googleapis.com \
		monitoring.googleapis.com logging.googleapis.com storage.googleapis.com \
		iam.googleapis.com

	ensure "Artifact Registry repository $AR_REPO" \
		artifacts repositories describe "$AR_REPO" --location="$REGION" -- \
		artifacts repositories create "$AR_REPO" --repository-format=docker \
		--location="$REGION" --description="jobrelay and job images"

	local sa
	for sa in "$RELAY_SA:jobrelay (its own identity; starts the jobs)" \
		"$INVOKER_SA:jobrelay invoker (Pub/Sub push and Eventarc deliveries)" \
		"$RUNTIME_SA:job runtime (the jobs run as it)" \
		"$BUILD_SA:jobrelay build (Cloud Build: build, scan, push, deploy)"; do
		ensure "service account ${sa%%:*}" \
			iam service-accounts describe "$(sa_email "${sa%%:*}")" -- \
			iam service-accounts create "${sa%%:*}" --display-name="${sa#*:}"
	done

	# Pub/Sub: the dead-letter topic first (the subscriptions name it)
	ensure "topic $DL_TOPIC" pubsub topics describe "$DL_TOPIC" -- \
		pubsub topics create "$DL_TOPIC" --labels=app=jobrelay,role=dead-letter
	ensure "subscription $DL_SUBSCRIPTION (keeps the dead letters for replay)" \
		pubsub subscriptions describe "$DL_SUBSCRIPTION" -- \
		pubsub subscriptions create "$DL_SUBSCRIPTION" --topic="$DL_TOPIC" \
		--message-retention-duration="$DL_RETENTION" --expiration-period=never \
		--ack-deadline=60 --labels=app=jobrelay,role=dead-letter
	ensure "topic $TOPIC" pubsub topics describe "$TOPIC" -- \
		pubsub topics create "$TOPIC" --labels=app=jobrelay

	local policy=(--ack-deadline="$ACK_DEADLINE" --dead-letter-topic="$DL_TOPIC_PATH"
		--max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" --min-retry-delay="$MIN_RETRY_DELAY"
		--max-retry-delay="$MAX_RETRY_DELAY" --expiration-period=never --labels=app=jobrelay)
	if [ "$MODE" = push ]; then
		ensure "push subscription $SUBSCRIPTION -> $SERVICE_URL (OIDC as $INVOKER_EMAIL)" \
			pubsub subscriptions describe "$SUBSCRIPTION" -- \
			pubsub subscriptions create "$SUBSCRIPTION" --topic="$TOPIC" "${policy[@]}" \
			--push-endpoint="$SERVICE_URL/projects/$PROJECT_ID/topics/$TOPIC" \
			--push-auth-service-account="$INVOKER_EMAIL" \
			--push-auth-token-audience="$SERVICE_URL"
	else
		ensure "pull subscription $SUBSCRIPTION" \
			pubsub subscriptions describe "$SUBSCRIPTION" -- \
			pubsub subscriptions create "$SUBSCRIPTION" --topic="$TOPIC" "${policy[@]}"
	fi

	# Dead-lettering: the Pub/Sub service agent forwards to the dead-letter topic and acks
	# the source subscription; push with OIDC: it mints tokens for the invoker.
	bind "pubsub topics" "$DL_TOPIC" "$PUBSUB_AGENT" roles/pubsub.publisher
	bind "pubsub subscriptions" "$SUBSCRIPTION" "$PUBSUB_AGENT" roles/pubsub.subscriber
	if [ "$MODE" = push ]; then
		bind "iam service-accounts" "$INVOKER_EMAIL" "$PUBSUB_AGENT" roles/iam.serviceAccountTokenCreator
	fi
	# jobrelay: writes its own dead letters, and checks the topic at start (GetTopic:
	# DLTOPIC-READY, docs/dead-letter.md); pulls from its subscription (pull mode)
	bind "pubsub topics" "$DL_TOPIC" "serviceAccount:$RELAY_EMAIL" roles/pubsub.publisher
	bind "pubsub topics" "$DL_TOPIC" "serviceAccount:$RELAY_EMAIL" roles/pubsub.viewer
	if [ "$MODE" = pull ]; then
		bind "pubsub subscriptions" "$SUBSCRIPTION" "serviceAccount:$RELAY_EMAIL" roles/pubsub.subscriber
	fi

	# Cloud Run: the custom roles the deploy step binds on each job, and the CLI's users' jobs
	# list on the project
	ensure_role "$DISPATCH_ROLE" "jobrelay: start jobs, read their executions" "${DISPATCH_PERMISSIONS[@]}"
	ensure_role "$OPERATE_ROLE" "jobrelay CLI: start jobs, read and cancel executions" "${OPERATE_PERMISSIONS[@]}"
	ensure_role "$LIST_ROLE" "jobrelay CLI: list jobs" "${LIST_PERMISSIONS[@]}"
	local m
	for m in "${OPERATOR_MEMBERS[@]}"; do
		bind project "" "$m" "$(role_path "$LIST_ROLE")"
		# jobrelay redrive --subscription: pull, ack and release the kept dead letters
		bind "pubsub subscriptions" "$DL_SUBSCRIPTION" "$m" roles/pubsub.subscriber
	done

	# Secret Manager: jobrelay's config (a file in the service) and the job's secret
	local cfg="$OUT_DIR/jobrelay.yaml"
	render "$CONFIG_TEMPLATE" "$cfg"
	say "config rendered: $cfg"
	ensure "secret $CONFIG_SECRET (jobrelay's config)" secrets describe "$CONFIG_SECRET" -- \
		secrets create "$CONFIG_SECRET" --replication-policy=automatic --data-file="$cfg" \
		--labels=app=jobrelay
	if [ -n "$JOB_SECRET_FILE" ]; then
		ensure "secret $JOB_SECRET (the job's)" secrets describe "$JOB_SECRET" -- \
			secrets create "$JOB_SECRET" --replication-policy=automatic \
			--data-file="$JOB_SECRET_FILE" --labels=app=jobrelay
	else
		ensure "secret $JOB_SECRET (the job's; add a version before the job runs)" \
			secrets describe "$JOB_SECRET" -- \
			secrets create "$JOB_SECRET" --replication-policy=automatic --labels=app=jobrelay
	fi
	bind secrets "$CONFIG_SECRET" "serviceAccount:$RELAY_EMAIL" roles/secretmanager.secretAccessor

	# Metrics: the sidecar's scrape config (a file in the service), read and written to Cloud
	# Monitoring as the service's account; metricWriter exists only at project level
	local metrics_cfg="$OUT_DIR/rungmp.yaml"
	render "$HERE/rungmp.yaml" "$metrics_cfg"
	ensure "secret $METRICS_SECRET (the metrics sidecar's config)" secrets describe "$METRICS_SECRET" -- \
		secrets create "$METRICS_SECRET" --replication-policy=automatic --data-file="$metrics_cfg" \
		--labels=app=jobrelay
	bind secrets "$METRICS_SECRET" "serviceAccount:$RELAY_EMAIL" roles/secretmanager.secretAccessor
	bind project "" "serviceAccount:$RELAY_EMAIL" roles/monitoring.metricWriter
	bind secrets "$JOB_SECRET" "serviceAccount:$RUNTIME_EMAIL" roles/secretmanager.secretAccessor

	# Egress of the jobs: connector into the VPC, then Cloud NAT on one static address
	ensure "VPC connector $CONNECTOR" \
		compute networks vpc-access connectors describe "$CONNECTOR" --region="$REGION" -- \
		compute networks vpc-access connectors create "$CONNECTOR" --region="$REGION" \
		--network="$NETWORK" --range="$CONNECTOR_RANGE" --min-instances=2 --max-instances=3 \
		--machine-type=e2-micro
	ensure "router $ROUTER" compute routers describe "$ROUTER" --region="$REGION" -- \
		compute routers create "$ROUTER" --network="$NETWORK" --region="$REGION"
	ensure "egress address $NAT_ADDRESS" compute addresses describe "$NAT_ADDRESS" --region="$REGION" -- \
		compute addresses create "$NAT_ADDRESS" --region="$REGION"
	ensure "Cloud NAT $NAT" \
		compute routers nats describe "$NAT" --router="$ROUTER" --region="$REGION" -- \
		compute routers nats create "$NAT" --router="$ROUTER" --region="$REGION" \
		--nat-all-subnet-ip-ranges --nat-external-ip-pool="$NAT_ADDRESS" --enable-logging

	# Cloud Scheduler publishes to the topic; jobrelay's "nightly" route matches the body
	ensure "scheduler job $SCHEDULER_JOB" \
		scheduler jobs describe "$SCHEDULER_JOB" --location="$REGION" -- \
		scheduler jobs create pubsub "$SCHEDULER_JOB" --location="$REGION" \
		--schedule="$SCHEDULE" --time-zone="$TIME_ZONE" --topic="$TOPIC" \
		--message-body='{"schedule":"nightly"}' \
		--description="publishes the nightly event to $TOPIC"

	# The bucket whose uploads the Eventarc trigger delivers over HTTP (push mode); the
	# storage service agent publishes the events, the invoker receives them
	if [ "$MODE" = push ]; then
		ensure "bucket gs://$EVENT_BUCKET" storage buckets describe "gs://$EVENT_BUCKET" -- \
			storage buckets create "gs://$EVENT_BUCKET" --location="$REGION" \
			--uniform-bucket-level-access --public-access-prevention
		bind project "" "$STORAGE_AGENT" roles/pubsub.publisher
		bind project "" "serviceAccount:$INVOKER_EMAIL" roles/eventarc.eventReceiver
	fi

	# Cloud Build's account: push images, deploy as the two runtime accounts
	bind "artifacts repositories" "$AR_REPO" "serviceAccount:$BUILD_EMAIL" \
		roles/artifactregistry.writer --location="$REGION"
	bind project "" "serviceAccount:$BUILD_EMAIL" roles/run.developer
	bind project "" "serviceAccount:$BUILD_EMAIL" roles/logging.logWriter
	bind project "" "serviceAccount:$BUILD_EMAIL" roles/ondemandscanning.admin
	bind "iam service-accounts" "$RELAY_EMAIL" "serviceAccount:$BUILD_EMAIL" roles/iam.serviceAccountUser
	bind "iam service-accounts" "$RUNTIME_EMAIL" "serviceAccount:$BUILD_EMAIL" roles/iam.serviceAccountUser

	# Alerts (Cloud Monitoring), found again by their display names
	local f name chan=()
	[ -z "$ALERT_CHANNELS" ] || chan=(--notification-channels="$ALERT_CHANNELS")
	for f in alert-job-failure-rate alert-dead-letters alert-breaker-open; do
		render "$HERE/$f.yaml" "$OUT_DIR/$f.yaml"
		name=$(sed -n 's/^displayName: *//p' "$OUT_DIR/$f.yaml" | head -n 1 | tr -d "'\"")
		if [ "$DRY_RUN" -eq 0 ] &&
			[ -n "$(gcloud alpha monitoring policies list --project="$PROJECT_ID" \
				--filter="displayName=\"$name\"" --format='value(name)')" ]; then
			say "alert policy '$name': exists"
		else
			say "alert policy '$name': creating"
			g alpha monitoring policies create --policy-from-file="$OUT_DIR/$f.yaml" "${chan[@]}"
		fi
	done

	# The dashboard, under a fixed id: created, or replaced with the file's content (an update
	# carries the etag the describe returned, so it never overwrites a change made meanwhile)
	local dash="projects/$PROJECT_ID/dashboards/$DASHBOARD_ID" etag=
	render "$HERE/dashboard.json" "$OUT_DIR/dashboard.json"
	if [ "$DRY_RUN" -eq 0 ] &&
		etag=$(gcloud monitoring dashboards describe "$dash" --project="$PROJECT_ID" \
			--format='value(etag)' 2>/dev/null); then
		[[ "$etag" =~ ^[A-Za-z0-9_-]+$ ]] || { say "dashboard $dash: unexpected etag '$etag'"; exit 1; }
		say "dashboard $dash: exists; updating it"
		sed "1s/^{\$/{\n  \"etag\": \"$etag\",/" "$OUT_DIR/dashboard.json" >"$OUT_DIR/dashboard-update.json"
		g monitoring dashboards update "$dash" --config-from-file="$OUT_DIR/dashboard-update.json"
	else
		say "dashboard $dash: creating"
		g monitoring dashboards create --config-from-file="$OUT_DIR/dashboard.json"
	fi
}

# ---- the service and the job ----
deploy() {
	render "$HERE/service.yaml" "$OUT_DIR/service.yaml"
	render "$HERE/job.yaml" "$OUT_DIR/job.yaml"
	say "deploying the job $JOB ($JOB_IMAGE) and the service $SERVICE ($IMAGE, $RELAY_COMMAND)"
	g run jobs replace "$OUT_DIR/job.yaml" --region="$REGION"
	g run services replace "$OUT_DIR/service.yaml" --region="$REGION"
	# jobrelay may start (with overrides) this job and no other, and read its executions; the
	# CLI's users may also cancel them; only the invoker may call the service
	bind "run jobs" "$JOB" "serviceAccount:$RELAY_EMAIL" "$(role_path "$DISPATCH_ROLE")" \
		--region="$REGION"
	local m
	for m in "${OPERATOR_MEMBERS[@]}"; do
		bind "run jobs" "$JOB" "$m" "$(role_path "$OPERATE_ROLE")" --region="$REGION"
	done
	# the rest is for deliveries over HTTP, which a pull worker does not take
	[ "$MODE" = push ] || return 0
	bind "run services" "$SERVICE" "serviceAccount:$INVOKER_EMAIL" roles/run.invoker \
		--region="$REGION"
	if [ "$ONLY" = all ]; then
		ensure "Eventarc trigger $TRIGGER (gs://$EVENT_BUCKET uploads -> $SERVICE)" \
			eventarc triggers describe "$TRIGGER" --location="$REGION" -- \
			eventarc triggers create "$TRIGGER" --location="$REGION" \
			--destination-run-service="$SERVICE" --destination-run-region="$REGION" \
			--destination-run-path=/ \
			--event-filters="type=google.cloud.storage.object.v1.finalized" \
			--event-filters="bucket=$EVENT_BUCKET" \
			--service-account="$INVOKER_EMAIL"
	fi
}

case "$ONLY" in
all) infra; deploy ;;
infra) infra ;;
deploy) deploy ;;
esac
say "done"
