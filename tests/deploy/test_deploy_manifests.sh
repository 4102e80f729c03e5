#!/usr/bin/env bash
# The manifests deploy/gcloud.sh renders (push and pull mode), parsed and checked against what
# jobrelay and its image read (tests/deploy/check_manifests.py: port, config path and secret
# mount, service accounts, probe paths, the job image's required environment, the alert
# policies, Cloud Build's steps); the rendered jobrelay config passes `jobrelay check-config`
# and routes to the deployed job.
# shellcheck source=tests/integration/lib.sh
. "$JR_SOURCE_DIR/tests/integration/lib.sh"
python3 -c 'import yaml' 2>/dev/null || fail "python3 cannot import yaml (Debian: python3-yaml; scripts/deps.sh installs it)"
unset PROJECT_NUMBER GOOGLE_CLOUD_PROJECT MODE REGION
for mode in push pull; do
	echo "== $mode"
	out="$WORK/$mode"
	PROJECT_ID=acme-prod PROJECT_NUMBER=123456789012 \
		bash "$JR_SOURCE_DIR/deploy/gcloud.sh" --dry-run --mode "$mode" --out "$out" >"$WORK/$mode.dry" 2>&1 ||
		{ cat "$WORK/$mode.dry" >&2; fail "gcloud.sh --dry-run --mode $mode"; }
	python3 "$JR_SOURCE_DIR/tests/deploy/check_manifests.py" "$JR_SOURCE_DIR" "$out" "$mode" acme-prod europe-west2 ||
		fail "manifests ($mode) do not match what jobrelay reads"
	"$JOBRELAY" --config "$out/jobrelay.yaml" check-config >"$WORK/$mode.check" 2>&1 ||
		{ cat "$WORK/$mode.check" >&2; fail "the rendered config does not pass check-config"; }
	for route in nightly inbox-upload; do
		grep -A1 "^route $route\$" "$WORK/$mode.check" | contains "job: projects/acme-prod/locations/europe-west2/jobs/example-job" ||
			{ cat "$WORK/$mode.check" >&2; fail "route $route does not start example-job"; }
	done
done
echo "PASS"
