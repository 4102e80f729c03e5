#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119 # $ for the container's shell; start_fake takes optional flags
# The container images, built and run with podman (docs/testing.md, docs/deploy.md; the base
# image made from Debian's archive by scripts/podman-base.sh, no registry):
# - the jobrelay image (Dockerfile): builds from this tree; runs as an unprivileged user with
#   no build tools inside; `jobrelay version` resolves every library; an argument picks the
#   subcommand (`check-config` reads the config mounted at /etc/jobrelay/jobrelay.yaml);
# - by default it runs `jobrelay serve` on $PORT (host network, so it reaches the Run API fake
#   on the host's loopback): /healthz and /readyz answer 200, a posted CloudEvent is answered
#   204 and arrives at the fake as a RunJob request, and SIGTERM ends it with exit 0;
# - `pull` as its argument: a message published to Google's pstest on the host is dispatched
#   to the fake and acked; SIGTERM ends it with exit 0;
# - the standard job image (deploy/job-image): exits 64 naming PROJECT_ID and REGION when they
#   are missing, runs its command when they are set.
# It skips (exit 77) only where podman cannot run (not installed, not root); under CI=true
# that is a failure instead. Phase times and the image size are printed (not asserted).
# shellcheck source=tests/integration/lib.sh
. "$JR_SOURCE_DIR/tests/integration/lib.sh"

# shellcheck source=tests/deploy/podman_lib.sh
. "$JR_SOURCE_DIR/tests/deploy/podman_lib.sh"

TAG="jrtest-$$-$RANDOM"
IMAGE="localhost/jobrelay:$TAG"
JOB_IMAGE="localhost/job-runner:$TAG"
NAME="jobrelay-$TAG"
RUN=(podman run --rm --runtime runc)
CONTAINER_PID=
container_cleanup() {
	if [ -n "$CONTAINER_PID" ]; then
		podman kill "$NAME" >/dev/null 2>&1 || true
		wait "$CONTAINER_PID" 2>/dev/null || true
	fi
	podman rmi -f "$IMAGE" "$JOB_IMAGE" >/dev/null 2>&1 || true
	cleanup
}
trap container_cleanup EXIT
started=$SECONDS
phase() { echo "== $1 ($((SECONDS - started)) s so far)"; }

phase "base image $BASE"
bash "$JR_SOURCE_DIR/scripts/podman-base.sh"

