#!/bin/sh
# role_change.sh - a baton on_role_change callback that makes clients follow
# the primary, in one of two ways chosen by environment variables (set them
# in the agent's systemd unit or pod spec; the callback inherits them):
#
#   BATON_VIP=10.0.0.100/24 BATON_VIP_DEV=eth0
#       A virtual IP: handed to vip.sh beside this script, which adds it on
#       the primary and removes it everywhere else, and on on_stop. Set this
#       script (or vip.sh itself) for on_start, on_role_change and on_stop;
#       vip.sh's header says what the systemd unit needs for it.
#
#   KUBERNETES_SERVICE_HOST (set by Kubernetes) and BATON_POD_NAME
#       A pod label: role=primary or role=replica on this pod, through the
#       API server with the pod's service account token, so that a Service
#       selecting role=primary routes to the primary. The service account
#       needs "patch" on pods.
#
# With neither configured it only says what it would do (dry run).
#
# Usage (baton calls it): role_change.sh on_role_change ROLE SCOPE
# ROLE is "primary" on the member that was promoted; anything else
# ("replica", "demoted", ...) means it is not the primary.
set -eu

if [ $# -ne 3 ]; then
	echo "usage: $0 ACTION ROLE SCOPE" >&2
	exit 2
fi
action=$1 role=$2 scope=$3
if [ -n "${BATON_VIP:-}" ]; then
	vip_sh=$(dirname "$0")/vip.sh
	[ -x "$vip_sh" ] || { echo "$scope: BATON_VIP is set but $vip_sh is missing" >&2; exit 1; }
	exec "$vip_sh" "$@"
fi
case $action in
on_role_change | on_start) ;;
*)
	echo "$action: nothing to do"
	exit 0
	;;
esac
if [ "$role" = primary ]; then label=primary; else label=replica; fi

if [ -n "${KUBERNETES_SERVICE_HOST:-}" ] && [ -n "${BATON_POD_NAME:-}" ]; then
	sa=/var/run/secrets/kubernetes.io/serviceaccount
	ns=$(cat "$sa/namespace")
	token=$(cat "$sa/token")
	url="https://$KUBERNETES_SERVICE_HOST:${KUBERNETES_SERVICE_PORT:-443}/api/v1/namespaces/$ns/pods/$BATON_POD_NAME"
	# The token goes in a header read from stdin, never on the command line (ps).
	printf 'Authorization: Bearer %s\n' "$token" |
		curl -sS --fail --max-time 10 --cacert "$sa/ca.crt" -H @- \
			-H 'Content-Type: application/merge-patch+json' -X PATCH \
			-d "{\"metadata\":{\"labels\":{\"role\":\"$label\",\"cluster-name\":\"$scope\"}}}" \
			-o /dev/null "$url"
	echo "$scope: pod $ns/$BATON_POD_NAME labelled role=$label"
else
	echo "dry run (set BATON_VIP and BATON_VIP_DEV, or BATON_POD_NAME in Kubernetes):"
	echo "  $scope: this member is now $role; would mark it role=$label"
fi
