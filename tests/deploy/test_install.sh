#!/usr/bin/env bash
# test_install.sh — the install rules and the Debian package (docs/install.md;
# cmake/Install.cmake, cmake/Package.cmake), from the build ctest runs in:
# - `cmake --install --prefix /usr` into a DESTDIR: exactly the expected files, with their
#   modes; the installed binary runs; the unit names the installed binary and config, has
#   Type=notify, the watchdog, a dynamic user, its state directory, and passes
#   `systemd-analyze verify` (on a copy whose ExecStart is the DESTDIR's binary: verify
#   needs the program to exist, and --root wants a whole systemd tree);
# - `--prefix /opt/jobrelay`: the config and the unit follow the prefix;
# - the package from cpack: its fields, conffiles, maintainer scripts (a daemon-reload only
#   where systemd runs), the same files as the install, and a Depends (from dpkg-shlibdeps)
#   naming every library jobrelay uses.
# Needs cpack, dpkg-deb, dpkg-shlibdeps and systemd-analyze (scripts/deps.sh).
# shellcheck source=tests/integration/lib.sh
. "$JR_SOURCE_DIR/tests/integration/lib.sh"
: "${JR_BUILD_DIR:?}"

for tool in cpack dpkg-deb dpkg-shlibdeps systemd-analyze; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/deps.sh installs it)"
done

# The files of an install with prefix /usr, and of the package, relative to the root.
EXPECTED=(
	usr/bin/jobrelay
	etc/jobrelay/jobrelay.yaml
	lib/systemd/system/jobrelay-pull.service
	usr/share/man/man1/jobrelay.1
	usr/share/bash-completion/completions/jobrelay
	usr/share/zsh/vendor-completions/_jobrelay
)
# Libraries the package must depend on, by package-name prefix (Debian 12: libgrpc29,
# libprotobuf-c1, libssl3, libyajl2, libyaml-0-2, libmicrohttpd12, libcurl4).
DEPENDS=(libgrpc libprotobuf-c libssl libyajl libyaml libmicrohttpd libcurl ca-certificates)

# same_files LIST DIR WHAT: the regular files and symlinks under DIR are exactly EXPECTED.
same_files() {
	printf '%s\n' "${EXPECTED[@]}" | sort >"$WORK/expected.list"
	sort "$1" >"$WORK/got.list"
	diff -u "$WORK/expected.list" "$WORK/got.list" >"$WORK/files.diff" ||
		fail "$2: not the expected files (- missing, + unexpected):
$(cat "$WORK/files.diff")"
}
mode_of() { stat -c %a "$1"; }
unit_key() { # unit_key FILE KEY: the values of KEY= lines, one a line
	sed -n "s/^$2=//p" "$1"
}

# --- cmake --install, prefix /usr
DEST="$WORK/dest"
DESTDIR="$DEST" cmake --install "$JR_BUILD_DIR" --prefix /usr >"$WORK/install.log" 2>&1 ||
	{ cat "$WORK/install.log" >&2; fail "cmake --install"; }
(cd "$DEST" && find . -type f -o -type l | sed 's,^\./,,') >"$WORK/installed.list"
same_files "$WORK/installed.list" "cmake --install --prefix /usr"
# the same through the Makefile, as the README says: make install DESTDIR=... PREFIX=/usr (its
# build step finds this build up to date; JR_WERROR as this build was configured)
werror=$(sed -n 's/^JR_WERROR:[A-Z]*=//p' "$JR_BUILD_DIR/CMakeCache.txt")
make -s -C "$JR_SOURCE_DIR" install BUILD_DIR="$JR_BUILD_DIR" DESTDIR="$WORK/make-dest" PREFIX=/usr \
	JR_WERROR="${werror:-OFF}" >"$WORK/make-install.log" 2>&1 ||
	{ tail -20 "$WORK/make-install.log" >&2; fail "make install DESTDIR=..."; }
(cd "$WORK/make-dest" && find . -type f -o -type l | sed 's,^\./,,') >"$WORK/make-installed.list"
same_files "$WORK/make-installed.list" "make install DESTDIR=... PREFIX=/usr"
assert_eq "$(mode_of "$DEST/usr/bin/jobrelay")" 755 "mode of bin/jobrelay"
assert_eq "$(mode_of "$DEST/etc/jobrelay/jobrelay.yaml")" 644 "mode of the config"
assert_eq "$(mode_of "$DEST/lib/systemd/system/jobrelay-pull.service")" 644 "mode of the unit"
cmp -s "$DEST/etc/jobrelay/jobrelay.yaml" "$JR_SOURCE_DIR/examples/jobrelay.yaml" ||
	fail "the installed config is not examples/jobrelay.yaml"
