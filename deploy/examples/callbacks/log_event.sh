#!/bin/sh
# log_event.sh - a baton callback that appends one line per event to a file:
#
#   2024-05-01T12:00:00+00:00 on_role_change primary main
#
# baton runs callbacks as `SCRIPT ACTION ROLE SCOPE`. Set it for any of
# postgresql.callbacks.{on_start,on_stop,on_role_change,on_reload}. The file
# is $BATON_EVENT_LOG (default /var/log/baton/events.log); tests set it.
set -eu

if [ $# -ne 3 ]; then
	echo "usage: $0 ACTION ROLE SCOPE" >&2
	exit 2
fi
log=${BATON_EVENT_LOG:-/var/log/baton/events.log}
printf '%s %s %s %s\n' "$(date -Iseconds)" "$1" "$2" "$3" >>"$log"
echo "logged $1 $2 $3 to $log"
