# shellcheck shell=bash disable=SC2034
# serve_lib.sh — for the test_serve*.sh tests, on top of lib.sh: start
# `jobrelay serve` on a free loopback port, read its port from its
# SERVE-LISTENING log line through a FIFO (no sleeps), keep its log in
# $WORK/serve-N.log, and stop it (or everything left) at exit.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENT="node $JR_SOURCE_DIR/tests/integration/serve_client.js"
SERVE_N=0
SERVE_PIDS=()

serve_cleanup() {
	local p
	for p in "${SERVE_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	cleanup
}
trap serve_cleanup EXIT

# start_serve [SERVE FLAGS...]: sets SERVE_PID, SERVE_PORT, SERVE_LOG; logs at
# $SERVE_LOG_LEVEL when set.
start_serve() {
	SERVE_N=$((SERVE_N + 1))
	local fifo="$WORK/serve-$SERVE_N.fifo" line=
	SERVE_LOG="$WORK/serve-$SERVE_N.log"
	mkfifo "$fifo"
	: >"$SERVE_LOG"
	"$JOBRELAY" --log-format json --log-level "${SERVE_LOG_LEVEL:-info}" serve --port 0 --bind 127.0.0.1 "$@" >"$fifo" 2>>"$SERVE_LOG" &
	SERVE_PID=$!
	SERVE_PIDS+=("$SERVE_PID")
	SERVE_PORT=
	exec 8<"$fifo"
	while read -r -u 8 line; do
		printf '%s\n' "$line" >>"$SERVE_LOG"
		case "$line" in
		*'"msgid":"SERVE-LISTENING"'*)
			SERVE_PORT=$(printf '%s' "$line" | sed -n 's/.*"port":"\([0-9]*\)".*/\1/p')
			break
			;;
		esac
	done
	[ -n "$SERVE_PORT" ] || { cat "$SERVE_LOG" >&2; fail "jobrelay serve did not start"; }
	# keep draining its stdout into the log
	cat <&8 >>"$SERVE_LOG" &
	exec 8<&-
}

# stop_serve [SIGNAL]: signals the last server (TERM) and waits; sets SERVE_RC.
stop_serve() {
	kill -"${1:-TERM}" "$SERVE_PID"
	set +e
	wait "$SERVE_PID"
	SERVE_RC=$?
	set -e
}

# client SCRIPT: runs serve_client.js against the last server, with REC set.
client() {
	REC="$WORK/record.jsonl" $CLIENT "$SERVE_PORT" "$1"
}

alive() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SERVE_PORT/healthz")
	assert_eq "$code" 200 "GET /healthz after $1"
}

# wait_lines FILE REGEX N: blocks until FILE has N lines matching REGEX (woken
# by inotify through fs.watch, not by sleeping); fails after 30 s.
wait_lines() {
	node -e '
const fs = require("fs");
const [file, re, n] = [process.argv[1], new RegExp(process.argv[2]), Number(process.argv[3])];
const count = () => { try { return fs.readFileSync(file, "utf8").split("\n").filter((l) => re.test(l)).length; } catch { return 0; } };
const check = () => { if (count() >= n) process.exit(0); };
setTimeout(() => { console.error("FAIL: " + file + ": fewer than " + n + " lines match " + re); process.exit(1); }, 30000);
fs.watch(require("path").dirname(file), check);
check();
' "$1" "$2" "$3"
}
