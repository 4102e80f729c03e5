# lib.sh — start the pstest harness (Google's in-memory Pub/Sub server) from a
# bash test, benchmark or demo, and talk to it over its line protocol.
#
#   . tests/peers/pstest/lib.sh
#   start_pstest "$WORK" --topic projects/p/topics/t --subscription projects/p/subscriptions/s
#   ps_cmd publish projects/p/topics/t "$WORK/messages.jsonl"   # reply JSON in PS_REPLY
#   ps_cmd wait-acked 20 30s || fail "not all acked: $PS_REPLY"
#   stop_pstest
#
# start_pstest builds the harness on first use (offline, Debian's Go packages)
# into $PSTEST_BUILD_DIR (default $JR_BUILD_DIR/pstest, else a folder under
# /tmp; rebuilt when a .go file is newer), waits for its LISTENING line through a FIFO, and exports
# PUBSUB_EMULATOR_HOST. The harness exits when the shell that started it goes
# away (EOF on its stdin), so a failed test leaves no orphan.

PSTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# pstest_build: prints the harness binary's path; builds it when missing or older than its source.
pstest_build() {
	local out=${PSTEST_BUILD_DIR:-${JR_BUILD_DIR:+$JR_BUILD_DIR/pstest}}
	out=${out:-${TMPDIR:-/tmp}/jobrelay-pstest-$(id -u)}
	mkdir -p "$out" && out=$(cd "$out" && pwd)   # absolute: go wants GOCACHE so
	local bin=$out/pstest
	(
		flock 9
		local stale= f
		for f in "$PSTEST_DIR"/*.go; do [ "$f" -nt "$bin" ] && stale=1; done
		if [ ! -x "$bin" ] || [ -n "$stale" ]; then
			command -v go >/dev/null || { echo "pstest: no Go toolchain; run scripts/deps.sh" >&2; exit 1; }
			echo "pstest: building $bin" >&2
			cd "$PSTEST_DIR" &&
				GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$out/gocache" GOFLAGS='' \
					go build -o "$bin.tmp" . && mv "$bin.tmp" "$bin"
		fi
	) 9>"$out/.lock" || return 1
	echo "$bin"
}

# start_pstest DIR [FLAGS...]: starts the harness with FIFOs in DIR; sets PSTEST_PID, PSTEST_PORT.
start_pstest() {
	local dir=$1 bin line=
	shift
	bin=$(pstest_build) || return 1
	rm -f "$dir/pstest.in" "$dir/pstest.out"
	mkfifo "$dir/pstest.in" "$dir/pstest.out"
	"$bin" "$@" <"$dir/pstest.in" >"$dir/pstest.out" 2>"$dir/pstest.err" &
	PSTEST_PID=$!
	exec {PSTEST_IN}>"$dir/pstest.in"
	exec {PSTEST_OUT}<"$dir/pstest.out"
	PSTEST_PORT=
	# the harness prints LISTENING <port> once it accepts calls; read blocks until then
	while read -r -u "$PSTEST_OUT" line; do
		case "$line" in LISTENING\ *) PSTEST_PORT=${line#LISTENING }; break ;; esac
	done
	if [ -z "$PSTEST_PORT" ]; then
		cat "$dir/pstest.err" >&2
		echo "pstest: the harness did not start" >&2
		return 1
	fi
	export PUBSUB_EMULATOR_HOST="127.0.0.1:$PSTEST_PORT"
}

# ps_cmd COMMAND ARGS...: one command; the text after OK/ERR goes to PS_REPLY; status 1 on ERR.
ps_cmd() {
	local line
	printf '%s\n' "$*" 1>&"$PSTEST_IN"
	if ! read -r -u "$PSTEST_OUT" line; then
		PS_REPLY="no reply (harness gone?)"
		return 2
	fi
	PS_REPLY=${line#* }
	case "$line" in OK\ *) return 0 ;; *) return 1 ;; esac
}

# ps_field NAME [JSON]: a number or string member of a flat JSON object (default: PS_REPLY).
ps_field() {
	local json=${2:-$PS_REPLY}
	sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$json"
}

# stop_pstest: ends the harness (quit, then EOF) and waits for it.
stop_pstest() {
	[ -n "${PSTEST_PID:-}" ] || return 0
	local line
	printf 'quit\n' 1>&"$PSTEST_IN" 2>/dev/null && read -r -t 10 -u "$PSTEST_OUT" line || true
	exec {PSTEST_IN}>&- 2>/dev/null || true
	exec {PSTEST_OUT}<&- 2>/dev/null || true
	wait "$PSTEST_PID" 2>/dev/null || true
	PSTEST_PID=
}
