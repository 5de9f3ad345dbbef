#!/bin/sh
# entrypoint.sh - renders baton's configuration from the pod's environment,
# then becomes baton (installed in the image as /usr/local/bin/baton-entrypoint).
#
# Kubernetes passes everything a member needs as environment variables:
# its name and address from the downward API, the cluster's name and etcd
# endpoints from a ConfigMap, passwords from a Secret (statefulset.yaml).
# This script checks them, with an error naming the variable and what is
# wrong, writes one libconfig file (mode 0600: it holds passwords) and
# execs `baton -c FILE`, so baton is the process the kubelet signals (under
# tini, which reaps orphans). What is not checked here - the timing rule,
# the Postgres binaries - baton checks when it loads the file.
#
# Usage: baton-entrypoint                 render, then exec baton
#        baton-entrypoint --render-only   render, print the file's path, exit
# Exit status 2: a variable is missing or wrong (nothing is written).
#
# Required:
#   POD_NAME        the member name (downward API metadata.name)
#   POD_IP          the address other members and clients use (status.podIP)
#   BATON_SCOPE     the cluster name, the same on every member
#   BATON_ETCD_HOSTS  etcd endpoints, "host:port" separated by commas or spaces
#   BATON_SUPERUSER_PASSWORD, BATON_REPLICATION_PASSWORD
#   PGDATA          the data directory, absolute, on the persistent volume
#   BATON_API_USERNAME BATON_API_PASSWORD   credentials for the REST API's
#                   write endpoints (from the Secret), and
#   BATON_API_CERTFILE BATON_API_KEYFILE    its TLS certificate and key (from
#                   the TLS Secret): the API serves HTTPS; basic auth over
#                   plain HTTP never authorises a write.
#   Without them the entrypoint refuses to start, unless
#   BATON_INSECURE_OPEN_API=true: then the API is plain HTTP and its writes
#   are open to whoever reaches the port (restapi.allow_unauthenticated_writes).
# Optional (default):
#   BATON_NAMESPACE (/baton)  BATON_PG_PORT (5432)  BATON_API_PORT (8008)
#   BATON_LISTEN_ADDRESS (0.0.0.0, or :: when POD_IP is IPv6)
#   BATON_ETCD_PROTOCOL (http)  BATON_ETCD_CACERT BATON_ETCD_CERT BATON_ETCD_KEY
#   BATON_ETCD_USERNAME BATON_ETCD_PASSWORD
#   BATON_API_CAFILE    the CA that signed the members' API certificates:
#                       peers (and batonctl in the pod) verify them against it
#                       (unset: the system CAs)
#   BATON_API_CONNECT_HOST (POD_IP)  the host name other members use in this
#                       member's api_url (https://HOST:PORT); it must be in
#                       the certificate, e.g. $(POD_NAME).baton.$(POD_NAMESPACE).svc
#   BATON_SUPERUSER_USERNAME (postgres)  BATON_REPLICATION_USERNAME (replicator)
#   BATON_ALLOWED_CIDRS ("0.0.0.0/0 ::/0")  networks pg_hba.conf admits (scram)
#   BATON_PG_PARAMETERS   "name=value ..." Postgres parameters of this member
#   BATON_TTL (10) BATON_LOOP_WAIT (1) BATON_RETRY_TIMEOUT (3)   bootstrap only
#   BATON_MAXIMUM_LAG_ON_FAILOVER (1048576)  BATON_NOFAILOVER (false)
#   BATON_LOG_LEVEL (info)  BATON_PG_BIN_DIR (/usr/lib/postgresql/15/bin)
#   BATON_SOCKET_DIR (/tmp)  BATON_CONFIG_FILE (/etc/baton/baton.conf)
#   BATON_ROLE_CHANGE_SCRIPT (/usr/local/lib/baton/role-label.sh; empty: none)
#   BATON_BIN (baton)
set -euf

prog=baton-entrypoint

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 2
}

# bad VAR PROBLEM: a variable's value is wrong; secrets are never echoed.
bad() {
	eval "val=\${$1-}"
	case $1 in
	*PASSWORD*) die "$1: $2; baton is not started" ;;
	*) die "$1: $2 (got '$val'); baton is not started" ;;
	esac
}

