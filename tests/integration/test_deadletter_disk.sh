#!/usr/bin/env bash
# test_deadletter_disk.sh — a full disk under the dead-letter file loses no
# record and damages none. The file is on a 64 KiB tmpfs mounted in a private
# mount namespace (needs root and unshare; exit 77 = skipped, except under
# CI=true). With the disk full, a record that does not fit is answered 503
# (the event is kept by its sender) and leaves no partial line; once space is
# free, the same event is written whole, the next one too, and every line
# parses and replays.
if [ "${JR_IN_NS:-}" != 1 ]; then
	skip() {
		echo "SKIP: $*" >&2
		[ "${CI:-}" = true ] && { echo "FAIL: skipped under CI=true" >&2; exit 1; }
		exit 77
	}
	[ "$(id -u)" = 0 ] || skip "needs root to mount a tmpfs"
	command -v unshare >/dev/null || skip "no unshare"
	unshare --mount --propagation private true 2>/dev/null || skip "unshare --mount is not allowed here"
	JR_IN_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "${BASH_SOURCE[0]}")/serve_lib.sh"

DL="$WORK/dl"
mkdir "$DL"
mount -t tmpfs -o size=64k tmpfs "$DL" || { echo "SKIP: cannot mount a tmpfs" >&2; exit 77; }

cat >"$WORK/fake.json" <<'JSON'
{"rules": [{"job": "missing", "code": "NOT_FOUND", "message": "job not found"}]}
JSON
start_fake --config "$WORK/fake.json"
cat >"$WORK/jobrelay.yaml" <<YAML
project: demo-project
region: europe-west2
call_timeout: 5s
dedup: { ttl: 0s }
circuit_breaker: { window: 1000, min_calls: 1000 }
dead_letter: { file: $DL/dead.ndjson }
routes:
  - name: missing
    match: { type: test.missing }
    job: missing
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"
start_serve

# send ID BYTES: posts a structured event with BYTES bytes of data; prints the status.
send() {
	EV_ID=$1 EV_SIZE=$2 client '
const r = await post("/", { "content-type": "application/cloudevents+json" }, JSON.stringify({
  specversion: "1.0", id: process.env.EV_ID, source: "/disk", type: "test.missing",
  data: { pad: "p".repeat(Number(process.env.EV_SIZE)) } }));
console.log(r.status);
'
}

# lines_whole N: the file ends on a newline, and has N lines, each a record that parses.
lines_whole() {
	node - "$DL/dead.ndjson" "$1" <<'JS' || fail "the dead-letter file is damaged"
const fs = require('fs');
const [file, n] = process.argv.slice(2);
const text = new TextDecoder('utf-8', { fatal: true }).decode(fs.readFileSync(file));
if (text.length && !text.endsWith('\n')) { console.error('a partial line at the end'); process.exit(1); }
const lines = text.split('\n').filter(Boolean);
if (lines.length !== Number(n)) { console.error(`${lines.length} lines, not ${n}`); process.exit(1); }
for (const l of lines) {
  const r = JSON.parse(l);
  if (r.error.code !== 'NOT_FOUND' || !r.event || !r.event.id) { console.error('record: ' + l.slice(0, 200)); process.exit(1); }
}
console.log(lines.map((l) => JSON.parse(l).event.id).join(','));
JS
}

echo "== a record on a disk with room"
assert_eq "$(send a 2000)" 204 "first event"
assert_eq "$(lines_whole 1)" a "records"

echo "== the disk full: 503, and no partial line"
head -c 4096 /dev/zero >"$DL/gap"             # one page, freed below
dd if=/dev/zero of="$DL/fill" bs=4096 2>/dev/null || true   # fills the rest (ENOSPC)
rm "$DL/gap"                                   # a page free: part of the next record fits
assert_eq "$(send b 20000)" 503 "event whose record does not fit"
assert_eq "$(lines_whole 1)" a "records after the failed write"
grep -q '"msgid":"DEADLETTER-FAILED"' "$SERVE_LOG" || fail "no DEADLETTER-FAILED"
grep -q 'No space left on device' "$SERVE_LOG" || fail "the failure does not name ENOSPC"
assert_eq "$(send c 100)" 204 "a small record still fits in the page"
assert_eq "$(lines_whole 2)" a,c "records after a failed write and a good one"

echo "== space again: the kept event and the next are written whole"
rm "$DL/fill"
assert_eq "$(send b 20000)" 204 "the kept event, sent again"
assert_eq "$(send d 3000)" 204 "the next event"
assert_eq "$(lines_whole 4)" a,c,b,d "records after space was freed"
stop_serve

echo "== every record replays"
cat >"$WORK/replay.yaml" <<YAML
project: demo-project
region: europe-west2
routes:
  - name: missing
    match: { type: test.missing }
    job: missing
YAML
"$JOBRELAY" --config "$WORK/replay.yaml" replay --dry-run "$DL/dead.ndjson" >"$WORK/replay.out" 2>"$WORK/replay.err" ||
	{ cat "$WORK/replay.err" >&2; fail "replay of the dead-letter file"; }
assert_eq "$(grep -c '"route":"missing"' "$WORK/replay.out")" 4 "records replayed"
umount "$DL"
echo "PASS"
