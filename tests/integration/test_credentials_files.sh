#!/usr/bin/env bash
# Credentials files that jobrelay cannot use are refused at start-up: exit 3,
# the file and the reason named, and nothing contacted (the refusal comes
# before any channel exists). Where the test may (root with unshare), it runs
# jobrelay without any network at all, so a mistake cannot send a packet.
# The flows that fetch tokens run in the production lab (tests/lab/).
. "$(dirname "$0")/lib.sh"

cat >"$WORK/jobrelay.yaml" <<'YAML'
project: p
region: europe-west2
routes:
  - { name: r, match: { type: t.x }, job: j }
YAML
printf '{"specversion":"1.0","id":"e1","source":"//t","type":"t.x"}\n' >"$WORK/ev.json"

NONET=()
if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then NONET=(unshare --net); fi

# refused FILE TEXT: replay and `jobs list` both exit 3 and name FILE and TEXT.
refused() {
	local file=$1 text=$2 rc
	set +e
	env -u JOBRELAY_RUN_ENDPOINT GOOGLE_APPLICATION_CREDENTIALS="$file" "${NONET[@]}" \
		"$JOBRELAY" --config "$WORK/jobrelay.yaml" --log-format text replay "$WORK/ev.json" \
		>"$WORK/out" 2>&1
	rc=$?
	set -e
	assert_eq "$rc" 3 "replay with $file"
	grep -qF "credentials file $file" "$WORK/out" || { cat "$WORK/out"; fail "replay: file not named"; }
	grep -qF -- "$text" "$WORK/out" || { cat "$WORK/out"; fail "replay: no '$text'"; }
	set +e
	env -u JOBRELAY_RUN_ENDPOINT GOOGLE_APPLICATION_CREDENTIALS="$file" "${NONET[@]}" \
		"$JOBRELAY" jobs list --project p --region europe-west2 >"$WORK/out" 2>&1
	rc=$?
	set -e
	assert_eq "$rc" 3 "jobs list with $file"
	grep -qF -- "$text" "$WORK/out" || { cat "$WORK/out"; fail "jobs list: no '$text'"; }
}

c="$WORK/creds"
mkdir -p "$c"
refused "$c/absent.json" "No such file or directory"
printf 'not json' >"$c/garbage.json"
refused "$c/garbage.json" "not a JSON object"
printf '[1]' >"$c/array.json"
refused "$c/array.json" "not a JSON object"
printf '{"client_id":"x"}' >"$c/notype.json"
refused "$c/notype.json" 'no "type"'
printf '{"type":"gdch_service_account"}' >"$c/other.json"
refused "$c/other.json" 'type "gdch_service_account" is not supported'
printf '{"type":"service_account","client_email":"a@b"}' >"$c/sa.json"
refused "$c/sa.json" 'no "private_key"'
printf '{"type":"authorized_user","client_id":"c","client_secret":"s"}' >"$c/user.json"
refused "$c/user.json" 'no "refresh_token"'
printf '{"type":"external_account","audience":"a","subject_token_type":"t","credential_source":{"environment_id":"aws1"}}' >"$c/aws.json"
refused "$c/aws.json" "AWS credential source is not supported"
printf '{"type":"external_account","audience":"a","subject_token_type":"t","credential_source":{"executable":{"command":"x"}}}' >"$c/exe.json"
refused "$c/exe.json" "executable credential source is not supported"
printf '{"type":"external_account","audience":"a","subject_token_type":"t","credential_source":{}}' >"$c/nosrc.json"
refused "$c/nosrc.json" 'needs one of "file" or "url"'
printf '{"type":"impersonated_service_account","service_account_impersonation_url":"https://x","source_credentials":{"type":"impersonated_service_account"}}' >"$c/nested.json"
refused "$c/nested.json" "nested impersonation is not supported"
{ printf '{"type":"authorized_user","pad":"'; head -c 70000 /dev/zero | tr '\0' a; printf '"}'; } >"$c/big.json"
refused "$c/big.json" "over 65536 bytes"

echo "test_credentials_files: all checks passed"
