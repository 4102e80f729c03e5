#!/usr/bin/env bash
# demo.sh — jobrelay's whole chain on loopback: Google's Pub/Sub emulator
# (pstest, tests/peers/pstest), the sample events of examples/events published
# to it as Pub/Sub messages of every kind (structured CloudEvents, binary-mode
# ce- attributes, plain messages), `jobrelay pull` dispatching them through
# the routes of examples/jobrelay.yaml to a fake of the Cloud Run Admin API v2
# (tests/peers/runfake, Node grpc-js with Google's protos), then a summary of
# what ran and a clean SIGTERM stop. Nothing leaves the machine. Run it as
# `make demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
JOBRELAY=${JOBRELAY:-$ROOT/$BUILD_DIR/src/jobrelay}
[ -x "$JOBRELAY" ] || { echo "demo: $JOBRELAY is missing; run make build" >&2; exit 2; }
export JR_BUILD_DIR=${JR_BUILD_DIR:-$ROOT/$BUILD_DIR}

FAKE_DIR="$ROOT/tests/peers/runfake"
[ -d "$FAKE_DIR/node_modules" ] || (cd "$FAKE_DIR" && npm ci --silent --no-audit --no-fund)
. "$ROOT/tests/peers/pstest/lib.sh"

TOPIC=projects/demo-project/topics/orders
SUB=projects/demo-project/subscriptions/jobrelay-demo
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobrelay-demo.XXXXXX")
FAKE_PID='' PULL_PID=''
cleanup() {
	[ -z "$PULL_PID" ] || { kill -KILL "$PULL_PID" 2>/dev/null || true; }
	[ -z "$FAKE_PID" ] || { kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; }
	stop_pstest
	rm -rf "$WORK"
}
trap cleanup EXIT
export METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9
unset GOOGLE_APPLICATION_CREDENTIALS

# --- the Run API fake and the Pub/Sub emulator, each on a free loopback port
mkfifo "$WORK/fake.out"
node "$FAKE_DIR/server.js" --port 0 --record "$WORK/record.jsonl" --require-request-params \
	>"$WORK/fake.out" 2>"$WORK/fake.err" &
FAKE_PID=$!
exec 7<"$WORK/fake.out"
PORT=
while read -r -u 7 line; do
	case "$line" in LISTENING\ *) PORT=${line#LISTENING }; break ;; esac
done
[ -n "$PORT" ] || { cat "$WORK/fake.err" >&2; echo "demo: the Run API fake did not start" >&2; exit 1; }
cat <&7 >/dev/null &
start_pstest "$WORK" --topic "$TOPIC" --subscription "$SUB" --ack-deadline 30
echo "Run API fake        127.0.0.1:$PORT"
echo "Pub/Sub (pstest)    $PUBSUB_EMULATOR_HOST   topic $TOPIC, subscription $SUB"

# --- examples/events as Pub/Sub messages: structured JSON files and every other batch line in
# structured mode, the other lines and the HTTP capture in binary mode (ce- attributes), and
# Eventarc messagePublished events as the plain message they carried
node - "$ROOT/examples/events" "$WORK/messages.jsonl" <<'JS'
const fs = require('fs'), path = require('path');
const [dir, out] = process.argv.slice(2);
const msgs = [], info = [], kinds = { structured: 0, binary: 0, plain: 0 };
const CONTEXT = new Set(['specversion', 'id', 'source', 'type', 'subject', 'time', 'dataschema']);
function add(kind, m, ev) {
  kinds[kind]++;
  msgs.push(m);
  info.push({ kind, id: ev.id || '', type: ev.type || '' });
}
function structured(ev) {
  add('structured', { data: JSON.stringify(ev), attributes: { 'content-type': 'application/cloudevents+json' } }, ev);
}
function binary(ev) {
  const attributes = {};
  for (const [k, v] of Object.entries(ev)) {
    if (k === 'data' || k === 'datacontenttype') continue;
    attributes['ce-' + k] = String(v);
  }
  if (ev.datacontenttype) attributes['content-type'] = ev.datacontenttype;
  add('binary', { data: typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data), attributes }, ev);
}
function event(ev, i) {
  if (ev.type === 'google.cloud.pubsub.topic.v1.messagePublished' && ev.data && ev.data.message) {
    const m = ev.data.message;
    add('plain', { data_base64: m.data || '', attributes: m.attributes || {}, ordering_key: m.orderingKey || '' },
      { type: 'google.cloud.pubsub.topic.v1.messagePublished' }); /* its id: the message id */
  } else if (i % 2) binary(ev);
  else structured(ev);
}
for (const f of fs.readdirSync(dir).sort()) {
  const text = fs.readFileSync(path.join(dir, f), 'utf8');
  if (f.endsWith('.ndjson')) text.split('\n').filter(Boolean).forEach((l, i) => event(JSON.parse(l), i));
  else if (f.endsWith('.json')) event(JSON.parse(text), 0);
  else if (f.endsWith('.http')) {
    const [head, ...body] = text.split(/\r?\n\r?\n/);
    const attributes = {};
    for (const h of head.split(/\r?\n/).slice(1)) {
      const i = h.indexOf(':'), k = h.slice(0, i).trim().toLowerCase(), v = h.slice(i + 1).trim();
      if (k.startsWith('ce-')) attributes[k] = v;
      else if (k === 'content-type') attributes[k] = v;
    }
    add('binary', { data: body.join('\n\n').trim(), attributes }, { id: attributes['ce-id'], type: attributes['ce-type'] });
  }
}
fs.writeFileSync(out, msgs.map((m) => JSON.stringify(m)).join('\n') + '\n');
fs.writeFileSync(out + '.info', JSON.stringify(info));
console.log(`Publishing ${msgs.length} messages: ${kinds.structured} structured CloudEvents, ` +
  `${kinds.binary} binary-mode (ce- attributes), ${kinds.plain} plain Pub/Sub messages`);
