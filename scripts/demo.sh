#!/usr/bin/env bash
# demo.sh — jobrelay's main job on a local default: the sample events in
# examples/events are replayed through the routes of examples/jobrelay.yaml
# against a local fake of the Cloud Run Admin API v2 (tests/peers/runfake,
# Node grpc-js with Google's protos) on 127.0.0.1, then what the fake received
# is printed. Nothing leaves the machine. Run it as `make demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
JOBRELAY="$ROOT/$BUILD_DIR/src/jobrelay"
[ -x "$JOBRELAY" ] || { echo "demo: $JOBRELAY is missing; run make build" >&2; exit 2; }

FAKE_DIR="$ROOT/tests/peers/runfake"
[ -d "$FAKE_DIR/node_modules" ] || (cd "$FAKE_DIR" && npm ci --silent --no-audit --no-fund)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jobrelay-demo.XXXXXX")
FAKE_PID=
cleanup() {
	[ -z "$FAKE_PID" ] || { kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; }
	rm -rf "$WORK"
}
trap cleanup EXIT
export METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9

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

echo "Run API fake listening on 127.0.0.1:$PORT"
echo "Replaying examples/events with examples/jobrelay.yaml"
echo
cd "$WORK"
set +e
JOBRELAY_RUN_ENDPOINT="127.0.0.1:$PORT" "$JOBRELAY" --config "$ROOT/examples/jobrelay.yaml" \
	--log-format text replay "$ROOT/examples/events"
rc=$?
set -e
echo
echo "What the Run API received (decoded with Google's protos):"
node -e '
const recs = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
for (const r of recs.filter((x) => x.method === "RunJob")) {
  const o = r.request.overrides || {};
  const c = (o.containerOverrides || [{}])[0];
  console.log(`- ${r.request.name}  -> ${r.statusName}  ${r.execution || ""}`);
  for (const e of c.env || []) console.log(`    env  ${e.name}=${e.value}`);
  if (c.args && c.args.length) console.log(`    args ${JSON.stringify(c.args)}`);
  if (o.taskCount) console.log(`    task_count ${o.taskCount}`);
  if (o.timeout) console.log(`    timeout ${o.timeout}`);
}
' "$WORK/record.jsonl"
exit "$rc"
