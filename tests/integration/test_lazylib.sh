#!/usr/bin/env bash
# test_lazylib.sh — libmicrohttpd and libcurl are loaded only when used (src/io/lazylib.c):
# a replay does not load them (nor gnutls, which libmicrohttpd brings), `jobrelay version`
# loads both through the forwarders and prints their versions. The dynamic loader's own
# record (LD_DEBUG=files) says what was loaded. serve (test_serve*.sh) and jwks_url
# (test_serve_auth.sh) exercise the forwarders end to end.
source "$(dirname "$0")/lib.sh"

cd "$JR_SOURCE_DIR/examples"
if readelf -d "$JOBRELAY" | grep -E 'NEEDED.*(libcurl|libmicrohttpd)'; then
	fail "jobrelay is linked against libcurl or libmicrohttpd"
fi

LD_DEBUG=files "$JOBRELAY" --config jobrelay.yaml replay --dry-run events/storage-finalized-csv.json \
	>"$WORK/replay.out" 2>"$WORK/replay.ld"
grep -q '"request":{"name":"projects/' "$WORK/replay.out" || fail "replay --dry-run printed no request: $(cat "$WORK/replay.out")"
grep -q 'file=libgrpc' "$WORK/replay.ld" || fail "LD_DEBUG=files recorded no library loads"
for lib in libmicrohttpd libcurl libgnutls; do
	if grep -q "file=$lib" "$WORK/replay.ld"; then
		fail "replay loaded $lib"
	fi
done

LD_DEBUG=files "$JOBRELAY" version >"$WORK/version.out" 2>"$WORK/version.ld"
grep -Eq '^  libmicrohttpd [0-9]+\.[0-9]+' "$WORK/version.out" || fail "no libmicrohttpd version: $(cat "$WORK/version.out")"
grep -Eq '^  libcurl/[0-9]+\.[0-9]+' "$WORK/version.out" || fail "no libcurl version: $(cat "$WORK/version.out")"
for lib in libmicrohttpd libcurl; do
	grep -q "file=$lib.*dynamically loaded" "$WORK/version.ld" || fail "version did not dlopen $lib"
done
echo "test_lazylib: ok"
