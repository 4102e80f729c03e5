#!/usr/bin/env bash
# test_linkage.sh — libmicrohttpd and libcurl are linked, not loaded at run time: they are
# in jobrelay's ELF NEEDED list (so dpkg-shlibdeps and scripts/runtime-packages.sh see
# them), `jobrelay version` prints the versions of the libraries actually loaded (the
# ones pkg-config built against), and scripts/runtime-packages.sh, which the Dockerfile
# uses to pick the runtime image's packages, names the Debian packages that hold them.
source "$(dirname "$0")/lib.sh"

readelf -d "$JOBRELAY" >"$WORK/dynamic" || fail "readelf -d $JOBRELAY"
for lib in libmicrohttpd libcurl libgrpc libc; do
	grep -Eq "\(NEEDED\).*\[$lib\.so\.[0-9]+\]" "$WORK/dynamic" ||
		fail "jobrelay is not linked against $lib: $(grep NEEDED "$WORK/dynamic")"
done

"$JOBRELAY" version >"$WORK/version.out" 2>"$WORK/version.err" || fail "jobrelay version"
[ ! -s "$WORK/version.err" ] || fail "jobrelay version wrote on stderr: $(cat "$WORK/version.err")"
mhd=$(sed -n 's/^  libmicrohttpd \([0-9][0-9.]*\)$/\1/p' "$WORK/version.out")
curlv=$(sed -n 's,^  libcurl/\([0-9][0-9.]*\) .*,\1,p' "$WORK/version.out")
[ -n "$mhd" ] || fail "no libmicrohttpd version: $(cat "$WORK/version.out")"
[ -n "$curlv" ] || fail "no libcurl version: $(cat "$WORK/version.out")"
if command -v pkg-config >/dev/null && pkg-config --exists libmicrohttpd libcurl; then
	assert_eq "$mhd" "$(pkg-config --modversion libmicrohttpd)" "libmicrohttpd version at run time"
	assert_eq "$curlv" "$(pkg-config --modversion libcurl)" "libcurl version at run time"
fi

if ! command -v dpkg >/dev/null; then
	echo "test_linkage: ok (no dpkg: scripts/runtime-packages.sh not checked)"
	exit 0
fi
"$JR_SOURCE_DIR/scripts/runtime-packages.sh" "$JOBRELAY" >"$WORK/packages" 2>"$WORK/packages.err" ||
	fail "runtime-packages.sh: $(cat "$WORK/packages.err")"
# the package of each library, found from the other end: the file ldd resolves it to
ldd "$JOBRELAY" >"$WORK/ldd" || fail "ldd $JOBRELAY"
for lib in libmicrohttpd libcurl libgrpc libyaml-0 libc; do
	path=$(awk -v l="$lib" 'index($1, l ".so.") == 1 { print $3; exit }' "$WORK/ldd")
	[ -n "$path" ] || fail "ldd does not resolve $lib"
	pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | sed -n 1p | cut -d: -f1) ||
		pkg=$(dpkg -S "*/$(basename "$path")" | sed -n 1p | cut -d: -f1)
	[ -n "$pkg" ] || fail "no package holds $path"
	grep -qx "$pkg" "$WORK/packages" || fail "runtime-packages.sh lacks $pkg ($lib): $(tr '\n' ' ' <"$WORK/packages")"
done
# one package a NEEDED library at most, nothing else (apt brings their dependencies)
n_needed=$(grep -c '(NEEDED)' "$WORK/dynamic")
n_pkgs=$(wc -l <"$WORK/packages")
[ "$n_pkgs" -ge 1 ] && [ "$n_pkgs" -le "$n_needed" ] ||
	fail "runtime-packages.sh named $n_pkgs packages for $n_needed NEEDED libraries"
echo "test_linkage: ok ($(tr '\n' ' ' <"$WORK/packages"))"
