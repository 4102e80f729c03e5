#!/usr/bin/env bash
# test_lab_impersonated.sh — the production lab (tests/lab/README.md) with an
# impersonated_service_account file (what `gcloud auth application-default login
# --impersonate-service-account` writes): user credentials, then generateAccessToken.
# replay, serve and pull each reach the Run API over TLS and dead-letter to the topic over
# TLS, every call with a Bearer token the stand-in issued for these credentials.
# shellcheck source=tests/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=tests/lab/paths.sh
. "$LAB_SRC/paths.sh"
lab_start
lab_creds impersonated
lab_paths
echo PASS
