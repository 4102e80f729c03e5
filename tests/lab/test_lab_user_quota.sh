#!/usr/bin/env bash
# test_lab_user_quota.sh — the production lab (tests/lab/README.md) with credentials from
# authorized_user credentials with a quota_project_id: every call must also carry
# x-goog-user-project. Fails while jobrelay relies on gRPC's default credentials,
# which never send it.
# replay, serve and pull each reach the Run API over TLS and dead-letter to the topic over
# TLS, every call with a Bearer token the stand-in issued for these credentials.
# shellcheck source=tests/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=tests/lab/paths.sh
. "$LAB_SRC/paths.sh"
lab_start
lab_creds user-quota
lab_paths
echo PASS