"$DEST/usr/bin/jobrelay" version >"$WORK/version" 2>&1 || fail "the installed jobrelay: $(cat "$WORK/version")"
grep -q '^jobrelay ' "$WORK/version" || fail "jobrelay version: $(cat "$WORK/version")"

UNIT="$DEST/lib/systemd/system/jobrelay-pull.service"
assert_eq "$(unit_key "$UNIT" ExecStart)" "/usr/bin/jobrelay pull" "ExecStart"
assert_eq "$(unit_key "$UNIT" Environment)" "JOBRELAY_CONFIG=/etc/jobrelay/jobrelay.yaml" "Environment"
assert_eq "$(unit_key "$UNIT" Type)" notify "Type"
assert_eq "$(unit_key "$UNIT" NotifyAccess)" main "NotifyAccess"
assert_eq "$(unit_key "$UNIT" DynamicUser)" yes "DynamicUser"
assert_eq "$(unit_key "$UNIT" StateDirectory)" jobrelay "StateDirectory"
assert_eq "$(unit_key "$UNIT" Restart)" on-failure "Restart"
[ -n "$(unit_key "$UNIT" WatchdogSec)" ] || fail "no WatchdogSec"
assert_eq "$(unit_key "$UNIT" ProtectSystem)" strict "ProtectSystem"
# with prefix /usr, the paths of deploy/systemd's unit are already the right ones
cmp -s "$JR_SOURCE_DIR/deploy/systemd/jobrelay-pull.service" "$UNIT" ||
	fail "the unit for prefix /usr differs from deploy/systemd/jobrelay-pull.service"

# systemd-analyze verify: the unit as installed, its ExecStart pointed at the DESTDIR's
# binary; the man page of Documentation= looked up in the install
mkdir -p "$WORK/verify"
sed "s,^ExecStart=/usr/bin/jobrelay,ExecStart=$DEST/usr/bin/jobrelay," "$UNIT" \
	>"$WORK/verify/jobrelay-pull.service"
command -v man >/dev/null || fail "man is not installed (scripts/deps.sh installs man-db)"
man=(--man=yes)
export MANPATH="$DEST/usr/share/man"
systemd-analyze verify "${man[@]}" "$WORK/verify/jobrelay-pull.service" >"$WORK/verify.log" 2>&1 ||
	fail "systemd-analyze verify: $(cat "$WORK/verify.log")"
[ ! -s "$WORK/verify.log" ] || fail "systemd-analyze verify warns: $(cat "$WORK/verify.log")"
# ... and it does look at ExecStart: a unit whose program is missing fails
sed "s,^ExecStart=.*,ExecStart=$WORK/missing/jobrelay pull," "$UNIT" >"$WORK/verify/jobrelay-pull.service"
if systemd-analyze verify --man=no "$WORK/verify/jobrelay-pull.service" >/dev/null 2>&1; then
	fail "systemd-analyze verify passes a unit whose ExecStart does not exist"
fi

# --- another prefix: the config and the unit follow it
OPT="$WORK/opt"
DESTDIR="$OPT" cmake --install "$JR_BUILD_DIR" --prefix /opt/jobrelay >"$WORK/install-opt.log" 2>&1 ||
	{ cat "$WORK/install-opt.log" >&2; fail "cmake --install --prefix /opt/jobrelay"; }
OUNIT="$OPT/opt/jobrelay/lib/systemd/system/jobrelay-pull.service"
[ -f "$OUNIT" ] || fail "no unit under /opt/jobrelay/lib/systemd/system: $(cd "$OPT" && find . -type f)"
[ -f "$OPT/opt/jobrelay/etc/jobrelay/jobrelay.yaml" ] || fail "no config under /opt/jobrelay/etc"
assert_eq "$(unit_key "$OUNIT" ExecStart)" "/opt/jobrelay/bin/jobrelay pull" "ExecStart for /opt/jobrelay"
assert_eq "$(unit_key "$OUNIT" Environment)" "JOBRELAY_CONFIG=/opt/jobrelay/etc/jobrelay/jobrelay.yaml" \
	"Environment for /opt/jobrelay"

