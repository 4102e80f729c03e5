#!/usr/bin/env bash
# test_lab_network.sh — the production lab itself (tests/lab/README.md):
#   - lab.sh refuses to start anything in the machine's network namespace;
#   - inside: no route out, no resolver, only the lab's names resolve (to loopback);
#   - the Google names serve the lab CA's certificate, which verifies; the metadata
#     server answers its probe; a connection to a public address fails at once;
#   - jobrelay serve fetches its push-auth JWKS from www.googleapis.com (the default
#     jwks_url) over TLS through libcurl, trusting the lab CA.
set -euo pipefail
if [ "${JR_LAB_INSIDE:-}" != 1 ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	# lab.sh run as if inside, but in the machine's network namespace, must refuse: once
	# told the truth about the outer namespace, once told a wrong one (then the links and
	# routes give it away). In a private mount namespace, so that a broken check could not
	# touch the machine's /etc/hosts.
	outer=$(readlink /proc/self/ns/net)
	for claim in "$outer" 'net:[1]'; do
		set +e
		out=$(unshare --mount --fork --propagation private \
			env JR_LAB_INSIDE=1 JR_LAB_OUTER_NETNS="$claim" bash "$0" 2>&1)
		rc=$?
		set -e
		if [ "$rc" != 1 ] || ! grep -q 'refusing to start anything' <<<"$out"; then
			echo "FAIL: lab.sh did not refuse the machine's network namespace (exit $rc): $out" >&2
			exit 1
		fi
		echo "== lab.sh refuses the machine's network namespace: $(grep -o 'lab: .*' <<<"$out" | head -n 1)"
	done
fi
# shellcheck source=tests/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
node -e '
const { publicKey } = require("crypto").generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = publicKey.export({ format: "jwk" });
process.stdout.write(JSON.stringify({ keys: [Object.assign({ kid: "lab-1", alg: "RS256", use: "sig" }, jwk)] }));
' >"$LAB/jwks.json"
lab_start --jwks "$LAB/jwks.json"

echo "== no way out: no route, no resolver, only the lab's names"
! ip route get 142.250.0.1 >/dev/null 2>&1 || fail "a route to 142.250.0.1: $(ip route get 142.250.0.1)"
! ip -6 route get 2607:f8b0::1 >/dev/null 2>&1 || fail "a route to 2607:f8b0::1"
for n in google.com accounts.google.com storage.googleapis.com; do
	! getent hosts "$n" >/dev/null || fail "$n resolves in the lab: $(getent hosts "$n")"
done
# (the route lookups above send nothing; a connection is tried only to TEST-NET-3, which
# is nobody's address, should the checks ever be wrong)
set +e
curl -s --max-time 5 -o /dev/null https://203.0.113.1/
rc=$?
set -e
assert_eq "$rc" 7 "curl to a public address (7: could not connect)"
for n in run pubsub oauth2 sts iamcredentials www; do
	addr=$(getent hosts "$n.googleapis.com" | awk '{print $1}') || true
	case "$addr" in 127.*) ;; *) fail "$n.googleapis.com resolves to '$addr', not a loopback address" ;; esac
done

echo "== the Google names serve the lab CA's certificate"
for hp in run.googleapis.com:443 pubsub.googleapis.com:443 oauth2.googleapis.com:443 sts.googleapis.com:443 \
	iamcredentials.googleapis.com:443 www.googleapis.com:443; do
	openssl s_client -connect "$hp" -servername "${hp%:*}" -verify_hostname "${hp%:*}" -CAfile "$LAB/ca.crt" \
		-verify_return_error -alpn h2,http/1.1 </dev/null >"$LAB/s_client.out" 2>&1 ||
		{ cat "$LAB/s_client.out" >&2; fail "TLS to $hp does not verify with the lab CA"; }
	grep -q 'Verify return code: 0 (ok)' "$LAB/s_client.out" || fail "TLS to $hp: $(grep 'Verify return' "$LAB/s_client.out")"
done
[ "$(curl -s --max-time 10 -o /dev/null -D - http://metadata.google.internal./ | tr -d '\r' | grep -i '^metadata-flavor:')" = "Metadata-Flavor: Google" ] ||
	fail "the metadata server's probe answer"

echo "== serve fetches its JWKS from www.googleapis.com over TLS (libcurl, the lab CA)"
lab_creds metadata
cat >"$LAB/serve.yaml" <<YAML
project: $LAB_PROJECT
region: europe-west2
auth:
  audience: https://jobrelay.lab/
  allowed_emails: [ pusher@$LAB_PROJECT.iam.gserviceaccount.com ]
routes:
  - name: ok
    match: { type: lab.ok }
    job: ok-job
YAML
mkfifo "$LAB/serve.fifo"
"${LAB_ENV[@]}" "$JOBRELAY" --log-format json --config "$LAB/serve.yaml" serve --port 0 --bind 127.0.0.1 \
	>"$LAB/serve.fifo" 2>&1 {PSTEST_IN}>&- {PSTEST_OUT}<&- &
LAB_PIDS+=($!)
exec {SERVE_FD}<"$LAB/serve.fifo"
jwks=
while read -r -t 60 -u "$SERVE_FD" line; do
	printf '%s\n' "$line" >>"$LAB/serve.log"
	case "$line" in
	*'"msgid":"JWKS-LOADED"'* | *'"msgid":"JWKS-FETCH-FAILED"'*) jwks=$line; break ;;
	esac
done
cat <&"$SERVE_FD" >>"$LAB/serve.log" &
exec {SERVE_FD}<&-
[[ $jwks == *'"msgid":"JWKS-LOADED"'*'https://www.googleapis.com/oauth2/v3/certs'* ]] ||
	{ cat "$LAB/serve.log" >&2; fail "serve did not load the JWKS from www.googleapis.com: $jwks"; }
grep -q '"service":"jwks".*"status":200' "$LAB/gauth.jsonl" || fail "gauth served no JWKS"
echo PASS
