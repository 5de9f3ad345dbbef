# tests/lib/cluster.sh - harness for the integration scenarios (sourced).
#
# A scenario is a bash script that sources this file, calls cluster_init,
# builds a cluster of real processes on loopback (one etcd, N baton agents,
# each starting its own Postgres 15), injects a fault and asserts what the
# design promises. Everything lives in one test dir under /tmp, owned by the
# unprivileged user baton (Postgres and the agents refuse root). Ports are
# picked at random and checked free with `ss`. The EXIT trap kills only the
# processes this script started (agents, etcd, tools, and any postmaster
# whose PID file lies in the test dir and whose cwd is that data dir), checks
# the agent logs for sanitizer reports, dumps the log tails on failure and
# removes the test dir unless KEEP=1.
#
# Environment:
#   BATON_BUILD  build dir holding baton, batonctl, tests/tools/{writer,poller}
#                (default: /var/tmp/baton-ci/build)
#   KEEP=1       keep the test dir
#   TTL LOOP_WAIT RETRY_TIMEOUT MAX_LAG   timing of the configs rendered
#                (defaults 5 / 1 / 2 / 1048576); set them before node_config.
#   PG_EXTRA_PARAMS  more libconfig settings for postgresql.parameters, e.g.
#                'log_min_messages = "debug2";' (benchmarks chasing a slow round).
#   REST_TLS=0   render the nodes' REST APIs without TLS (default 1: every
#                node serves https with a certificate of the test's own CA,
#                made with openssl in $T/rest-tls, and requires the basic-auth
#                credentials REST_USER / REST_PASSWORD for writes).
#   REST_PLAIN_NODES="3 4"   these nodes serve plain http (no certfile) but
#                keep the credentials and the CA: a node that shows basic auth
#                over http being refused. Set before node_config.
#   REST_CLIENT_CERT=1       nodes also present the test's client certificate
#                to peers (restapi.client_certfile/keyfile).
#   PG_TLS=0     render the nodes without Postgres TLS (default 1: each node's
#                Postgres serves a certificate of the same test CA made for it,
#                $T/rest-tls/pgN.pem, SAN IP:127.0.0.1 and DNS:localhost, with
#                postgresql.tls.*; the agents connect to members with
#                sslmode=verify-full and channel_binding=require, and pg_hba
#                takes scram-sha-256 over hostssl only for TCP).
# Every REST helper (rest_call, rest_curl, ctl, haproxy_start) follows these:
# https with the test CA, credentials only over https.
#
# Every wait is bounded; an assertion that fails prints "FAIL: ..." and exits
# the script non-zero (the trap cleans up).

set -u
set -o pipefail

BATON_BUILD=${BATON_BUILD:-/var/tmp/baton-ci/build}
BATON_USER=${BATON_USER:-baton}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
ETCD_BIN=${ETCD_BIN:-/usr/bin/etcd}
KEEP=${KEEP:-0}
SCOPE=${SCOPE:-it}
NAMESPACE=/baton
TTL=${TTL:-5}
LOG_LEVEL=${LOG_LEVEL:-info} # the agents' log level (debug for a closer look)
LOOP_WAIT=${LOOP_WAIT:-1}
RETRY_TIMEOUT=${RETRY_TIMEOUT:-2}
MAX_LAG=${MAX_LAG:-1048576}
SU_PASSWORD=${SU_PASSWORD:-su-secret-$$}
REPL_PASSWORD=${REPL_PASSWORD:-repl-secret-$$}
REST_TLS=${REST_TLS:-1}
REST_PLAIN_NODES=${REST_PLAIN_NODES:-}
REST_CLIENT_CERT=${REST_CLIENT_CERT:-0}
REST_USER=${REST_USER:-baton-admin}
REST_PASSWORD=${REST_PASSWORD:-rest-$$-$RANDOM$RANDOM}
REST_TLS_DIR=        # the REST API's CA and certificates (rest_make_certs)
PG_TLS=${PG_TLS:-1}
BATON_HOME=$(getent passwd "$BATON_USER" 2>/dev/null | cut -d: -f6)
BATON_HOME=${BATON_HOME:-/nonexistent}

T=                   # the test dir
TEST_NAME=
TEST_FAILED=0
N_NODES=0
ETCD_PID=
ETCD_PORT=
ETCD_PEER_PORT=
declare -a AGENT_PID=() PG_PORT=() API_PORT=() AGENT_LOG_N=()
declare -a BG_PIDS=()
declare -A USED_PORTS=()
AGENT_RC=

log() { printf '%s [%s] %s\n' "$(date +%H:%M:%S.%3N)" "$TEST_NAME" "$*"; }
pass() { printf 'PASS: %s\n' "$*"; }
fail() {
	printf 'FAIL: %s\n' "$*"
	TEST_FAILED=1
	exit 1
}
# skip REASON: this machine cannot do what the scenario needs (not a fault
# of baton's): says why and exits 77, which tests/run.sh reports as SKIP.
TEST_SKIPPED=0
skip() {
	printf 'SKIP: %s\n' "$*"
	TEST_SKIPPED=1
	exit 77
}

now_ms() { date +%s%3N; }

# assert_eq EXPECTED ACTUAL MESSAGE
assert_eq() {
	if [ "$1" = "$2" ]; then
		pass "$3 ($2)"
	else
		fail "$3: expected '$1', got '$2'"
	fi
}

# assert_lt A B MESSAGE: integer A < B
assert_lt() {
	if [ "$1" -lt "$2" ]; then
		pass "$3 ($1 < $2)"
	else
		fail "$3: $1 is not < $2"
	fi
}

