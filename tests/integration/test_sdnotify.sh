#!/usr/bin/env bash
# shellcheck disable=SC2119 # write_config and start_fake take optional arguments
# test_sdnotify.sh — jobrelay under systemd's notification protocol (docs/install.md,
# "Under systemd"), with a datagram socket of the test's own standing in for systemd's
# $NOTIFY_SOCKET (sdnotify_listen.py prints each datagram it receives):
# - pull against pstest and the Run API fake, $NOTIFY_SOCKET a path, $WATCHDOG_USEC 200 ms:
#   WATCHDOG=1 repeats at about 100 ms intervals, READY=1 comes once the stream is open
#   (/readyz answers 200 at that moment), and SIGTERM gives STOPPING=1 before exit 0;
# - serve --dry-run, $NOTIFY_SOCKET an abstract name, $WATCHDOG_PID another process's:
#   READY=1 once listening (/readyz 200), no WATCHDOG=1 at all, STOPPING=1 on SIGTERM;
# - an unusable $NOTIFY_SOCKET is a warning, not a failure.
# Every wait is a read on the listener's output with a timeout; nothing sleeps.
# shellcheck source=tests/integration/pull_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

LISTENER_PID=
sd_cleanup() {
	if [ -n "$LISTENER_PID" ]; then
		kill "$LISTENER_PID" 2>/dev/null || true
		wait "$LISTENER_PID" 2>/dev/null || true
	fi
	pull_cleanup
}
trap sd_cleanup EXIT

