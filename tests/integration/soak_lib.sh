# shellcheck shell=bash
# soak_lib.sh — the fault soak (issue 5), shared by test_soak_pull.sh,
# test_soak_serve.sh and bench/soak.sh, on top of pull_lib.sh (lib.sh, pstest).
#
# The Run API fake injects faults (tests/peers/runfake/lib/faults.js): UNAVAILABLE
# for 20% of RunJob calls, RESOURCE_EXHAUSTED with RetryInfo for 5%,
# DEADLINE_EXCEEDED after creating the execution for 5% (seeded, per JOBRELAY_KEY
# and attempt), PERMISSION_DENIED for job-denied while $WORK/deny.on exists, and
# NOT_FOUND for job-missing throughout. Events go to five jobs (job-a, job-b,
# job-c, job-denied: 10%, job-missing: 2.5%). Dead letters go to a Pub/Sub topic on
# pstest and to a file. jobrelay is SIGKILLed and restarted at points chosen by
# progress; $WORK/soak.jsonl notes every start, kill and switch for soak_check.js.
#
# Every RunJob answer comes 300-600 ms after the request (the fake's answer_delay_ms; the
# execution exists from the request on), so kills hit RunJob calls in flight. The events'
# subscription has a dead-letter policy on pstest (so every delivery carries
# delivery_attempt) to a topic of its own, with 100 attempts: in a healthy run nothing
# reaches it, and soak_check.js fails on anything that does.
#
# Settings (environment): SOAK_EVENTS (events, default 2000), SOAK_KILLS (2),
# SOAK_SEED (1), SOAK_STREAM_TIMEOUT (pstest cuts streams after, default 3s),
# SOAK_WAIT (seconds the whole run may take at most, default 600), SOAK_ANSWER_DELAY
# (the fake's RunJob answer delay range in ms, default 300-600; 0 = answer at once).
# shellcheck source=tests/integration/pull_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pull_lib.sh"

SOAK_EVENTS=${SOAK_EVENTS:-2000}
SOAK_KILLS=${SOAK_KILLS:-2}
SOAK_SEED=${SOAK_SEED:-1}
SOAK_STREAM_TIMEOUT=${SOAK_STREAM_TIMEOUT:-3s}
SOAK_WAIT=${SOAK_WAIT:-600}
SOAK_ANSWER_DELAY=${SOAK_ANSWER_DELAY:-300-600}
# The acceptance is 0 events started twice: soak_check.js fails on any, listing each with
# its cause.
# jobrelay processes side by side (test_soak_multi_*.sh set 3)
SOAK_INSTANCES=${SOAK_INSTANCES:-1}
SOAK_PROJECT=soak-project
TOPIC=projects/$SOAK_PROJECT/topics/events
SUB=projects/$SOAK_PROJECT/subscriptions/jobs
DL_TOPIC=projects/$SOAK_PROJECT/topics/dead
DL_SUB=projects/$SOAK_PROJECT/subscriptions/dead
# the events subscription's own dead-letter policy (Pub/Sub's forwarding, not jobrelay's)
SVC_DL_TOPIC=projects/$SOAK_PROJECT/topics/sub-dead
SVC_DL_SUB=projects/$SOAK_PROJECT/subscriptions/sub-dead
SVC_MAX_ATTEMPTS=100
DENIED_JOB=job-denied
MISSING_JOB=job-missing
SOAK_CALL_TIMEOUT_MS=5000
SOAK_NOTES="$WORK/soak.jsonl"
SOAK_DL="$WORK/dead-topic.jsonl"
SOAK_SVC_DL="$WORK/sub-dead-topic.jsonl"
: >"$SOAK_NOTES"
: >"$SOAK_DL"
: >"$SOAK_SVC_DL"
SERVE_PIDS=()
CLIENT_PID=

soak_cleanup() {
	local p
	for p in "${SERVE_PIDS[@]}" $CLIENT_PID; do
		kill -KILL "$p" 2>/dev/null || true
	done
	pull_cleanup
}
trap soak_cleanup EXIT

now_ms() { date +%s%3N; }

# note JSON-MEMBERS: appends {"t": now, MEMBERS} to $SOAK_NOTES.
note() { printf '{"t":%s,%s}\n' "$(now_ms)" "$1" >>"$SOAK_NOTES"; }

