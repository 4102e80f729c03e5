# shellcheck shell=bash disable=SC2034 # variables for the tests that source it
# lab.sh — the production lab: jobrelay as deployed (TLS to *.googleapis.com:443,
# Application Default Credentials, no endpoint overrides), offline. Sourced by
# tests/lab/test_*.sh as their first line:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lab.sh"   # re-runs the test in a new network + mount namespace
#   lab_start                                     # CA, /etc/hosts, stand-ins, Run fake, pstest over TLS
#   lab_creds user                                # metadata|sa-key|user|user-quota|external
#
# Outside the namespace it checks for unshare, ip and root and re-executes the test
# under `unshare --net --mount --fork`; where that cannot be done it exits 77
# (skip) with the reason, or 1 under CI=true. Inside, it refuses to start anything
# unless the namespace is new (only lo, no route out). See tests/lab/README.md.
set -euo pipefail

: "${JR_SOURCE_DIR:?}" "${JOBRELAY:?}"

lab_skip() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: the production lab must run under CI: $*" >&2
		exit 1
	fi
	echo "SKIP: the production lab cannot run here: $*" >&2
	exit 77
}

if [ "${JR_LAB_INSIDE:-}" != 1 ]; then
	command -v unshare >/dev/null || lab_skip "no unshare (util-linux)"
	command -v ip >/dev/null || lab_skip "no ip (iproute2)"
	command -v openssl >/dev/null || lab_skip "no openssl"
	[ "$(id -u)" = 0 ] || lab_skip "not root (unshare --net --mount needs it)"
	unshare --net --mount --fork true 2>/dev/null || lab_skip "unshare --net --mount fails here"
	# the lab has no network: the Run fake's npm packages are installed before it is entered
	if [ ! -d "$JR_SOURCE_DIR/tests/peers/runfake/node_modules" ]; then
		(cd "$JR_SOURCE_DIR/tests/peers/runfake" && npm ci --silent --no-audit --no-fund) ||
			{ echo "FAIL: npm ci in tests/peers/runfake (run scripts/deps.sh)" >&2; exit 1; }
	fi
	# --kill-child: should unshare be killed (a ctest timeout), the test gets SIGTERM and cleans up
	JR_LAB_OUTER_NETNS=$(readlink /proc/self/ns/net) JR_LAB_INSIDE=1 \
		exec unshare --net --mount --fork --propagation private --kill-child=TERM \
		bash ${JR_LAB_TRACE:+-x} "$0" "$@"
fi

# --- inside the namespace: make sure it is a new one before anything starts
lab_refuse() {
	echo "FAIL: lab: $*; refusing to start anything" >&2
	exit 1
}
LAB_NETNS=$(readlink /proc/self/ns/net) || lab_refuse "cannot tell which network namespace this is"
[ -n "${JR_LAB_OUTER_NETNS:-}" ] || lab_refuse "not entered through lab.sh (no outer namespace recorded)"
[ "$LAB_NETNS" != "$JR_LAB_OUTER_NETNS" ] || lab_refuse "still in the outer network namespace $LAB_NETNS"
if pid1=$(readlink /proc/1/ns/net 2>/dev/null) && [ "$pid1" = "$LAB_NETNS" ]; then
	lab_refuse "this is the network namespace of PID 1"
fi
[ "$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')" = "lo " ] ||
	lab_refuse "links other than lo: $(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')"
ip link set lo up
[ -z "$(ip route show default; ip -6 route show default)" ] || lab_refuse "there is a default route"
[ -z "$(ip route show | grep -v '^$' || true)" ] || lab_refuse "there are IPv4 routes: $(ip route show)"

LAB_SRC=$JR_SOURCE_DIR/tests/lab
PEERS=$JR_SOURCE_DIR/tests/peers
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobrelay-lab.XXXXXX")
LAB=$WORK/lab
mkdir -p "$LAB"
LAB_PIDS=()

# Where each Google name points inside the lab.
LAB_RUN_ADDR=127.0.0.2
LAB_PUBSUB_ADDR=127.0.0.3
LAB_OAUTH2_ADDR=127.0.0.4
LAB_STS_ADDR=127.0.0.5
LAB_IAMCRED_ADDR=127.0.0.6
LAB_WWW_ADDR=127.0.0.7
LAB_METADATA_ADDR=127.0.0.8
LAB_PROJECT=lab-project
LAB_QUOTA_PROJECT=lab-quota-project
LAB_SA_EMAIL=lab-runner@$LAB_PROJECT.iam.gserviceaccount.com
LAB_USER_CLIENT_ID=lab-client.apps.googleusercontent.com
TOPIC=projects/$LAB_PROJECT/topics/events
SUB=projects/$LAB_PROJECT/subscriptions/jobs
DLT=projects/$LAB_PROJECT/topics/dead
DLS=projects/$LAB_PROJECT/subscriptions/dead-sub