# google-proto-files: the local copy the build uses, else npm's, else the build fetches it
spec=$(awk '{print $2}' "$JR_SOURCE_DIR/proto/google-proto-files.sha256")
tgz=${JR_PROTO_TARBALL:-}
[ -n "$tgz" ] || tgz=$(find "${JR_BUILD_DIR:-/nonexistent}/proto/download" -name "$spec" 2>/dev/null | head -n 1)
if [ -z "$tgz" ]; then
	version=${spec#google-proto-files-}
	(cd "$WORK" && npm pack --silent "google-proto-files@${version%.tgz}" >/dev/null) || fail "npm pack $spec"
	tgz="$WORK/$spec"
fi
[ -f "$tgz" ] || fail "no $spec at $tgz"

phase "build the jobrelay image"
# --layers=false: no intermediate images are kept behind (the build stage is ~600 MB);
# --force-rm: nor build containers when a build fails
podman build --isolation=chroot --layers=false --force-rm -q -t "$IMAGE" \
	-v "$(cd "$(dirname "$tgz")" && pwd):/protos:ro" \
	--build-arg "JR_PROTO_TARBALL=/protos/$(basename "$tgz")" \
	--build-arg "JR_GIT_COMMIT=test" \
	"$JR_SOURCE_DIR" >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log" >&2; fail "podman build"; }
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "IMAGE-SIZE $IMAGE $size bytes ($((size / 1000000)) MB)"

phase "the image"
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
assert_eq "$user" "10001:10001" "the image's user"
"${RUN[@]}" --entrypoint id "$IMAGE" -u >"$WORK/id" || fail "id in the image"
assert_eq "$(cat "$WORK/id")" 10001 "uid in the container"
if "${RUN[@]}" --entrypoint /bin/sh "$IMAGE" -c 'command -v cc gcc cmake protoc-c npm'; then
	fail "the runtime image holds build tools"
fi
# version names every library it is linked to
"${RUN[@]}" "$IMAGE" version >"$WORK/version" 2>"$WORK/version.err" || fail "jobrelay version in the image"
grep -q '^jobrelay .* (commit test)$' "$WORK/version" || fail "version: $(cat "$WORK/version")"
for lib in grpc protobuf-c yajl libyaml OpenSSL libmicrohttpd libcurl; do
	grep -q "^  $lib" "$WORK/version" || fail "version lists no $lib: $(cat "$WORK/version" "$WORK/version.err")"
done
[ ! -s "$WORK/version.err" ] || fail "jobrelay version in the image: $(cat "$WORK/version.err")"

start_fake
mkdir -p "$WORK/etc"
cat >"$WORK/etc/jobrelay.yaml" <<'YAML'
project: demo-project
region: europe-west2
call_timeout: 5s
routes:
  - name: uploads
    match: { type: google.cloud.storage.object.v1.finalized }
    job: ingest
    overrides:
      env: { OBJECT: "{{data.name}}" }
YAML
chmod 755 "$WORK/etc"
chmod 644 "$WORK/etc/jobrelay.yaml"
MOUNT=(-v "$WORK/etc:/etc/jobrelay:ro")

phase "an argument picks the subcommand: check-config reads /etc/jobrelay/jobrelay.yaml"
"${RUN[@]}" "${MOUNT[@]}" "$IMAGE" check-config >"$WORK/check" 2>&1 ||
	{ cat "$WORK/check" >&2; fail "check-config in the container"; }
grep -q '^route uploads$' "$WORK/check" || fail "check-config output: $(cat "$WORK/check")"

# start_container LOG MSGID [PODMAN RUN ARGS...]: runs a container named $NAME on the host's
# network (it reaches the peers on 127.0.0.1), following its stdout through a FIFO into
# $WORK/LOG until a line with MSGID (no sleeps); sets CONTAINER_PID and LINE.
start_container() {
	local log="$WORK/$1" msgid=$2
	shift 2
	rm -f "$WORK/container.fifo"
	mkfifo "$WORK/container.fifo"
	"${RUN[@]}" --name "$NAME" --network=host "$@" >"$WORK/container.fifo" 2>"$log.err" &
	CONTAINER_PID=$!
	exec 6<"$WORK/container.fifo"
	LINE=
	while read -r -u 6 LINE; do
		printf '%s\n' "$LINE" >>"$log"
		case "$LINE" in *"\"msgid\":\"$msgid\""*) break ;; esac
		LINE=
	done
	[ -n "$LINE" ] || { cat "$log" "$log.err" >&2; fail "no $msgid line from the container ($*)"; }
	cat <&6 >>"$log" &
	COPY_PID=$!
	exec 6<&-
}
# stop_container: SIGTERM through podman; sets RC to the container's exit status once it
# ended and its log is copied to the end.
stop_container() {
	podman kill --signal TERM "$NAME" >/dev/null
	set +e
	wait "$CONTAINER_PID"
	RC=$?
	set -e
	CONTAINER_PID=
	wait "$COPY_PID"
}

phase "serve (the default command) on \$PORT"
start_container serve.log SERVE-LISTENING "${MOUNT[@]}" -e PORT=0 \
	-e "JOBRELAY_RUN_ENDPOINT=$JOBRELAY_RUN_ENDPOINT" "$IMAGE"
PORT=$(printf '%s' "$LINE" | sed -n 's/.*"port":"\([0-9]*\)".*/\1/p')
URL="http://127.0.0.1:$PORT"
assert_eq "$(curl -s -o "$WORK/healthz" -w '%{http_code}' "$URL/healthz")" 200 "GET /healthz"
assert_eq "$(cat "$WORK/healthz")" ok "GET /healthz body"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" 200 "GET /readyz"
code=$(curl -s -o "$WORK/post.body" -w '%{http_code}' -H 'Content-Type: application/cloudevents+json' \
	--data '{"specversion":"1.0","id":"container-1","source":"//storage.googleapis.com/projects/_/buckets/uploads","type":"google.cloud.storage.object.v1.finalized","datacontenttype":"application/json","data":{"bucket":"uploads","name":"in/a.csv"}}' \
	"$URL/")
assert_eq "$code" 204 "POST of a CloudEvent (body: $(cat "$WORK/post.body"))"
assert_eq "$(count_records RunJob)" 1 "RunJob calls at the fake"
grep '"method":"RunJob"' "$WORK/record.jsonl" >"$WORK/runjob"
grep -q '"name":"projects/demo-project/locations/europe-west2/jobs/ingest"' "$WORK/runjob" ||
	fail "RunJob name: $(cat "$WORK/runjob")"
