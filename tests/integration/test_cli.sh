#!/usr/bin/env bash
# The command line itself: every command and subcommand answers -h and
# --help with its own usage (exit 0, no config read); global flags before and
# after the command, --flag VALUE and --flag=VALUE; --version; unknown flags
# and missing values name the flag (exit 2); -- ends the flags; the bash
# completion and the man page generated from the same command table.
. "$(dirname "$0")/lib.sh"
J="$JOBRELAY"

# run_rc WANT OUT ERR CMD...: runs CMD, stdout to OUT and stderr to ERR, and checks its exit code
run_rc() {
	local want=$1 out=$2 err=$3
	shift 3
	set +e
	"$@" >"$out" 2>"$err"
	local rc=$?
	set -e
	[ "$rc" = "$want" ] || fail "exit code of '$*': expected $want, got $rc; stderr: $(head -3 "$err")"
}

# Work in a folder whose ./jobrelay.yaml is broken: a command that reads the config
# without being asked to fails, and one that reads --config proves it used it.
mkdir "$WORK/cwd"
cd "$WORK/cwd"
printf 'routes: [ {{{\n' >jobrelay.yaml
unset JOBRELAY_CONFIG

# ---- the commands: the binary's table, and a minimum it must hold
mapfile -t CMDS < <("$J" help --commands)
MIN=(replay redrive serve pull check-config "jobs list" "jobs run" "executions list" "executions get"
	"executions cancel" "executions wait" version help)
for m in "${MIN[@]}"; do
	printf '%s\n' "${CMDS[@]}" | contains -xF "$m" || fail "'$m' missing from jobrelay help --commands"
done
GROUPS_=(jobs executions)
"$J" --help >"$WORK/global.txt"
for m in "${MIN[@]}"; do
	grep -qF "  $m " "$WORK/global.txt" || fail "the global usage does not list '$m'"
done

# ---- -h and --help on every command, subcommand and group, before and after it
n=0
for c in "${CMDS[@]}" "${GROUPS_[@]}"; do
	read -ra words <<<"$c"
	for h in -h --help; do
		for where in after before; do
			if [ $where = after ]; then line=("${words[@]}" "$h"); else line=("$h" "${words[@]}"); fi
			run_rc 0 "$WORK/h.out" "$WORK/h.err" "$J" "${line[@]}"
			grep -Eq "^usage: jobrelay $c( |$)" "$WORK/h.out" || fail "'jobrelay ${line[*]}' is not $c's usage: $(head -2 "$WORK/h.out")"
			cmp -s "$WORK/h.out" "$WORK/global.txt" && fail "'jobrelay ${line[*]}' printed the global usage"
			[ ! -s "$WORK/h.err" ] || fail "'jobrelay ${line[*]}' wrote on stderr: $(head -2 "$WORK/h.err")"
			n=$((n + 1))
		done
	done
	# help COMMAND prints the same
	"$J" help "${words[@]}" >"$WORK/h2.out"
	"$J" "${words[@]}" --help >"$WORK/h.out"
	cmp -s "$WORK/h.out" "$WORK/h2.out" || fail "'jobrelay help $c' differs from '$c --help'"
