#!/usr/bin/env bash
# shellcheck disable=SC2016 # single-quoted $ are for the shells the test starts
# docs/deploy-quick.md's commands, so the page cannot rot: its code blocks (marked
# "<!-- quick: NAME -->") are taken from the page and run, as a user would paste them, with the
# stand-in gcloud (tests/deploy/gcloud) first on PATH, which records each call. Checked:
# - the config block passes `jobrelay check-config` and routes to the job the commands name;
# - push is four gcloud commands, pull five (steps 1-2 of push, then its own three), with no
#   config file: $JOBRELAY_JOB names the job bound in step 2 (and it passes check-config);
#   each is a gcloud command group, verb and flags that gcloud has (the table below, from
#   Google's gcloud reference), with --project;
# - they fit together: the service runs as the account created and bound, the push endpoint is
#   the service's URL with the topic's path, pull runs `pull` on the subscription it creates;
# - the "config file" way: the config block passes check-config, the secret holds it and is
#   mounted where the image reads its config (the Dockerfile's JOBRELAY_CONFIG).
# shellcheck source=tests/integration/lib.sh
. "$JR_SOURCE_DIR/tests/integration/lib.sh"
PAGE="$JR_SOURCE_DIR/docs/deploy-quick.md"
export PATH="$JR_SOURCE_DIR/tests/deploy:$PATH"
[ "$(command -v gcloud)" = "$JR_SOURCE_DIR/tests/deploy/gcloud" ] || fail "the stand-in gcloud is not first on PATH"
unset PROJECT_ID PROJECT_NUMBER REGION TOPIC JOB SA GOOGLE_CLOUD_PROJECT

