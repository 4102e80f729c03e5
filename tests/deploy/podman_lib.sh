# podman_lib.sh — what the podman tests (test_container.sh, test_package.sh) share: `cannot`
# (skip with exit 77 where podman cannot run, a failure under CI=true) and the checks that
# podman, root and the base image (or debootstrap to make it) are there. Sets BASE.
# Sourced after tests/integration/lib.sh.

cannot() {
	if [ "${CI:-}" = true ]; then
		fail "$* (CI runs this test; scripts/deps.sh installs podman and debootstrap)"
	fi
	echo "SKIP: $*"
	exit 77
}
command -v podman >/dev/null || cannot "podman is not installed"
[ "$(id -u)" = 0 ] || cannot "podman builds and runs these containers as root here, and this is uid $(id -u)"
BASE=docker.io/library/debian:bookworm-slim
podman image exists "$BASE" || command -v debootstrap >/dev/null ||
	cannot "debootstrap is not installed (it makes the base image $BASE once)"
podman info >/dev/null 2>"$WORK/podman-info.err" ||
	cannot "podman cannot run here: $(tail -n 1 "$WORK/podman-info.err")"
