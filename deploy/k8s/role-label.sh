#!/bin/sh
# role-label.sh - baton's callback in Kubernetes: keeps the pod's `role`
# label equal to what its Postgres is, so that the Service baton-primary
# (selector role=primary) routes to the primary and baton-replicas
# (role=replica) to the replicas.
#
# baton runs it as `role-label.sh ACTION ROLE SCOPE` (on_start,
# on_role_change, on_stop; see agent/callbacks.c) with the agent's
# environment. It sends one JSON merge patch of the pod's labels to the API
# server with the pod's service account (which needs "patch" on pods,
# rbac.yaml):
#   on_start / on_role_change, ROLE primary -> role=primary
#                              ROLE replica -> role=replica
#                              anything else -> label removed
#   on_stop                                 -> label removed (nothing runs)
#   other actions                           -> nothing
# Runs are serialised with a lock, so the patches land in the order baton
# started them (on_stop then on_start during a demotion, for instance).
# A refused request (403, 404, 422...) fails at once; an unreachable API
# server or a 5xx/429 answer is retried, 3 attempts in all, within baton's
# callback timeout (30 s by default).
#
# Environment:
#   POD_NAME                   this pod (downward API), required
#   BATON_K8S_SA_DIR           service account files token, ca.crt, namespace
#                              (/var/run/secrets/kubernetes.io/serviceaccount)
#   BATON_K8S_API_URL          the API server (https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)
#   BATON_K8S_NAMESPACE        the pod's namespace (the service account's)
#   BATON_K8S_ATTEMPTS (3)     BATON_K8S_RETRY_DELAY (2)   seconds between attempts
set -eu

prog="role-label"

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 1
}

if [ $# -ne 3 ]; then
	printf 'usage: %s ACTION ROLE SCOPE (baton runs it as a callback)\n' "$0" >&2
	exit 2
fi
action=$1 role=$2 scope=$3

case $action in
on_start | on_role_change)
	case $role in
	primary | replica) label="\"$role\"" ;;
	*) label=null ;;
	esac
	;;
on_stop) label=null ;;
*)
	echo "$action $role: nothing to do for this action"
	exit 0
	;;
esac
if [ "$label" = null ]; then what="remove its role label"; else what="label it role=$role"; fi

sa=${BATON_K8S_SA_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}
pod=${POD_NAME:-}
[ -n "$pod" ] || die "POD_NAME is not set (the downward API's metadata.name): cannot $what"
case $pod in
*[!a-z0-9.-]*) die "POD_NAME '$pod' is not a pod name: cannot $what" ;;
esac
if [ -n "${BATON_K8S_NAMESPACE:-}" ]; then
	ns=$BATON_K8S_NAMESPACE
else
	[ -r "$sa/namespace" ] || die "cannot read $sa/namespace (is a service account token mounted?): cannot $what"
	ns=$(cat "$sa/namespace")
fi
case $ns in
'' | *[!a-z0-9-]*) die "namespace '$ns' is not a Kubernetes namespace: cannot $what" ;;
esac
[ -r "$sa/token" ] || die "cannot read $sa/token (automountServiceAccountToken off?): cannot $what"
[ -r "$sa/ca.crt" ] || die "cannot read $sa/ca.crt: cannot $what"
if [ -n "${BATON_K8S_API_URL:-}" ]; then
	api=${BATON_K8S_API_URL%/}
elif [ -n "${KUBERNETES_SERVICE_HOST:-}" ]; then
	host=$KUBERNETES_SERVICE_HOST
	case $host in *:*) host="[$host]" ;; esac
	api="https://$host:${KUBERNETES_SERVICE_PORT:-443}"
else
	die "KUBERNETES_SERVICE_HOST is not set (not in a pod?) and BATON_K8S_API_URL neither: cannot $what"
fi
attempts=${BATON_K8S_ATTEMPTS:-3}
delay=${BATON_K8S_RETRY_DELAY:-2}
case $attempts$delay in *[!0-9]*) die "BATON_K8S_ATTEMPTS and BATON_K8S_RETRY_DELAY must be whole numbers" ;; esac

url="$api/api/v1/namespaces/$ns/pods/$pod"
body="{\"metadata\":{\"labels\":{\"role\":$label}}}"
answer=$(mktemp "${TMPDIR:-/tmp}/role-label.XXXXXX")
trap 'rm -f "$answer" "$answer.err"' EXIT

# One run at a time: baton may start on_stop, on_start and on_role_change
# within a second of each other, and the last one started must win.
lock=${TMPDIR:-/tmp}/baton-role-label.lock
exec 9>>"$lock"
if command -v flock >/dev/null 2>&1; then
	flock -w 10 9 || die "another run held $lock for 10 s: cannot $what"
fi

n=0
while :; do
	n=$((n + 1))
	# The token is read at each attempt (projected tokens are rotated) and
	# goes to curl on stdin, never on its command line (visible in ps).
	code=$(printf 'Authorization: Bearer %s\n' "$(cat "$sa/token")" |
		curl -sS --connect-timeout 3 --max-time 5 --cacert "$sa/ca.crt" -H @- \
			-H 'Content-Type: application/merge-patch+json' -H 'Accept: application/json' \
			-X PATCH --data-binary "$body" -o "$answer" -w '%{http_code}' "$url" 2>"$answer.err") || true
	case $code in
	2??)
		rm -f "$answer.err"
		echo "pod $ns/$pod: $what (after $action $role, cluster $scope)"
		exit 0
		;;
	000 | 429 | 5??) ;;
	*) break ;;
	esac
	[ "$n" -lt "$attempts" ] || break
	echo "pod $ns/$pod: attempt $n to $what failed (HTTP ${code:-000}$(head -n1 "$answer.err" 2>/dev/null | head -c 200 | sed 's/^./: &/')), retrying in ${delay}s"
	sleep "$delay"
done

# The API server explains a refusal in a Status object's "message".
msg=$(sed -n 's/.*"message" *: *"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$answer" 2>/dev/null | sed 's/\\"/"/g' | head -c 300)
[ -n "$msg" ] || msg=$(head -n1 "$answer.err" 2>/dev/null | head -c 300)
rm -f "$answer.err"
case $code in
000 | '') why="the API server at $api did not answer: ${msg:-no details}" ;;
401) why="HTTP 401, the token was refused: $msg" ;;
403) why="HTTP 403, forbidden: $msg; the service account needs \"patch\" on pods (rbac.yaml)" ;;
*) why="HTTP $code: $msg" ;;
esac
die "pod $ns/$pod: cannot $what after $action $role ($n attempt(s)): $why; the primary and replicas Services do not follow this pod until a later role change succeeds"