# need VAR [WHERE]: VAR must be set and not empty.
need() {
	eval "val=\${$1-}"
	[ -n "$val" ] || die "$1 is not set${2:+ ($2)}; baton is not started"
}

# no_ctl VAR: refuses control characters (newlines would break the file).
no_ctl() {
	eval "val=\${$1-}"
	case $val in
	*[[:cntrl:]]*) bad "$1" "must not contain control characters such as newlines" ;;
	esac
}

# q VALUE: VALUE as a libconfig string, quotes included.
q() {
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

# is_port VALUE
is_port() {
	case $1 in
	'' | *[!0-9]* | 0*) return 1 ;;
	esac
	[ ${#1} -le 5 ] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

# check_hostport VAR VALUE: "host:port", an IPv6 host in brackets.
check_hostport() {
	hp=$2
	case $hp in
	*://*) bad "$1" "expected host:port without a scheme (set BATON_ETCD_PROTOCOL=https for TLS)" ;;
	\[*\]:*) host=${hp%]:*}; host=${host#[}; port=${hp##*]:} ;;
	*:*:*) bad "$1" "'$hp' is an IPv6 address without brackets: write [ADDRESS]:PORT" ;;
	*:*) host=${hp%:*}; port=${hp##*:} ;;
	*) bad "$1" "'$hp' has no port: expected host:port" ;;
	esac
	[ -n "$host" ] || bad "$1" "'$hp' has an empty host"
	is_port "$port" || bad "$1" "'$hp': the port must be a number from 1 to 65535"
}

# check_port VAR
check_port() {
	eval "val=\${$1-}"
	is_port "$val" || bad "$1" "must be a port number from 1 to 65535"
}

# check_seconds VAR: a positive number of seconds (integer or decimal).
check_seconds() {
	eval "val=\${$1-}"
	case $val in
	'' | *[!0-9.]* | *.*.* | .* | *.) bad "$1" "must be a positive number of seconds such as 10 or 2.5" ;;
	esac
}

