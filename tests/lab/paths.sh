# shellcheck shell=bash disable=SC2034 # LAB_CLEANUP_HOOK: read by lab.sh
# paths.sh — what every credential kind's lab test checks, on top of lab.sh (after
# lab_start and lab_creds): replay, serve and pull each get an event to the Run fake
# (run.googleapis.com:443, TLS) and a dead letter to the topic (pubsub.googleapis.com:443,
# TLS), every call carrying `authorization: Bearer <a token gauth issued for this
# kind's credentials>` (and x-goog-user-project exactly when the credentials have a
# quota project). Nothing points jobrelay at the peers but /etc/hosts and the CA.

LAB_RUNS=()

paths_cleanup() {
	local p
	for p in "${LAB_RUNS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
}
LAB_CLEANUP_HOOK=paths_cleanup

# lab_config: jobrelay's config, as deployed (no endpoints anywhere).
lab_config() {
	cat >"$LAB/jobrelay.yaml" <<YAML
project: $LAB_PROJECT
region: europe-west2
subscription: $SUB
topic: $TOPIC
call_timeout: 10s
dead_letter: { topic: $DLT }
policies:
  network: { max_attempts: 3, initial_backoff: 200ms, max_backoff: 1s }
routes:
  - name: ok
    match: { type: lab.ok }
    job: ok-job
    overrides:
      env: { EVENT: "{{id}}" }
  - name: missing
    match: { type: lab.missing }
    job: missing
YAML
}

# jr [ARGS...]: jobrelay with the lab's production environment and config.
jr() {
	"${LAB_ENV[@]}" "$JOBRELAY" --log-format json --config "$LAB/jobrelay.yaml" "$@" \
		{PSTEST_IN}>&- {PSTEST_OUT}<&-
}

# start_bg NAME READY-REGEX ARGS...: starts jobrelay ARGS in the background, its stderr and
# stdout in $LAB/NAME.log, and returns once a log line matches READY-REGEX (read through a
# FIFO, no sleeps); sets BG_PID. Fails when it exits first.
start_bg() {
	local name=$1 ready=$2 line='' ok=0
	shift 2
	mkfifo "$LAB/$name.fifo"
	: >"$LAB/$name.log"
	"${LAB_ENV[@]}" "$JOBRELAY" --log-format json --config "$LAB/jobrelay.yaml" "$@" \
		>"$LAB/$name.fifo" 2>&1 {PSTEST_IN}>&- {PSTEST_OUT}<&- &
	BG_PID=$!
	LAB_RUNS+=("$BG_PID")
	exec {BG_FD}<"$LAB/$name.fifo"
	while read -r -t 60 -u "$BG_FD" line; do
		printf '%s\n' "$line" >>"$LAB/$name.log"
		if [[ $line =~ $ready ]]; then
			ok=1
			break
		fi
	done
	if [ "$ok" != 1 ]; then
		cat "$LAB/$name.log" >&2
		fail "jobrelay $* did not get ready (no line matching $ready)"
	fi
	cat <&"$BG_FD" >>"$LAB/$name.log" &
	exec {BG_FD}<&-
}

# stop_bg: SIGTERM to BG_PID, waits; sets BG_RC.
stop_bg() {
	kill -TERM "$BG_PID"
	set +e
	wait "$BG_PID"
	BG_RC=$?
	set -e
}

runjob_ok_for() { # runjob_ok_for EVENT-ID: the Run fake answered a RunJob for it OK
	[ -f "$LAB/run.jsonl" ] && grep '"method":"RunJob"' "$LAB/run.jsonl" | grep '"statusName":"OK"' |
		grep -q "{\"name\":\"EVENT\",\"value\":\"$1\"}"
}

ce() { # ce ID TYPE: one structured CloudEvent a line
	printf '{"specversion":"1.0","id":"%s","source":"//lab/%s","type":"%s","datacontenttype":"application/json","data":{"n":1}}\n' \
		"$1" "$LAB_KIND" "$2"
}