# soak_messages FILE: 40 message kinds in pstest's format, a structured CloudEvent each
# (id soak-<n>, message n is kind n % 40): 4 for job-denied (10%), 1 for job-missing
# (2.5%), the other 35 for job-a, job-b and job-c in turn.
soak_messages() {
	local k j abc=(job-a job-b job-c) i=0
	: >"$1"
	for ((k = 0; k < 40; k++)); do
		if [ $((k % 10)) = 7 ]; then
			j=$DENIED_JOB
		elif [ "$k" = 12 ]; then
			j=$MISSING_JOB
		else
			j=${abc[i % 3]}
			i=$((i + 1))
		fi
		printf '%s\n' '{"data":"{\"specversion\":\"1.0\",\"id\":\"soak-{{n}}\",\"source\":\"//soak/events\",\"type\":\"com.example.soak\",\"datacontenttype\":\"application/json\",\"data\":{\"n\":{{n}},\"job\":\"'"$j"'\"}}","attributes":{"content-type":"application/cloudevents+json","job":"'"$j"'"}}' >>"$1"
	done
}

# soak_faults FILE: the fake's fault settings (lib/faults.js).
soak_faults() {
	local delay='null'
	case "$SOAK_ANSWER_DELAY" in '' | 0 | 0-0) ;; *) delay="\"$SOAK_ANSWER_DELAY\"" ;; esac
	cat >"$1" <<JSON
{"seed": $SOAK_SEED, "unavailable": 0.20, "resource_exhausted": 0.05, "retry_delay_ms": 200,
 "deadline_exceeded": 0.05, "answer_delay_ms": $delay,
 "denied": {"job": "$DENIED_JOB", "while_file": "$WORK/deny.on"},
 "not_found": {"job": "$MISSING_JOB"}}
JSON
}

# soak_config FILE [DEAD_LETTER_FILE]: jobrelay's config (dead letters to $WORK/dead.ndjson
# unless given: side by side, each process has a file of its own). Short backoffs so that the run converges in
# minutes; a breaker that the 25% of random network/timeout faults never trips
# (failure_rate 0.8 of 20) but a job that fails every call does; short open times
# (500 ms, at most 2 s) and 3 probes when half-open: job-missing's NOT_FOUND
# (invalid_request) trips its breaker too, and its held events then reach the
# dead-letter sinks only as probes, so one probe a period would make the run slow;
# but every probe must succeed to close a breaker, and 20% of calls fail at random
# (UNAVAILABLE, a tripping class), so with 10 probes a period (0.8^10: 11%) the
# denied job's breaker often did not close before its held events had all gone
# through as probes. With 3 (0.8^3: 51% a period) it closes within a few periods.
soak_config() {
	local j
	cat >"$1" <<YAML
project: $SOAK_PROJECT
region: europe-west2
subscription: $SUB
topic: $TOPIC
concurrency: 32
call_timeout: ${SOAK_CALL_TIMEOUT_MS}ms
flow_control: { max_messages: 200, ack_deadline: 10s }
shutdown_grace: 5s
dead_letter: { topic: $DL_TOPIC, file: ${2:-$WORK/dead.ndjson} }
policies:
  network: { max_attempts: 12, initial_backoff: 100ms, max_backoff: 1s }
  timeout: { max_attempts: 12, initial_backoff: 100ms, max_backoff: 1s }
  resource: { max_attempts: 20, initial_backoff: 200ms, max_backoff: 1s }
  permission: { max_attempts: 100, initial_backoff: 200ms, max_backoff: 2s }
  unknown: { max_attempts: 5, initial_backoff: 100ms, max_backoff: 1s }
circuit_breaker: { window: 20, min_calls: 10, failure_rate: 0.8, open_for: 500ms, max_open_for: 2s, half_open_calls: 3 }
dedup: { ttl: 10m, max_entries: 100000 }
routes:
YAML
	for j in job-a job-b job-c $DENIED_JOB $MISSING_JOB; do
		cat >>"$1" <<YAML
  - name: r-$j
    match: { type: com.example.soak, attributes: { job: $j } }
    job: $j
    overrides:
      env: { N: "{{data.n}}", MSG: "{{message.id?}}" }
    rate_limit: { per_second: 400, burst: 64 }
YAML
	done
}

