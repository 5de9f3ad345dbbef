# tests/lib/pgbouncer.sh - a PgBouncer in front of a test cluster (sourced
# after tests/lib/cluster.sh), for 47_pgbouncer_switchover.sh and
# tests/bench/pooler_switchover.sh.
#
#   pgbouncer_pick_ports        PGB_PORT and HAPROXY_PORT, before node_config
#   pgbouncer_node_config N     appends poolers / pooler_target to nodeN's file
#   pgbouncer_start             starts it (foreground, user baton, tracked in
#                               BG_PIDS so the harness's trap stops it)
#   pgbouncer_admin SQL         runs SQL on its admin console (psql), prints
#                               what psql prints, returns psql's status
#
# Layout: the pooler sends its server connections to HAProxy (haproxy_start
# of cluster.sh, routing to whichever node answers GET /primary) over TLS,
# verify-full against the test CA when PG_TLS=1; transaction pooling; the
# clients and the admin console authenticate with SCRAM from its auth file
# (plain passwords, which it also uses to log in to Postgres).
# PGBOUNCER_BIN (default /usr/sbin/pgbouncer); pgbouncer_have says whether
# it is installed (Debian package pgbouncer).

PGBOUNCER_BIN=${PGBOUNCER_BIN:-/usr/sbin/pgbouncer}
PGB_PASSWORD=${PGB_PASSWORD:-pgb-secret-$$}
PGB_PORT=
PGB_PID=
PGB_PAUSE_TIMEOUT=${PGB_PAUSE_TIMEOUT:-10}
PGB_RESUME_TIMEOUT=${PGB_RESUME_TIMEOUT:-30}

pgbouncer_have() { [ -x "$PGBOUNCER_BIN" ]; }

pgbouncer_pick_ports() {
	[ -n "$PGB_PORT" ] || pick_port PGB_PORT
	[ -n "$HAPROXY_PORT" ] || pick_port HAPROXY_PORT
}

# pgbouncer_node_config N: nodeN pauses the pooler around its switchovers
# and resumes it once HAProxy's address answers read-write.
pgbouncer_node_config() {
	local n=$1 tls=
	[ "$PG_TLS" != 1 ] || tls=" sslmode=verify-full sslrootcert=$REST_TLS_DIR/ca.pem"
	cat >>"$T/node$n.conf" <<EOF
poolers = [ "host=127.0.0.1 port=$PGB_PORT user=pgbouncer password=$PGB_PASSWORD" ];
pooler_pause_timeout = $PGB_PAUSE_TIMEOUT;
pooler_resume_timeout = $PGB_RESUME_TIMEOUT;
pooler_target = "host=127.0.0.1 port=$HAPROXY_PORT user=postgres dbname=postgres password=$SU_PASSWORD$tls";
EOF
}

pgbouncer_start() {
	local tls=
	pgbouncer_have || fail "pgbouncer is not installed ($PGBOUNCER_BIN)"
	[ "$PG_TLS" != 1 ] || tls="server_tls_sslmode = verify-full
server_tls_ca_file = $REST_TLS_DIR/ca.pem"
	printf '"postgres" "%s"\n"pgbouncer" "%s"\n' "$SU_PASSWORD" "$PGB_PASSWORD" >"$T/pgb-users.txt"
	cat >"$T/pgbouncer.ini" <<EOF
[databases]
postgres = host=127.0.0.1 port=$HAPROXY_PORT dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $T/pgb-users.txt
admin_users = pgbouncer
pool_mode = transaction
default_pool_size = 10
logfile = $T/pgbouncer.log
$tls
EOF
	chown "$BATON_USER:" "$T/pgb-users.txt" "$T/pgbouncer.ini"
	chmod 600 "$T/pgb-users.txt"
	setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- "$PGBOUNCER_BIN" "$T/pgbouncer.ini" \
		>"$T/pgbouncer.out" 2>&1 &
	PGB_PID=$!
	BG_PIDS+=("$PGB_PID")
	wait_for 10 "pgbouncer listens on port $PGB_PORT" pgbouncer_listening
	log "$("$PGBOUNCER_BIN" --version | head -n1) (pid $PGB_PID) on 127.0.0.1:$PGB_PORT, servers through HAProxy on $HAPROXY_PORT"
}
pgbouncer_listening() {
	pid_alive "$PGB_PID" || fail "pgbouncer exited (see $T/pgbouncer.out)"
	[ -n "$(ss -ltnH "( sport = :$PGB_PORT )" 2>/dev/null)" ]
}

# pgbouncer_client: the conninfo of the pooled database for the test's clients.
pgbouncer_client() { echo "host=127.0.0.1 port=$PGB_PORT dbname=postgres user=postgres connect_timeout=3"; }

pgbouncer_admin() {
	env PGPASSFILE=/dev/null psql -X -q \
		"host=127.0.0.1 port=$PGB_PORT dbname=pgbouncer user=pgbouncer password=$PGB_PASSWORD connect_timeout=3" \
		-c "$1" 2>&1
}