# The peers (Node) look for no credentials and no metadata server; jobrelay gets its
# own environment from lab_env.
export METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9
unset GOOGLE_APPLICATION_CREDENTIALS JOBRELAY_RUN_ENDPOINT JOBRELAY_RUN_INSECURE PUBSUB_EMULATOR_HOST \
	GRPC_DEFAULT_SSL_ROOTS_FILE_PATH SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY grpc_proxy

lab_cleanup() {
	local p
	[ -z "${LAB_CLEANUP_HOOK:-}" ] || "$LAB_CLEANUP_HOOK" || true
	for p in "${LAB_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${LAB_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap lab_cleanup EXIT
trap 'exit 143' TERM INT # (unshare passes its TERM on): the cleanup runs

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# contains [GREP FLAGS] PATTERN: stdin has a line matching PATTERN. It reads all of stdin
# (grep -q stops at the first match, and under pipefail the writer's SIGPIPE then fails
# the pipeline however the match went).
contains() { grep "$@" >/dev/null; }

assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds; 1 when SECONDS pass first.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# lab_network: /etc/hosts with the Google names on loopback addresses, a resolver that
# points nowhere, the lab CA as the system bundle; nothing else resolves or routes.
lab_network() {
	# each name also with its trailing dot: glibc's files lookup does not strip it, and gRPC
	# asks for metadata.google.internal. (DNS would answer both)
	{
		printf '127.0.0.1 localhost\n::1 localhost\n'
		local n
		for n in "$LAB_RUN_ADDR run" "$LAB_PUBSUB_ADDR pubsub" "$LAB_OAUTH2_ADDR oauth2" "$LAB_STS_ADDR sts" \
			"$LAB_IAMCRED_ADDR iamcredentials" "$LAB_WWW_ADDR www"; do
			printf '%s %s.googleapis.com %s.googleapis.com.\n' "${n% *}" "${n#* }" "${n#* }"
		done
		printf '%s metadata.google.internal metadata.google.internal.\n' "$LAB_METADATA_ADDR"
	} >"$LAB/hosts"
	# TEST-NET-1: no route to it in the namespace, so a DNS query fails at once
	printf 'nameserver 192.0.2.53\noptions timeout:1 attempts:1\n' >"$LAB/resolv.conf"
	mount --bind "$LAB/hosts" /etc/hosts
	mount --bind "$LAB/resolv.conf" /etc/resolv.conf
	# libcurl (jobrelay's JWKS fetch) reads the CA bundle libcurl was built with
	if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
		mount --bind "$LAB/ca.crt" /etc/ssl/certs/ca-certificates.crt
	fi
	local addr
	addr=$(getent hosts run.googleapis.com | awk '{print $1}') || true
	assert_eq "$addr" "$LAB_RUN_ADDR" "run.googleapis.com in the lab"
	addr=$(getent hosts metadata.google.internal. | awk '{print $1}') || true
	assert_eq "$addr" "$LAB_METADATA_ADDR" "metadata.google.internal. in the lab"
	! getent hosts example.com >/dev/null || fail "a name outside the lab resolves"
}

# lab_ca: a throwaway CA and one server certificate for every Google name of the lab.
lab_ca() {
	local sans=DNS:run.googleapis.com,DNS:pubsub.googleapis.com,DNS:oauth2.googleapis.com
	sans+=,DNS:sts.googleapis.com,DNS:iamcredentials.googleapis.com,DNS:www.googleapis.com
	sans+=,DNS:metadata.google.internal
	(
		cd "$LAB"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
			-subj "/CN=jobrelay lab CA" -addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign
		openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=googleapis.com lab"
		printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$sans" >server.ext
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-extfile server.ext -out server.crt
	) >"$LAB/openssl.log" 2>&1 || { cat "$LAB/openssl.log" >&2; fail "lab CA"; }
}

# lab_credential_files: a service-account key, user credentials with and without a
# quota project, all naming the lab's token endpoint (Google's own URI).
lab_credential_files() {
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$LAB/sa.pem" 2>/dev/null
	# shellcheck disable=SC2016 # JavaScript
	node -e '
const fs = require("fs");
const [dir, email, project, client, quota] = process.argv.slice(1);
const w = (f, o) => fs.writeFileSync(`${dir}/${f}`, JSON.stringify(o, null, 2) + "\n", { mode: 0o600 });
w("sa.json", { type: "service_account", project_id: project, private_key_id: "labkey1",
  private_key: fs.readFileSync(`${dir}/sa.pem`, "utf8"), client_email: email, client_id: "100000000000000000001",
  auth_uri: "https://accounts.google.com/o/oauth2/auth", token_uri: "https://oauth2.googleapis.com/token",
  auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
  client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}` });
const user = { type: "authorized_user", client_id: client, client_secret: "lab-client-secret", refresh_token: "1//lab-refresh-token" };
w("user.json", user);
w("user-quota.json", Object.assign({ quota_project_id: quota }, user));
fs.writeFileSync(`${dir}/oidc-token`, "lab-oidc-subject-token");
w("external.json", { type: "external_account",
  audience: `//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/lab-pool/providers/lab-provider`,
  subject_token_type: "urn:ietf:params:oauth:token-type:jwt", token_url: "https://sts.googleapis.com/v1/token",
  service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${email}:generateAccessToken`,
  credential_source: { file: `${dir}/oidc-token` } });
w("impersonated.json", { type: "impersonated_service_account", delegates: [],
  service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${email}:generateAccessToken`,
  source_credentials: user });
' "$LAB" "$LAB_SA_EMAIL" "$LAB_PROJECT" "$LAB_USER_CLIENT_ID" "$LAB_QUOTA_PROJECT"
}

