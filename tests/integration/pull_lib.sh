# pull_lib.sh — for the test_pull*.sh tests, on top of lib.sh: Google's pstest
# (tests/peers/pstest) and the Run API fake on loopback, `jobrelay pull`
# started with its log in $WORK/pull-N.log and followed through a FIFO until it
# runs (no sleeps), the test messages of every kind, and checks of what the
# fake received. Everything left running is killed at exit.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$JR_SOURCE_DIR/tests/peers/pstest/lib.sh"

TOPIC=projects/test-project/topics/events
SUB=projects/test-project/subscriptions/jobs
PULL_N=0
PULL_PIDS=()

pull_cleanup() {
	local p
	for p in "${PULL_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	stop_pstest
	cleanup
}
trap pull_cleanup EXIT

# write_config [EXTRA YAML]: $PULL_CONFIG (default $WORK/jobrelay.yaml) for $SUB and $TOPIC,
# with three routes, one per message kind.
write_config() {
	cat >"${PULL_CONFIG:-$WORK/jobrelay.yaml}" <<YAML
project: test-project
region: europe-west2
subscription: $SUB
topic: $TOPIC
dead_letter: { file: $WORK/dead.ndjson }
shutdown_grace: ${GRACE:-5s}
policies:
  network: { max_attempts: 5, initial_backoff: 1s, max_backoff: 2s }
${1:-}
routes:
  - name: structured
    match: { type: com.example.structured }
    job: structured-job
    overrides:
      env: { NAME: "{{data.name}}", N: "{{data.n}}", MSG: "{{message.id}}" }
      args: [ "--id", "{{id}}" ]
  - name: binary
    match: { type: com.example.binary }
    job: binary-job
    overrides:
      env: { N: "{{data.n}}", TENANT: "{{tenant}}", MSG: "{{message.id}}" }
  - name: plain
    match:
      type: google.cloud.pubsub.topic.v1.messagePublished
      source: //pubsub.googleapis.com/$TOPIC
      attributes: { kind: plain }
    job: plain-job
    overrides:
      env: { PAYLOAD: "{{data.message.data}}", MSG: "{{message.id}}" }
      task_count: 2
      timeout: 90s
YAML
}

# write_messages FILE: one message of each kind a line (pstest's format; {{n}} is the sequence number).
write_messages() {
	cat >"$1" <<'JSONL'
{"data":"{\"specversion\":\"1.0\",\"id\":\"st-{{n}}\",\"source\":\"//test/structured\",\"type\":\"com.example.structured\",\"datacontenttype\":\"application/json\",\"data\":{\"n\":{{n}},\"name\":\"obj-{{n}}\"}}","attributes":{"content-type":"application/cloudevents+json; charset=utf-8"}}
{"data":"{\"n\":{{n}}}","attributes":{"ce-specversion":"1.0","ce-id":"bin-{{n}}","ce-source":"//test/binary","ce-type":"com.example.binary","ce-tenant":"acme","content-type":"application/json"}}
{"data":"plain text {{n}}","attributes":{"kind":"plain"}}
JSONL
}

# start_pull [PULL FLAGS...]: starts jobrelay [$PULL_GLOBALS] pull with $PULL_CONFIG (default
# $WORK/jobrelay.yaml);
# returns once it runs (PULL_PID, PULL_LOG),
# or once it exited (PULL_RC set, PULL_PID empty).
start_pull() {
	PULL_N=$((PULL_N + 1))
	local fifo="$WORK/pull-$PULL_N.fifo" line=
	PULL_LOG="$WORK/pull-$PULL_N.log"
	PULL_RC=
	mkfifo "$fifo"
	: >"$PULL_LOG"
	# shellcheck disable=SC2086 # PULL_GLOBALS: global flags, split on spaces
	"$JOBRELAY" --log-format json ${PULL_GLOBALS:-} --config "${PULL_CONFIG:-$WORK/jobrelay.yaml}" \
		pull "$@" >"$fifo" 2>>"$PULL_LOG" &
	PULL_PID=$!
	PULL_PIDS+=("$PULL_PID")
	exec 8<"$fifo"
	local running=0
	while read -r -u 8 line; do
		printf '%s\n' "$line" >>"$PULL_LOG"
		case "$line" in *'"msgid":"PULL-STATE"'*'"state":"running"'*) running=1; break ;; esac
	done
	if [ "$running" = 1 ]; then
		# keep copying its stdout into the log; stop_pull waits for the copy to end
		cat <&8 >>"$PULL_LOG" &
		PULL_CAT=$!
		exec 8<&-
		return 0
	fi
	exec 8<&-
	set +e
	wait "$PULL_PID"
	PULL_RC=$?
	set -e
	PULL_PID=
}