# block NAME: the code block after "<!-- quick: NAME -->"
block() {
	awk -v want="<!-- quick: $1 -->" '
		$0 == want { armed = 1; next }
		armed && /^```/ { if (inside) exit; inside = 1; next }
		inside { print }' "$PAGE"
}
for b in settings config push pull file; do
	[ -n "$(block "$b")" ] || fail "docs/deploy-quick.md has no '$b' block"
done

echo "== the config block passes check-config"
mkdir -p "$WORK/repo"
block config >"$WORK/repo/jobrelay.yaml"
"$JOBRELAY" --config "$WORK/repo/jobrelay.yaml" check-config >"$WORK/check.out" 2>&1 ||
	{ cat "$WORK/check.out" >&2; fail "the page's config does not pass check-config"; }
grep -q "job: projects/acme-prod/locations/europe-west2/jobs/process-order" "$WORK/check.out" ||
	{ cat "$WORK/check.out" >&2; fail "the page's route does not start the job"; }

# run NAME BLOCKS...: the blocks as one script (settings first), in a folder standing for the
# repository's root, against a fresh stand-in; the calls go to $WORK/NAME.calls
run() {
	local n=$1
	shift
	{
		echo 'set -euo pipefail'
		block settings
		for b in "$@"; do block "$b"; done
	} >"$WORK/$n.sh"
	export GCLOUD_LOG="$WORK/$n.calls" GCLOUD_STATE="$WORK/state-$n"
	: >"$GCLOUD_LOG"
	(cd "$WORK/repo" && bash "$WORK/$n.sh") >"$WORK/$n.out" 2>&1 ||
		{ cat "$WORK/$n.out" >&2; fail "the page's $* commands failed against the stand-in"; }
}

# What gcloud accepts, for the commands the page may use: "GROUP VERB" -> positional
# arguments and flags (https://cloud.google.com/sdk/gcloud/reference/...).
declare -A FLAGS=(
	["projects describe"]="1 --format"
	["iam service-accounts create"]="1 --display-name --description"
	["run jobs add-iam-policy-binding"]="1 --region --member --role --condition"
	["secrets create"]="1 --replication-policy --data-file --locations --labels"
	["secrets add-iam-policy-binding"]="1 --member --role --condition"
	["run deploy"]="1 --source --image --region --service-account --set-secrets --update-secrets --ingress --allow-unauthenticated --no-allow-unauthenticated --timeout --concurrency --args --command --min-instances --max-instances --no-cpu-throttling --cpu-throttling --set-env-vars --memory --cpu"
	["pubsub subscriptions create"]="1 --topic --push-endpoint --push-auth-service-account --push-auth-token-audience --ack-deadline --dead-letter-topic --max-delivery-attempts --min-retry-delay --max-retry-delay --expiration-period --message-retention-duration --labels"
	["pubsub subscriptions add-iam-policy-binding"]="1 --member --role --condition"
)
# check_calls CALLS: every call is a known command with known flags and --project
check_calls() {
	local line cmd found spec w pos
	while IFS= read -r line; do
		found=
		for cmd in "${!FLAGS[@]}"; do
			[[ "$line " == "$cmd "* ]] && { found=$cmd; break; }
		done
		[ -n "$found" ] || fail "$(basename "$1"): not a command the page may use: $line"
		spec=" ${FLAGS[$found]#* } --project "
		pos=0
		# shellcheck disable=SC2086 # the recorded words, split as gcloud got them
		for w in ${line#"$found"}; do
			case "$w" in
			--*) [[ "$spec" == *" ${w%%=*} "* ]] || fail "gcloud $found has no flag ${w%%=*} ($line)" ;;
			*) pos=$((pos + 1)) ;;
			esac
		done
		[ "$pos" -le "${FLAGS[$found]%% *}" ] || fail "gcloud $found: $pos positional arguments ($line)"
		[[ " $line " == *" --project=acme-prod "* ]] || [[ "$found" == "projects describe" ]] ||
			fail "without --project: $line"
	done <"$1"
}
# commands CALLS: the calls the steps made (not the settings' project-number lookup)
commands() { grep -vc '^projects describe ' "$1" || true; }
SA_EMAIL=jobrelay@acme-prod.iam.gserviceaccount.com
MOUNT=$(sed -n 's/^ENV .*JOBRELAY_CONFIG=\([^ ]*\).*/\1/p' "$JR_SOURCE_DIR/Dockerfile" | head -n 1)
[ -n "$MOUNT" ] || fail "the Dockerfile sets no JOBRELAY_CONFIG"

# env_of CALLS NAME: the value of NAME in the deploy's --set-env-vars
env_of() { sed -n 's/^run deploy .*--set-env-vars=\([^ ]*\).*/\1/p' "$1" | tr ',' '\n' | sed -n "s/^$2=//p"; }
JOB_NAME=projects/acme-prod/locations/europe-west2/jobs/process-order

echo "== push: four commands that gcloud accepts and that fit together"
run push push
C="$WORK/push.calls"
check_calls "$C"
assert_eq "$(commands "$C")" 4 "push commands"
grep -q "^iam service-accounts create jobrelay " "$C" || fail "push: no service account"
grep -q "^run jobs add-iam-policy-binding process-order .*--region=europe-west2 .*--member=serviceAccount:$SA_EMAIL .*--role=roles/run.developer" "$C" ||
	fail "push: the account may not start the job"
grep -q "^run deploy jobrelay .*--source=\. .*--service-account=$SA_EMAIL " "$C" || fail "push: the deploy does not run as the account"
assert_eq "$(env_of "$C" JOBRELAY_JOB)" "$JOB_NAME" "push: JOBRELAY_JOB"
! grep -q "^run deploy .*--args=" "$C" || fail "push: the image's default command is serve"
grep -q "^pubsub subscriptions create jobrelay-push .*--topic=orders .*--push-endpoint=https://jobrelay-123456789012.europe-west2.run.app/projects/acme-prod/topics/orders" "$C" ||
	fail "push: the subscription does not push to the service's URL with the topic's path"
# what the deployed service would read: no file at JOBRELAY_CONFIG, the deploy's env
(cd "$WORK" && env -u JOBRELAY_CONFIG JOBRELAY_CONFIG="$WORK/absent.yaml" JOBRELAY_JOB="$(env_of "$C" JOBRELAY_JOB)" \
	"$JOBRELAY" check-config >"$WORK/push-check.out" 2>&1) || { cat "$WORK/push-check.out" >&2; fail "push: the deploy's env does not pass check-config"; }
grep -q "job: $JOB_NAME" "$WORK/push-check.out" || { cat "$WORK/push-check.out" >&2; fail "push: the env's route does not start the job"; }

echo "== pull: steps 1-2, then three commands"
run pull pull
C="$WORK/pull.calls"
check_calls "$C"
assert_eq "$(commands "$C")" 3 "pull's own commands"
grep -q "^pubsub subscriptions create jobrelay-pull .*--topic=orders" "$C" || fail "pull: no subscription"
grep -q "^pubsub subscriptions add-iam-policy-binding jobrelay-pull .*--member=serviceAccount:$SA_EMAIL .*--role=roles/pubsub.subscriber" "$C" ||
	fail "pull: the account may not pull"
grep -q "^run deploy jobrelay .*--service-account=$SA_EMAIL .*--args=pull .*--min-instances=1 .*--no-cpu-throttling" "$C" ||
	fail "pull: the worker does not run pull, always on, as the account"
assert_eq "$(env_of "$C" JOBRELAY_JOB)" "$JOB_NAME" "pull: JOBRELAY_JOB"
assert_eq "$(env_of "$C" JOBRELAY_SUBSCRIPTION)" projects/acme-prod/subscriptions/jobrelay-pull "pull: JOBRELAY_SUBSCRIPTION"
grep -q "Steps 1 and 2 as above" "$PAGE" || fail "the page no longer says pull reuses steps 1 and 2"
grep -q "^# Deploy in five commands$" "$PAGE" || fail "the page's title no longer says five"

echo "== a config file: a secret mounted where the image reads it"
run file file
C="$WORK/file.calls"
check_calls "$C"
grep -q "^secrets create jobrelay-config .*--data-file=jobrelay.yaml" "$C" || fail "file: the config secret"
cmp -s "$WORK/state-file/files/jobrelay.yaml" "$WORK/repo/jobrelay.yaml" || fail "file: the secret is not the page's config"
grep -q "^secrets add-iam-policy-binding jobrelay-config .*--member=serviceAccount:$SA_EMAIL .*--role=roles/secretmanager.secretAccessor" "$C" ||
	fail "file: the account may not read the config"
grep -q "^run deploy jobrelay .*--source=\. .*--service-account=$SA_EMAIL .*--set-secrets=$MOUNT=jobrelay-config:latest" "$C" ||
	fail "file: the deploy does not mount the config at $MOUNT as the account"
grep -q "^topic: projects/acme-prod/topics/orders$" "$WORK/repo/jobrelay.yaml" || fail "the config's topic is not the one pushed"
grep -q "^subscription: projects/acme-prod/subscriptions/jobrelay-pull " "$WORK/repo/jobrelay.yaml" ||
	fail "the config does not read the subscription the page creates"
echo "PASS"