# lab_read_listening FIFO_FD VAR: reads lines from FD until one starts with LISTENING.
lab_read_listening() {
	local line=
	while read -r -t 60 -u "$1" line; do
		case "$line" in LISTENING*) printf -v "$2" '%s' "$line"; return 0 ;; esac
	done
	return 1
}

# lab_start_gauth [FLAGS...]: the credential stand-ins (tests/peers/gauth) on the lab's
# metadata, oauth2, sts, iamcredentials and www addresses; sets LAB_GAUTH_PID.
lab_start_gauth() {
	local got=
	rm -f "$LAB/gauth.out"
	mkfifo "$LAB/gauth.out"
	node "$PEERS/gauth/server.js" --metadata "$LAB_METADATA_ADDR:80" \
		--https "$LAB_OAUTH2_ADDR:443" --https "$LAB_STS_ADDR:443" --https "$LAB_IAMCRED_ADDR:443" \
		--https "$LAB_WWW_ADDR:443" --tls-cert "$LAB/server.crt" --tls-key "$LAB/server.key" \
		--record "$LAB/gauth.jsonl" --control "$LAB/gauth-control.json" \
		--service-account "$LAB/sa.json" --user "$LAB/user.json" --email "$LAB_SA_EMAIL" \
		--project-id "$LAB_PROJECT" "$@" >"$LAB/gauth.out" 2>>"$LAB/gauth.err" &
	LAB_GAUTH_PID=$!
	LAB_PIDS+=("$LAB_GAUTH_PID")
	exec {LAB_GAUTH_FD}<"$LAB/gauth.out"
	lab_read_listening "$LAB_GAUTH_FD" got || { cat "$LAB/gauth.err" >&2; fail "gauth did not start"; }
	cat <&"$LAB_GAUTH_FD" >/dev/null &
	exec {LAB_GAUTH_FD}<&-
}

# lab_gauth_control JSON: replaces gauth's control file (atomically; read on its next
# request), e.g. '{"fail":{"oauth2":500}}' or '{"fail":{"metadata":"invalid_grant"},"expires_in":90}';
# lab_gauth_control '{}' ends every failure.
lab_gauth_control() {
	printf '%s\n' "$1" >"$LAB/gauth-control.json.tmp"
	mv "$LAB/gauth-control.json.tmp" "$LAB/gauth-control.json"
}

# lab_token_requests SERVICE [STATUS]: gauth's requests of SERVICE (metadata, oauth2, sts,
# iamcredentials, ...) so far, or those answered STATUS.
lab_token_requests() {
	[ -f "$LAB/gauth.jsonl" ] || { echo 0; return; }
	grep "\"service\":\"$1\"" "$LAB/gauth.jsonl" | grep -c "\"status\":${2:-}" || true
}

