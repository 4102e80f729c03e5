#!/usr/bin/env bash
# test_lab_user.sh — the production lab (tests/lab/README.md) with credentials from
# authorized_user credentials (GOOGLE_APPLICATION_CREDENTIALS): the refresh_token grant.
# replay, serve and pull each reach the Run API over TLS and dead-letter to the topic over
# TLS, every call with a Bearer token the stand-in issued for these credentials.
# shellcheck source=tests/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=tests/lab/paths.sh
. "$LAB_SRC/paths.sh"
lab_start
lab_creds user
lab_paths
echo PASS