# check_abs VAR
check_abs() {
	eval "val=\${$1-}"
	case $val in
	/*) ;;
	*) bad "$1" "must be an absolute path" ;;
	esac
	no_ctl "$1"
}

# check_file VAR: an optional file that must be readable when set.
check_file() {
	eval "val=\${$1-}"
	[ -n "$val" ] || return 0
	check_abs "$1"
	if [ ! -f "$val" ] || [ ! -r "$val" ]; then
		bad "$1" "not a readable file (is the Secret mounted there?)"
	fi
}

# pair A B: both set or neither.
pair() {
	eval "a=\${$1-} b=\${$2-}"
	if [ -n "$a" ] && [ -z "$b" ]; then die "$1 is set but $2 is not: set both or neither; baton is not started"; fi
	if [ -z "$a" ] && [ -n "$b" ]; then die "$2 is set but $1 is not: set both or neither; baton is not started"; fi
}

render_only=0
case ${1-} in
'') ;;
--render-only) render_only=1 ;;
*) die "unknown argument '$1' (usage: $prog [--render-only])" ;;
esac

# ---- the member
need POD_NAME "the downward API's metadata.name, see statefulset.yaml"
case $POD_NAME in
*[!A-Za-z0-9_.-]*) bad POD_NAME "a member name may only contain [A-Za-z0-9_.-]" ;;
esac
[ ${#POD_NAME} -le 63 ] || bad POD_NAME "a member name has at most 63 characters"
need POD_IP "the downward API's status.podIP"
case $POD_IP in
*[!0-9A-Fa-f.:]*) bad POD_IP "not an IPv4 or IPv6 address" ;;
*:*) ip_host="[$POD_IP]" any="[::]" ;;
*.*.*.*) ip_host=$POD_IP any=0.0.0.0 ;;
*) bad POD_IP "not an IPv4 or IPv6 address" ;;
esac
need BATON_SCOPE "the cluster name, from the ConfigMap"
case $BATON_SCOPE in
*[!A-Za-z0-9_.-]*) bad BATON_SCOPE "a cluster name may only contain [A-Za-z0-9_.-]" ;;
esac
[ ${#BATON_SCOPE} -le 63 ] || bad BATON_SCOPE "a cluster name has at most 63 characters"
namespace=${BATON_NAMESPACE:-/baton}
case $namespace in
/*[!/]) ;;
*) bad BATON_NAMESPACE "must start with '/' and not end with '/'" ;;
esac
case $namespace in
*[[:space:]]*) bad BATON_NAMESPACE "must not contain white space" ;;
esac

pg_port=${BATON_PG_PORT:-5432}
api_port=${BATON_API_PORT:-8008}
BATON_PG_PORT=$pg_port BATON_API_PORT=$api_port
check_port BATON_PG_PORT
check_port BATON_API_PORT
[ "$pg_port" != "$api_port" ] || die "BATON_PG_PORT and BATON_API_PORT are both $pg_port; baton is not started"
listen=${BATON_LISTEN_ADDRESS:-$any}
case $listen in
'' | *[!0-9A-Za-z.:\[\]-]*) bad BATON_LISTEN_ADDRESS "expected an address or host name such as 0.0.0.0 or ::" ;;
\[*\]) ;;
*:*) listen="[$listen]" ;;
esac

# ---- etcd
need BATON_ETCD_HOSTS "etcd endpoints as host:port, from the ConfigMap"
etcd_hosts=
for h in $(printf '%s' "$BATON_ETCD_HOSTS" | tr ',' ' '); do
	check_hostport BATON_ETCD_HOSTS "$h"
	etcd_hosts="$etcd_hosts${etcd_hosts:+, }$(q "$h")"
done
[ -n "$etcd_hosts" ] || bad BATON_ETCD_HOSTS "lists no endpoint"
etcd_protocol=${BATON_ETCD_PROTOCOL:-http}
case $etcd_protocol in
http | https) ;;
*) bad BATON_ETCD_PROTOCOL "must be http or https" ;;
esac
check_file BATON_ETCD_CACERT
check_file BATON_ETCD_CERT
check_file BATON_ETCD_KEY
pair BATON_ETCD_CERT BATON_ETCD_KEY
pair BATON_ETCD_USERNAME BATON_ETCD_PASSWORD
no_ctl BATON_ETCD_USERNAME
no_ctl BATON_ETCD_PASSWORD

# ---- passwords and users
need BATON_SUPERUSER_PASSWORD "from the Secret, see secret.example.yaml"
need BATON_REPLICATION_PASSWORD "from the Secret, see secret.example.yaml"
for v in BATON_SUPERUSER_PASSWORD BATON_REPLICATION_PASSWORD BATON_SUPERUSER_USERNAME \
	BATON_REPLICATION_USERNAME BATON_API_USERNAME BATON_API_PASSWORD; do
	no_ctl "$v"
done
su_user=${BATON_SUPERUSER_USERNAME:-postgres}
repl_user=${BATON_REPLICATION_USERNAME:-replicator}
case $repl_user in
*[!A-Za-z0-9_]*) bad BATON_REPLICATION_USERNAME "use [A-Za-z0-9_] only (it goes into pg_hba.conf)" ;;
esac
insecure_api=${BATON_INSECURE_OPEN_API:-false}
case $insecure_api in
true | false) ;;
*) bad BATON_INSECURE_OPEN_API "must be true or false" ;;
esac
if [ "$insecure_api" = false ]; then
	why="the REST API's writes need credentials over TLS, from the Secrets (see secret.example.yaml); BATON_INSECURE_OPEN_API=true runs without them"
	need BATON_API_USERNAME "$why"
	need BATON_API_PASSWORD "$why"
	need BATON_API_CERTFILE "$why"
	need BATON_API_KEYFILE "$why"
fi
pair BATON_API_USERNAME BATON_API_PASSWORD
check_file BATON_API_CERTFILE
check_file BATON_API_KEYFILE
pair BATON_API_CERTFILE BATON_API_KEYFILE
check_file BATON_API_CAFILE
api_host=${BATON_API_CONNECT_HOST:-$ip_host}
case $api_host in
\[*\]) ;;
*[!A-Za-z0-9.-]*) bad BATON_API_CONNECT_HOST "expected a host name or address covered by the API certificate" ;;
esac

# ---- Postgres
need PGDATA "the data directory on the persistent volume"
check_abs PGDATA
pgdata_parent=$(dirname "$PGDATA")
if [ ! -d "$PGDATA" ]; then
	[ -d "$pgdata_parent" ] || bad PGDATA "its parent $pgdata_parent does not exist (is the volume mounted?)"
	[ -w "$pgdata_parent" ] || bad PGDATA "its parent $pgdata_parent is not writable by uid $(id -u) (set the pod's fsGroup)"
fi
bin_dir=${BATON_PG_BIN_DIR:-/usr/lib/postgresql/15/bin}
BATON_PG_BIN_DIR=$bin_dir
check_abs BATON_PG_BIN_DIR
socket_dir=${BATON_SOCKET_DIR:-/tmp}
BATON_SOCKET_DIR=$socket_dir
check_abs BATON_SOCKET_DIR

params=
for p in ${BATON_PG_PARAMETERS:-}; do
	name=${p%%=*}
	value=${p#*=}
	case $p in
	*=*) ;;
	*) bad BATON_PG_PARAMETERS "'$p' is not name=value" ;;
	esac
	case $name in
	'' | [!a-z_]* | *[!a-z0-9_]*) bad BATON_PG_PARAMETERS "'$name' is not a Postgres parameter name ([a-z_][a-z0-9_]*)" ;;
	esac
	case $value in
	*[[:cntrl:]\"\\]*) bad BATON_PG_PARAMETERS "the value of $name must not contain quotes, backslashes or control characters" ;;
	esac
	params="$params    $name = $(q "$value");
"
done

hba=
for cidr in ${BATON_ALLOWED_CIDRS-0.0.0.0/0 ::/0}; do
	case $cidr in
	*[!0-9A-Fa-f.:/]* | */*/* | [!0-9A-Fa-f:]* | *[!0-9]) bad BATON_ALLOWED_CIDRS "'$cidr' is not an address/prefix such as 10.0.0.0/8" ;;
	*/*) ;;
	*) bad BATON_ALLOWED_CIDRS "'$cidr' has no prefix length, such as 10.0.0.0/8" ;;
	esac
	hba="$hba,
    $(q "host replication $repl_user $cidr scram-sha-256"),
    $(q "host all all $cidr scram-sha-256")"