JS
N=$(wc -l <"$WORK/messages.jsonl")
ps_cmd publish "$TOPIC" "$WORK/messages.jsonl" || { echo "demo: publish: $PS_REPLY" >&2; exit 1; }
FIRST_ID=$(ps_field first)

# --- jobrelay pull with the example routes, on this subscription and topic
{ cat "$ROOT/examples/jobrelay.yaml"; printf '\nsubscription: %s\ntopic: %s\n' "$SUB" "$TOPIC"; } \
	>"$WORK/jobrelay.yaml"
echo "Starting: jobrelay --config examples/jobrelay.yaml pull   (subscription and topic added)"
echo
cd "$WORK"
JOBRELAY_RUN_ENDPOINT="127.0.0.1:$PORT" "$JOBRELAY" --config "$WORK/jobrelay.yaml" \
	--log-format json pull >"$WORK/pull.log" 2>&1 &
PULL_PID=$!
if ! ps_cmd wait-acked "$N" 60s; then
	cat "$WORK/pull.log"
	echo "demo: not every message was acked: $PS_REPLY" >&2
	exit 1
fi
kill -TERM "$PULL_PID"
set +e
wait "$PULL_PID"
rc=$?
set -e
PULL_PID=
node - "$WORK/messages.jsonl.info" "$WORK/pull.log" "$WORK/record.jsonl" "$FIRST_ID" <<'JS'
const fs = require('fs');
const [infoFile, logFile, recFile, firstId] = process.argv.slice(2);
const info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
const log = fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch (e) { return { message: l }; } });
const recs = fs.readFileSync(recFile, 'utf8').split('\n').filter(Boolean).map(JSON.parse).filter((r) => r.method === 'RunJob');
const pad = (s, n) => String(s).padEnd(n);
const short = (s, n) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

console.log("jobrelay pull, as its log tells it:");
for (const l of log) {
  if (l.msgid === 'PULL-STATE') console.log(`  ${l.time.slice(11, 23)}  pull ${l.from} -> ${l.state} (${l.reason})`);
  else if (l.msgid === 'PUBSUB-STATE') console.log(`  ${l.time.slice(11, 23)}  stream ${l.from} -> ${l.state}${l.detail ? ` (${l.code}: ${l.detail})` : ''}`);
  else if (l.msgid === 'PULL-SUMMARY') console.log(`  ${l.time.slice(11, 23)}  summary: received ${l.received}, acked ${l.acked}, retry later ${l.retry_later}, invalid ${l.invalid}`);
  else if (l.severity === 'WARNING' || l.severity === 'ERROR') console.log(`  ${l.time ? l.time.slice(11, 23) : ''}  ${l.severity} ${l.msgid || ''} ${l.message}`);
}

console.log('\nEach message, the event it became, and what ran:');
console.log('  ' + pad('message', 8) + pad('kind', 11) + pad('event type', 48) + pad('route', 16) + 'result');
const first = Number(String(firstId).replace(/^m/, ''));
info.forEach((m, i) => {
  const msgId = 'm' + (first + i);
  const evId = m.kind === 'plain' ? msgId : m.id;
  const ok = log.filter((l) => l.msgid === 'DISPATCH-OK' && l.event_id === evId);
  const other = log.filter((l) => /^(DISPATCH-|DEADLETTER-|EVENT-)/.test(l.msgid || '') && l.msgid !== 'DISPATCH-OK' && l.event_id === evId);
  const result = ok.length ? ok.map((l) => `${l.job.split('/').pop()} started (${l.execution.split('/').pop()})`).join(', ')
    : other.length ? other.map((l) => l.msgid).join(', ') : 'no route matched: acked, nothing run';
  const route = ok.length ? ok.map((l) => l.route).join(',') : '-';
  console.log('  ' + pad(msgId, 8) + pad(m.kind, 11) + pad(short(m.type, 46), 48) + pad(route, 16) + result);
});

console.log('\nWhat the Run API received (decoded with Google\'s protos; CE_* and JOBRELAY_* env left out):');
for (const r of recs) {
  const o = r.request.overrides || {};
  const c = (o.containerOverrides || [{}])[0];
  console.log(`- ${r.request.name} -> ${r.statusName}`);
  const env = (c.env || []).filter((e) => !/^(CE_|JOBRELAY_)/.test(e.name)).map((e) => `${e.name}=${e.value}`);
  if (env.length) console.log(`    env  ${env.join('  ')}`);
  if (c.args && c.args.length) console.log(`    args ${JSON.stringify(c.args)}`);
  const extra = [o.taskCount ? `task_count ${o.taskCount}` : '', o.timeout ? `timeout ${o.timeout}` : ''].filter(Boolean);
  if (extra.length) console.log(`    ${extra.join(', ')}`);
}
JS
ps_cmd stats
runs=$(grep -c '"method":"RunJob"' "$WORK/record.jsonl" || true)
dead=$(wc -l <"$WORK/jobrelay-dead.ndjson" 2>/dev/null || echo 0)
echo
echo "Summary: $(ps_field published) messages published, $(ps_field acked) acked by jobrelay" \
	"($(ps_field redelivered) redelivered), $runs RunJob calls, $dead dead letters;" \
	"jobrelay stopped on SIGTERM with exit code $rc."
exit "$rc"
