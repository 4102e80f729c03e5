#!/usr/bin/env bash
# shellcheck disable=SC2119 # start_serve and start_fake take optional flags
# jobrelay serve and idle connections (docs/serve.md, Limits): 1,200 clients
# each send one GET /healthz and stay connected, idle, with the default
# --max-connections (1000) and an idle timeout long enough (60 s) not to
# help: the longest-idle connections are closed to make room, every client
# is answered, and a new /healthz and a new POST are each answered within
# one second (the bound docs/serve.md states; measured: a few ms). Then
# with limits.idle_timeout 1s and --request-timeout 2s: an idle kept-alive
# connection is closed silently; a next request sent a byte at a time on a
# kept-alive connection is timed as a request from its first byte (408).
# shellcheck source=tests/integration/serve_lib.sh
. "$(dirname "$0")/serve_lib.sh"

check() { # check JSON JS-EXPR WHAT
	node -e 'const r = JSON.parse(process.argv[1]); if (!('"$2"')) { console.error("FAIL: " + process.argv[2] + ": " + process.argv[1]); process.exit(1); }' "$1" "$3"
}

start_fake
write_config() { # write_config FILE IDLE_TIMEOUT
	cat >"$1" <<YAML
project: demo-project
region: europe-west2
limits: { idle_timeout: $2 }
routes:
  - name: all
    match: { type: test.ok }
    job: ok
YAML
}
write_config "$WORK/long.yaml" 60s
export JOBRELAY_CONFIG="$WORK/long.yaml"
start_serve

echo "== 1,200 idle keep-alive connections; max-connections 1000"
res=$(node "$JR_SOURCE_DIR/tests/integration/idle_flood.js" "$SERVE_PORT" 1200)
echo "$res"
check "$res" 'r.ok === 1200' "every idle client got its 200"
check "$res" 'r.healthz.status === 200 && r.healthz.ms < 1000' "a new GET /healthz answered within 1 s"
check "$res" 'r.post.status === 204 && r.post.ms < 1000' "a new POST answered (204) within 1 s"
client 'expect(records().some((x) => env(x).CE_ID === "newcomer"), "the new POST was dispatched");'
# the evictions reach the metric on the watchdog's next round (at most 1 s)
for _ in $(seq 50); do
	n=$(curl -s "http://127.0.0.1:$SERVE_PORT/metrics" | sed -n 's/^jobrelay_http_connections_cut_total{reason="evicted"} //p')
	[ -n "$n" ] && [ "$n" -ge 200 ] && break
	sleep 0.1
done
if [ -z "$n" ] || [ "$n" -lt 200 ]; then fail "jobrelay_http_connections_cut_total{reason=\"evicted\"} is '$n', expected at least 200"; fi
echo "evicted: $n"
stop_serve TERM
assert_eq "$SERVE_RC" 0 "exit code after SIGTERM"

write_config "$WORK/short.yaml" 1s
export JOBRELAY_CONFIG="$WORK/short.yaml"
start_serve --request-timeout 2s

echo "== limits.idle_timeout 1s: an idle kept-alive connection is closed, silently"
res=$(node "$JR_SOURCE_DIR/tests/integration/slow_next.js" "$SERVE_PORT" 0)
echo "$res"
check "$res" 'r.first === 200 && r.status === 0 && r.ms < 5000' "closed with no answer, within 5 s"

echo "== a next request sent a byte every 700 ms on a kept-alive connection: 408 from its first byte"
res=$(node "$JR_SOURCE_DIR/tests/integration/slow_next.js" "$SERVE_PORT" 700)
echo "$res"
# timed as idle (the old behaviour) it would be closed silently (status 0) after 1 s, or never
check "$res" 'r.first === 200 && r.status === 408 && r.sent < 36 && r.ms < 5000' "408 within the request timeout of its first byte"
alive "idle and slow connections"
stop_serve TERM
assert_eq "$SERVE_RC" 0 "exit code after SIGTERM"
echo "PASS"
