# shellcheck shell=bash
# soak_multi_lib.sh — the fault soak with several jobrelay processes side by side
# (test_soak_multi_pull.sh, test_soak_multi_serve.sh), on top of soak_lib.sh: SOAK_INSTANCES
# processes (default 3), process N with its own config jobrelay-N.yaml (its own dead-letter
# file), each SIGKILLed and restarted at least once: SOAK_KILLS is raised to SOAK_INSTANCES,
# and the kill due at each progress point (soak_kill_due) goes to the processes in turn.
# Every poll notes each process's connections to the fake (soak_conns), so that
# soak_check.js can tell which process made each RunJob.
SOAK_INSTANCES=${SOAK_INSTANCES:-3}
# shellcheck source=tests/integration/soak_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/soak_lib.sh"
[ "$SOAK_KILLS" -ge "$SOAK_INSTANCES" ] || SOAK_KILLS=$SOAK_INSTANCES

RUN_N=0
M_PID=()  # slot -> pid of its running process
# shellcheck disable=SC2034 # M_LOG: read by the tests
M_LOG=()  # slot -> its log
M_CAT=()  # slot -> the cat copying its stdout into the log
M_RUN=()  # slot -> its run number (runs are numbered over all slots, from 1)
M_PORT=() # slot -> serve: its port (0 at first: any free port, kept for the restarts)

# multi_start SLOT pull|serve: starts process SLOT; returns once it runs (pull: PULL-STATE
# running; serve: SERVE-LISTENING, whose port it keeps), following its stdout through a FIFO.
multi_start() {
	local slot=$1 mode=$2 fifo log line t ready=0 port=''
	RUN_N=$((RUN_N + 1))
	fifo="$WORK/$mode-$RUN_N.fifo"
	log="$WORK/$mode-$RUN_N.log"
	mkfifo "$fifo"
	: >"$log"
	t=$(now_ms)
	if [ "$mode" = pull ]; then
		"$JOBRELAY" --log-format json --config "$WORK/jobrelay-$slot.yaml" pull >"$fifo" 2>>"$log" &
		M_PID[slot]=$!
		PULL_PIDS+=("${M_PID[slot]}")
	else
		"$JOBRELAY" --log-format json --config "$WORK/jobrelay-$slot.yaml" serve --port "${M_PORT[slot]:-0}" \
			--bind 127.0.0.1 >"$fifo" 2>>"$log" &
		M_PID[slot]=$!
		SERVE_PIDS+=("${M_PID[slot]}")
	fi
	exec 8<"$fifo"
	while read -r -u 8 line; do
		printf '%s\n' "$line" >>"$log"
		case "$line" in
		*'"msgid":"PULL-STATE"'*'"state":"running"'*) ready=1; break ;;
		*'"msgid":"SERVE-LISTENING"'*)
			port=$(printf '%s' "$line" | sed -n 's/.*"port":"\([0-9]*\)".*/\1/p')
			[ -z "$port" ] || { ready=1; M_PORT[slot]=$port; }
			break
			;;
		esac
	done
	[ "$ready" = 1 ] || { exec 8<&-; cat "$log" >&2; fail "jobrelay $mode (process $slot) did not start"; }
	cat <&8 >>"$log" &
	M_CAT[slot]=$!
	exec 8<&-
	# shellcheck disable=SC2034 # read by the tests
	M_LOG[slot]=$log
	M_RUN[slot]=$RUN_N
	note "\"ev\":\"start\",\"run\":$RUN_N,\"slot\":$slot,\"start\":$t,\"log\":\"$log\",\"pid\":${M_PID[slot]}"
}

# multi_kill SLOT [SNAPSHOT]: SIGKILLs process SLOT (its connections noted first) and waits
# for it; with SNAPSHOT (pull), pstest's messages right after the kill go there.
multi_kill() {
	local slot=$1 at extra=''
	soak_conns "${M_RUN[slot]}" "${M_PID[slot]}"
	at=$(now_ms)
	kill -KILL "${M_PID[slot]}"
	wait "${M_PID[slot]}" 2>/dev/null || true
	wait "${M_CAT[slot]}" || true
	if [ -n "${2:-}" ]; then
		ps_cmd messages "$2" || fail "messages: $PS_REPLY"
		extra=",\"snapshot\":\"$2\""
	fi
	note "\"ev\":\"kill\",\"run\":${M_RUN[slot]},\"slot\":$slot,\"at\":$at$extra"
}

# multi_conns: notes the running processes' new connections to the fake.
multi_conns() {
	local slot
	for ((slot = 1; slot <= SOAK_INSTANCES; slot++)); do
		soak_conns "${M_RUN[slot]}" "${M_PID[slot]}"
	done
}

# multi_victim: the process the next kill goes to (in turn: 1, 2, 3, 1, ...).
multi_victim() { echo $((SOAK_KILLS_DONE % SOAK_INSTANCES + 1)); }

# multi_stop_all: SIGTERM to every process (their CPU added to SOAK_CPU first); fails unless
# each exits 0.
multi_stop_all() {
	local slot rc
	multi_conns
	for ((slot = 1; slot <= SOAK_INSTANCES; slot++)); do
		soak_add_cpu "${M_PID[slot]}"
		kill -TERM "${M_PID[slot]}"
	done
	for ((slot = 1; slot <= SOAK_INSTANCES; slot++)); do
		rc=0
		wait "${M_PID[slot]}" || rc=$?
		wait "${M_CAT[slot]}" || true
		assert_eq "$rc" 0 "exit code of process $slot after SIGTERM"
	done
}