# lab_start [GAUTH FLAGS...]: the network, the CA, gauth (with those extra flags), the Run
# fake and pstest (all on :443 / :80).
# shellcheck disable=SC2120 # the flags are optional
lab_start() {
	lab_ca
	lab_network
	lab_credential_files
	local got=
	lab_start_gauth "$@"

	printf '{"rules": [{"job": "missing", "code": "NOT_FOUND", "message": "job missing not found"}]}\n' \
		>"$LAB/runfake.json"
	mkfifo "$LAB/runfake.out"
	node "$PEERS/runfake/server.js" --host "$LAB_RUN_ADDR" --port 443 --tls-cert "$LAB/server.crt" \
		--tls-key "$LAB/server.key" --record "$LAB/run.jsonl" --config "$LAB/runfake.json" \
		--require-request-params >"$LAB/runfake.out" 2>"$LAB/runfake.err" &
	LAB_PIDS+=($!)
	exec {LAB_RUN_FD}<"$LAB/runfake.out"
	lab_read_listening "$LAB_RUN_FD" got || { cat "$LAB/runfake.err" >&2; fail "the Run fake did not start"; }
	cat <&"$LAB_RUN_FD" >/dev/null &
	exec {LAB_RUN_FD}<&-

	# shellcheck source=tests/peers/pstest/lib.sh
	. "$PEERS/pstest/lib.sh"
	start_pstest "$LAB" --host "$LAB_PUBSUB_ADDR" --port 443 --tls-cert "$LAB/server.crt" \
		--tls-key "$LAB/server.key" --record "$LAB/pubsub.jsonl" --topic "$TOPIC" --subscription "$SUB" ||
		fail "pstest did not start"
	LAB_PIDS+=("$PSTEST_PID")
	unset PUBSUB_EMULATOR_HOST # jobrelay goes to pubsub.googleapis.com:443 as deployed
	ps_cmd create-topic "$DLT" || fail "create-topic: $PS_REPLY"
	ps_cmd create-subscription "$DLS" "$DLT" || fail "create-subscription: $PS_REPLY"
}

# lab_creds KIND: how jobrelay finds credentials (Application Default Credentials):
#   metadata    none on disk: the metadata server
#   sa-key      GOOGLE_APPLICATION_CREDENTIALS = a service-account key file
#   user        GOOGLE_APPLICATION_CREDENTIALS = authorized_user credentials
#   user-quota  the same with a quota_project_id
#   external    GOOGLE_APPLICATION_CREDENTIALS = external_account (workload identity
#               federation: a file-sourced subject token, STS, then impersonation)
#   impersonated GOOGLE_APPLICATION_CREDENTIALS = impersonated_service_account (gcloud's
#               --impersonate-service-account file: user credentials, then generateAccessToken)
# Sets LAB_KIND, LAB_TOKEN_SERVICE and LAB_SUBJECT (what gauth records for its tokens)
# and LAB_USER_PROJECT (the x-goog-user-project expected; empty: none).
lab_creds() {
	LAB_KIND=$1
	LAB_USER_PROJECT=
	LAB_ADC=
	case "$1" in
	metadata) LAB_TOKEN_SERVICE=metadata LAB_SUBJECT=$LAB_SA_EMAIL ;;
	sa-key) LAB_TOKEN_SERVICE=oauth2 LAB_SUBJECT=$LAB_SA_EMAIL LAB_ADC=$LAB/sa.json ;;
	user) LAB_TOKEN_SERVICE=oauth2 LAB_SUBJECT=$LAB_USER_CLIENT_ID LAB_ADC=$LAB/user.json ;;
	user-quota)
		LAB_TOKEN_SERVICE=oauth2 LAB_SUBJECT=$LAB_USER_CLIENT_ID LAB_ADC=$LAB/user-quota.json
		LAB_USER_PROJECT=$LAB_QUOTA_PROJECT
		;;
	external) LAB_TOKEN_SERVICE=iamcredentials LAB_SUBJECT=$LAB_SA_EMAIL LAB_ADC=$LAB/external.json ;;
	impersonated) LAB_TOKEN_SERVICE=iamcredentials LAB_SUBJECT=$LAB_SA_EMAIL LAB_ADC=$LAB/impersonated.json ;;
	*) fail "lab_creds: unknown kind $1" ;;
	esac
	mkdir -p "$LAB/home"
	lab_env
}

# LAB_ENV: the command prefix (env ...) that gives jobrelay its production environment: the
# lab CA for gRPC and OpenSSL, the native resolver (no DNS server to wait for), an empty
# HOME (no gcloud well-known file), the credentials of lab_creds, no endpoint overrides.
# `"${LAB_ENV[@]}" "$JOBRELAY" ... &` leaves $! the pid of jobrelay itself.
lab_env() {
	LAB_ENV=(env -u METADATA_SERVER_DETECTION -u GCE_METADATA_HOST -u GOOGLE_APPLICATION_CREDENTIALS
		-u JOBRELAY_RUN_ENDPOINT -u PUBSUB_EMULATOR_HOST -u GOOGLE_CLOUD_PROJECT
		HOME="$LAB/home" GRPC_DNS_RESOLVER=native
		GRPC_DEFAULT_SSL_ROOTS_FILE_PATH="$LAB/ca.crt" SSL_CERT_FILE="$LAB/ca.crt")
	[ -z "$LAB_ADC" ] || LAB_ENV+=("GOOGLE_APPLICATION_CREDENTIALS=$LAB_ADC")
}
