# lib.sh — shared by the integration tests: start the Run API fake on a free
# loopback port and wait for it to say so (no sleeps), clean up on exit.
# Expects JOBRELAY (the binary), JR_SOURCE_DIR and JR_TESTDATA from ctest.
set -euo pipefail

: "${JR_SOURCE_DIR:?}" "${JOBRELAY:?}"
FAKE_DIR="$JR_SOURCE_DIR/tests/peers/runfake"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobrelay-test.XXXXXX")
FAKE_PID=
# No Google library may look for credentials or the metadata server.
export METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9
unset GOOGLE_APPLICATION_CREDENTIALS

cleanup() {
	if [ -n "$FAKE_PID" ]; then
		kill "$FAKE_PID" 2>/dev/null || true
		wait "$FAKE_PID" 2>/dev/null || true
	fi
	exec 7<&- 2>/dev/null || true
	if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# start_fake [FAKE FLAGS...]: starts the fake with --record $WORK/record.jsonl;
# sets FAKE_PORT and exports JOBRELAY_RUN_ENDPOINT.
start_fake() {
	[ -d "$FAKE_DIR/node_modules" ] || (cd "$FAKE_DIR" && npm ci --silent --no-audit --no-fund)
	mkfifo "$WORK/fake.out"
	node "$FAKE_DIR/server.js" --port 0 --record "$WORK/record.jsonl" "$@" \
		>"$WORK/fake.out" 2>"$WORK/fake.err" &
	FAKE_PID=$!
	exec 7<"$WORK/fake.out"
	local line=
	# the fake writes LISTENING <port> once it is bound; read blocks until then
	while read -r -u 7 line; do
		case "$line" in LISTENING\ *) FAKE_PORT=${line#LISTENING }; break ;; esac
	done
	[ -n "${FAKE_PORT:-}" ] || { cat "$WORK/fake.err" >&2; fail "the Run API fake did not start"; }
	export JOBRELAY_RUN_ENDPOINT="127.0.0.1:$FAKE_PORT"
	# keep draining its stdout so it never blocks on a full pipe
	cat <&7 >/dev/null &
}

# count_records METHOD [JQ-LIKE GREP]: number of recorded calls of METHOD.
count_records() {
	local m=$1
	[ -f "$WORK/record.jsonl" ] || { echo 0; return; }
	grep -c "\"method\":\"$m\"" "$WORK/record.jsonl" || true
}

# contains [GREP FLAGS] PATTERN: stdin has a line matching PATTERN. It reads all of stdin
# (grep -q stops at the first match, and under pipefail the writer's SIGPIPE then fails
# the pipeline however the match went).
contains() { grep "$@" >/dev/null; }

assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}
