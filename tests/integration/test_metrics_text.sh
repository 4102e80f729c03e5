#!/usr/bin/env bash
# test_metrics_text.sh — a live /metrics (docs/operations.md, "jobrelay's own metrics"):
# `jobrelay serve --dry-run` on loopback, one event dispatched, then GET /metrics is
# Prometheus text a scraper parses (promtext_check.py: every sample's family has a
# # TYPE, escapes, values), with the process_* families of this very process (checked
# against its /proc entries) and jobrelay_build_info naming what `jobrelay version` names.
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"

cat >"$WORK/jobrelay.yaml" <<'YAML'
project: demo-project
region: europe-west2
routes:
  - name: csv
    match: { type: google.cloud.storage.object.v1.finalized }
    job: ingest
YAML
export JOBRELAY_CONFIG="$WORK/jobrelay.yaml"
start_serve --dry-run

code=$(curl -s -o "$WORK/post.out" -w '%{http_code}' -X POST "http://127.0.0.1:$SERVE_PORT/" \
	-H 'ce-specversion: 1.0' -H 'ce-id: m-1' -H 'ce-source: //storage.googleapis.com/projects/_/buckets/b' \
	-H 'ce-type: google.cloud.storage.object.v1.finalized' -H 'content-type: application/json' \
	--data '{"bucket":"b","name":"a.csv"}')
assert_eq "$code" 204 "POST of one event"

curl -fsS -D "$WORK/metrics.hdr" "http://127.0.0.1:$SERVE_PORT/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$WORK/metrics.hdr" ||
	fail "content type: $(cat "$WORK/metrics.hdr")"
python3 "$JR_SOURCE_DIR/tests/integration/promtext_check.py" "$WORK/metrics.txt" \
	process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
	process_start_time_seconds process_open_fds process_max_fds jobrelay_build_info \
	jobrelay_dispatch_total jobrelay_http_responses_total || {
	cat "$WORK/metrics.txt" >&2
	fail "/metrics is not valid Prometheus text"
}
grep -q '^jobrelay_dispatch_total{route="csv",outcome="dispatched"} 1$' "$WORK/metrics.txt" ||
	fail "dispatch counter: $(grep dispatch_total "$WORK/metrics.txt")"

# jobrelay_build_info: what `jobrelay version` prints
"$JOBRELAY" version >"$WORK/version.out"
ver=$(sed -n 's/^jobrelay \([^ ]*\) (commit \(.*\))$/\1/p' "$WORK/version.out")
commit=$(sed -n 's/^jobrelay \([^ ]*\) (commit \(.*\))$/\2/p' "$WORK/version.out")
grpc=$(sed -n 's/^  grpc //p' "$WORK/version.out")
[ -n "$ver" ] && [ -n "$commit" ] && [ -n "$grpc" ] || fail "version: $(cat "$WORK/version.out")"
want="jobrelay_build_info{version=\"$ver\",commit=\"$commit\",grpc=\"$grpc\"} 1"
grep -qxF "$want" "$WORK/metrics.txt" || fail "build info: want $want, got $(grep build_info "$WORK/metrics.txt")"

# process_*: this process's own figures
metric() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/metrics.txt"; }
P=/proc/$SERVE_PID
rss=$(metric process_resident_memory_bytes)
vsz=$(metric process_virtual_memory_bytes)
start=$(metric process_start_time_seconds)
fds=$(metric process_open_fds)
maxfds=$(metric process_max_fds)
cpu=$(metric process_cpu_seconds_total)
vmrss_kb=$(awk '$1 == "VmRSS:" { print $2 }' "$P/status")
now=$(date +%s)
nfd=$(find "$P/fd" -mindepth 1 -maxdepth 1 | wc -l)
soft=$(awk '/^Max open files/ { print $4 }' "$P/limits")
python3 - "$rss" "$vsz" "$start" "$fds" "$maxfds" "$cpu" "$vmrss_kb" "$now" "$nfd" "$soft" <<'PY' || fail "process_* figures do not match /proc/$SERVE_PID"
import sys
rss, vsz, start, fds, maxfds, cpu, vmrss_kb, now, nfd, soft = map(float, sys.argv[1:])
checks = [
    ("resident within 4 MiB of VmRSS", abs(rss - vmrss_kb * 1024) <= 4 << 20),
    ("resident at least 1 MiB", rss >= 1 << 20),
    ("virtual at least resident", vsz >= rss),
    ("started within the last 10 minutes", now - 600 <= start <= now + 1),
    ("open fds within 3 of /proc/PID/fd", abs(fds - nfd) <= 3 and fds >= 3),
    ("max fds is the soft limit", maxfds == soft),
    ("cpu seconds sane", 0 <= cpu < 600),
]
bad = [name for name, ok in checks if not ok]
if bad:
    print("FAIL:", "; ".join(bad), sys.argv[1:])
    sys.exit(1)
PY

# a second scrape: process_cpu_seconds_total never goes down
curl -fsS "http://127.0.0.1:$SERVE_PORT/metrics" >"$WORK/metrics2.txt" || fail "second GET /metrics"
cpu2=$(awk '$1 == "process_cpu_seconds_total" { print $2 }' "$WORK/metrics2.txt")
python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) >= float(sys.argv[1]) else 1)' "$cpu" "$cpu2" ||
	fail "process_cpu_seconds_total went down: $cpu, then $cpu2"

stop_serve
assert_eq "$SERVE_RC" 0 "serve exit code"
echo "test_metrics_text: ok"
