#!/bin/sh
# role_change.sh - a baton on_role_change callback that makes clients follow
# the primary, in one of two ways chosen by environment variables (set them
# in the agent's systemd unit or pod spec; the callback inherits them):
#
#   BATON_VIP=10.0.0.100/24 BATON_VIP_DEV=eth0
#       A virtual IP: added to BATON_VIP_DEV on the new primary, removed
#       everywhere else. Needs CAP_NET_ADMIN (ip addr) and, to update the
#       neighbours' ARP caches at once, arping (iputils) if installed.
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
case $action in
on_role_change | on_start) ;;
*)
	echo "$action: nothing to do"
	exit 0
	;;
esac
if [ "$role" = primary ]; then label=primary; else label=replica; fi

if [ -n "${BATON_VIP:-}" ]; then
	dev=${BATON_VIP_DEV:?BATON_VIP_DEV must name the interface of BATON_VIP}
	if [ "$label" = primary ]; then
		# "File exists" means we already hold it: adding is idempotent.
		ip addr add "$BATON_VIP" dev "$dev" 2>/dev/null ||
			ip addr show dev "$dev" | grep -q "inet ${BATON_VIP%/*}/"
		if command -v arping >/dev/null 2>&1; then
			arping -q -U -c 3 -I "$dev" "${BATON_VIP%/*}" || true
		fi
		echo "$scope: $BATON_VIP added on $dev"
	else
		ip addr del "$BATON_VIP" dev "$dev" 2>/dev/null || true
		echo "$scope: $BATON_VIP removed from $dev"
	fi
elif [ -n "${KUBERNETES_SERVICE_HOST:-}" ] && [ -n "${BATON_POD_NAME:-}" ]; then
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
