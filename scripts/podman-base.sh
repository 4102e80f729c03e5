#!/usr/bin/env bash
# Makes the base image the Dockerfiles start from, docker.io/library/debian:bookworm-slim,
# in local podman storage, from Debian's archive alone, for machines that reach no image
# registry (docs/deploy.md, "The container image"): debootstrap --variant=minbase, slimmed
# the way Debian's official slim images are (no docs, man pages or locales; apt keeps no
# .debs or lists), then `podman import`. On Cloud Build the same FROM line pulls Docker
# Hub's image instead.
#
#   scripts/podman-base.sh            make it unless it exists (idempotent)
#   scripts/podman-base.sh --force    make it again
#
# Needs root, podman and debootstrap (scripts/deps.sh installs them). DEBIAN_MIRROR picks the
# archive (default http://deb.debian.org/debian). Two runs at once wait for each other.
set -euo pipefail

IMAGE=docker.io/library/debian:bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FORCE=0
case "${1:-}" in
--force) FORCE=1 ;;
'') ;;
*) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

log() { printf 'podman-base: %s\n' "$*" >&2; }

exec 9>"${TMPDIR:-/tmp}/jobrelay-podman-base.lock"
flock 9
if [ "$FORCE" -eq 0 ] && podman image exists "$IMAGE"; then
	log "$IMAGE exists"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/jobrelay-rootfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root="$tmp/rootfs"
started=$SECONDS
log "debootstrap --variant=minbase bookworm from $MIRROR"
if ! debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1; then
	tail -n 20 "$tmp/debootstrap.log" >&2
	log "debootstrap failed"
	exit 1
fi

# The slim image's settings: dpkg leaves out docs, man pages and locales from now on; apt
# keeps no downloaded .debs, reads no translations, and lists stay gzipped.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'APT::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
# the suites the official image lists: the release, its updates, and security
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# what the settings above would not have installed, and what debootstrap leaves behind
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
	"$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/debootstrap
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"

tar --numeric-owner -C "$root" -c . |
	podman import --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
log "made $IMAGE in $((SECONDS - started)) s ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
