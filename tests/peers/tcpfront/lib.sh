# lib.sh — start the TCP front (front.js) from a bash test and talk to it over its line protocol.
#
#   . tests/peers/tcpfront/lib.sh
#   start_front "$WORK" 127.0.0.1:"$PSTEST_PORT"   # sets FRONT_PID, FRONT_PORT
#   front_cmd blackhole || fail "$FRONT_REPLY"
#   front_cmd stats; front_field dropped
#   stop_front
#
# The front exits when the shell that started it goes away (EOF on its stdin).

FRONT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# start_front DIR TARGET: starts the front with FIFOs in DIR, forwarding to TARGET (host:port).
start_front() {
	local dir=$1 line=
	rm -f "$dir/front.in" "$dir/front.out"
	mkfifo "$dir/front.in" "$dir/front.out"
	node "$FRONT_DIR/front.js" --target "$2" <"$dir/front.in" >"$dir/front.out" 2>"$dir/front.err" &
	FRONT_PID=$!
	exec {FRONT_IN}>"$dir/front.in"
	exec {FRONT_OUT}<"$dir/front.out"
	FRONT_PORT=
	while read -r -u "$FRONT_OUT" line; do
		case "$line" in LISTENING\ *) FRONT_PORT=${line#LISTENING }; break ;; esac
	done
	if [ -z "$FRONT_PORT" ]; then
		cat "$dir/front.err" >&2
		echo "front: did not start" >&2
		return 1
	fi
}

# front_cmd COMMAND: one command; the text after OK/ERR goes to FRONT_REPLY; status 1 on ERR.
front_cmd() {
	local line
	printf '%s\n' "$*" 1>&"$FRONT_IN"
	if ! read -r -u "$FRONT_OUT" line; then
		FRONT_REPLY="no reply (front gone?)"
		return 2
	fi
	FRONT_REPLY=${line#* }
	case "$line" in OK\ *) return 0 ;; *) return 1 ;; esac
}

# front_field NAME: a number member of the last reply.
front_field() {
	sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$FRONT_REPLY"
}

# stop_front: ends the front (quit, then EOF) and waits for it.
stop_front() {
	[ -n "${FRONT_PID:-}" ] || return 0
	local line
	printf 'quit\n' 1>&"$FRONT_IN" 2>/dev/null && read -r -t 10 -u "$FRONT_OUT" line || true
	exec {FRONT_IN}>&- 2>/dev/null || true
	exec {FRONT_OUT}<&- 2>/dev/null || true
	wait "$FRONT_PID" 2>/dev/null || true
	FRONT_PID=
}
