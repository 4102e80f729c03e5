#!/usr/bin/env bash
# Installs what jobrelay needs to build and test, on Debian 12. Idempotent:
# installed packages are found with dpkg and skipped, `apt-get update` runs
# only when something is missing, Node.js and npm come from Debian only when
# no `node` is on PATH (a Node installed otherwise is kept), and the npm
# packages of the Node test peers (tests/peers/*/package.json) are installed
# only when their node_modules is missing or older than the manifest.
#
#   scripts/deps.sh           install what is missing (root, or sudo)
#   scripts/deps.sh --check   only report what a build lacks; exit 1 if anything
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# What `make build` needs (and `--check` checks).
BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libgrpc-dev protobuf-compiler libprotobuf-dev protobuf-c-compiler libprotobuf-c-dev
  libssl-dev libyajl-dev libyaml-dev libcunit1-dev libmicrohttpd-dev libcurl4-openssl-dev
)
# What tests, sanitizer and fuzz builds need on top of it (llvm brings
# llvm-symbolizer, which turns sanitizer and libFuzzer reports into file:line).
TEST_PACKAGES=(git ca-certificates curl clang libclang-rt-14-dev llvm)
# The deployment tests: PyYAML reads the manifests; podman, runc and debootstrap build and
# run the container images (tests/deploy/test_container.sh; docs/testing.md).
TEST_PACKAGES+=(python3 python3-yaml podman runc debootstrap)
# The install tests (tests/deploy/test_install.sh): dpkg-shlibdeps finds the package's
# Depends, systemd-analyze verifies the unit, man looks up its Documentation= page.
TEST_PACKAGES+=(dpkg-dev systemd man-db)
# The production lab (tests/lab): ip sets up its network namespace, openssl makes its CA.
TEST_PACKAGES+=(iproute2 openssl)
# Google's Pub/Sub emulator (pstest) is Go, built offline from Debian's packages.
if compgen -G 'tests/peers/*/*.go' >/dev/null; then
  TEST_PACKAGES+=(golang-go golang-google-cloud-dev)
fi

CHECK_ONLY=0
case "${1:-}" in
  --check) CHECK_ONLY=1; PACKAGES=("${BUILD_PACKAGES[@]}") ;;
  '') PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

log() { printf 'deps: %s\n' "$*"; }

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    installed "$p" || printf '%s\n' "$p"
  done
  if [ "$CHECK_ONLY" -eq 0 ] && ! command -v node >/dev/null 2>&1; then
    printf '%s\n' nodejs npm
  fi
}

# Node peers whose node_modules is absent or older than package(-lock).json.
stale_node_peers() {
  local manifest dir stamp
  for manifest in tests/peers/*/package.json; do
    [ -f "$manifest" ] || continue
    dir=$(dirname "$manifest")
    stamp="$dir/node_modules/.package-lock.json"
    if [ ! -d "$dir/node_modules" ] || [ ! -f "$stamp" ] ||
       [ "$manifest" -nt "$stamp" ] ||
       { [ -f "$dir/package-lock.json" ] && [ "$dir/package-lock.json" -nt "$stamp" ]; }; then
      printf '%s\n' "$dir"
    fi
  done
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "deps: must run as root (or with sudo available) to install: $*" >&2
    exit 1
  fi
}

mapfile -t missing < <(missing_packages)
mapfile -t peers < <(stale_node_peers)

if [ "$CHECK_ONLY" -eq 1 ]; then
  status=0
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    status=1
  fi
  if ! command -v npm >/dev/null 2>&1 && [ -z "${JR_PROTO_TARBALL:-}" ]; then
    echo "deps: npm is needed to fetch google-proto-files (or set JR_PROTO_TARBALL)" >&2
    status=1
  fi
  if [ "$status" -ne 0 ]; then
    echo "deps: run 'make deps' (scripts/deps.sh, as root) to install them" >&2
  fi
  exit "$status"
fi

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "Debian packages: all present"
fi

# podman with no default ulimits (podman's defaults exceed the hard limits
# of some sandboxes). An existing containers.conf is left alone.
if [ "$CHECK_ONLY" -eq 0 ] && installed podman && [ ! -e /etc/containers/containers.conf ]; then
  log "writing /etc/containers/containers.conf (default_ulimits = [])"
  printf '[containers]\ndefault_ulimits = []\n' | as_root tee /etc/containers/containers.conf >/dev/null
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "deps: 'node' is installed but 'npm' is not; install npm alongside that Node" >&2
  exit 1
fi

for dir in "${peers[@]}"; do
  if [ -f "$dir/package-lock.json" ] || [ -f "$dir/npm-shrinkwrap.json" ]; then
    log "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund)
  else
    log "npm install in $dir (no lock file)"
    (cd "$dir" && npm install --no-audit --no-fund)
  fi
done
if [ "${#peers[@]}" -eq 0 ]; then
  log "Node test peers: up to date"
fi