lab_paths() {
	lab_config

	echo "== $LAB_KIND: replay"
	{
		ce "replay-ok" lab.ok
		ce "replay-dl" lab.missing
	} >"$LAB/replay.ndjson"
	set +e
	jr replay "$LAB/replay.ndjson" >"$LAB/replay.out" 2>"$LAB/replay.log"
	local rc=$?
	set -e
	grep -q '"msgid":"RUNAPI-READY".*"run.googleapis.com:443 (tls)"' "$LAB/replay.log" ||
		{ cat "$LAB/replay.log" >&2; fail "replay: no RUNAPI-READY for run.googleapis.com:443 (tls)"; }
	runjob_ok_for replay-ok || { cat "$LAB/replay.log" >&2; fail "replay: no RunJob for replay-ok"; }
	assert_eq "$rc" 1 "replay exit code (one event dead-lettered)"
	! grep -q '"failed_at"' "$LAB/replay.out" || fail "replay printed a dead letter the topic did not take"

	echo "== $LAB_KIND: serve"
	start_bg serve '"msgid":"SERVE-LISTENING"' serve --port 0 --bind 127.0.0.1
	local port code id
	port=$(sed -n 's/.*"msgid":"SERVE-LISTENING".*"port":"\([0-9]*\)".*/\1/p' "$LAB/serve.log")
	[ -n "$port" ] || fail "serve: no port"
	grep -q '"msgid":"RUNAPI-READY".*"run.googleapis.com:443 (tls)"' "$LAB/serve.log" ||
		fail "serve: not over TLS to run.googleapis.com:443"
	grep -q '"msgid":"DLTOPIC-READY".*"pubsub.googleapis.com:443 (tls)"' "$LAB/serve.log" ||
		fail "serve: the dead-letter topic not over TLS at pubsub.googleapis.com:443"
	for id in serve-ok serve-dl; do
		local type=lab.ok
		[ "$id" = serve-ok ] || type=lab.missing
		code=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -H 'ce-specversion: 1.0' -H "ce-id: $id" \
			-H "ce-source: //lab/$LAB_KIND" -H "ce-type: $type" -H 'content-type: application/json' \
			--data-binary '{"n":2}' "http://127.0.0.1:$port/")
		assert_eq "$code" 204 "serve: POST of $id"
	done
	runjob_ok_for serve-ok || fail "serve: no RunJob for serve-ok"
	stop_bg
	assert_eq "$BG_RC" 0 "serve exit code"

	echo "== $LAB_KIND: pull"
	ps_cmd stats || fail "stats: $PS_REPLY"
	local acked0
	acked0=$(ps_field acked)
	# pstest's message file: each structured event as a message's data
	{
		ce pull-ok lab.ok
		ce pull-dl lab.missing
	} | node -e 'for (const l of require("fs").readFileSync(0, "utf8").trim().split("\n"))
  console.log(JSON.stringify({ data: l, attributes: { "content-type": "application/cloudevents+json" } }));' \
		>"$LAB/pull.jsonl"
	start_bg pull '"msgid":"PULL-STATE".*"state":"running"' pull
	grep '"msgid":"PULL-READY"' "$LAB/pull.log" |
		grep -q '"pubsub":"pubsub.googleapis.com:443 (tls)","run_api":"run.googleapis.com:443 (tls)"' ||
		fail "pull: not over TLS to pubsub.googleapis.com:443 and run.googleapis.com:443"
	ps_cmd publish "$TOPIC" "$LAB/pull.jsonl" || fail "publish: $PS_REPLY"
	ps_cmd wait-acked $((acked0 + 2)) 30s || { cat "$LAB/pull.log" >&2; fail "pull: messages not acked: $PS_REPLY"; }
	runjob_ok_for pull-ok || fail "pull: no RunJob for pull-ok"
	stop_bg
	assert_eq "$BG_RC" 0 "pull exit code"

	echo "== $LAB_KIND: the dead letters of replay, serve and pull reached the topic"
	ps_cmd pull "$DLS" 3 30s || fail "dead-letter topic: $PS_REPLY"
	for id in replay-dl serve-dl pull-dl; do
		grep -q "\"jobrelay-event-id\":\"$id\"" <<<"$PS_REPLY" || fail "no dead letter for $id: $PS_REPLY"
	done

	echo "== $LAB_KIND: every call carried a token gauth issued for these credentials"
	node "$LAB_SRC/check_tokens.js" "$LAB/gauth.jsonl" "$LAB/run.jsonl" "$LAB/pubsub.jsonl" \
		"$LAB_TOKEN_SERVICE" "$LAB_SUBJECT" "$LAB_USER_PROJECT" || fail "tokens ($LAB_KIND)"
}