# soak_start_peers: the fake (faults and answer delay on, PERMISSION_DENIED switched on)
# and pstest (stream cut every $SOAK_STREAM_TIMEOUT) with the events topic (its
# subscription with a dead-letter policy: $SVC_DL_TOPIC after $SVC_MAX_ATTEMPTS
# deliveries) and the two dead-letter topics, each with a subscription; the message
# file and the config (one per instance with SOAK_INSTANCES > 1: jobrelay-N.yaml, each
# with its own dead-letter file dead-N.ndjson).
soak_start_peers() {
	local i dl_files=''
	soak_faults "$WORK/faults.json"
	touch "$WORK/deny.on"
	start_fake --faults "$WORK/faults.json" --stats "$WORK/fake.stats.json"
	start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" --stream-timeout "$SOAK_STREAM_TIMEOUT" \
		--dead-letter-topic "$SVC_DL_TOPIC" --max-delivery-attempts "$SVC_MAX_ATTEMPTS"
	ps_cmd create-subscription "$SVC_DL_SUB" "$SVC_DL_TOPIC" 60 || fail "create-subscription: $PS_REPLY"
	ps_cmd create-topic "$DL_TOPIC" || fail "create-topic: $PS_REPLY"
	ps_cmd create-subscription "$DL_SUB" "$DL_TOPIC" 60 || fail "create-subscription: $PS_REPLY"
	soak_messages "$WORK/msgs.jsonl"
	if [ "$SOAK_INSTANCES" -gt 1 ]; then
		for ((i = 1; i <= SOAK_INSTANCES; i++)); do
			soak_config "$WORK/jobrelay-$i.yaml" "$WORK/dead-$i.ndjson"
			dl_files="$dl_files${dl_files:+,}\"$WORK/dead-$i.ndjson\""
		done
	else
		soak_config "$WORK/jobrelay.yaml"
		dl_files="\"$WORK/dead.ndjson\""
	fi
	PULL_CONFIG="$WORK/jobrelay.yaml"
	SOAK_DENIED=$(soak_denied_events)
	note "\"ev\":\"setup\",\"events\":$SOAK_EVENTS,\"seed\":$SOAK_SEED,\"messages\":\"$WORK/msgs.jsonl\",\"denied_job\":\"$DENIED_JOB\",\"missing_job\":\"$MISSING_JOB\",\"call_timeout_ms\":$SOAK_CALL_TIMEOUT_MS,\"records\":\"$WORK/record.jsonl\",\"faults\":\"$WORK/faults.json\",\"dl_topic\":\"$SOAK_DL\",\"dl_file\":\"$WORK/dead.ndjson\",\"dl_files\":[$dl_files],\"svc_dl_topic\":\"$SOAK_SVC_DL\",\"svc_max_attempts\":$SVC_MAX_ATTEMPTS,\"instances\":$SOAK_INSTANCES,\"answer_delay\":\"$SOAK_ANSWER_DELAY\",\"binary\":\"$JOBRELAY\""
}

# soak_pull_dead: moves what the dead-letter subscriptions hold into $SOAK_DL (jobrelay's
# dead letters) and $SOAK_SVC_DL (Pub/Sub's forwarding after $SVC_MAX_ATTEMPTS deliveries),
# acked; sets DL_PULLED (lines in both: pstest counts them as acked) and SVC_DL_PULLED.
soak_pull_dead() {
	ps_cmd drain "$DL_SUB" "$SOAK_DL" || fail "drain $DL_SUB: $PS_REPLY"
	ps_cmd drain "$SVC_DL_SUB" "$SOAK_SVC_DL" || fail "drain $SVC_DL_SUB: $PS_REPLY"
	# shellcheck disable=SC2034 # read by the tests
	SVC_DL_PULLED=$(wc -l <"$SOAK_SVC_DL")
	# shellcheck disable=SC2034 # read by the tests
	DL_PULLED=$(($(wc -l <"$SOAK_DL") + SVC_DL_PULLED))
}

