#!/usr/bin/env bash
# test_lab_sa_key.sh — the production lab (tests/lab/README.md) with credentials from
# a service-account key file (GOOGLE_APPLICATION_CREDENTIALS): tokens from the
# token endpoint by the jwt-bearer grant. Fails while jobrelay relies on gRPC's default
# credentials, which sign their own JWT and ask no token endpoint.
# replay, serve and pull each reach the Run API over TLS and dead-letter to the topic over
# TLS, every call with a Bearer token the stand-in issued for these credentials.
# shellcheck source=tests/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=tests/lab/paths.sh
. "$LAB_SRC/paths.sh"
lab_start
lab_creds sa-key
lab_paths
echo PASS