done
[ "$n" -ge $(((${#MIN[@]} + 2) * 4)) ] || fail "only $n help runs"
# help wins over what is wrong with the rest of the line
run_rc 0 "$WORK/h.out" "$WORK/h.err" "$J" jobs run --tasks --help
grep -q "^usage: jobrelay jobs run " "$WORK/h.out" || fail "jobs run --tasks --help"
# the gcloud names show the same help
"$J" jobs execute --help | contains "^usage: jobrelay jobs run " || fail "jobs execute --help"
"$J" executions describe --help | contains "^usage: jobrelay executions get " || fail "executions describe --help"
for flag in --update-env-vars --task-timeout --async --tasks --args --region --project --format; do
	"$J" jobs execute -h | contains -- "$flag " || fail "jobs execute -h does not list $flag"
done
"$J" executions list -h | contains -- "--job " || fail "executions list -h does not list --job"
# no command, or a group without its command: usage on stderr, exit 2
run_rc 2 "$WORK/u.out" "$WORK/u.err" "$J"
grep -q "^usage: jobrelay " "$WORK/u.err" || fail "usage on stderr without a command"
run_rc 2 "$WORK/u.out" "$WORK/u.err" "$J" executions
grep -q "^usage: jobrelay executions COMMAND" "$WORK/u.err" || fail "the group's usage on stderr"

# ---- --version and version
run_rc 0 "$WORK/v.out" "$WORK/v.err" "$J" --version
grep -q '^jobrelay [0-9][0-9.]* (commit ' "$WORK/v.out" || fail "--version: $(cat "$WORK/v.out")"
"$J" version >"$WORK/v2.out"
cmp -s "$WORK/v.out" "$WORK/v2.out" || fail "--version differs from version"

# ---- unknown flags and missing values name the flag, exit 2
for c in "${CMDS[@]}" "${GROUPS_[@]}"; do
	read -ra words <<<"$c"
	run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" "${words[@]}" --no-such-flag
	grep -q -- "unknown flag '--no-such-flag'" "$WORK/e.err" || fail "$c: unknown flag message: $(cat "$WORK/e.err")"
	run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" "${words[@]}" --no-such=1
	grep -q -- "'--no-such'" "$WORK/e.err" || fail "$c: --no-such=1 message: $(cat "$WORK/e.err")"
done
run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" --project p1 jobs list
grep -q -- "unknown flag '--project'" "$WORK/e.err" || fail "a command flag before the command: $(cat "$WORK/e.err")"
run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" check-config --config
grep -q -- "--config needs a value" "$WORK/e.err" || fail "missing --config value: $(cat "$WORK/e.err")"
run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" jobs list --region r --project
grep -q -- "--project needs a value" "$WORK/e.err" || fail "missing --project value: $(cat "$WORK/e.err")"
run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" replay --log-level
grep -q -- "--log-level needs a value" "$WORK/e.err" || fail "missing --log-level value: $(cat "$WORK/e.err")"
run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" check-config --log-level=loud
grep -q -- "--log-level must be" "$WORK/e.err" || fail "bad --log-level after the command: $(cat "$WORK/e.err")"
run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" jobs run x --wait=yes
grep -q -- "--wait takes no value" "$WORK/e.err" || fail "a value for a switch: $(cat "$WORK/e.err")"
run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" frobnicate
grep -q "unknown command 'frobnicate'" "$WORK/e.err" || fail "unknown command: $(cat "$WORK/e.err")"
run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" check-config extra
grep -q "unexpected argument 'extra'" "$WORK/e.err" || fail "an argument too many: $(cat "$WORK/e.err")"
mkdir -p "$WORK/empty"
(cd "$WORK/empty" && run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" jobs run myjob typo --project p --region r)
grep -q "unexpected argument 'typo' (the container's args go after --)" "$WORK/e.err" ||
	fail "a word after JOB but before --: $(cat "$WORK/e.err")"
run_rc 2 "$WORK/e.out" "$WORK/e.err" "$J" check-config --dry-run
grep -q -- "--dry-run is not supported by check-config" "$WORK/e.err" || fail "--dry-run where it does not apply"

# ---- the config: --config before and after the command, both forms
cat >"$WORK/cli.yaml" <<'YAML'
project: p1
region: europe-west1
routes:
  - { name: cli-known-route, job: cli-job }
YAML
C="$WORK/cli.yaml"
run_rc 2 "$WORK/c.out" "$WORK/c.err" "$J" check-config # the broken ./jobrelay.yaml
for line in "--config $C check-config" "check-config --config $C" "--config=$C check-config" \
	"check-config --config=$C" "check-config --log-level=debug --config $C" "check-config --config $C --log-format=json"; do
	read -ra args <<<"$line"
	run_rc 0 "$WORK/c.out" "$WORK/c.err" "$J" "${args[@]}"
	grep -q "^route cli-known-route$" "$WORK/c.out" || fail "jobrelay $line did not read $C: $(head -3 "$WORK/c.out")"
done
"$J" check-config --format json --config "$C" >"$WORK/c.json"
assert_eq "$(jq -r '.routes[0].name + " " + .routes[0].job + " " + .routes[0].policies.network.action' "$WORK/c.json")" \
	"cli-known-route projects/p1/locations/europe-west1/jobs/cli-job retry" "check-config --format json"
assert_eq "$(jq -r '.circuit_breaker.window > 0 and (.read_retry.max_attempts > 0)' "$WORK/c.json")" true \
	"check-config --format json: shared settings"
run_rc 2 "$WORK/c.out" "$WORK/c.err" "$J" check-config --format yaml --config "$C"
grep -q -- "--format must be text or json" "$WORK/c.err" || fail "check-config --format yaml"

# replay: --config after the command, before and after the paths; - (stdin) and --
printf '{"specversion":"1.0","id":"e1","source":"/s","type":"t.x"}\n' >"$WORK/ev.json"
for line in "replay --config $C --dry-run $WORK/ev.json" "replay $WORK/ev.json --dry-run --config=$C" \
	"--dry-run replay $WORK/ev.json --config $C" "replay --dry-run $WORK/ev.json --log-level debug --config $C"; do
	read -ra args <<<"$line"
	run_rc 0 "$WORK/r.out" "$WORK/r.err" "$J" "${args[@]}"
	assert_eq "$(jq -r .route "$WORK/r.out")" cli-known-route "jobrelay $line"
done
run_rc 0 "$WORK/r.out" "$WORK/r.err" "$J" replay --dry-run --config "$C" - <"$WORK/ev.json"
assert_eq "$(jq -r .route "$WORK/r.out")" cli-known-route "replay - (stdin)"
run_rc 0 "$WORK/r.out" "$WORK/r.err" "$J" replay --dry-run --config "$C" -- - <"$WORK/ev.json"
assert_eq "$(jq -r .route "$WORK/r.out")" cli-known-route "replay -- - (stdin)"
cp "$WORK/ev.json" "$WORK/cwd/--odd.json"
run_rc 0 "$WORK/r.out" "$WORK/r.err" "$J" replay --dry-run --config "$C" -- --odd.json
assert_eq "$(jq -r .route "$WORK/r.out")" cli-known-route "replay -- --odd.json: a path that looks like a flag"
run_rc 2 "$WORK/r.out" "$WORK/r.err" "$J" replay --dry-run --config "$C"
grep -q "missing PATH" "$WORK/r.err" || fail "replay without a path: $(cat "$WORK/r.err")"
# --log-format after the command takes effect: an invalid event's log line
printf '{"id":"x"}\n' >"$WORK/bad.json"
"$J" replay --dry-run "$WORK/bad.json" --config "$C" --log-format=json 2>"$WORK/l.err" >/dev/null || true
assert_eq "$(grep EVENT-INVALID "$WORK/l.err" | jq -r .msgid)" EVENT-INVALID "--log-format=json after the command"
"$J" replay --dry-run "$WORK/bad.json" --config "$C" --log-format text 2>"$WORK/l.err" >/dev/null || true
grep EVENT-INVALID "$WORK/l.err" | jq -e . >/dev/null 2>&1 && fail "--log-format text after the command: $(cat "$WORK/l.err")"
grep -q EVENT-INVALID "$WORK/l.err" || fail "text log line: $(cat "$WORK/l.err")"

# ---- the bash completion, generated from the same table
BASH_COMP="${JR_BUILD_DIR:?}/completion/jobrelay"
[ -f "$BASH_COMP" ] || fail "$BASH_COMP was not generated"
"$J" completion bash | cmp -s - "$BASH_COMP" || fail "$BASH_COMP is stale"
# complete WORDS...: COMPREPLY for the line WORDS (the last word is the one being completed)
complete_line() {
	(
		# shellcheck disable=SC1090
		. "$BASH_COMP"
		COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMPREPLY=()
		_jobrelay
		printf '%s\n' "${COMPREPLY[@]}"
	)
}
# bash splits --flag=value at '=' (COMP_WORDBREAKS): the words are --flag, = and value
complete_line jobrelay --config = x.yaml re >"$WORK/comp.txt"
assert_eq "$(sort "$WORK/comp.txt" | paste -sd' ')" "redrive replay" "completion after --config=FILE"
complete_line jobrelay replay --format = >"$WORK/comp.txt"
grep -qx json "$WORK/comp.txt" || fail "completion of --format=: $(paste -sd' ' "$WORK/comp.txt")"
complete_line jobrelay replay --format = ba >"$WORK/comp.txt"
assert_eq "$(paste -sd' ' "$WORK/comp.txt")" "batch" "completion of --format=ba"
complete_line jobrelay "" >"$WORK/comp.txt"
for m in replay redrive serve pull check-config jobs executions version help; do
	grep -qx "$m" "$WORK/comp.txt" || fail "completion of commands lacks $m: $(paste -sd' ' "$WORK/comp.txt")"
done
complete_line jobrelay --config x.yaml jobs "" >"$WORK/comp.txt"
assert_eq "$(sort "$WORK/comp.txt" | paste -sd' ')" "execute list run" "completion of jobs' commands"
complete_line jobrelay jobs execute ok --u >"$WORK/comp.txt"
assert_eq "$(paste -sd' ' "$WORK/comp.txt")" "--update-env-vars" "completion of a jobs execute flag"
complete_line jobrelay replay -- >"$WORK/comp.txt"
for f in --route --no-retry --format --config --log-level --dry-run; do
	grep -qx -- "$f" "$WORK/comp.txt" || fail "completion of replay's flags lacks $f"
done
complete_line jobrelay executions list --format "" >"$WORK/comp.txt"
assert_eq "$(sort "$WORK/comp.txt" | paste -sd' ')" "json ndjson table yaml" "completion of --format's values"
complete_line jobrelay --log-level "" >"$WORK/comp.txt"
assert_eq "$(sort "$WORK/comp.txt" | paste -sd' ')" "debug error info warning" "completion of --log-level's values"

ZSH_COMP="$JR_BUILD_DIR/completion/_jobrelay"
[ -f "$ZSH_COMP" ] || fail "$ZSH_COMP was not generated"
head -1 "$ZSH_COMP" | contains -x '#compdef jobrelay' || fail "zsh completion header"
for m in "${MIN[@]}"; do
	read -ra words <<<"$m"
	grep -qF "'${words[-1]}:" "$ZSH_COMP" || fail "the zsh completion lacks $m"
done
if command -v zsh >/dev/null; then
	zsh -n "$ZSH_COMP" || fail "the zsh completion does not parse"
fi

# ---- the man page
MAN="$JR_BUILD_DIR/man/jobrelay.1"
[ -f "$MAN" ] || fail "$MAN was not generated"
"$J" help --man | cmp -s - "$MAN" || fail "$MAN is stale"
if command -v groff >/dev/null; then
	groff -man -Tutf8 -ww -z "$MAN" 2>"$WORK/groff.err" || fail "groff failed on the man page"
	[ ! -s "$WORK/groff.err" ] || fail "groff warns: $(head -5 "$WORK/groff.err")"
	groff -man -Tutf8 "$MAN" 2>/dev/null | sed 's/.\x08//g' >"$WORK/man.txt"
else
	cp "$MAN" "$WORK/man.txt"
fi
for m in "${CMDS[@]}"; do
	grep -qF "jobrelay $m" "$WORK/man.txt" || fail "the man page does not describe '$m'"
done
grep -qF -- "--update-env-vars" "$WORK/man.txt" || fail "the man page lacks jobs run's flags"
echo "test_cli: ok"
