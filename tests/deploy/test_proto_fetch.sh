#!/usr/bin/env bash
# test_proto_fetch.sh — when `npm pack` cannot fetch the pinned google-proto-files
# (cmake/Protos.cmake, jr_npm_tarball), the configure error shows what npm itself said.
# jr_npm_tarball runs in a CMake script (cmake -P) with JR_NPM a stub, into an empty
# download folder, so nothing reaches the registry:
# - npm failing with its usual error lines: they are in the error, with the exit status,
#   the command and the way out (JR_PROTO_TARBALL); npm was not asked to be silent;
# - npm exiting 0 without writing the tarball: said so, "(npm printed nothing)";
# - npm printing 20,000 lines: the error carries only their end (bounded).
# shellcheck source=tests/integration/lib.sh
. "$JR_SOURCE_DIR/tests/integration/lib.sh"

CHECKSUM="$JR_SOURCE_DIR/proto/google-proto-files.sha256"
spec=$(awk '{print $2}' "$CHECKSUM")
version=${spec#google-proto-files-}
version=${version%.tgz}

mkdir -p "$WORK/stub"
# configure STUB_BODY: runs jr_npm_tarball with a stub npm whose body is STUB_BODY; sets
# RC and leaves the output in $WORK/configure.out
configure() {
	printf '#!/bin/sh\necho "$*" >"%s/npm.args"\n%s\n' "$WORK" "$1" >"$WORK/stub/npm"
	chmod 755 "$WORK/stub/npm"
	rm -rf "$WORK/download"
	cat >"$WORK/fetch.cmake" <<CMAKE
include("$JR_SOURCE_DIR/cmake/Protos.cmake")
jr_npm_tarball(CHECKSUM_FILE "$CHECKSUM" DOWNLOAD_DIR "$WORK/download"
  OUT_TARBALL t OUT_SHA256 s OUT_VERSION v)
message(STATUS "fetched \${t}")
CMAKE
	set +e
	cmake -DJR_NPM="$WORK/stub/npm" -P "$WORK/fetch.cmake" >"$WORK/configure.out" 2>&1
	RC=$?
	set -e
}
# has TEXT: the output holds TEXT, CMake's reflowing of lines and spaces aside
has() {
	tr -s ' \n' '  ' <"$WORK/configure.out" | grep -F -- "$1" >/dev/null ||
		fail "the error lacks \"$1\": $(cat "$WORK/configure.out")"
}

# npm's own error
configure 'echo "npm error code ETARGET" >&2
echo "npm error notarget No matching version found for google-proto-files@'"$version"'." >&2
echo "npm error A complete log of this run can be found in: /root/.npm/_logs/debug-0.log" >&2
exit 1'
[ "$RC" != 0 ] || fail "the configure succeeded with a failing npm: $(cat "$WORK/configure.out")"
assert_eq "$(cat "$WORK/npm.args")" "pack google-proto-files@$version --ignore-scripts --loglevel=error" "npm's arguments"
has "npm pack google-proto-files@$version\` failed (exit status: 1)"
has "npm error code ETARGET"
has "npm error notarget No matching version found for google-proto-files@$version."
has "npm error A complete log of this run can be found in: /root/.npm/_logs/debug-0.log"
has "JR_PROTO_TARBALL"
has "$WORK/stub/npm pack google-proto-files@$version --ignore-scripts --loglevel=error"

# npm exits 0 and writes nothing
configure 'exit 0'
[ "$RC" != 0 ] || fail "the configure succeeded without a tarball: $(cat "$WORK/configure.out")"
has "exited 0 but wrote no $spec"
has "(npm printed nothing)"

# npm says a lot: only its end is shown
# shellcheck disable=SC2016 # the stub's own variables
configure 'i=0; while [ $i -lt 20000 ]; do echo "npm error line $i" >&2; i=$((i + 1)); done; exit 1'
[ "$RC" != 0 ] || fail "the configure succeeded with a failing npm"
has "npm error line 19999"
has "[...]"
! grep -q "npm error line 100$" "$WORK/configure.out" || fail "the start of npm's output is in the error"
size=$(wc -c <"$WORK/configure.out")
[ "$size" -lt 8000 ] || fail "the error is $size bytes long"
echo PASS
