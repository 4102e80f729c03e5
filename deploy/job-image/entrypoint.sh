#!/bin/sh
# entrypoint.sh — the standard job image's entrypoint (deploy/job-image/Dockerfile): checks the
# environment every job needs, then runs the job's command (the container's arguments, which
# jobrelay may override per event) in its place, so its exit status is the task's.
#
#   REQUIRED_ENV  more names that must be set and non-empty, separated by spaces
#                 (PROJECT_ID and REGION always are)
#
# Exit codes: the command's; 64 when a required variable is missing or no command is given;
# 127 when the command is not found (from exec).
set -eu

missing=
for name in PROJECT_ID REGION ${REQUIRED_ENV:-}; do
	case "$name" in
	*[!A-Za-z0-9_]* | [0-9]* | '')
		echo "entrypoint: REQUIRED_ENV holds '$name', which is not a variable name" >&2
		exit 64
		;;
	esac
	eval "value=\${$name:-}"
	# shellcheck disable=SC2154 # set by the eval above
	[ -n "$value" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
	echo "entrypoint: required environment variable(s) not set:$missing" >&2
	exit 64
fi
if [ $# -eq 0 ]; then
	echo "entrypoint: no command given (set the job's args, or jobrelay's overrides.args)" >&2
	exit 64
fi
echo "entrypoint: project $PROJECT_ID, region $REGION, task ${CLOUD_RUN_TASK_INDEX:-0}/${CLOUD_RUN_TASK_COUNT:-1}, execution ${CLOUD_RUN_EXECUTION:-none}: running $1" >&2
exec "$@"