# poll_until TIMEOUT_S CMD...: runs CMD every 0.1 s until it succeeds;
# returns 1 if it never did within TIMEOUT_S. CMD runs in this shell, so it
# may set variables.
poll_until() {
	local timeout=$1
	shift
	local deadline=$(($(now_ms) + timeout * 1000))
	while :; do
		if "$@"; then
			return 0
		fi
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# wait_for TIMEOUT_S MESSAGE CMD...: poll_until or fail with MESSAGE.
wait_for() {
	local timeout=$1 msg=$2
	shift 2
	local t0
	t0=$(now_ms)
	if poll_until "$timeout" "$@"; then
		log "ok after $(($(now_ms) - t0)) ms: $msg"
		return 0
	fi
	fail "timed out after ${timeout}s waiting for: $msg"
}

# pick_port VAR: a free TCP port on loopback, not handed out before, from
# BATON_PORT_LO to BATON_PORT_LO + BATON_PORT_SPAN - 1 (tests/run.sh gives
# each of its lanes a range of its own; default 20000-31999).
pick_port() {
	local var=$1 p i
	for i in $(seq 1 200); do
		p=$((${BATON_PORT_LO:-20000} + RANDOM % ${BATON_PORT_SPAN:-12000}))
		[ -z "${USED_PORTS[$p]:-}" ] || continue
		if [ -z "$(ss -ltnH "( sport = :$p )" 2>/dev/null)" ]; then
			USED_PORTS[$p]=1
			printf -v "$var" '%s' "$p"
			return 0
		fi
	done
	fail "no free port found"
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
	local pid=$1 st
	[ -n "$pid" ] || return 1
	[ -r "/proc/$pid/stat" ] || return 1
	st=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# HOME is the baton user's own: libpq reads ~/.postgresql/ when it speaks TLS,
# and root's HOME is not readable by baton (a client of a PG_TLS node failed).
# In the caller's cwd when baton may enter it, else from the test dir (or
# /tmp): a CI clone under /root is not readable by baton, and psql
# complains about it on stderr. One chain of execs (setpriv, sh, env, the
# command), as before: a caller's $! after `as_baton ... &` still names it.
as_baton() {
	setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
		sh -c '[ -x . ] || cd "$1" 2>/dev/null || cd /tmp; shift; exec env HOME="$0" "$@"' \
		"$BATON_HOME" "${T:-/tmp}" "$@"
}

# ---------------------------------------------------------------- set-up

# cluster_init NAME: creates the test dir and installs the cleanup trap.
cluster_init() {
	TEST_NAME=$1
	[ "$(id -u)" = 0 ] || { echo "FAIL: integration tests run as root (they switch to $BATON_USER)"; exit 1; }
	id -u "$BATON_USER" >/dev/null 2>&1 || { echo "FAIL: user $BATON_USER is missing"; exit 1; }
	local b
	for b in baton batonctl tests/tools/writer tests/tools/poller; do
		[ -x "$BATON_BUILD/$b" ] || { echo "FAIL: $BATON_BUILD/$b is missing (set BATON_BUILD)"; exit 1; }
	done
	T=$(mktemp -d "/tmp/baton-it-$TEST_NAME.XXXXXX")
	chmod 755 "$T"
	chown "$BATON_USER:" "$T"
	trap cluster_cleanup EXIT
	trap 'TEST_FAILED=1; exit 130' INT TERM
	# A password file for the tests' own clients (psql, writer, poller).
	printf '*:*:*:postgres:%s\n*:*:*:replicator:%s\n' "$SU_PASSWORD" "$REPL_PASSWORD" >"$T/test.pgpass"
	chmod 600 "$T/test.pgpass"
	chown "$BATON_USER:" "$T/test.pgpass"
	# Not exported: the agents must not inherit it (they say they ignore it).
	PGPASSFILE="$T/test.pgpass"
	log "test dir $T, build $BATON_BUILD"
}

# etcd_start: starts (or restarts, on the same data dir) the test's etcd.
etcd_start() {
	[ -n "$ETCD_PORT" ] || pick_port ETCD_PORT
	[ -n "$ETCD_PEER_PORT" ] || pick_port ETCD_PEER_PORT
	"$ETCD_BIN" --name it --data-dir "$T/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "it=http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster-state new \
		--logger zap --log-outputs "$T/etcd.log" >>"$T/etcd.out" 2>&1 &
	ETCD_PID=$!
	wait_for 20 "etcd answers on port $ETCD_PORT" etcd_healthy
}

etcdctl_() {
	ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$ETCD_PORT" \
		--dial-timeout=1s --command-timeout=2s "$@"
}

etcd_healthy() {
	pid_alive "$ETCD_PID" || fail "etcd exited (see $T/etcd.log)"
	etcdctl_ endpoint health >/dev/null 2>&1
}

# etcd_stop [SIGNAL]: stops etcd (default SIGKILL) and waits until it is gone.
etcd_stop() {
	local sig=${1:-KILL}
	[ -n "$ETCD_PID" ] || return 0
	kill -"$sig" "$ETCD_PID" 2>/dev/null || true
	poll_until 15 etcd_gone || fail "etcd did not stop"
	wait "$ETCD_PID" 2>/dev/null || true
	ETCD_PID=
}
etcd_gone() { ! pid_alive "$ETCD_PID"; }

# leader_name: the value of the leader key ("" if none or etcd down).
leader_name() {
	etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/leader" 2>/dev/null | head -n1
}

# ---------------------------------------------------------------- REST API TLS

# rest_make_certs: the REST API's own CA (ca.pem), a server certificate for
# IP:127.0.0.1 and DNS:localhost (server.pem, server-key.pem), a client
# certificate of the same CA (client.pem, client-key.pem) and an unrelated CA
# (other-ca.pem), in $T/rest-tls: keys mode 600, everything owned by the
# baton user. Sets REST_TLS_DIR. Idempotent.
rest_make_certs() {
	[ -z "$REST_TLS_DIR" ] || return 0
	local d=$T/rest-tls k
	mkdir -p "$d"
	k=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	(
		cd "$d" || exit 1
		set -e
		umask 077
		openssl req -x509 "${k[@]}" -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=baton-it-rest-ca
		openssl req -x509 "${k[@]}" -keyout other-ca-key.pem -out other-ca.pem -days 2 -subj /CN=unrelated-rest-ca
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
		printf 'extendedKeyUsage=clientAuth\n' >client.ext
		for n in server client; do
			openssl req "${k[@]}" -keyout "$n-key.pem" -out "$n.csr" -subj "/CN=baton-it-$n"
			openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
				-out "$n.pem" -days 2 -extfile "$n.ext"
		done
		chmod 644 ca.pem other-ca.pem server.pem client.pem
	) >"$T/openssl-rest.log" 2>&1 || fail "openssl could not make the REST API certificates (see $T/openssl-rest.log)"
	chown -R "$BATON_USER:" "$d"
	chmod 755 "$d"
	REST_TLS_DIR=$d
	log "REST API certificates in $d"
}

# pg_make_cert N: a server certificate for nodeN's Postgres from the test CA
# (rest_make_certs), $REST_TLS_DIR/pgN.pem and pgN-key.pem (mode 600, owned
# by the baton user, as Postgres wants its key). Idempotent.
pg_make_cert() {
	local n=$1
	rest_make_certs
	[ -f "$REST_TLS_DIR/pg$n.pem" ] && return 0
	(
		cd "$REST_TLS_DIR" || exit 1
		set -e
		umask 077
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"pg$n.ext"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "pg$n-key.pem" \
			-out "pg$n.csr" -subj "/CN=baton-it-pg-node$n"
		openssl x509 -req -in "pg$n.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
			-out "pg$n.pem" -days 2 -extfile "pg$n.ext"
		chmod 644 "pg$n.pem"
	) >>"$T/openssl-pg.log" 2>&1 || fail "openssl could not make node$n's Postgres certificate (see $T/openssl-pg.log)"
	chown "$BATON_USER:" "$REST_TLS_DIR"/pg"$n"*
}

# pg_config_tls N: the tls group and pg_hba lines of nodeN's postgresql group
# (its certificate made first, by pg_make_cert).
pg_config_tls() {
	local n=$1 kind=host
	if [ "$PG_TLS" = 1 ]; then
		printf '  tls = { certfile = "%s"; keyfile = "%s";\n          cafile = "%s"; };\n' \
			"$REST_TLS_DIR/pg$n.pem" "$REST_TLS_DIR/pg$n-key.pem" "$REST_TLS_DIR/ca.pem"
		kind=hostssl
	fi
	printf '  pg_hba = [\n    "local all all scram-sha-256",\n'
	printf '    "%s all all 127.0.0.1/32 scram-sha-256",\n' "$kind"
	printf '    "%s replication replicator 127.0.0.1/32 scram-sha-256"\n  ];\n' "$kind"
}

# rest_node_tls N: true when nodeN serves https.
rest_node_tls() { [ "$REST_TLS" = 1 ] && [[ " $REST_PLAIN_NODES " != *" $1 "* ]]; }

# rest_url N: nodeN's REST API base URL (https unless plain).
rest_url() {
	if rest_node_tls "$1"; then echo "https://127.0.0.1:${API_PORT[$1]}"; else echo "http://127.0.0.1:${API_PORT[$1]}"; fi
}

# rest_config_group N: the restapi group of nodeN's config.
rest_config_group() {
	local n=$1 g
	g="restapi = { listen = \"127.0.0.1:${API_PORT[$n]}\"; connect_address = \"127.0.0.1:${API_PORT[$n]}\";"
	if [ "$REST_TLS" = 1 ]; then
		rest_make_certs
		if rest_node_tls "$n"; then
			g+=$'\n'"  certfile = \"$REST_TLS_DIR/server.pem\"; keyfile = \"$REST_TLS_DIR/server-key.pem\";"
		fi
		g+=$'\n'"  cafile = \"$REST_TLS_DIR/ca.pem\";"
		if [ "$REST_CLIENT_CERT" = 1 ]; then
			g+=$'\n'"  client_certfile = \"$REST_TLS_DIR/client.pem\"; client_keyfile = \"$REST_TLS_DIR/client-key.pem\";"
		fi
		g+=$'\n'"  authentication = { username = \"$REST_USER\"; password = \"$REST_PASSWORD\"; };"
	fi
	printf '%s\n};\n' "$g"
}

# node_config N [FILE]: renders nodeN's config (to $T/nodeN.conf by default,
# mode 600: it holds passwords), picking its ports on first use.
node_config() {
	local n=$1 f=${2:-$T/node$1.conf}
	[ -n "${PG_PORT[$n]:-}" ] || pick_port "PG_PORT[$n]"
	[ -n "${API_PORT[$n]:-}" ] || pick_port "API_PORT[$n]"
	[ "$REST_TLS" != 1 ] || rest_make_certs
	rest_config_group "$n" >"$f.rest" || fail "cannot render the restapi group of node$n"
	[ "$PG_TLS" != 1 ] || pg_make_cert "$n"
	pg_config_tls "$n" >"$f.pgtls" || fail "cannot render the Postgres TLS of node$n"
	cat >"$f" <<EOF
# node$n of test $TEST_NAME (rendered by tests/lib/cluster.sh)
scope = "$SCOPE";
name = "node$n";
namespace = "$NAMESPACE";
etcd = { hosts = [ "127.0.0.1:$ETCD_PORT" ]; };
$(cat "$f.rest")
bootstrap = {
  dcs = {
    ttl = $TTL;
    loop_wait = $LOOP_WAIT;
    retry_timeout = $RETRY_TIMEOUT;
    maximum_lag_on_failover = $MAX_LAG;
  };
};
postgresql = {
  bin_dir = "$PG_BIN";
  data_dir = "$T/node$n";
  listen = "127.0.0.1:${PG_PORT[$n]}";
  connect_address = "127.0.0.1:${PG_PORT[$n]}";
  socket_dir = "$T";
  authentication = {
    superuser = { username = "postgres"; password = "$SU_PASSWORD"; };
    replication = { username = "replicator"; password = "$REPL_PASSWORD"; };
  };
  parameters = { shared_buffers = "32MB";${PG_EXTRA_PARAMS:+ $PG_EXTRA_PARAMS} };
$(cat "$f.pgtls")
};
log = { level = "$LOG_LEVEL"; };
EOF
	rm -f "$f.rest" "$f.pgtls"
	chown "$BATON_USER:" "$f"
	chmod 600 "$f"
}

data_dir() { echo "$T/node$1"; }

# ---------------------------------------------------------------- agents

# agent_start N: starts nodeN's agent as the baton user; its log is
# $T/agent-nodeN.log (later starts of the same node append). Sets AGENT_PID[N].
# Must not be called in a subshell: $! must be recorded in this shell.
agent_start() {
	local n=$1
	[ -f "$T/node$n.conf" ] || node_config "$n"
	[ "$n" -le "$N_NODES" ] || N_NODES=$n
	AGENT_LOG_N[$n]=$((${AGENT_LOG_N[$n]:-0} + 1))
	printf -- '----- start %s of node%s at %s\n' "${AGENT_LOG_N[$n]}" "$n" "$(date +%T.%3N)" >>"$T/agent-node$n.log"
	chown "$BATON_USER:" "$T/agent-node$n.log"
	setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- env HOME="$BATON_HOME" \
		"$BATON_BUILD/baton" -c "$T/node$n.conf" >>"$T/agent-node$n.log" 2>&1 &
	AGENT_PID[$n]=$!
	log "started agent node$n (pid ${AGENT_PID[$n]}, pg ${PG_PORT[$n]}, api ${API_PORT[$n]})"
}

agent_log() { echo "$T/agent-node$1.log"; }

# agent_signal N SIG
agent_signal() {
	local n=$1 sig=$2
	[ -n "${AGENT_PID[$n]:-}" ] || return 0
	kill -"$sig" "${AGENT_PID[$n]}" 2>/dev/null || true
}

# agent_wait_exit N TIMEOUT_S: waits for nodeN's agent to exit; sets
# AGENT_RC to its exit status (128+sig if killed). Returns 1 on timeout.
agent_wait_exit() {
	local n=$1 timeout=$2 pid=${AGENT_PID[$1]:-}
	AGENT_RC=
	[ -n "$pid" ] || return 0
	if ! poll_until "$timeout" agent_exited "$n"; then
		return 1
	fi
	wait "$pid" 2>/dev/null
	AGENT_RC=$?
	AGENT_PID[$n]=
	return 0
}
agent_exited() { ! pid_alive "${AGENT_PID[$1]}"; }

# agent_stop N: SIGTERM, wait (bounded), then SIGKILL. Sets AGENT_RC.
agent_stop() {
	local n=$1
	agent_signal "$n" TERM
	if ! agent_wait_exit "$n" 30; then
		log "agent node$n ignored SIGTERM for 30 s, killing it"
		agent_signal "$n" KILL
		agent_wait_exit "$n" 10 || true
		AGENT_RC=timeout
	fi
}

# agent_kill N: SIGKILL nodeN's agent and reap it.
agent_kill() {
	agent_signal "$1" KILL
	agent_wait_exit "$1" 10 || fail "agent node$1 survived SIGKILL"
}

# fence_pid N: the PID of nodeN's fence process (its agent's child named
# baton-fence), empty if there is none (e.g. a Patroni node). A node loss
# must kill it too, first: left alive, it revokes a dead leader's lease
# (agent/fence.h), which a lost machine cannot do.
fence_pid() {
	[ -n "${AGENT_PID[$1]:-}" ] || return 0
	ps -o pid=,comm= --ppid "${AGENT_PID[$1]}" 2>/dev/null | awk '$2 == "baton-fence" { print $1 }'
}

# postmaster_pid N: the PID in nodeN's postmaster.pid if that process runs
# with the data dir as its cwd (so a stale file or reused PID never counts).
postmaster_pid() {
	local d pid
	d=$(data_dir "$1")
	[ -r "$d/postmaster.pid" ] || return 1
	pid=$(head -n1 "$d/postmaster.pid" 2>/dev/null)
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	pid_alive "$pid" || return 1
	[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$d" ] || return 1
	echo "$pid"
}

# ---------------------------------------------------------------- SQL

conninfo() { echo "host=127.0.0.1 port=${PG_PORT[$1]} user=postgres dbname=postgres connect_timeout=2"; }

# A multi-host conninfo over all nodes, for clients that follow the primary.
conninfo_all() {
	local hosts="" ports="" n
	for n in $(seq 1 "$N_NODES"); do
		hosts+="${hosts:+,}127.0.0.1"
		ports+="${ports:+,}${PG_PORT[$n]}"
	done
	echo "host=$hosts port=$ports user=postgres dbname=postgres connect_timeout=2 target_session_attrs=read-write"
}

# run_sql N SQL: runs SQL on nodeN as postgres, prints the tuples unaligned
# (fields separated by |); fails fast (connect 2 s, statement 5 s).
run_sql() {
	local n=$1 sql=$2
	setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
		env HOME="$BATON_HOME" PGPASSFILE="$PGPASSFILE" PGCONNECT_TIMEOUT=2 PGOPTIONS="-c statement_timeout=5000" \
		"$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "${PG_PORT[$n]}" -U postgres -d postgres -c "$sql" 2>/dev/null
}

# in_recovery N: prints t or f, or nothing when the node does not answer.
in_recovery() { run_sql "$1" "SELECT pg_is_in_recovery()"; }

# timeline N: the node's current timeline (primary: from its WAL position;
# replica: the one its WAL receiver streams).
timeline() {
	local r
	r=$(in_recovery "$1") || return 1
	if [ "$r" = f ]; then
		run_sql "$1" "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
	else
		run_sql "$1" "SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming'"
	fi
}

# ---------------------------------------------------------------- cluster

# cluster_start N: etcd, N rendered configs and N agents.
cluster_start() {
	local n
	etcd_start
	for n in $(seq 1 "$1"); do node_config "$n"; done
	for n in $(seq 1 "$1"); do agent_start "$n"; done
}

# cluster_healthy [SKIP_NODE]: true when the leader key names nodeP, nodeP
# is a primary with a streaming connection from every other running node and
# all others are in recovery. Sets PRIMARY (node number) and LEADER (name).
# Nodes listed in SKIP_NODE (space separated numbers) are ignored.
PRIMARY=
LEADER=
cluster_healthy() {
	local skip=" ${1:-} " n p= leader rec streaming want=0
	leader=$(leader_name)
	[[ "$leader" =~ ^node([0-9]+)$ ]] || return 1
	p=${BASH_REMATCH[1]}
	[[ "$skip" != *" $p "* ]] || return 1
	[ "$(in_recovery "$p")" = f ] || return 1
	for n in $(seq 1 "$N_NODES"); do
		[ "$n" != "$p" ] || continue
		[[ "$skip" != *" $n "* ]] || continue
		rec=$(in_recovery "$n")
		[ "$rec" = t ] || return 1
		want=$((want + 1))
	done
	streaming=$(run_sql "$p" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") || return 1
	[ "$streaming" = "$want" ] || return 1
	PRIMARY=$p
	LEADER=$leader
	return 0
}

# wait_healthy TIMEOUT_S [SKIP]: wait for cluster_healthy, then say who leads.
wait_healthy() {
	local timeout=$1 skip=${2:-}
	local msg="one primary, $((N_NODES - 1 - $(wc -w <<<"$skip"))) streaming replicas"
	if poll_until "$timeout" cluster_healthy "$skip"; then
		log "ok: $msg; primary is node$PRIMARY"
		return 0
	fi
	cluster_state
	fail "timed out after ${timeout}s waiting for: $msg"
}

# cluster_state: what each node says, for failure messages.
cluster_state() {
	local n
	echo "cluster state: leader key '$(leader_name)'"
	for n in $(seq 1 "$N_NODES"); do
		echo "  node$n (pg ${PG_PORT[$n]}): in_recovery=$(in_recovery "$n" || echo '?')" \
			"wal_receiver=[$(run_sql "$n" "SELECT status || ' from ' || sender_port || ' tli ' || received_tli FROM pg_stat_wal_receiver")]" \
			"replicas=[$(run_sql "$n" "SELECT string_agg(application_name || ':' || state, ' ') FROM pg_stat_replication")]"
	done
}

# primaries: prints the numbers of the nodes that answer as primary.
primaries() {
	local n out=""
	for n in $(seq 1 "$N_NODES"); do
		[ "$(in_recovery "$n")" = f ] && out+="$n "
	done
	echo "${out% }"
}

# bg_start NAME CMD...: starts a helper (writer, poller) in the background,
# output to $T/NAME.out; sets BG_PID. Cleanup kills it.
BG_PID=
bg_start() {
	local name=$1
	shift
	env PGPASSFILE="$PGPASSFILE" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# bg_stop PID: SIGTERM, then wait (bounded) so its last lines are written.
bg_stop() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || true
	poll_until 10 bg_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
bg_gone() { ! pid_alive "$1"; }

writer_start() {
	bg_start writer "$BATON_BUILD/tests/tools/writer" --interval "${1:-50}" "$(conninfo_all)"
	WRITER_PID=$BG_PID
}

poller_start() {
	local args=() n names=""
	for n in $(seq 1 "$N_NODES"); do
		args+=("host=127.0.0.1 port=${PG_PORT[$n]} user=postgres dbname=postgres")
		names+="${names:+,}node$n"
	done
	bg_start poller "$BATON_BUILD/tests/tools/poller" --interval 50 --timeout 500 --names "$names" "${args[@]}"
	POLLER_PID=$BG_PID
}

# acks_count: number of acknowledged writes so far.
acks_count() { grep -c '^ack ' "$T/writer.out" 2>/dev/null || true; }

# ---------------------------------------------------------------- etcd members, TLS, auth
# For scenarios that run etcd as several members and/or over https with
# authentication (12_etcd_cluster.sh, 13_etcd_tls_auth.sh). The members are
# m1..mN, data in $T/etcd-mN, logs $T/etcd-mN.log; cluster_cleanup stops
# them with the single etcd. With ETCD_TLS_DIR set (etcd_make_certs) they
# serve https and require client certificates signed by its ca.pem; with
# ETCD_ROOT_PASSWORD set (etcd_enable_auth) etcdctl_ authenticates as root.

declare -a ETCD_M_PID=() ETCD_M_PORT=() ETCD_M_PEER=()
ETCD_TLS_DIR=
ETCD_ROOT_PASSWORD=
ETCD_N_MEMBERS=0

etcd_scheme() { if [ -n "$ETCD_TLS_DIR" ]; then echo https; else echo http; fi; }

# etcd_make_certs: a CA, a server certificate for 127.0.0.1/localhost, a
# client certificate (no CN, see below) and an unrelated CA (other-ca.pem), all in
# $T/tls (readable by the baton user); sets ETCD_TLS_DIR.
etcd_make_certs() {
	local d=$T/tls k n subj
	mkdir -p "$d"
	k=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	(
		cd "$d" || exit 1
		set -e
		openssl req -x509 "${k[@]}" -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=baton-it-ca
		openssl req -x509 "${k[@]}" -keyout other-ca-key.pem -out other-ca.pem -days 2 -subj /CN=unrelated-ca
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
		printf 'extendedKeyUsage=clientAuth\n' >client.ext
		# No CN in the client certificate: with client-cert-auth and auth
		# on, etcd's gateway answers every /v3 request made with a client
		# certificate that carries one with HTTP 400 ("CommonName of
		# client sending a request against gateway will be ignored").
		for n in server client; do
			subj=/CN=$n
			[ "$n" = server ] || subj=/O=baton-it-client
			openssl req "${k[@]}" -keyout "$n-key.pem" -out "$n.csr" -subj "$subj"
			openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
				-out "$n.pem" -days 2 -extfile "$n.ext"
		done
	) >"$T/openssl.log" 2>&1 || fail "openssl could not make the test certificates (see $T/openssl.log)"
	chown -R "$BATON_USER:" "$d"
	chmod 700 "$d"
	ETCD_TLS_DIR=$d
	log "certificates in $d"
}

# etcd_member_url N: the client URL of member mN.
etcd_member_url() { echo "$(etcd_scheme)://127.0.0.1:${ETCD_M_PORT[$1]}"; }

# etcd_member_urls: every member's client URL, comma separated.
etcd_member_urls() {
	local i out=""
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do out+="${out:+,}$(etcd_member_url "$i")"; done
	echo "$out"
}

# etcd_member_start N: starts (or restarts, on its data) member mN.
etcd_member_start() {
	local n=$1 i cluster="" tls=()
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		cluster+="${cluster:+,}m$i=http://127.0.0.1:${ETCD_M_PEER[$i]}"
	done
	if [ -n "$ETCD_TLS_DIR" ]; then
		tls=(--cert-file "$ETCD_TLS_DIR/server.pem" --key-file "$ETCD_TLS_DIR/server-key.pem"
			--trusted-ca-file "$ETCD_TLS_DIR/ca.pem" --client-cert-auth)
	fi
	"$ETCD_BIN" --name "m$n" --data-dir "$T/etcd-m$n" \
		--listen-client-urls "$(etcd_member_url "$n")" \
		--advertise-client-urls "$(etcd_member_url "$n")" \
		--listen-peer-urls "http://127.0.0.1:${ETCD_M_PEER[$n]}" \
		--initial-advertise-peer-urls "http://127.0.0.1:${ETCD_M_PEER[$n]}" \
		--initial-cluster "$cluster" --initial-cluster-state new \
		--auth-token-ttl "${ETCD_AUTH_TOKEN_TTL:-300}" "${tls[@]}" \
		--logger zap --log-outputs "$T/etcd-m$n.log" >>"$T/etcd-m$n.out" 2>&1 &
	ETCD_M_PID[$n]=$!
	log "started etcd member m$n (pid ${ETCD_M_PID[$n]}, $(etcd_member_url "$n"))"
}

# etcd_members_start COUNT: COUNT members as one cluster; waits until each
# answers /health. Points ETCD_PORT (used by leader_name & co.) at m1.
etcd_members_start() {
	local n i
	ETCD_N_MEMBERS=$1
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		[ -n "${ETCD_M_PORT[$i]:-}" ] || pick_port "ETCD_M_PORT[$i]"
		[ -n "${ETCD_M_PEER[$i]:-}" ] || pick_port "ETCD_M_PEER[$i]"
	done
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do etcd_member_start "$i"; done
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		n=$i
		wait_for 30 "etcd member m$n healthy" etcd_member_healthy "$n"
	done
	ETCD_PORT=${ETCD_M_PORT[1]}
}

# etcdctl_m ARGS...: etcdctl against the live members, with the test's
# client certificate and root's password when set.
etcdctl_m() {
	local opts=() i eps=""
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		pid_alive "${ETCD_M_PID[$i]:-}" && eps+="${eps:+,}$(etcd_member_url "$i")"
	done
	if [ -n "$ETCD_TLS_DIR" ]; then
		opts+=(--cacert "$ETCD_TLS_DIR/ca.pem" --cert "$ETCD_TLS_DIR/client.pem" --key "$ETCD_TLS_DIR/client-key.pem")
	fi
	[ -z "$ETCD_ROOT_PASSWORD" ] || opts+=(--user "root:$ETCD_ROOT_PASSWORD")
	ETCDCTL_API=3 etcdctl --endpoints="$eps" --dial-timeout=1s --command-timeout=2s "${opts[@]}" "$@"
}

# etcd_use_members: from now on the harness's etcdctl_ (leader_name,
# cluster_healthy...) goes to the live members, with TLS and auth.
etcd_use_members() {
	etcdctl_() { etcdctl_m "$@"; }
}

# etcd_member_healthy N: mN runs and reports itself healthy.
etcd_member_healthy() {
	local n=$1 opts=()
	pid_alive "${ETCD_M_PID[$n]}" || fail "etcd member m$n exited (see $T/etcd-m$n.log)"
	if [ -n "$ETCD_TLS_DIR" ]; then
		opts+=(--cacert "$ETCD_TLS_DIR/ca.pem" --cert "$ETCD_TLS_DIR/client.pem" --key "$ETCD_TLS_DIR/client-key.pem")
	fi
	ETCDCTL_API=3 etcdctl --endpoints="$(etcd_member_url "$n")" --dial-timeout=1s --command-timeout=2s \
		"${opts[@]}" endpoint health >/dev/null 2>&1
}

# etcd_member_kill N: SIGKILL mN and reap it.
etcd_member_kill() {
	local n=$1
	kill -KILL "${ETCD_M_PID[$n]}" 2>/dev/null || true
	poll_until 10 etcd_member_gone "$n" || fail "etcd member m$n survived SIGKILL"
	wait "${ETCD_M_PID[$n]}" 2>/dev/null || true
	log "killed etcd member m$n"
}
etcd_member_gone() { ! pid_alive "${ETCD_M_PID[$1]}"; }

# etcd_enable_auth ROOT_PASSWORD USER PASSWORD: root user, a role USER with
# readwrite on the prefix $NAMESPACE/ only, user USER with that role, then
# auth enable (etcdctl_m authenticates as root from then on).
etcd_enable_auth() {
	local root_pw=$1 user=$2 pw=$3
	{
		etcdctl_m user add "root:$root_pw" &&
		etcdctl_m role add "$user" &&
		etcdctl_m role grant-permission "$user" --prefix=true readwrite "$NAMESPACE/" &&
		etcdctl_m user add "$user:$pw" &&
		etcdctl_m user grant-role "$user" "$user" &&
		etcdctl_m auth enable
	} >>"$T/etcdctl.log" 2>&1 || fail "could not enable etcd auth (see $T/etcdctl.log)"
	ETCD_ROOT_PASSWORD=$root_pw
	log "etcd auth enabled: user $user limited to $NAMESPACE/"
}

# node_config_etcd N [EXTRA]: points nodeN's rendered config at every
# member (with https, the test CA and client certificate when TLS is on)
# and appends EXTRA (e.g. 'username = "u"; password = "p";') to its etcd
# group.
node_config_etcd() {
	local n=$1 extra=${2:-} f=$T/node$1.conf i hosts="" line
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do hosts+="${hosts:+, }\"127.0.0.1:${ETCD_M_PORT[$i]}\""; done
	line="etcd = { hosts = [ $hosts ]; protocol = \"$(etcd_scheme)\";"
	if [ -n "$ETCD_TLS_DIR" ]; then
		line+=" cacert = \"$ETCD_TLS_DIR/ca.pem\"; cert = \"$ETCD_TLS_DIR/client.pem\";"
		line+=" key = \"$ETCD_TLS_DIR/client-key.pem\";"
	fi
	line+=" $extra };"
	[ -f "$f" ] || node_config "$n"
	awk -v line="$line" '/^etcd = \{/ { print line; next } { print }' "$f" >"$f.new" && mv "$f.new" "$f"
	chown "$BATON_USER:" "$f"
	chmod 600 "$f"
}

# etcd_members_in_use PID: prints, for each member, how many established
# TCP connections process PID holds to it ("N:COUNT" per member).
etcd_members_in_use() {
	local pid=$1 i c
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		c=$(ss -tnpH state established "( dport = :${ETCD_M_PORT[$i]} )" 2>/dev/null | grep -c "pid=$pid,")
		printf '%s:%s ' "$i" "$c"
	done
	echo
}

# etcd_members_stop: SIGTERM every member, bounded, then SIGKILL (cleanup).
etcd_members_stop() {
	local i
	for i in "${!ETCD_M_PID[@]}"; do
		[ -n "${ETCD_M_PID[$i]}" ] || continue
		# A member a test froze (SIGSTOP) acts on SIGTERM only once continued.
		kill -CONT "${ETCD_M_PID[$i]}" 2>/dev/null || true
		kill -TERM "${ETCD_M_PID[$i]}" 2>/dev/null || true
	done
	for i in "${!ETCD_M_PID[@]}"; do
		[ -n "${ETCD_M_PID[$i]}" ] || continue
		poll_until 10 etcd_member_gone "$i" || kill -KILL "${ETCD_M_PID[$i]}" 2>/dev/null || true
	done
}

# ---------------------------------------------------------------- cleanup

dump_logs() {
	local f
	for f in "$T"/agent-node*.log; do
		[ -f "$f" ] || continue
		echo "----- tail of $f"
		tail -n 40 "$f"
	done
	for f in "$T"/node*.log; do
		[ -f "$f" ] || continue
		echo "----- tail of $f (postgres)"
		tail -n 15 "$f"
	done
	[ -f "$T/etcd.log" ] && { echo "----- tail of $T/etcd.log"; tail -n 5 "$T/etcd.log"; }
	return 0
}

# Kills a postmaster left over in the test dir (only if its cwd is there).
kill_leftover_postmasters() {
	local f d pid
	for f in "$T"/*/postmaster.pid; do
		[ -f "$f" ] || continue
		d=$(dirname "$f")
		pid=$(head -n1 "$f" 2>/dev/null)
		[[ "$pid" =~ ^[0-9]+$ ]] || continue
		pid_alive "$pid" || continue
		[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$d" ] || continue
		log "cleanup: postmaster $pid of $d outlived its agent, killing it"
		kill -QUIT "$pid" 2>/dev/null || true
		sleep 0.5
		kill -KILL "$pid" 2>/dev/null || true
	done
}

cluster_cleanup() {
	local rc=$? n pid pids=() bad=0
	trap - EXIT INT TERM
	[ -n "$T" ] || exit "$rc"
	[ "$rc" = 0 ] || [ "$TEST_SKIPPED" = 1 ] || TEST_FAILED=1
	for pid in "${BG_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	# Stop agents gracefully (in parallel) so sanitizer builds report leaks,
	# then kill whatever is left. A non-zero exit after SIGTERM is a failure.
	for n in "${!AGENT_PID[@]}"; do
		[ -n "${AGENT_PID[$n]}" ] && pid_alive "${AGENT_PID[$n]}" && pids+=("$n") && agent_signal "$n" TERM
	done
	for n in "${pids[@]}"; do
		if agent_wait_exit "$n" 20; then
			if [ "$AGENT_RC" != 0 ] && [ "$TEST_FAILED" = 0 ]; then
				echo "FAIL: agent node$n exited with status $AGENT_RC after SIGTERM at cleanup"
				bad=1
			fi
		else
			echo "FAIL: agent node$n still running 20 s after SIGTERM at cleanup"
			bad=1
			agent_signal "$n" KILL
		fi
	done
	kill_leftover_postmasters
	if [ -n "$ETCD_PID" ]; then
		kill -TERM "$ETCD_PID" 2>/dev/null || true
		poll_until 10 etcd_gone || kill -KILL "$ETCD_PID" 2>/dev/null || true
	fi
	etcd_members_stop
	if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/agent-node*.log >/dev/null 2>&1; then
		echo "FAIL: sanitizer reports in agent logs:"
		grep -h -A 30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/agent-node*.log | head -n 80
		bad=1
	fi
	[ "$bad" = 0 ] || TEST_FAILED=1
	if [ "$TEST_FAILED" != 0 ]; then
		dump_logs
		echo "RESULT: $TEST_NAME FAILED"
	elif [ "$TEST_SKIPPED" = 1 ]; then
		echo "RESULT: $TEST_NAME skipped"
	else
		echo "RESULT: $TEST_NAME passed"
	fi
	if [ "$KEEP" = 1 ]; then
		echo "kept test dir $T"
	else
		rm -rf "$T"
	fi
	[ "$TEST_FAILED" = 0 ] || exit 1
	[ "$TEST_SKIPPED" = 0 ] || exit 77
	exit 0
}

# ---------------------------------------------------------------- operator tools
# (batonctl, the REST API, the config and switchover keys, HAProxy)

# ctl ARGS...: batonctl as the baton user with node1's config (any node's
# config names the same cluster). Prints what it prints; returns its status.
# switchover, failover, restart and reinit get --force (no terminal here).
ctl() {
	case ${1:-} in switchover | failover | restart | reinit) set -- "$1" --force "${@:2}" ;; esac
	as_baton "$BATON_BUILD/batonctl" -c "$T/node${CTL_NODE:-1}.conf" "$@"
}

# ctl_has COMMAND: batonctl --help lists COMMAND (so the operator path is
# used; otherwise a scenario falls back to etcdctl/curl and says so).
ctl_has() {
	"$BATON_BUILD/batonctl" --help 2>/dev/null | grep -Eq "^[[:space:]]+$1([[:space:]]|\$)"
}

# rest_call N METHOD PATH [BODY]: an HTTP request to nodeN's REST API.
# Sets REST_CODE (000 when nothing answered) and REST_BODY; prints nothing,
# so call it directly (not in $(...), which would lose both). Bounded to
# REST_TIMEOUT seconds (default 3).
REST_CODE=
REST_BODY=
# Over https it verifies the node against the test CA and sends the test's
# credentials (REST_AUTH="user:pw" overrides them, REST_AUTH= sends none);
# over http it sends none unless REST_AUTH is set.
rest_call() {
	local n=$1 method=$2 path=$3 body=${4:-} out auth
	local args=(-s --noproxy '*' -m "${REST_TIMEOUT:-3}" -X "$method" -o "$T/rest.body" -w '%{http_code}')
	if [ -n "$body" ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$body")
	elif [ "$method" != GET ] && [ "$method" != HEAD ] && [ "$method" != OPTIONS ]; then
		args+=(-H 'Content-Type: application/json')
	fi
	if rest_node_tls "$n"; then
		auth=${REST_AUTH-$REST_USER:$REST_PASSWORD}
	else
		auth=${REST_AUTH:-}
	fi
	[ -n "$auth" ] && args+=(-u "$auth")
	rm -f "$T/rest.body"
	out=$(rest_curl "$n" "${args[@]}" "$(rest_url "$n")$path" 2>/dev/null) || true
	REST_CODE=${out:-000}
	REST_BODY=$(cat "$T/rest.body" 2>/dev/null)
	rm -f "$T/rest.body"
	return 0
}

# rest_curl N CURL_ARGS... URL: curl with what nodeN's REST API needs (the
# test CA when it serves https; no proxy). Sends no credentials by itself.
rest_curl() {
	local n=$1
	shift
	if rest_node_tls "$n"; then
		curl --noproxy '*' --cacert "$REST_TLS_DIR/ca.pem" "$@"
	else
		curl --noproxy '*' "$@"
	fi
}

# rest_code N PATH: the HTTP code of GET PATH on nodeN (000 when nothing
# answered), bounded to 3 s.
rest_code() {
	local out
	out=$(rest_curl "$1" -s -o /dev/null -m 3 -w '%{http_code}' "$(rest_url "$1")$2" 2>/dev/null) || true
	echo "${out:-000}"
}

# config_json: the cluster's config key ("" when absent).
config_json() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/config" 2>/dev/null | head -n1; }

# config_update JQ_FILTER: rewrites the config key through jq (the path an
# operator without batonctl has). Fails the test when it cannot.
config_update() {
	local cur new
	cur=$(config_json)
	[ -n "$cur" ] || cur='{}'
	new=$(jq -c "$1" <<<"$cur") || fail "jq '$1' failed on the config key '$cur'"
	etcdctl_ put "$NAMESPACE/$SCOPE/config" "$new" >/dev/null || fail "cannot write the config key"
	log "config key is now $new"
}

# member_json NAME: the JSON of members/NAME ("" when absent).
member_json() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/members/$1" 2>/dev/null | head -n1; }

# switchover_json: the switchover key ("" when absent).
switchover_json() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/switchover" 2>/dev/null | head -n1; }
switchover_gone() { [ -z "$(switchover_json)" ]; }

# switchover_put JSON: writes the switchover key as an operator would without batonctl.
switchover_put() {
	etcdctl_ put "$NAMESPACE/$SCOPE/switchover" "$1" >/dev/null || fail "cannot write the switchover key"
	log "wrote the switchover key: $1"
}

# HAProxy in front of the Postgres ports, checking each node's REST API.
# haproxy_start [CHECK_PATH]: renders $T/haproxy.cfg (a free loopback port,
# HAPROXY_PORT) and starts haproxy in the foreground (-db) as a tracked
# background process (HAPROXY_PID). CHECK_PATH defaults to /primary; when it
# is "status", the backends are checked with GET /status and the body must
# say "role":"primary" (for an agent without the health endpoints).
# HAPROXY_RETRIES (default 3, HAProxy's own) and HAPROXY_TIMEOUT_CONNECT
# (default 1s): HAProxy waits min(timeout connect, 1 s) before each retry of
# a refused connection to a server its check still reports up.
# HAPROXY_INTER (default 200ms): the check interval, which also bounds a
# check's TLS handshake (a slow one marks a healthy server down, fall 1).
# HAPROXY_NODES (default: every node, 1..N_NODES): the node numbers it
# serves, e.g. "1 2" for one site of two scopes (45_standby_cluster.sh).
# HAPROXY_ADMIN=1: an admin socket on a loopback port (HAPROXY_ADMIN_PORT)
# for haproxy_cmd.
HAPROXY_RETRIES=${HAPROXY_RETRIES:-3}
HAPROXY_ADMIN=${HAPROXY_ADMIN:-0}
HAPROXY_ADMIN_PORT=
HAPROXY_INTER=${HAPROXY_INTER:-200ms}
HAPROXY_TIMEOUT_CONNECT=${HAPROXY_TIMEOUT_CONNECT:-1s}
HAPROXY_BIN=${HAPROXY_BIN:-/usr/sbin/haproxy}
HAPROXY_PORT=
HAPROXY_PID=
haproxy_start() {
	local mode=${1:-/primary} n tls f="$T/haproxy.cfg"
	command -v "$HAPROXY_BIN" >/dev/null 2>&1 || fail "haproxy is not installed ($HAPROXY_BIN)"
	[ -n "$HAPROXY_PORT" ] || pick_port HAPROXY_PORT
	{
		printf '# rendered by tests/lib/cluster.sh for test %s\n' "$TEST_NAME"
		printf 'global\n    maxconn 200\n'
		if [ "$HAPROXY_ADMIN" = 1 ]; then
			[ -n "$HAPROXY_ADMIN_PORT" ] || pick_port HAPROXY_ADMIN_PORT
			printf '    stats socket ipv4@127.0.0.1:%s level admin\n' "$HAPROXY_ADMIN_PORT"
		fi
		printf '\n'
		printf 'defaults\n    mode tcp\n    retries %s\n    timeout connect %s\n' "$HAPROXY_RETRIES" "$HAPROXY_TIMEOUT_CONNECT"
		printf '    timeout client 30m\n    timeout server 30m\n    timeout check 1s\n\n'
		printf 'listen postgres\n    bind 127.0.0.1:%s\n    option httpchk\n' "$HAPROXY_PORT"
		if [ "$mode" = status ]; then
			printf '    http-check send meth GET uri /status\n    http-check expect rstring %s\n' "'\"role\":\"primary\"'"
		else
			printf '    http-check send meth GET uri %s\n    http-check expect status 200\n' "$mode"
		fi
		printf '    default-server inter %s fall 1 rise 1 on-marked-down shutdown-sessions\n' "$HAPROXY_INTER"
		for n in ${HAPROXY_NODES:-$(seq 1 "$N_NODES")}; do
			# https checks verify the node's certificate against the test CA
			# (HAProxy 2.6: check-ssl, verify required, ca-file, verifyhost).
			tls=
			rest_node_tls "$n" && tls=" check-ssl verify required ca-file $REST_TLS_DIR/ca.pem verifyhost localhost"
			printf '    server node%s 127.0.0.1:%s check port %s%s\n' "$n" "${PG_PORT[$n]}" "${API_PORT[$n]}" "$tls"
		done
	} >"$f"
	"$HAPROXY_BIN" -c -q -f "$f" >"$T/haproxy.check" 2>&1 || { cat "$T/haproxy.check"; fail "haproxy rejects $f"; }
	# Each line of its output (server UP/DOWN, with the check's duration)
	# stamped with the time it was printed, to set beside the agents' logs.
	"$HAPROXY_BIN" -db -f "$f" > >(stamp_lines >>"$T/haproxy.out") 2>&1 &
	HAPROXY_PID=$!
	BG_PIDS+=("$HAPROXY_PID")
	wait_for 10 "haproxy listens on port $HAPROXY_PORT" haproxy_listening
	log "haproxy (pid $HAPROXY_PID) on 127.0.0.1:$HAPROXY_PORT, health check $mode"
}
# stamp_lines: copies stdin to stdout, each line after the time it was read
# (HH:MM:SS.mmm, as in log()).
stamp_lines() {
	local l t
	while IFS= read -r l; do
		t=$EPOCHREALTIME
		printf '%(%H:%M:%S)T.%03d %s\n' "${t%[.,]*}" "$((10#${t#*[.,]} / 1000))" "$l"
	done
}
# haproxy_cmd CMD: runs CMD on HAProxy's admin socket (HAPROXY_ADMIN=1),
# e.g. "disable health postgres/node1"; prints its answer.
haproxy_cmd() {
	local out
	[ -n "$HAPROXY_ADMIN_PORT" ] || fail "haproxy_cmd needs HAPROXY_ADMIN=1 before haproxy_start"
	out=$(timeout 5 bash -c 'exec 9<>"/dev/tcp/127.0.0.1/$1" && printf "%s\n" "$2" >&9 && cat <&9' _ \
		"$HAPROXY_ADMIN_PORT" "$1") || fail "haproxy_cmd $1: no answer on port $HAPROXY_ADMIN_PORT"
	printf '%s\n' "$out"
}
haproxy_listening() {
	pid_alive "$HAPROXY_PID" || fail "haproxy exited (see $T/haproxy.out)"
	[ -n "$(ss -ltnH "( sport = :$HAPROXY_PORT )" 2>/dev/null)" ]
}
haproxy_stop() {
	[ -n "$HAPROXY_PID" ] || return 0
	bg_stop "$HAPROXY_PID"
	HAPROXY_PID=
}

# writer_start_to CONNINFO [INTERVAL_MS]: the writer through one conninfo
# (e.g. HAProxy's port) instead of the multi-host one.
writer_start_to() {
	bg_start writer "$BATON_BUILD/tests/tools/writer" --interval "${2:-50}" "$1"
	WRITER_PID=$BG_PID
}

# first_ack_on PORT AFTER_MS: unix ms of the first ack by PORT after AFTER_MS.
first_ack_on() {
	awk -v p="$1" -v t="$2" '$1 == "ack" && $3 > t && $4 == p { print $3; exit }' "$T/writer.out"
}
# last_ack_on PORT [BEFORE_MS]: unix ms of the last ack by PORT (before BEFORE_MS).
last_ack_on() {
	awk -v p="$1" -v t="${2:-}" '$1 == "ack" && $4 == p && (t == "" || $3 < t) { l = $3 } END { print l }' "$T/writer.out"
}

# ---------------------------------------------------------------- etcd quorum, compaction, bench helpers
# (15_etcd_quorum_loss.sh, 16_watch_compaction.sh, tests/bench/etcd.sh)

# etcd_member_most_used PID: the member process PID holds the most
# established connections to (the first listed wins a tie); "" if none.
etcd_member_most_used() {
	local mc m c best=0 out=""
	for mc in $(etcd_members_in_use "$1"); do
		m=${mc%%:*} c=${mc#*:}
		if [ "$c" -gt "$best" ]; then best=$c out=$m; fi
	done
	echo "$out"
}

# etcd_revision: the current revision of the store (from a serializable
# read's header), "" when etcd does not answer.
etcd_revision() {
	etcdctl_ get --consistency=s -w json /baton-no-such-key 2>/dev/null |
		sed -n 's/.*"revision":\([0-9]*\).*/\1/p' | head -n1
}

# log_ms LINE: unix ms of an agent log line ("YYYY-MM-DD HH:MM:SS.mmm ...").
log_ms() { date -d "$(cut -c1-23 <<<"$1")" +%s%3N 2>/dev/null; }

# acks_max_gap FROM_MS TO_MS: the largest gap (ms) between consecutive
# writer acks in [FROM_MS, TO_MS], counting from the last ack before
# FROM_MS and up to TO_MS when the acks stop early.
acks_max_gap() {
	awk -v a="$1" -v b="$2" '$1 == "ack" {
		t = $3 + 0
		if (t < a) { prev = t; next }
		if (t > b) { exit }
		if (prev != "" && t - prev > g) g = t - prev
		prev = t
	} END { if (prev != "" && b - prev > g) g = b - prev; printf "%d\n", g }' "$T/writer.out"
}

# etcd_raft_leader: the number of the member that is etcd's raft leader
# ("" when no live member names itself leader).
etcd_raft_leader() {
	local i js id ld
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		pid_alive "${ETCD_M_PID[$i]:-}" || continue
		js=$(ETCDCTL_API=3 etcdctl --endpoints="$(etcd_member_url "$i")" --dial-timeout=1s \
			--command-timeout=2s endpoint status -w json 2>/dev/null) || continue
		id=$(jq -r '.[0].Status.header.member_id' <<<"$js" 2>/dev/null)
		ld=$(jq -r '.[0].Status.leader' <<<"$js" 2>/dev/null)
		if [ -n "$id" ] && [ "$id" != null ] && [ "$id" = "$ld" ]; then
			echo "$i"
			return 0
		fi
	done
	echo ""
}

# key_watch_start KEY: `etcdctl watch KEY` in the background, each output
# line prefixed with the unix ms at which it was printed (a perl reader on a
# fifo), to $T/keywatch.out. Both processes are tracked for cleanup; sets
# KEYWATCH_PIDS. KEYWATCH_ENDPOINTS (comma separated URLs), when set,
# replaces the endpoints it watches through (e.g. to leave out a member
# the test froze).
KEYWATCH_PIDS=()
key_watch_start() {
	local key=$1 fifo=$T/keywatch.fifo
	rm -f "$fifo"
	mkfifo "$fifo"
	perl -MTime::HiRes=time -ne 'BEGIN { $| = 1 } printf "%d %s", time() * 1000, $_' <"$fifo" >"$T/keywatch.out" &
	KEYWATCH_PIDS=($!)
	BG_PIDS+=($!)
	local eps="http://127.0.0.1:$ETCD_PORT"
	[ "$ETCD_N_MEMBERS" = 0 ] || eps=$(etcd_member_urls)
	eps=${KEYWATCH_ENDPOINTS:-$eps}
	env ETCDCTL_API=3 etcdctl --endpoints="$eps" --dial-timeout=1s watch "$key" >"$fifo" 2>>"$T/keywatch.err" &
	KEYWATCH_PIDS+=($!)
	BG_PIDS+=($!)
	sleep 0.3
}

# key_watch_stop: stops both.
key_watch_stop() {
	local pid
	for pid in "${KEYWATCH_PIDS[@]}"; do bg_stop "$pid"; done
	KEYWATCH_PIDS=()
}

# key_watch_event_ms TYPE AFTER_MS: unix ms of the first TYPE (PUT or
# DELETE) the key watch printed after AFTER_MS ("" if none).
key_watch_event_ms() {
	awk -v ty="$1" -v t="$2" '$2 == ty && $1 > t { print $1; exit }' "$T/keywatch.out" 2>/dev/null
}

# watch_failover LIMIT_S: the failover a replica's watch must drive. SIGKILL
# of the primary's fence, agent and postmaster at once (no revoke: the
# lease runs out), then asserts that another member holds the leader key
# within LIMIT_S s of the kill, that it took the key within 2 s of the
# DELETE (woken by its watch, not a later loop), and that every surviving
# agent logged "leader key deleted or expired" (only the watch callback
# prints it). Starts and stops its own key watch (KEYWATCH_ENDPOINTS
# applies). Sets OLD and NEW (member numbers) and FAILOVER_MS (kill ->
# PUT of the new leader).
watch_failover() {
	local limit=$1 n pm line t_kill t_del t_put
	local -A from=()
	OLD=$PRIMARY
	key_watch_start "$NAMESPACE/$SCOPE/leader"
	for n in "${!AGENT_PID[@]}"; do
		if pid_alive "${AGENT_PID[$n]}"; then from[$n]=$(wc -l <"$(agent_log "$n")"); fi
	done
	pm=$(postmaster_pid "$OLD") || fail "no postmaster for node$OLD"
	t_kill=$(now_ms)
	kill -KILL $(fence_pid "$OLD") "${AGENT_PID[$OLD]}" "$pm"
	agent_wait_exit "$OLD" 10 || fail "agent node$OLD survived SIGKILL"
	log "killed node$OLD's fence, agent and postmaster"
	_other_leads() {
		local l
		l=$(leader_name)
		[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$OLD" ] || return 1
		NEW=${BASH_REMATCH[1]}
	}
	wait_for $((limit + 1)) "a new leader key" _other_leads
	sleep 0.5
	key_watch_stop
	t_del=$(key_watch_event_ms DELETE "$t_kill")
	t_put=$(key_watch_event_ms PUT "$t_kill")
	[[ "$t_del" =~ ^[0-9]+$ && "$t_put" =~ ^[0-9]+$ ]] ||
		fail "the key watch saw no DELETE then PUT of the leader key: $(cat "$T/keywatch.out")"
	FAILOVER_MS=$((t_put - t_kill))
	log "leader key: DELETE $((t_del - t_kill)) ms after the kill, PUT by node$NEW $((t_put - t_del)) ms after the DELETE"
	assert_lt "$FAILOVER_MS" $((limit * 1000)) "node$NEW took the leader key within $limit s of the kill (ms)"
	assert_lt $((t_put - t_del)) 2000 "a replica took the key within 2 s of its expiry (ms)"
	for n in "${!from[@]}"; do
		[ "$n" != "$OLD" ] || continue
		line=$(tail -n +$((${from[$n]} + 1)) "$(agent_log "$n")" | grep -m1 'leader key deleted or expired')
		[ -n "$line" ] || fail "node$n's watch did not deliver the leader key's expiry"
		pass "node$n's watch delivered the expiry $(($(log_ms "$line") - t_del)) ms after the DELETE"
	done
}