# run_pull_to_exit [PULL FLAGS...]: runs jobrelay pull in the foreground (at most 60 s) for the
# cases that must end by themselves; sets PULL_RC and PULL_LOG.
run_pull_to_exit() {
	PULL_N=$((PULL_N + 1))
	PULL_LOG="$WORK/pull-$PULL_N.log"
	set +e
	timeout 60 "$JOBRELAY" --log-format json --config "${PULL_CONFIG:-$WORK/jobrelay.yaml}" pull "$@" \
		>"$PULL_LOG" 2>&1
	PULL_RC=$?
	set -e
}

# stop_pull [SIGNAL]: signals the last jobrelay (TERM) and waits; sets PULL_RC.
stop_pull() {
	kill -"${1:-TERM}" "$PULL_PID"
	set +e
	wait "$PULL_PID"
	PULL_RC=$?
	wait "$PULL_CAT"
	set -e
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

runjob_count_at_least() {
	[ "$(count_records RunJob)" -ge "$1" ]
}

# log_has MSGID [TEXT]: the last jobrelay's log has a line with that msgid (and text).
log_has() {
	grep "\"msgid\":\"$1\"" "$PULL_LOG" | contains -- "${2:-}"
}

# check_runjobs: node checks of $WORK/record.jsonl for messages published by write_messages:
# every RunJob is OK-or-injected, with the overrides of its kind; prints per-job counts and the
# number of distinct message ids dispatched successfully.
check_runjobs() {
	node - "$WORK/record.jsonl" <<'JS'
const fs = require('fs');
const [file] = process.argv.slice(2);
const recs = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(JSON.parse) : [];
const runs = recs.filter((r) => r.method === 'RunJob');
const fail = (m) => { console.error('check_runjobs: ' + m); process.exit(1); };
const ok = new Map();
for (const r of runs) {
  const q = r.request, o = q.overrides || {}, c = (o.containerOverrides || [{}])[0];
  const env = Object.fromEntries((c.env || []).map((e) => [e.name, e.value]));
  const rp = r.metadata['x-goog-request-params'];
  if (rp !== 'location=europe-west2') fail(`request params ${rp}`);
  if (!/jobrelay\//.test(r.metadata['x-goog-api-client'] || '')) fail('no x-goog-api-client naming jobrelay');
  const msg = env.MSG;
  if (!msg || !/^m\d+$/.test(msg)) fail(`no message id in env: ${JSON.stringify(env)}`);
  const n = Number(msg.slice(1));
  const job = q.name.split('/').pop();
  const kind = ['structured-job', 'binary-job', 'plain-job'][n % 3];
  if (job !== kind) fail(`message ${msg} went to ${job}, not ${kind}`);
  if (job === 'structured-job') {
    if (env.NAME !== `obj-${n}` || env.N !== String(n) || JSON.stringify(c.args) !== JSON.stringify(['--id', `st-${n}`]))
      fail(`structured overrides ${JSON.stringify(c)}`);
  } else if (job === 'binary-job') {
    if (env.N !== String(n) || env.TENANT !== 'acme') fail(`binary overrides ${JSON.stringify(c)}`);
  } else {
    if (Buffer.from(env.PAYLOAD || '', 'base64').toString() !== `plain text ${n}` || o.taskCount !== 2 || o.timeout !== '90s')
      fail(`plain overrides ${JSON.stringify(o)}`);
  }
  if (env.CE_ID === undefined || env.JOBRELAY_ROUTE === undefined) fail('CE_ID / JOBRELAY_ROUTE missing');
  if (r.status === 0) ok.set(msg, (ok.get(msg) || 0) + 1);
}
const dup = [...ok].filter(([, c]) => c > 1);
console.log(JSON.stringify({ runjobs: runs.length, okMessages: ok.size, duplicates: dup.length }));
JS
}