# soak_conns RUN PID: notes, once each, the TCP connections from PID to the fake
# ({"ev":"conn","run":RUN,"peer":"127.0.0.1:PORT"}), so that soak_check.js can tell which
# process made each RunJob when several run at once (the fake records the peer). Read
# from /proc: the process's socket inodes, and the local port of each in /proc/net/tcp and
# tcp6 (gRPC connects to 127.0.0.1 over a dual-stack IPv6 socket).
declare -A SOAK_PEERS_SEEN=()
soak_conns() {
	local inodes p fport
	inodes=$(find "/proc/$2/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | sed 's/^socket:\[\(.*\)\]$/\1/' | tr '\n' ' ')
	[ -n "$inodes" ] || return 0
	fport=$(printf '%04X' "$FAKE_PORT")
	# shellcheck disable=SC2013 # one port a line, digits only
	for p in $(awk -v fp="$fport" -v ino="$inodes" 'BEGIN { n = split(ino, a, " "); for (i = 1; i <= n; i++) s[a[i]] = 1 }
		FNR > 1 { split($2, l, ":"); split($3, r, ":"); if (r[2] == fp && ($10 in s)) print l[2] }' /proc/net/tcp /proc/net/tcp6); do
		p="127.0.0.1:$((16#$p))"
		[ -z "${SOAK_PEERS_SEEN[$1/$p]:-}" ] || continue
		SOAK_PEERS_SEEN[$1/$p]=1
		note "\"ev\":\"conn\",\"run\":$1,\"peer\":\"$p\""
	done
}

# breaker_count STATE: transitions of $DENIED_JOB's breaker to STATE (OPEN, CLOSED) in every
# log so far.
breaker_count() {
	cat "$WORK"/pull-*.log "$WORK"/serve-*.log 2>/dev/null |
		grep "\"msgid\":\"BREAKER-$1\"" | grep -c -- "$DENIED_JOB\"" || true
}

# denied_state LOG: OPEN, HALF-OPEN or CLOSED, as the last BREAKER-* line of the denied
# job in LOG says; empty without one.
denied_state() {
	grep '"msgid":"BREAKER-' "$1" | grep -- "$DENIED_JOB\"" | tail -n 1 | sed -n 's/.*"msgid":"BREAKER-\([A-Z-]*\)".*/\1/p'
}

# soak_deny_off_when PROGRESS DONE_OTHERS LOG: switches PERMISSION_DENIED off once half
# the events are done, the denied job's breaker has opened twice, and it is open now in
# the running jobrelay (LOG), so that it must close in this run; or when every other
# event is done, so that a breaker that never opens fails the check, not the wait.
DENY_OFF_OPEN=0
soak_deny_off_when() {
	[ -e "$WORK/deny.on" ] || return 0
	if [ "$1" -ge $((SOAK_EVENTS / 2)) ] && [ "$(breaker_count OPEN)" -ge 2 ] && [ "$(denied_state "$3")" = OPEN ]; then
		DENY_OFF_OPEN=1
		DENY_CLOSES=$(breaker_count CLOSED)
	elif [ "$2" != 1 ]; then
		return 0
	fi
	rm -f "$WORK/deny.on"
	note '"ev":"deny-off"'
}

# soak_may_kill: not while the denial has ended with the breaker open and no process has
# closed it since: a kill then could take the close the check wants away. Side by side, a
# close in any process will do (the process due to be killed may see too few of the denied
# job's events to close its own before the run ends).
DENY_CLOSES=0 # closes of the denied job's breaker when the denial ended with it open
soak_may_kill() {
	[ "$DENY_OFF_OPEN" = 1 ] || return 0
	[ "$(breaker_count CLOSED)" -gt "$DENY_CLOSES" ]
}

# soak_kill_due DONE LOG PID: one step of a test's wait, with DONE events done and the
# running jobrelay's LOG and PID: switches the denial off when it is time
# (soak_deny_off_when) and answers 0 when a kill is due (the next 1/(SOAK_KILLS+1) of the
# events is done and soak_may_kill allows it); then adds PID's CPU to SOAK_CPU and counts
# the kill in SOAK_KILLS_DONE. SOAK_DENIED: the denied job's events (soak_start_peers).
SOAK_KILLS_DONE=0
SOAK_CPU=0
soak_kill_due() {
	local others=0
	[ "$1" -lt $((SOAK_EVENTS - SOAK_DENIED)) ] || others=1
	soak_deny_off_when "$1" "$others" "$2"
	[ "$SOAK_KILLS_DONE" -lt "$SOAK_KILLS" ] || return 1
	[ "$1" -ge $(((SOAK_KILLS_DONE + 1) * SOAK_EVENTS / (SOAK_KILLS + 1))) ] || return 1
	soak_may_kill || return 1
	soak_add_cpu "$3"
	SOAK_KILLS_DONE=$((SOAK_KILLS_DONE + 1))
}

# soak_add_cpu PID: adds PID's CPU seconds so far to SOAK_CPU.
soak_add_cpu() {
	SOAK_CPU=$(awk -v a="$SOAK_CPU" -v b="$(soak_cpu "$1")" 'BEGIN { print a + b }')
}

# soak_denied_events: how many of the SOAK_EVENTS events go to the denied job.
soak_denied_events() {
	node -e 'const k = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l).attributes.job);
let c = 0; for (let n = 0; n < Number(process.argv[2]); n++) if (k[n % k.length] === process.argv[3]) c++; console.log(c);' \
		"$WORK/msgs.jsonl" "$SOAK_EVENTS" "$DENIED_JOB"
}

# soak_stop_fake: SIGTERM to the fake, which then writes its stats file.
soak_stop_fake() {
	kill -TERM "$FAKE_PID"
	wait "$FAKE_PID" || true
	FAKE_PID=
}

# soak_cpu PID: user+system CPU seconds of a live process (from /proc).
soak_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# soak_check: runs the checker on the notes; prints its figures; fails on a violation.
soak_check() {
	node "$JR_SOURCE_DIR/tests/integration/soak_check.js" "$SOAK_NOTES" || fail "soak check (work dir $WORK)"
}
