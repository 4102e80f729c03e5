# jobrelay container image (docs/deploy.md).
#
#   podman build --isolation=chroot -t localhost/jobrelay .       # here (scripts/podman-base.sh)
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/jobrelay .  # Cloud Build (deploy/cloudbuild.yaml)
#
# Stage "build" compiles jobrelay with CMake from this tree; the runtime stage holds the binary,
# the Debian packages of the libraries it is linked to and CA certificates, and runs as an
# unprivileged user. The packages are read off the binary (scripts/runtime-packages.sh): the
# ones holding the libraries of its ELF NEEDED list, so the list cannot drift from the build.
#
#   docker run IMAGE                 jobrelay serve, on $PORT (default 8080)
#   docker run IMAGE pull            jobrelay pull (health endpoints on $PORT)
#   docker run IMAGE check-config    any other subcommand and its flags
#
# The config is read from $JOBRELAY_CONFIG = /etc/jobrelay/jobrelay.yaml: mount it there (on
# Cloud Run, a Secret Manager secret mounted as a file; deploy/service.yaml).
#
# Build arguments:
#   JR_PROTO_TARBALL  path, inside the build, of a local google-proto-files tarball (for example
#                     from `podman build -v DIR:/protos:ro --build-arg
#                     JR_PROTO_TARBALL=/protos/google-proto-files-6.0.1.tgz`); empty (default):
#                     npm fetches it from the registry (checksum verified either way)
#   JR_GIT_COMMIT     the commit `jobrelay version` names (.git is not in the build context)
#   BASE              the Debian image of both stages
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ARG JR_PROTO_TARBALL=
ARG JR_GIT_COMMIT=unknown
RUN set -eu; \
    npm=; [ -n "$JR_PROTO_TARBALL" ] || npm="nodejs npm"; \
    apt-get update -q; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake pkg-config libgrpc-dev protobuf-compiler libprotobuf-dev \
      protobuf-c-compiler libprotobuf-c-dev libssl-dev libyajl-dev libyaml-dev libcunit1-dev \
      libmicrohttpd-dev libcurl4-openssl-dev ca-certificates $npm; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN set -eu; \
    cmake -S . -B /build -DJR_BENCH=OFF "-DJR_GIT_COMMIT=$JR_GIT_COMMIT" \
      "-DJR_PROTO_TARBALL=$JR_PROTO_TARBALL" >/build.log 2>&1 || { cat /build.log; exit 1; }; \
    cmake --build /build --target jobrelay -j"$(nproc)"; \
    mkdir -p /out; \
    strip -o /out/jobrelay /build/src/jobrelay; \
    /out/jobrelay version; \
    scripts/runtime-packages.sh /out/jobrelay >/out/runtime-packages; \
    echo "runtime packages: $(tr '\n' ' ' </out/runtime-packages)"

FROM ${BASE}
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN set -eu; \
    apt-get update -q; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      ca-certificates $(cat /tmp/runtime-packages); \
    rm -rf /var/lib/apt/lists/* /tmp/runtime-packages /var/log/apt /var/log/dpkg.log; \
    groupadd --gid 10001 jobrelay; \
    useradd --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin jobrelay; \
    mkdir -p /etc/jobrelay /var/lib/jobrelay; \
    chown jobrelay:jobrelay /var/lib/jobrelay
COPY --from=build /out/jobrelay /usr/local/bin/jobrelay
ENV JOBRELAY_CONFIG=/etc/jobrelay/jobrelay.yaml \
    PORT=8080 \
    GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
WORKDIR /var/lib/jobrelay
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/jobrelay"]
CMD ["serve"]
