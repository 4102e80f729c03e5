#!/usr/bin/env bash
# test_lab_external.sh — the production lab (tests/lab/README.md) with credentials from
# external_account credentials (workload identity federation): a file-sourced
# subject token exchanged at STS, then service-account impersonation.
# replay, serve and pull each reach the Run API over TLS and dead-letter to the topic over
# TLS, every call with a Bearer token the stand-in issued for these credentials.
# shellcheck source=tests/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=tests/lab/paths.sh
. "$LAB_SRC/paths.sh"
lab_start
lab_creds external
lab_paths
grep '"service":"sts"' "$LAB/gauth.jsonl" | grep '"status":200' |
	grep -q '"audience":"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/lab-pool/providers/lab-provider","subject":"lab-oidc-subject-token"' ||
	fail "STS did not get the credential file's subject token and audience"
echo PASS
