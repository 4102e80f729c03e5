#!/usr/bin/env bash
# bench/filters.sh — the cost of CESQL route filters in replay --dry-run (docs/benchmarks.md,
# "Route filters (CESQL)").
#
#   bench/filters.sh [BUILD_DIR]    BUILD_DIR defaults to build-bench (configured with
#                                   -DCMAKE_BUILD_TYPE=Release; jobrelay is built here)
#
# 1. Writes bench/routes20-filters.yaml: bench/routes20.yaml with a `filters: - sql: "..."`
#    added to 10 of its 20 routes (the 8 routes that match some events, and 2 that never do).
#    Each expression holds for every event the route's `match` already selects, so both
#    configs route every event the same way.
# 2. Checks that: the dry-run output of both configs over the same events has the same md5
#    (same routes, same requests, same order), and the same summary.
# 3. Times both configs over the same EVENTS (300,000) events of bench/gen_events.js (seed 1),
#    interleaved: plain, filters, plain, filters, ... REPS (5) runs each. CPU time is
#    user + sys of /usr/bin/time; the median run of each config gives events/s by CPU; the
#    ratio filters/plain is printed with the 15% acceptance (ratio >= 0.85).
#
# Environment: EVENTS (300000), REPS (5), WORK (scratch folder, default
# ${TMPDIR:-/tmp}/jobrelay-bench-filters; the event file is kept and reused while the
# generator and the count are unchanged).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-bench}
[[ $BUILD = /* ]] || BUILD=$SRC/$BUILD
EVENTS=${EVENTS:-300000}
REPS=${REPS:-5}
WORK=${WORK:-${TMPDIR:-/tmp}/jobrelay-bench-filters}
PLAIN=$SRC/bench/routes20.yaml
FILTERS=$SRC/bench/routes20-filters.yaml

die() { echo "bench/filters.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

[[ -f $BUILD/CMakeCache.txt ]] || die "$BUILD is not a configured build folder (see docs/benchmarks.md)"
command -v node >/dev/null || die "node is needed (the event generator)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (apt-get install time)"
mkdir -p "$WORK"

say "building jobrelay in $BUILD"
timeout 600 cmake --build "$BUILD" -j2 --target jobrelay >"$WORK/build.log" 2>&1 ||
	die "build failed, see $WORK/build.log"
JOBRELAY=$BUILD/src/jobrelay
grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$BUILD/CMakeCache.txt" ||
	echo "bench/filters.sh: warning: $BUILD is not a Release build" >&2

# ---- bench/routes20-filters.yaml -------------------------------------------------------

# route name -> CESQL expression. Each one is true for every generated event that the route's
# match already selects (type finalized, source .../buckets/BUCKET, subject objects/NAME, the
# bucket extension), so it adds evaluation work but changes no routing. The last two routes
# never match these events, so their filters are never evaluated (match runs first).
say "writing bench/routes20-filters.yaml"
awk '
BEGIN {
	f["csv-ingest"]      = "type = '\''google.cloud.storage.object.v1.finalized'\'' AND subject LIKE '\''objects/%'\''"
	f["csv-quality"]     = "LOWER(subject) LIKE '\''objects/in/partner-a/%.csv'\'' AND EXISTS bucket"
	f["partner-json"]    = "EXISTS bucket AND bucket = '\''acme-uploads'\'' AND LENGTH(subject) <= 1024"
	f["lake-parquet"]    = "bucket IN ('\''acme-lake-raw'\'', '\''acme-lake-staging'\'') AND source LIKE '\''//storage.googleapis.com/projects/_/buckets/acme-lake-%'\''"
	f["thumbnails"]      = "datacontenttype = '\''application/json'\'' AND LOWER(RIGHT(subject, 4)) IN ('\''.jpg'\'', '\''.png'\'', '\''heic'\'')"
	f["video-transcode"] = "subject LIKE '\''%.mp4'\'' AND source = CONCAT('\''//storage.googleapis.com/projects/_/buckets/'\'', bucket)"
	f["log-archive"]     = "subject LIKE '\''objects/logs/%'\'' AND EXISTS time AND type LIKE '\''google.cloud.storage.object.v1.%'\''"
	f["backup-verify"]   = "LENGTH(subject) > 14 AND subject LIKE '\''objects/db/%'\'' AND bucket = '\''acme-backups'\''"
	f["exports-ready"]   = "subject NOT LIKE '\''objects/tmp/%'\'' AND EXISTS bucket"
	f["tmp-cleanup"]     = "bucket IN ('\''acme-uploads'\'', '\''acme-lake-raw'\'', '\''acme-web'\'')"
	print "# bench/routes20-filters.yaml: written by bench/filters.sh from bench/routes20.yaml (do not"
	print "# edit; change the script). The same 20 routes, 10 of them with a CESQL filter that holds"
	print "# for every event the route'\''s match selects: the same events route the same way, and the"
	print "# difference in replay --dry-run speed is the cost of the filters."
	print "#"
}
{ print }
/^  - name: / {
	name = $3
	if (name in f) {
		print "    filters:"
		print "      - sql: \"" f[name] "\""
		n++
	}
}
END { if (n != 10) { print "expected 10 filtered routes, got " n > "/dev/stderr"; exit 1 } }
' "$PLAIN" >"$FILTERS.tmp" || die "could not write $FILTERS"
mv "$FILTERS.tmp" "$FILTERS"

"$JOBRELAY" --config "$PLAIN" check-config >"$WORK/check-plain.txt" 2>&1 ||
	die "check-config $PLAIN failed (see $WORK/check-plain.txt)"
"$JOBRELAY" --config "$FILTERS" check-config >"$WORK/check-filters.txt" 2>&1 ||
	die "check-config $FILTERS failed (see $WORK/check-filters.txt)"
nf=$(grep -c 'filters: ' "$WORK/check-filters.txt" || true)

# ---- events ----------------------------------------------------------------------------

FILE=$WORK/events-$EVENTS.ndjson
stamp="$(sha256sum "$SRC/bench/gen_events.js" | cut -c1-16) $EVENTS"
if [[ ! -f $FILE || ! -f $FILE.stamp || $(cat "$FILE.stamp") != "$stamp" ]]; then
	say "generating $EVENTS events into $FILE"
	timeout 900 node "$SRC/bench/gen_events.js" "$EVENTS" 1 >"$FILE.tmp"
	mv "$FILE.tmp" "$FILE"
	echo "$stamp" >"$FILE.stamp"
fi

# ---- same routing ----------------------------------------------------------------------

say "checking that both configs give the same dry-run output"
for c in plain filters; do
	cfg=$PLAIN
	[[ $c = filters ]] && cfg=$FILTERS
	timeout 300 "$JOBRELAY" --config "$cfg" replay --dry-run "$FILE" 2>"$WORK/summary-$c.txt" |
		md5sum | cut -d' ' -f1 >"$WORK/md5-$c.txt"
	grep -q "events: $EVENTS read, 0 invalid" "$WORK/summary-$c.txt" ||
		die "dry run with $c: unexpected summary (see $WORK/summary-$c.txt)"
done
MD5_PLAIN=$(cat "$WORK/md5-plain.txt")
MD5_FILTERS=$(cat "$WORK/md5-filters.txt")
[[ $MD5_PLAIN = "$MD5_FILTERS" ]] ||
	die "the dry-run outputs differ: plain $MD5_PLAIN, filters $MD5_FILTERS"
cmp -s "$WORK/summary-plain.txt" "$WORK/summary-filters.txt" ||
	die "the dry-run summaries differ (see $WORK/summary-*.txt)"

# ---- timing ----------------------------------------------------------------------------

# timed OUT CONFIG: one dry run, stdout to /dev/null; appends "user sys wall maxrss_kb" to OUT.
timed() {
	/usr/bin/time -f '%U %S %e %M' -o "$WORK/time.tmp" timeout 300 \
		"$JOBRELAY" --config "$2" replay --dry-run "$FILE" >/dev/null 2>"$WORK/stderr.tmp" ||
		die "failed: dry run with $2 (see $WORK/stderr.tmp)"
	grep -q "events: $EVENTS read, 0 invalid" "$WORK/stderr.tmp" || die "dry run with $2: unexpected summary"
	cat "$WORK/time.tmp" >>"$1"
}

# median OUT -> "user sys wall rss min max" (the run with the median user+sys, CPU range)
median() {
	local cpus n
	cpus=$(awk '{ printf "%.2f %s\n", $1 + $2, $0 }' "$1" | sort -n)
	n=$(echo "$cpus" | wc -l)
	echo "$(echo "$cpus" | sed -n "$(((n + 1) / 2))p" | cut -d' ' -f2-)" \
		"$(echo "$cpus" | head -n 1 | cut -d' ' -f1)" "$(echo "$cpus" | tail -n 1 | cut -d' ' -f1)"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "timing: $EVENTS events, plain and filters interleaved, $REPS runs each"
: >"$WORK/plain.txt"
: >"$WORK/filters.txt"
for ((i = 0; i < REPS; i++)); do
	timed "$WORK/plain.txt" "$PLAIN"
	timed "$WORK/filters.txt" "$FILTERS"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
M_PLAIN=$(median "$WORK/plain.txt")
M_FILTERS=$(median "$WORK/filters.txt")

# ---- table -----------------------------------------------------------------------------

cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
printf '\njobrelay %s (%s), %s cpus (%s), load %s at start, %s at end\n' \
	"$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')" "$(basename "$BUILD")" \
	"$(nproc)" "$cpu_model" "$LOAD_START" "$LOAD_END"
printf '%s storage events (gen_events.js %s 1), %s bytes; %s runs each, interleaved, median by CPU time\n' \
	"$EVENTS" "$EVENTS" "$(stat -c %s "$FILE")" "$REPS"
printf 'dry-run output md5 %s for both configs; %s routes with filters in check-config\n\n' "$MD5_PLAIN" "$nf"
printf '%-42s %7s %7s %12s %10s %10s\n' config "cpu s" "wall s" "events/s cpu" "peak RSS" "cpu range"
row() { # row NAME MEDIAN_LINE
	echo "$2" | awk -v name="$1" -v n="$EVENTS" '{
		cpu = $1 + $2
		printf "%-42s %7.2f %7.2f %12.0f %6.1f MiB %4.2f-%.2f\n", name, cpu, $3, n / cpu, $4 / 1024, $5, $6 }'
}
row "routes20.yaml (no filters)" "$M_PLAIN"
row "routes20-filters.yaml (10 CESQL filters)" "$M_FILTERS"
echo "$M_PLAIN $M_FILTERS" | awk '{
	p = $1 + $2; f = $7 + $8
	r = p / f
	printf "\nevents/s filters / plain = %.3f (%+.1f%%): %s the 15%% of the acceptance\n",
		r, (r - 1) * 100, (r >= 0.85) ? "within" : "NOT within" }'
