# tests/bench/patroni.sh - Patroni nodes for tests/bench/compare.sh (sourced
# after tests/lib/cluster.sh).
#
# Runs Debian's Patroni (the `patroni` package, 3.0.2) as the nodes of the
# harness's cluster, so that the harness's helpers work for both tools
# unchanged: a Patroni node N uses the same PG_PORT[N], API_PORT[N] and data
# dir ($T/nodeN) a baton node would, its process is recorded in AGENT_PID[N]
# (so agent_stop, agent_kill, agent_wait_exit and the cleanup trap handle it),
# and its keys live under PATRONI_NAMESPACE/SCOPE in the same etcd, whose
# `leader` key holds the leader's name like baton's does (so leader_name and
# cluster_healthy work once NAMESPACE is set to PATRONI_NAMESPACE).
#
# Patroni runs as the baton user (Postgres refuses root) with Debian's
# /usr/bin/python3, which has python3-psycopg2. Its etcd v3 settings live
# under `etcd3:`; the timing (TTL, LOOP_WAIT, RETRY_TIMEOUT, MAX_LAG) goes to
# bootstrap.dcs, so it applies to a cluster bootstrapped after it is set.
# Note: Patroni starts the postmaster through a separate short-lived process,
# so the postmaster is not Patroni's child and outlives a killed Patroni.

PATRONI_BIN=${PATRONI_BIN:-/usr/bin/patroni}
PATRONICTL_BIN=${PATRONICTL_BIN:-/usr/bin/patronictl}
PATRONI_NAMESPACE=${PATRONI_NAMESPACE:-/patroni}

# patroni_check: Patroni is installed and its Python finds psycopg2; prints
# the version. Returns 1 with a message naming what is missing.
patroni_check() {
	local py
	[ -x "$PATRONI_BIN" ] || { echo "patroni is not installed ($PATRONI_BIN)"; return 1; }
	py=$(head -n1 "$PATRONI_BIN" | sed -E 's/^#![[:space:]]*//; s/[[:space:]].*$//')
	[ -x "$py" ] || { echo "patroni's interpreter $py is missing"; return 1; }
	"$py" -c 'import psycopg2' 2>/dev/null || { echo "$py cannot import psycopg2 (install python3-psycopg2)"; return 1; }
	"$PATRONI_BIN" --version
}

patroni_conf() { echo "$T/patroni-node$1.yml"; }
patroni_log() { echo "$T/patroni-node$1.log"; }

# patroni_config N: renders nodeN's YAML, picking its ports on first use.
# Values are single-quoted YAML scalars (test paths and generated passwords
# hold no single quote).
patroni_config() {
	local n=$1 f
	f=$(patroni_conf "$1")
	[ -n "${PG_PORT[$n]:-}" ] || pick_port "PG_PORT[$n]"
	[ -n "${API_PORT[$n]:-}" ] || pick_port "API_PORT[$n]"
	cat >"$f" <<EOF
# node$n of $TEST_NAME (rendered by tests/bench/patroni.sh)
scope: '$SCOPE'
namespace: '$PATRONI_NAMESPACE/'
name: 'node$n'
log:
  level: INFO
restapi:
  listen: '127.0.0.1:${API_PORT[$n]}'
  connect_address: '127.0.0.1:${API_PORT[$n]}'
etcd3:
  hosts: '127.0.0.1:$ETCD_PORT'
bootstrap:
  dcs:
    ttl: $TTL
    loop_wait: $LOOP_WAIT
    retry_timeout: $RETRY_TIMEOUT
    maximum_lag_on_failover: $MAX_LAG
    postgresql:
      use_pg_rewind: true
  initdb:
    - encoding: UTF8
postgresql:
  listen: '127.0.0.1:${PG_PORT[$n]}'
  connect_address: '127.0.0.1:${PG_PORT[$n]}'
  data_dir: '$T/node$n'
  bin_dir: '$PG_BIN'
  pgpass: '$T/node$n.pgpass'
  use_pg_rewind: true
  authentication:
    superuser:
      username: postgres
      password: '$SU_PASSWORD'
    replication:
      username: replicator
      password: '$REPL_PASSWORD'
  parameters:
    shared_buffers: 32MB
    unix_socket_directories: '$T'
  pg_hba:
    - local all all scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
    - host replication replicator 127.0.0.1/32 scram-sha-256
EOF
	chown "$BATON_USER:" "$f"
	chmod 600 "$f"
}

# patroni_start N: starts nodeN's Patroni as the baton user (log appended to
# $T/patroni-nodeN.log); sets AGENT_PID[N]. Not in a subshell ($! is kept).
patroni_start() {
	local n=$1 lf
	lf=$(patroni_log "$n")
	[ -f "$(patroni_conf "$n")" ] || patroni_config "$n"
	[ "$n" -le "$N_NODES" ] || N_NODES=$n
	printf -- '----- start of node%s at %s\n' "$n" "$(date +%T.%3N)" >>"$lf"
	chown "$BATON_USER:" "$lf"
	# From the test dir: with a cwd baton cannot enter (a CI clone under
	# /root), Patroni's initdb hung in its post-bootstrap step.
	cd "$T" || fail "cannot enter $T"
	setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
		env HOME="$T" "$PATRONI_BIN" "$(patroni_conf "$n")" >>"$lf" 2>&1 &
	AGENT_PID[$n]=$!
	cd - >/dev/null || true
	log "started patroni node$n (pid ${AGENT_PID[$n]}, pg ${PG_PORT[$n]}, api ${API_PORT[$n]})"
}

# patroni_switchover OLD NEW: a planned switchover with patronictl (3.0.2:
# --leader/--candidate/--force). Returns patronictl's status; its output
# goes to $T/patronictl.log.
patroni_switchover() {
	local old=$1 new=$2
	as_baton env HOME="$T" timeout 60 "$PATRONICTL_BIN" -c "$(patroni_conf "$old")" switchover \
		--leader "node$old" --candidate "node$new" --force </dev/null >>"$T/patronictl.log" 2>&1
}