# listen NAME: a datagram socket at NAME (a path, or @abstract) whose datagrams arrive on fd 5
# as "<monotonic ms> <message, newlines as |>" lines; returns once it is bound.
listen() {
	stop_listener
	rm -f "$WORK/notify.fifo"
	mkfifo "$WORK/notify.fifo"
	python3 "$JR_SOURCE_DIR/tests/integration/sdnotify_listen.py" "$1" >"$WORK/notify.fifo" &
	LISTENER_PID=$!
	exec 5<"$WORK/notify.fifo"
	local line=
	read -r -t 10 -u 5 line || true
	[ "$line" = BOUND ] || fail "the notify listener did not bind $1: '$line'"
	: >"$WORK/notify.log"
}
stop_listener() {
	if [ -n "$LISTENER_PID" ]; then
		kill "$LISTENER_PID" 2>/dev/null || true
		wait "$LISTENER_PID" 2>/dev/null || true
		LISTENER_PID=
		exec 5<&-
	fi
}
# next_msg SECONDS: the next datagram into MSG (and MSG_MS), kept in $WORK/notify.log;
# 1 when none came within SECONDS.
next_msg() {
	local line=
	read -r -t "$1" -u 5 line || return 1
	printf '%s\n' "$line" >>"$WORK/notify.log"
	MSG_MS=${line%% *}
	MSG=${line#* }
}
# wait_msg SECONDS PATTERN: reads datagrams until one matches PATTERN (a glob); 1 on timeout.
wait_msg() {
	local end=$((SECONDS + $1))
	while [ "$SECONDS" -le "$end" ]; do
		next_msg $((end - SECONDS + 1)) || return 1
		# shellcheck disable=SC2053 # a glob on purpose
		[[ $MSG == $2 ]] && return 0
	done
	return 1
}
readyz() {
	curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz"
}
log_port() { # log_port LOG MSGID: the "port" of the first MSGID line
	grep -m1 "\"msgid\":\"$2\"" "$1" | sed -n 's/.*"port":"\([0-9]*\)".*/\1/p'
}

# --- pull: path socket, watchdog every 100 ms
start_fake
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" || fail "pstest did not start"
write_config
listen "$WORK/notify.sock"
export NOTIFY_SOCKET="$WORK/notify.sock" WATCHDOG_USEC=200000 WATCHDOG_PID=''
start_pull --port 0 --bind 127.0.0.1
[ -n "$PULL_PID" ] || { cat "$PULL_LOG" >&2; fail "jobrelay pull did not start"; }
log_has DAEMON-SYSTEMD '"watchdog_every":"100ms"' || fail "no DAEMON-SYSTEMD line: $(cat "$PULL_LOG")"
PORT=$(log_port "$PULL_LOG" PULL-HTTP)
[ -n "$PORT" ] || fail "no health port in the log"
wait_msg 30 'READY=1|STATUS=ready' || fail "no READY=1: $(cat "$WORK/notify.log")"
# READY=1 means what /readyz means: the stream is open
assert_eq "$(readyz "$PORT")" 200 "/readyz when READY=1 arrived"
# the pings go on while it runs, each one after the interval (the loop's timers)
ping_ms=()
for _ in 1 2 3 4 5; do
	wait_msg 5 'WATCHDOG=1' || fail "WATCHDOG=1 stopped: $(cat "$WORK/notify.log")"
	ping_ms+=("$MSG_MS")
done
for i in 1 2 3 4; do
	gap=$((ping_ms[i] - ping_ms[i - 1]))
	[ "$gap" -ge 80 ] || fail "WATCHDOG=1 only $gap ms after the last one (interval 100 ms)"
done
grep -c ' WATCHDOG=1$' "$WORK/notify.log" | { read -r n; [ "$n" -ge 6 ]; } ||
	fail "WATCHDOG=1 did not repeat: $(cat "$WORK/notify.log")"
kill -TERM "$PULL_PID"
wait_msg 10 'STOPPING=1|STATUS=stopping (SIGTERM)' || fail "no STOPPING=1 after SIGTERM: $(cat "$WORK/notify.log")"
set +e
wait "$PULL_PID"
PULL_RC=$?
wait "$PULL_CAT"
set -e
assert_eq "$PULL_RC" 0 "pull's exit status after SIGTERM"
log_has PULL-STATE '"state":"draining"' || fail "no draining state"
first=$(grep -m1 -v ' WATCHDOG=1$' "$WORK/notify.log")
assert_eq "${first#* }" "READY=1|STATUS=ready" "the first notification but WATCHDOG=1"
assert_eq "$(grep -c 'READY=1' "$WORK/notify.log")" 1 "READY=1 datagrams"
stop_pstest
stop_listener

# --- serve --dry-run: abstract socket, a watchdog that is another process's
cat >"$WORK/serve.yaml" <<'YAML'
project: test-project
region: europe-west2
routes:
  - name: r
    match: { type: com.example.t }
    job: j
YAML
listen "@jobrelay-sdnotify-test-$$"
export NOTIFY_SOCKET="@jobrelay-sdnotify-test-$$" WATCHDOG_USEC=20000 WATCHDOG_PID=1
"$JOBRELAY" --log-format json --config "$WORK/serve.yaml" serve --dry-run --port 0 --bind 127.0.0.1 \
	>"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
PULL_PIDS+=("$SERVE_PID")
wait_msg 30 'READY=1|STATUS=ready' || fail "no READY=1 from serve: $(cat "$WORK/serve.log")"
PORT=$(log_port "$WORK/serve.log" SERVE-LISTENING)
[ -n "$PORT" ] || fail "no SERVE-LISTENING port before READY=1: $(cat "$WORK/serve.log")"
assert_eq "$(readyz "$PORT")" 200 "serve's /readyz when READY=1 arrived"
grep -q '"watchdog_every":"off"' "$WORK/serve.log" || fail "watchdog not off for WATCHDOG_PID=1"
kill -TERM "$SERVE_PID"
wait_msg 10 'STOPPING=1|STATUS=stopping (SIGTERM)' || fail "no STOPPING=1 from serve: $(cat "$WORK/notify.log")"
set +e
wait "$SERVE_PID"
rc=$?
set -e
assert_eq "$rc" 0 "serve's exit status after SIGTERM"
# its watchdog was another process's: with 10 ms pings, some would have come by now
! grep -q 'WATCHDOG=1' "$WORK/notify.log" || fail "WATCHDOG=1 for WATCHDOG_PID=1: $(cat "$WORK/notify.log")"
assert_eq "$(wc -l <"$WORK/notify.log")" 2 "serve's notifications (READY, STOPPING)"
stop_listener

# --- an unusable socket: a warning, and serve still runs (its log followed through a FIFO)
export NOTIFY_SOCKET="relative/notify" WATCHDOG_USEC='' WATCHDOG_PID=''
mkfifo "$WORK/serve2.fifo"
"$JOBRELAY" --log-format json --config "$WORK/serve.yaml" serve --dry-run --port 0 --bind 127.0.0.1 \
	>"$WORK/serve2.fifo" 2>&1 &
SERVE_PID=$!
PULL_PIDS+=("$SERVE_PID")
exec 6<"$WORK/serve2.fifo"
while read -r -t 30 -u 6 line; do
	printf '%s\n' "$line" >>"$WORK/serve2.log"
	case "$line" in *'"msgid":"SERVE-LISTENING"'*) break ;; esac
done
grep -q '"msgid":"SERVE-LISTENING"' "$WORK/serve2.log" ||
	fail "serve did not start with a bad NOTIFY_SOCKET: $(cat "$WORK/serve2.log")"
grep -q '"msgid":"SDNOTIFY-SOCKET"' "$WORK/serve2.log" || fail "no SDNOTIFY-SOCKET warning"
kill -TERM "$SERVE_PID"
cat <&6 >>"$WORK/serve2.log"
exec 6<&-
set +e
wait "$SERVE_PID"
rc=$?
set -e
assert_eq "$rc" 0 "serve's exit status with a bad NOTIFY_SOCKET"
echo PASS
