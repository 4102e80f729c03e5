#!/usr/bin/env bash
# test_package.sh — the Debian package in a clean Debian 12 (docs/install.md): the .deb that
# cpack makes from this build is installed with `apt-get install ./jobrelay_*.deb` in a
# container of the base image (made from Debian's archive by scripts/podman-base.sh, no
# registry), apt resolving its Depends from the archive. There:
# - dpkg knows it installed, with /etc/jobrelay/jobrelay.yaml as a conffile;
# - `jobrelay --version` runs and names every library (nothing missing from Depends);
# - `jobrelay check-config` accepts the installed config; the unit is in /lib/systemd/system;
# - the maintainer scripts run where systemd does not (no error);
# - remove keeps the config, purge takes it away.
# It skips (exit 77) only where podman cannot run (not installed, not root); under CI=true
# that is a failure instead (as test_container.sh).
# shellcheck source=tests/integration/lib.sh
. "$JR_SOURCE_DIR/tests/integration/lib.sh"
: "${JR_BUILD_DIR:?}"

# shellcheck source=tests/deploy/podman_lib.sh
. "$JR_SOURCE_DIR/tests/deploy/podman_lib.sh"
command -v cpack >/dev/null || fail "cpack is not installed"
started=$SECONDS
phase() { echo "== $1 ($((SECONDS - started)) s so far)"; }

phase "base image $BASE"
bash "$JR_SOURCE_DIR/scripts/podman-base.sh"

phase "the package"
(cd "$WORK" && cpack -G DEB -B "$WORK/pkg" --config "$JR_BUILD_DIR/CPackConfig.cmake") \
	>"$WORK/cpack.log" 2>&1 || { cat "$WORK/cpack.log" >&2; fail "cpack"; }
debs=("$WORK"/pkg/jobrelay_*.deb)
if [ "${#debs[@]}" != 1 ] || [ ! -f "${debs[0]}" ]; then
	fail "cpack made no single jobrelay_*.deb: $(ls "$WORK/pkg")"
fi
DEB=$(basename "${debs[0]}")
echo "package: $DEB, Depends: $(dpkg-deb -f "${debs[0]}" Depends)"

phase "apt-get install ./$DEB in a clean Debian 12"
# one container for it all: the script prints a marker line per step, checked below
cat >"$WORK/in-container.sh" <<'SH'
set -eu
cd /pkg
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
apt-get install -y -q --no-install-recommends "./$DEB" >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
echo "STATUS $(dpkg-query -W -f='${Status}' jobrelay)"
dpkg-query -W -f='${Conffiles}\n' jobrelay | sed -n 's/^ *\([^ ]*\) .*/CONFFILE \1/p'
echo "WHICH $(command -v jobrelay)"
[ -f /lib/systemd/system/jobrelay-pull.service ] && echo "UNIT present"
jobrelay --version >/tmp/version 2>/tmp/version.err && echo "VERSION ok"
sed 's/^/VERSION-OUT /' /tmp/version /tmp/version.err
cd /tmp
jobrelay check-config --config /etc/jobrelay/jobrelay.yaml >/tmp/check 2>&1 && echo "CHECK-CONFIG ok"
grep -q '^route csv-uploads$' /tmp/check && echo "CHECK-CONFIG routes"
sed "s/^/CHECK-OUT /" /tmp/check
apt-get remove -y -q jobrelay >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
[ ! -e /usr/bin/jobrelay ] && [ -f /etc/jobrelay/jobrelay.yaml ] && echo "REMOVE keeps the config"
apt-get purge -y -q jobrelay >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
[ ! -e /etc/jobrelay/jobrelay.yaml ] && echo "PURGE takes the config"
echo DONE
SH
podman run --rm --runtime runc --network=host -e "DEB=$DEB" \
	-v "$WORK/pkg:/pkg:ro" -v "$WORK/in-container.sh:/in-container.sh:ro" \
	"$BASE" sh /in-container.sh >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; fail "in the container"; }
has() { grep -qx -- "$1" "$WORK/out" || fail "${2:-no \"$1\"}: $(cat "$WORK/out")"; }
has "STATUS install ok installed"
has "CONFFILE /etc/jobrelay/jobrelay.yaml"
has "WHICH /usr/bin/jobrelay"
has "UNIT present"
has "CHECK-CONFIG ok"
has "CHECK-CONFIG routes"
has "REMOVE keeps the config"
has "PURGE takes the config"
has DONE
# version: every library resolved from what apt installed for Depends
has "VERSION ok" "jobrelay version failed in the container"
grep -q '^VERSION-OUT jobrelay ' "$WORK/out" || fail "version: $(cat "$WORK/out")"
for lib in grpc protobuf-c yajl libyaml OpenSSL libmicrohttpd libcurl; do
	grep -q "^VERSION-OUT   $lib" "$WORK/out" || fail "version lists no $lib (missing from Depends?): $(cat "$WORK/out")"
done
grep -Eiq '^VERSION-OUT .*(cannot|error|not found|not loaded)' "$WORK/out" &&
	fail "jobrelay version complains in the container: $(grep '^VERSION-OUT' "$WORK/out")"
echo "PASS ($((SECONDS - started)) s)"
