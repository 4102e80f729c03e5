#!/usr/bin/env bash
# runtime-packages.sh — the Debian packages a binary needs at run time, one a line, sorted:
# the packages that hold the libraries of its ELF NEEDED list (readelf -d), each resolved
# to the file the dynamic loader picks for it (ldd). The Dockerfile installs exactly these
# in the runtime image, so the list follows the link line and cannot drift from the build;
# apt brings the packages' own dependencies.
#
#   scripts/runtime-packages.sh BINARY
#
# Exit 1, naming the library, when a NEEDED library does not resolve or no installed
# package holds it. Needs readelf (binutils), ldd and dpkg.
set -euo pipefail

die() {
	echo "runtime-packages.sh: $*" >&2
	exit 1
}

bin=${1:?usage: runtime-packages.sh BINARY}
[ -f "$bin" ] && [ -r "$bin" ] || die "cannot read $bin"
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
[ -n "$needed" ] || die "$bin names no NEEDED library"
resolved=$(ldd "$bin") || die "ldd $bin failed"

for so in $needed; do
	path=$(awk -v so="$so" '$1 == so && $2 == "=>" { print $3; exit }' <<<"$resolved")
	case "$path" in
	/*) ;;
	*) die "$so (NEEDED by $bin) does not resolve: $(grep -F "$so" <<<"$resolved" || true)" ;;
	esac
	# dpkg knows a file by the path its package installed it at: with merged /usr, ldd's
	# /lib/... may be /usr/lib/... to dpkg, or the other way round
	pkg=
	for p in "$path" "/usr$path" "${path#/usr}" "$(readlink -f "$path")"; do
		[ -n "$p" ] || continue
		pkg=$(dpkg -S "$p" 2>/dev/null | sed -n 1p | cut -d: -f1 | cut -d, -f1) || true
		[ -n "$pkg" ] && break
	done
	[ -n "$pkg" ] || die "no installed Debian package holds $so ($path)"
	echo "$pkg"
done | sort -u