done

# ---- timing and the rest
ttl=${BATON_TTL:-10} loop_wait=${BATON_LOOP_WAIT:-1} retry_timeout=${BATON_RETRY_TIMEOUT:-3}
BATON_TTL=$ttl BATON_LOOP_WAIT=$loop_wait BATON_RETRY_TIMEOUT=$retry_timeout
check_seconds BATON_TTL
check_seconds BATON_LOOP_WAIT
check_seconds BATON_RETRY_TIMEOUT
max_lag=${BATON_MAXIMUM_LAG_ON_FAILOVER:-1048576}
case $max_lag in
'' | *[!0-9]*) bad BATON_MAXIMUM_LAG_ON_FAILOVER "must be a number of bytes" ;;
esac
nofailover=${BATON_NOFAILOVER:-false}
case $nofailover in
true | false) ;;
*) bad BATON_NOFAILOVER "must be true or false" ;;
esac
log_level=${BATON_LOG_LEVEL:-info}
case $log_level in
debug | info | warning | error) ;;
*) bad BATON_LOG_LEVEL "must be debug, info, warning or error" ;;
esac
callback=${BATON_ROLE_CHANGE_SCRIPT-/usr/local/lib/baton/role-label.sh}
if [ -n "$callback" ]; then
	check_abs BATON_ROLE_CHANGE_SCRIPT
	if [ ! -f "$callback" ] || [ ! -x "$callback" ]; then
		bad BATON_ROLE_CHANGE_SCRIPT "not an executable file"
	fi
fi
config=${BATON_CONFIG_FILE:-/etc/baton/baton.conf}
BATON_CONFIG_FILE=$config
check_abs BATON_CONFIG_FILE
config_dir=$(dirname "$config")
if [ ! -d "$config_dir" ] || [ ! -w "$config_dir" ]; then
	bad BATON_CONFIG_FILE "the directory $config_dir does not exist or is not writable by uid $(id -u)"
fi