# --- the Debian package
(cd "$WORK" && cpack -G DEB -B "$WORK/pkg" --config "$JR_BUILD_DIR/CPackConfig.cmake") \
	>"$WORK/cpack.log" 2>&1 || { cat "$WORK/cpack.log" >&2; fail "cpack"; }
debs=("$WORK"/pkg/jobrelay_*.deb)
if [ "${#debs[@]}" != 1 ] || [ ! -f "${debs[0]}" ]; then
	fail "cpack made no single jobrelay_*.deb: $(ls "$WORK/pkg")"
fi
DEB=${debs[0]}
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$JR_BUILD_DIR/CMakeCache.txt")
arch=$(dpkg --print-architecture)
assert_eq "$(basename "$DEB")" "jobrelay_${version}_$arch.deb" "package file name"
field() { dpkg-deb -f "$DEB" "$1"; }
assert_eq "$(field Package)" jobrelay "Package"
assert_eq "$(field Version)" "$version" "Version"
assert_eq "$(field Architecture)" "$arch" "Architecture"
assert_eq "$(field Section)" net "Section"
assert_eq "$(field Priority)" optional "Priority"
maintainer_re='^[^<>]+ <[^<>@ ]+@[^<>@ ]+>$'
[[ $(field Maintainer) =~ $maintainer_re ]] || fail "Maintainer: $(field Maintainer)"
description=$(field Description)
[[ ${description%%$'\n'*} == *"Cloud Run job"* ]] || fail "Description: $description"
[ "$(printf '%s\n' "$description" | wc -l)" -gt 3 ] || fail "no long description: $description"

dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed -n 's,^\./,,; /[^/]$/p' >"$WORK/package.list"
same_files "$WORK/package.list" "the package"
dpkg-deb -x "$DEB" "$WORK/x"
cmp -s "$WORK/x/lib/systemd/system/jobrelay-pull.service" "$UNIT" ||
	fail "the package's unit differs from the one installed with prefix /usr"
file_type=$(file -b "$WORK/x/usr/bin/jobrelay" 2>/dev/null || echo unknown)
case "$file_type" in unknown | *", stripped"*) ;; *) fail "the packaged binary is not stripped: $file_type" ;; esac
"$WORK/x/usr/bin/jobrelay" version >/dev/null 2>&1 || fail "the packaged jobrelay does not run"

dpkg-deb -e "$DEB" "$WORK/control"
assert_eq "$(cat "$WORK/control/conffiles")" /etc/jobrelay/jobrelay.yaml "conffiles"
for s in postinst prerm postrm; do
	[ -x "$WORK/control/$s" ] || fail "no executable $s"
	sh -n "$WORK/control/$s" || fail "$s is not valid sh"
	cmp -s "$WORK/control/$s" "$JR_SOURCE_DIR/deploy/debian/$s" || fail "$s is not deploy/debian/$s"
done
grep -q 'daemon-reload' "$WORK/control/postinst" || fail "postinst does not reload systemd"
# where systemd does not run (a container, a chroot), the scripts call no systemctl
mkdir -p "$WORK/stub"
printf '#!/bin/sh\necho "$*" >>"%s/systemctl.calls"\n' "$WORK" >"$WORK/stub/systemctl"
chmod 755 "$WORK/stub/systemctl"
if [ ! -d /run/systemd/system ]; then
	PATH="$WORK/stub:$PATH" sh "$WORK/control/postinst" configure || fail "postinst configure"
	PATH="$WORK/stub:$PATH" sh "$WORK/control/prerm" remove || fail "prerm remove"
	PATH="$WORK/stub:$PATH" sh "$WORK/control/postrm" purge || fail "postrm purge"
	[ ! -e "$WORK/systemctl.calls" ] || fail "systemctl called without systemd: $(cat "$WORK/systemctl.calls")"
fi

# Depends, from dpkg-shlibdeps: every library jobrelay uses, each as a package name
depends=$(field Depends)
IFS=, read -r -a names <<<"$depends"
missing=()
for d in "${DEPENDS[@]}"; do
	found=0
	for n in "${names[@]}"; do
		n=${n# }
		[[ $n == "$d"* ]] && found=1
	done
	[ "$found" = 1 ] || missing+=("$d")
done
[ "${#missing[@]}" = 0 ] || fail "Depends names no ${missing[*]}: $depends"
echo "PASS ($(basename "$DEB"): Depends: $depends)"