grep -q '"name":"OBJECT","value":"in/a.csv"' "$WORK/runjob" || fail "RunJob env: $(cat "$WORK/runjob")"
grep -q '"name":"CE_ID","value":"container-1"' "$WORK/runjob" || fail "RunJob env: $(cat "$WORK/runjob")"
curl -s "$URL/metrics" | contains '^jobrelay_dispatch_total{.*} 1$' || fail "metrics after one dispatch"

phase "SIGTERM"
stop_container
assert_eq "$RC" 0 "serve's exit status after SIGTERM"
grep -q '"msgid":"SERVE-STOPPED"' "$WORK/serve.log" || { cat "$WORK/serve.log" >&2; fail "no SERVE-STOPPED line"; }

phase "pull by argument, on Pub/Sub (Google's pstest on the host)"
# shellcheck source=tests/peers/pstest/lib.sh
. "$JR_SOURCE_DIR/tests/peers/pstest/lib.sh"
start_pstest "$WORK" --topic projects/demo-project/topics/events \
	--subscription projects/demo-project/subscriptions/jobs || fail "pstest did not start"
mkdir -p "$WORK/pull"
{
	cat "$WORK/etc/jobrelay.yaml"
	echo "subscription: projects/demo-project/subscriptions/jobs"
	echo "topic: projects/demo-project/topics/events"
} >"$WORK/pull/jobrelay.yaml"
chmod 755 "$WORK/pull"
chmod 644 "$WORK/pull/jobrelay.yaml"
echo '{"data":"{\"bucket\":\"uploads\",\"name\":\"in/b.csv\"}","attributes":{"ce-specversion":"1.0","ce-id":"container-2","ce-source":"//storage.googleapis.com/projects/_/buckets/uploads","ce-type":"google.cloud.storage.object.v1.finalized","content-type":"application/json"}}' >"$WORK/messages.jsonl"
ps_cmd publish projects/demo-project/topics/events "$WORK/messages.jsonl" || fail "publish: $PS_REPLY"
start_container pull.log PULL-READY -v "$WORK/pull:/etc/jobrelay:ro" -e PORT=0 \
	-e "JOBRELAY_RUN_ENDPOINT=$JOBRELAY_RUN_ENDPOINT" -e "PUBSUB_EMULATOR_HOST=$PUBSUB_EMULATOR_HOST" \
	"$IMAGE" pull
ps_cmd wait-acked 1 30s || { cat "$WORK/pull.log" >&2; fail "the message was not acked: $PS_REPLY"; }
grep '"method":"RunJob"' "$WORK/record.jsonl" | grep '"name":"CE_ID","value":"container-2"' |
	contains '"name":"OBJECT","value":"in/b.csv"' || fail "no RunJob for the pulled message: $(tail -n 1 "$WORK/record.jsonl")"
stop_container
assert_eq "$RC" 0 "pull's exit status after SIGTERM"
stop_pstest

phase "the standard job image"
podman build --isolation=chroot --layers=false --force-rm -q -t "$JOB_IMAGE" "$JR_SOURCE_DIR/deploy/job-image" \
	>"$WORK/job-build.log" 2>&1 || { tail -n 40 "$WORK/job-build.log" >&2; fail "podman build deploy/job-image"; }
set +e
"${RUN[@]}" "$JOB_IMAGE" sh -c 'echo ran' >"$WORK/job.out" 2>"$WORK/job.err"
rc=$?
set -e
assert_eq "$rc" 64 "job image without PROJECT_ID and REGION"
grep -q 'required environment variable(s) not set: PROJECT_ID REGION' "$WORK/job.err" ||
	fail "job image message: $(cat "$WORK/job.err")"
[ ! -s "$WORK/job.out" ] || fail "the job's command ran without its environment"
"${RUN[@]}" -e PROJECT_ID=acme -e REGION=europe-west2 "$JOB_IMAGE" \
	sh -c 'echo "$PROJECT_ID $REGION $(id -u)"' >"$WORK/job.out" 2>"$WORK/job.err" ||
	fail "job image with its environment: $(cat "$WORK/job.err")"
assert_eq "$(cat "$WORK/job.out")" "acme europe-west2 10001" "the job's command output"
echo "PASS ($((SECONDS - started)) s)"