# ---- render: to a temporary file first, so a failure leaves no half file
umask 077
tmp=$(mktemp "$config.XXXXXX") || die "cannot create a file in $config_dir; baton is not started"
trap 'rm -f "$tmp"' EXIT
{
	printf '# Rendered by %s at %s from the environment of pod %s.\n' "$prog" \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$POD_NAME"
	printf '# Edits are lost at the next container start: change the StatefulSet.\n\n'
	printf 'scope = %s;\nname = %s;\nnamespace = %s;\n\n' "$(q "$BATON_SCOPE")" "$(q "$POD_NAME")" "$(q "$namespace")"
	printf 'etcd = {\n  hosts = [ %s ];\n  protocol = %s;\n' "$etcd_hosts" "$(q "$etcd_protocol")"
	[ -z "${BATON_ETCD_CACERT:-}" ] || printf '  cacert = %s;\n' "$(q "$BATON_ETCD_CACERT")"
	[ -z "${BATON_ETCD_CERT:-}" ] || printf '  cert = %s;\n  key = %s;\n' "$(q "$BATON_ETCD_CERT")" "$(q "$BATON_ETCD_KEY")"
	[ -z "${BATON_ETCD_USERNAME:-}" ] ||
		printf '  username = %s;\n  password = %s;\n' "$(q "$BATON_ETCD_USERNAME")" "$(q "$BATON_ETCD_PASSWORD")"
	printf '};\n\n'
	printf 'restapi = {\n  listen = %s;\n  connect_address = %s;\n' "$(q "$listen:$api_port")" "$(q "$api_host:$api_port")"
	[ -z "${BATON_API_USERNAME:-}" ] ||
		printf '  authentication = { username = %s; password = %s; };\n' "$(q "$BATON_API_USERNAME")" "$(q "$BATON_API_PASSWORD")"
	[ -z "${BATON_API_CERTFILE:-}" ] ||
		printf '  certfile = %s;\n  keyfile = %s;\n' "$(q "$BATON_API_CERTFILE")" "$(q "$BATON_API_KEYFILE")"
	[ -z "${BATON_API_CAFILE:-}" ] || printf '  cafile = %s;\n' "$(q "$BATON_API_CAFILE")"
	[ "$insecure_api" = false ] ||
		printf '  # BATON_INSECURE_OPEN_API=true: anyone who reaches the port may write.\n  allow_unauthenticated_writes = true;\n'
	printf '};\n\n'
	cat <<EOF
bootstrap = {
  dcs = {
    ttl = $ttl;
    loop_wait = $loop_wait;
    retry_timeout = $retry_timeout;
    maximum_lag_on_failover = ${max_lag}L;
    postgresql = {
      parameters = {
        max_connections = 100;
        max_wal_senders = 10;
        max_replication_slots = 10;
        wal_level = "replica";
        hot_standby = true;
        wal_log_hints = true;
        wal_keep_size = "128MB";
      };
    };
  };
};

postgresql = {
  bin_dir = $(q "$bin_dir");
  data_dir = $(q "$PGDATA");
  listen = $(q "$listen:$pg_port");
  connect_address = $(q "$ip_host:$pg_port");
  socket_dir = $(q "$socket_dir");
  authentication = {
    superuser = { username = $(q "$su_user"); password = $(q "$BATON_SUPERUSER_PASSWORD"); };
    replication = { username = $(q "$repl_user"); password = $(q "$BATON_REPLICATION_PASSWORD"); };
  };
  parameters = {
$params  };
  pg_hba = [
    "local all all scram-sha-256",
    "host all all 127.0.0.1/32 scram-sha-256",
    "host all all ::1/128 scram-sha-256"$hba
  ];
EOF
	if [ -n "$callback" ]; then
		printf '  callbacks = {\n    on_start = %s;\n    on_role_change = %s;\n    on_stop = %s;\n  };\n' \
			"$(q "$callback")" "$(q "$callback")" "$(q "$callback")"
	fi
	printf '};\n\ntags = { nofailover = %s; };\n\nlog = { level = %s; };\n' "$nofailover" "$(q "$log_level")"
} >"$tmp" || die "cannot write $tmp; baton is not started"
mv -f "$tmp" "$config" || die "cannot move the rendered file to $config; baton is not started"
trap - EXIT

if [ "$render_only" = 1 ]; then
	echo "$config"
	exit 0
fi
[ "$insecure_api" = false ] ||
	echo "$prog: WARNING: BATON_INSECURE_OPEN_API=true: the REST API's writes are open to whoever reaches port $api_port" >&2
echo "$prog: rendered $config for member $POD_NAME of cluster $BATON_SCOPE (etcd: $BATON_ETCD_HOSTS); starting baton" >&2
exec "${BATON_BIN:-baton}" -c "$config"
