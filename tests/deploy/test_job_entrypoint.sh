#!/usr/bin/env bash
# shellcheck disable=SC2016 # single-quoted $ are for the shells the test starts
# The standard job image's entrypoint (deploy/job-image/entrypoint.sh), run with sh as the
# image runs it: PROJECT_ID or REGION missing or empty (or a name in REQUIRED_ENV missing) ->
# exit 64 and a message naming each; no command -> 64; both set -> the command runs in the
# entrypoint's place (its arguments, stdout and exit status pass through).
# shellcheck source=tests/integration/lib.sh
. "$JR_SOURCE_DIR/tests/integration/lib.sh"
EP="$JR_SOURCE_DIR/deploy/job-image/entrypoint.sh"
[ -x "$EP" ] || fail "$EP is not executable (the image copies its mode)"

# ep ENV... -- ARGS...: runs the entrypoint with only ENV; sets RC, OUT, ERR.
ep() {
	local e=()
	while [ "$1" != -- ]; do e+=("$1"); shift; done
	shift
	set +e
	env -i PATH=/usr/bin:/bin "${e[@]}" sh "$EP" "$@" >"$WORK/out" 2>"$WORK/err"
	RC=$?
	set -e
	OUT=$(cat "$WORK/out")
	ERR=$(cat "$WORK/err")
}
expect_missing() { # expect_missing "NAMES" ENV... -- ARGS...
	local names=$1
	shift
	ep "$@"
	assert_eq "$RC" 64 "exit with$names missing"
	assert_eq "$ERR" "entrypoint: required environment variable(s) not set:$names" "message"
	[ -z "$OUT" ] || fail "the command ran although$names is missing: $OUT"
}

echo "== missing environment"
expect_missing " PROJECT_ID REGION" -- echo ran
expect_missing " REGION" PROJECT_ID=acme -- echo ran
expect_missing " PROJECT_ID" REGION=europe-west2 -- echo ran
expect_missing " PROJECT_ID" PROJECT_ID= REGION=europe-west2 -- echo ran
expect_missing " API_TOKEN" PROJECT_ID=acme REGION=europe-west2 "REQUIRED_ENV=API_TOKEN" -- echo ran
ep PROJECT_ID=acme REGION=r "REQUIRED_ENV=BAD-NAME" -- echo ran
assert_eq "$RC" 64 "exit for a bad REQUIRED_ENV name"
[[ "$ERR" == *"'BAD-NAME', which is not a variable name"* ]] || fail "bad REQUIRED_ENV message: $ERR"

echo "== no command"
ep PROJECT_ID=acme REGION=europe-west2 --
assert_eq "$RC" 64 "exit without a command"
[[ "$ERR" == *"no command given"* ]] || fail "no-command message: $ERR"

echo "== the command runs in its place"
ep PROJECT_ID=acme REGION=europe-west2 API_TOKEN=t REQUIRED_ENV=API_TOKEN -- \
	sh -c 'echo "$PROJECT_ID/$REGION $API_TOKEN args:$*"; exit 7' job 'a b' c
assert_eq "$RC" 7 "the command's exit status"
assert_eq "$(sed -n 1p "$WORK/out")" "acme/europe-west2 t args:a b c" "the command's output"
[[ "$ERR" == "entrypoint: project acme, region europe-west2, task 0/1, execution none: running sh" ]] ||
	fail "start line: $ERR"
# exec: the command is the entrypoint's process (it gets the signals Cloud Run sends)
env -i PATH=/usr/bin:/bin PROJECT_ID=acme REGION=r sh "$EP" sh -c 'echo $$' >"$WORK/pid" 2>/dev/null &
pid=$!
wait "$pid"
assert_eq "$(cat "$WORK/pid")" "$pid" "the command's process id (exec)"
ep PROJECT_ID=acme REGION=europe-west2 -- no-such-command-here
assert_eq "$RC" 127 "exit for a command that does not exist"
echo "PASS"
