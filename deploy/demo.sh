#!/bin/bash
# deploy/demo.sh - a three-node baton cluster on loopback, in one command.
#
#   deploy/demo.sh up       install missing Debian packages, create user baton,
#                           build, start one etcd and three Postgres+agent nodes,
#                           wait for one primary and two streaming replicas,
#                           print `batonctl list` and how to connect
#   deploy/demo.sh status   what runs, and `batonctl list`
#   deploy/demo.sh restart nodeN
#                           restart one agent (and its Postgres) with its
#                           conf/nodeN.conf as it is now (edit it first, e.g.
#                           tags); `up` writes a node's conf only when missing
#   deploy/demo.sh down     stop the agents (SIGTERM) and etcd, remove the data
#   deploy/demo.sh up --standby-of DIR
#                           a second site: a standby cluster (scope demo_dr,
#                           or demo when DIR's is demo_dr) of the demo in
#                           DIR, with its own etcd, following
#                           DIR's primary; give it its own BATON_DEMO_DIR and
#                           BATON_DEMO_PORT_OFFSET. It takes DIR's passwords and
#                           CA (a standby site is a copy of the other), so
#                           Postgres TLS proves each site to the other, and
#                           prints the site switchover to run
#
# Run as root on Debian 12. Everything lives under $BATON_DEMO_DIR (default
# /var/tmp/baton-demo), owned by user baton: src/ (a copy of this tree),
# build/, data/ (etcd and the three data directories), logs/, conf/, run/
# (PID files). Ports: etcd 127.0.0.1:23790 (peer 23800), Postgres 5441-5443,
# REST API 8008-8010, each plus $BATON_DEMO_PORT_OFFSET (default 0; give a
# second demo on the same machine its own BATON_DEMO_DIR and offset; it is
# kept in $BATON_DEMO_DIR/port_offset for the later commands). `up` is
# idempotent: it starts only what is not running. The cluster (scope) is
# named "demo": `batonctl list demo`, key /baton/demo/leader.
#
# The REST API is protected as in production: HTTPS with a certificate of a
# CA made here with openssl (conf/tls/), and writes only with a random
# password (conf/secrets); files mode 600, owned by baton. Postgres serves
# the same certificate to the other members (postgresql.tls), which connect
# with sslmode=verify-full and channel_binding=require over hostssl lines.
# batonctl reads all of it from a node's config file; it is not on PATH, so
# name the one built here: `runuser -u baton -- build/batonctl -c
# conf/node1.conf list`. $BATON_DEMO_DIR/pgpass (for psql as root) is root's.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$repo/tests/lib/packages.sh"

DEMO=${BATON_DEMO_DIR:-/var/tmp/baton-demo}
U=baton
PG_BIN=/usr/lib/postgresql/15/bin
# The offset a demo was started with is kept in its directory, so that
# status, restart and down find its ports without being told again.
OFF=${BATON_DEMO_PORT_OFFSET:-$(cat "$DEMO/port_offset" 2>/dev/null || echo 0)}
case $OFF in
'' | *[!0-9]*) echo "demo: BATON_DEMO_PORT_OFFSET must be a number from 0 to 20000 (got '$OFF')" >&2; exit 2 ;;
esac
[ "$OFF" -le 20000 ] || { echo "demo: BATON_DEMO_PORT_OFFSET must be a number from 0 to 20000 (got '$OFF')" >&2; exit 2; }
ETCD_PORT=$((23790 + OFF))
ETCD_PEER_PORT=$((23800 + OFF))
PG_PORTS=($((5441 + OFF)) $((5442 + OFF)) $((5443 + OFF)))
API_PORTS=($((8008 + OFF)) $((8009 + OFF)) $((8010 + OFF)))
# The scope too (demo, or demo_dr for a standby site), kept in $DEMO/scope.
SCOPE=$(cat "$DEMO/scope" 2>/dev/null || echo demo)
STANDBY_OF= # up --standby-of DIR: the other demo's directory
SB_PORT=    # ... and the Postgres port of its primary, which this site follows

die() { echo "demo: $*" >&2; exit 1; }
say() { echo "demo: $*"; }

pid_alive() {
	local pid=$1 st
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	st=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# running NAME EXE: true if run/NAME.pid names a live process running EXE.
running() {
	local pid
	pid=$(cat "$DEMO/run/$1.pid" 2>/dev/null) || return 1
	pid_alive "$pid" || return 1
	[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$2" ]
}

etcdctl_() {
	ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$ETCD_PORT" --dial-timeout=1s --command-timeout=2s "$@"
}

port_busy() { [ -n "$(ss -ltnH "( sport = :$1 )" 2>/dev/null)" ]; }
# ports_free PORT...: none is taken, else says which and how to move.
ports_free() {
	local p
	for p in "$@"; do
		if port_busy "$p"; then
			echo "demo: port $p is taken by another process (another demo? give this one its own" \
				"BATON_DEMO_DIR and BATON_DEMO_PORT_OFFSET, e.g. 100)" >&2
			return 1
		fi
	done
}

secret() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# make_certs: the demo's CA and one REST API certificate for 127.0.0.1 and
# localhost (all three nodes run here), made once in conf/tls.
make_certs() {
	local d=$DEMO/conf/tls
	[ -f "$d/restapi.crt" ] && return 0
	mkdir -p "$d"
	(
		cd "$d" || exit 1
		set -e
		umask 077
		k=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
		openssl req -x509 "${k[@]}" -keyout ca.key -out ca.crt -days 825 -subj /CN=baton-demo-ca
		openssl req "${k[@]}" -keyout restapi.key -out restapi.csr -subj /CN=baton-demo
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >san.ext
		openssl x509 -req -in restapi.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
			-extfile san.ext -out restapi.crt
		rm -f restapi.csr san.ext ca.srl
	) >"$DEMO/logs/openssl.log" 2>&1 || die "openssl could not make the certificates (see $DEMO/logs/openssl.log)"
	chown -R "$U:" "$d"
	chmod 700 "$d"
	chmod 600 "$d"/*
	say "REST API certificates made in $d (CA: $d/ca.crt)"
}

render_config() {
	local n=$1 i=$(($1 - 1)) standby=
	[ -z "$SB_PORT" ] || standby="
          standby_cluster = { host = \"127.0.0.1\"; port = $SB_PORT; };"
	cat >"$DEMO/conf/node$n.conf" <<EOF
# baton demo node$n (written by deploy/demo.sh)
scope = "$SCOPE";
name = "node$n";
namespace = "/baton";
etcd = { hosts = [ "127.0.0.1:$ETCD_PORT" ]; };
restapi = {
  listen = "127.0.0.1:${API_PORTS[$i]}";
  connect_address = "127.0.0.1:${API_PORTS[$i]}";
  certfile = "$DEMO/conf/tls/restapi.crt";
  keyfile = "$DEMO/conf/tls/restapi.key";
  cafile = "$DEMO/conf/tls/ca.crt";
  authentication = { username = "baton-admin"; password = "$REST_PW"; };
};
bootstrap = {
  dcs = { ttl = 5; loop_wait = 1; retry_timeout = 2; maximum_lag_on_failover = 1048576;$standby };
};
postgresql = {
  bin_dir = "$PG_BIN";
  data_dir = "$DEMO/data/node$n";
  listen = "127.0.0.1:${PG_PORTS[$i]}";
  connect_address = "127.0.0.1:${PG_PORTS[$i]}";
  socket_dir = "$DEMO/run";
  authentication = {
    superuser = { username = "postgres"; password = "$SU_PW"; };
    replication = { username = "replicator"; password = "$REPL_PW"; };
  };
  tls = { certfile = "$DEMO/conf/tls/restapi.crt"; keyfile = "$DEMO/conf/tls/restapi.key";
          cafile = "$DEMO/conf/tls/ca.crt"; };
  pg_hba = [
    "local all all scram-sha-256",
    "hostssl all all 127.0.0.1/32 scram-sha-256",
    "hostssl replication replicator 127.0.0.1/32 scram-sha-256"
  ];
};
EOF
	chown "$U:" "$DEMO/conf/node$n.conf"
	chmod 600 "$DEMO/conf/node$n.conf"
}

# healthy: one leader whose Postgres has two streaming replicas.
healthy() {
	local leader i j st
	leader=$(etcdctl_ get --print-value-only "/baton/$SCOPE/leader" 2>/dev/null | head -n1)
	[[ "$leader" =~ ^node([1-3])$ ]] || return 1
	i=$((BASH_REMATCH[1] - 1))
	# Asked of each replica, not counted on the primary: a pg_basebackup
	# still cloning also shows there as a streaming WAL sender.
	# The leader passes when it is a primary, or a standby leader streaming
	# from the other site.
	for j in 0 1 2; do
		local q="pg_is_in_recovery() AND (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming') = 1"
		[ "$j" = "$i" ] && q="NOT pg_is_in_recovery() OR ($q)"
		st=$(PGPASSFILE="$DEMO/pgpass" PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -X -A -t -h 127.0.0.1 -p "${PG_PORTS[$j]}" \
			-U postgres -d postgres -c "SELECT $q" 2>/dev/null)
		[ "$st" = t ] || return 1
	done
}

list() {
	runuser -u "$U" -- "$DEMO/build/batonctl" -c "$DEMO/conf/node1.conf" list
}

# standby_prepare DIR: for `up --standby-of DIR`, before anything is built:
# DIR must be another running demo; this one takes its passwords and TLS
# files (a standby site is a copy of the other: the same replication and
# superuser passwords, and the same CA, so that Postgres TLS proves each
# site to the other) and follows its primary at its Postgres port (SB_PORT).
standby_prepare() {
	local of=$1 of_off of_scope of_leader f
	[ -d "$of" ] || die "--standby-of $of: no such directory (the demo to follow, e.g. /var/tmp/baton-demo)"
	of=$(cd "$of" && pwd)
	[ "$of" != "$(cd "$DEMO" && pwd)" ] ||
		die "--standby-of $of is this demo's own directory: give the standby site its own BATON_DEMO_DIR and BATON_DEMO_PORT_OFFSET"
	for f in conf/secrets conf/tls/ca.crt conf/tls/restapi.crt conf/tls/restapi.key port_offset; do
		[ -f "$of/$f" ] || die "--standby-of $of: $of/$f is missing (is a demo running there? start it with deploy/demo.sh up)"
	done
	of_off=$(cat "$of/port_offset")
	[[ "$of_off" =~ ^[0-9]+$ ]] || die "--standby-of $of: $of/port_offset is not a number"
	[ "$of_off" != "$OFF" ] ||
		die "--standby-of $of: that demo uses port offset $OFF too; give this one another BATON_DEMO_PORT_OFFSET (e.g. $((of_off + 100)))"
	of_scope=$(cat "$of/scope" 2>/dev/null || echo demo)
	# Whether it is a standby cluster now is in its config key, not its
	# name: a promoted demo_dr is a primary site to follow.
	ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$((23790 + of_off))" --dial-timeout=1s --command-timeout=2s \
		get --print-value-only "/baton/$of_scope/config" 2>/dev/null | grep -q '"standby_cluster"' &&
		die "--standby-of $of: that demo (cluster $of_scope) is itself a standby cluster; follow the site it follows"
	of_leader=$(ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$((23790 + of_off))" --dial-timeout=1s \
		--command-timeout=2s get --print-value-only "/baton/$of_scope/leader" 2>/dev/null | head -n1)
	[[ "$of_leader" =~ ^node([1-3])$ ]] ||
		die "--standby-of $of: its etcd (127.0.0.1:$((23790 + of_off))) names no leader of cluster $of_scope; is it up?"
	SB_PORT=$((5440 + BASH_REMATCH[1] + of_off))
	STANDBY_OF=$of
	# Two sites need two scope names (site-switchover refuses one name).
	SCOPE=demo_dr
	[ "$of_scope" != demo_dr ] || SCOPE=demo
	echo "$SCOPE" >"$DEMO/scope"
	echo "$of" >"$DEMO/standby_of"
	mkdir -p "$DEMO/conf/tls"
	cp "$of/conf/secrets" "$DEMO/conf/secrets"
	cp "$of/conf/tls/ca.crt" "$of/conf/tls/restapi.crt" "$of/conf/tls/restapi.key" "$DEMO/conf/tls/"
	chown -R "$U:" "$DEMO/conf"
	chmod 700 "$DEMO/conf/tls"
	chmod 600 "$DEMO/conf/secrets" "$DEMO/conf/tls"/*
	say "standby site of $of (cluster $of_scope): following its primary $of_leader at 127.0.0.1:$SB_PORT," \
		"with its passwords and CA"
}

cmd_up() {
	local n i pid down_cmd
	[ "$(id -u)" = 0 ] || die "run as root (it installs packages and creates user $U)"
	pkg_ensure || die "package installation failed"
	user_ensure "$U" || die "cannot create user $U"
	mkdir -p "$DEMO"/{conf,data,logs,run}
	chown "$U:" "$DEMO" "$DEMO"/{conf,data,logs,run}
	chmod 755 "$DEMO"
	echo "$OFF" >"$DEMO/port_offset"
	if [ -n "$STANDBY_OF" ]; then
		[ ! -f "$DEMO/conf/node1.conf" ] || [ -f "$DEMO/standby_of" ] ||
			die "$DEMO already holds a demo (cluster $SCOPE): run $0 down there first, or give another BATON_DEMO_DIR"
		if [ -f "$DEMO/conf/node1.conf" ]; then
			say "keeping the standby site's files as they are (it follows $(cat "$DEMO/standby_of" 2>/dev/null))"
			STANDBY_OF=
		else
			standby_prepare "$STANDBY_OF"
		fi
	fi
	# Before the build: a port another process holds stops us at once.
	running etcd /usr/bin/etcd || ports_free "$ETCD_PORT" "$ETCD_PEER_PORT" || exit 1
	for n in 1 2 3; do
		running "node$n" "$DEMO/build/baton" || ports_free "${PG_PORTS[$((n - 1))]}" "${API_PORTS[$((n - 1))]}" || exit 1
	done

	say "building in $DEMO/build"
	src_copy "$repo" "$DEMO/src" "$U" || die "cannot copy the source tree"
	build_tree "$DEMO/src" "$DEMO/build" "$U" >"$DEMO/logs/build.log" 2>&1 ||
		{ tail -n 30 "$DEMO/logs/build.log"; die "build failed (full log: $DEMO/logs/build.log)"; }

	# Passwords: made once, kept for later runs.
	if [ ! -f "$DEMO/conf/secrets" ]; then
		printf 'SU_PW=%s\nREPL_PW=%s\nREST_PW=%s\n' "$(secret)" "$(secret)" "$(secret)" >"$DEMO/conf/secrets"
	fi
	chown "$U:" "$DEMO/conf/secrets" # as the header says (also for an older demo's root-owned file)
	chmod 600 "$DEMO/conf/secrets"
	. "$DEMO/conf/secrets"
	if [ -z "${REST_PW:-}" ]; then # secrets of an older demo
		REST_PW=$(secret)
		printf 'REST_PW=%s\n' "$REST_PW" >>"$DEMO/conf/secrets"
	fi
	make_certs
	printf '127.0.0.1:*:*:postgres:%s\n' "$SU_PW" >"$DEMO/pgpass"
	chmod 600 "$DEMO/pgpass"
	# A node's conf is written when missing: an operator's edits (tags,
	# parameters) survive `up` and `restart` (down removes conf/).
	for n in 1 2 3; do
		if [ -f "$DEMO/conf/node$n.conf" ]; then
			say "keeping conf/node$n.conf as it is"
		else
			render_config "$n"
		fi
	done

	if running etcd /usr/bin/etcd; then
		say "etcd already running (pid $(cat "$DEMO/run/etcd.pid"))"
	else
		port_busy "$ETCD_PORT" && die "port $ETCD_PORT is taken by another process"
		setsid setpriv --reuid="$U" --regid="$U" --init-groups -- /usr/bin/etcd --name demo \
			--data-dir "$DEMO/data/etcd" \
			--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
			--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
			--initial-cluster "demo=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
			--logger zap --log-outputs "$DEMO/logs/etcd.log" </dev/null >>"$DEMO/logs/etcd.out" 2>&1 &
		echo $! >"$DEMO/run/etcd.pid"
		for i in $(seq 1 100); do
			etcdctl_ endpoint health >/dev/null 2>&1 && break
			running etcd /usr/bin/etcd || die "etcd exited; see $DEMO/logs/etcd.log"
			sleep 0.2
		done
		etcdctl_ endpoint health >/dev/null 2>&1 || die "etcd does not answer on $ETCD_PORT"
		say "etcd started on 127.0.0.1:$ETCD_PORT"
	fi

	# HOME is a directory the agents' user owns ($DEMO): libpq reads
	# ~/.postgresql/ for every TLS connection (pooler_target, peers), and
	# root's HOME, inherited through setpriv, is not readable by $U.
	for n in 1 2 3; do
		i=$((n - 1))
		if running "node$n" "$DEMO/build/baton"; then
			say "node$n already running (pid $(cat "$DEMO/run/node$n.pid"))"
			continue
		fi
		port_busy "${PG_PORTS[$i]}" && die "port ${PG_PORTS[$i]} is taken by another process"
		port_busy "${API_PORTS[$i]}" && die "port ${API_PORTS[$i]} is taken by another process"
		setsid setpriv --reuid="$U" --regid="$U" --init-groups -- env HOME="$DEMO" \
			"$DEMO/build/baton" -c "$DEMO/conf/node$n.conf" </dev/null >>"$DEMO/logs/node$n.log" 2>&1 &
		pid=$!
		echo "$pid" >"$DEMO/run/node$n.pid"
		say "node$n started (pid $pid, Postgres 127.0.0.1:${PG_PORTS[$i]}, API 127.0.0.1:${API_PORTS[$i]}, log $DEMO/logs/node$n.log)"
	done

	if [ -f "$DEMO/standby_of" ]; then
		say "waiting for the standby leader and two streaming replicas (up to 120 s)"
	else
		say "waiting for one primary and two streaming replicas (up to 120 s)"
	fi
	for i in $(seq 1 240); do
		healthy && break
		sleep 0.5
	done
	if ! healthy; then
		for n in 1 2 3; do echo "--- $DEMO/logs/node$n.log"; tail -n 15 "$DEMO/logs/node$n.log"; done
		die "the cluster did not become healthy; logs above"
	fi
	echo
	list
	echo
	# The stop hint must reach this demo: with the directory it was started with.
	down_cmd="$0 down"
	# A standby site takes no writes: its connect line asks for any server.
	local tsa=read-write
	[ ! -f "$DEMO/standby_of" ] || tsa=any
	[ "$DEMO" = /var/tmp/baton-demo ] || down_cmd="BATON_DEMO_DIR=$(printf '%q' "$DEMO") $down_cmd"
	local sw_hint="switchover --force" fail_hint="or whichever node is the primary"
	if [ -f "$DEMO/standby_of" ]; then
		sw_hint="show-config"
		fail_hint="its standby leader: another member takes over, nothing promotes"
	fi
	cat <<EOF
Connect (the password is in $DEMO/pgpass):
  PGPASSFILE=$DEMO/pgpass psql "host=127.0.0.1,127.0.0.1,127.0.0.1 port=${PG_PORTS[0]},${PG_PORTS[1]},${PG_PORTS[2]} user=postgres dbname=postgres target_session_attrs=$tsa"
List the members, switch over (batonctl takes the CA and the REST password
from the config file; both are readable by $U only):
  runuser -u $U -- $DEMO/build/batonctl -c $DEMO/conf/node1.conf list
  runuser -u $U -- $DEMO/build/batonctl -c $DEMO/conf/node1.conf $sw_hint
The REST API (HTTPS; writes need user baton-admin and REST_PW from $DEMO/conf/secrets):
  curl --cacert $DEMO/conf/tls/ca.crt https://127.0.0.1:${API_PORTS[0]}/cluster
The leader key:
  ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:$ETCD_PORT get --print-value-only /baton/$SCOPE/leader
Try a failover:
  kill -9 \$(cat $DEMO/run/node1.pid)     # $fail_hint
Stop and remove everything:
  $down_cmd
EOF
	[ -f "$DEMO/standby_of" ] || return 0
	local of
	of=$(cat "$DEMO/standby_of" 2>/dev/null)
	cat <<EOF

This is a standby site (cluster $SCOPE, its own etcd) of the demo in $of:
its standby leader streams from that site's primary, its other members from
it, and nothing here takes writes. A row written there is replayed here:
  PGPASSFILE=$DEMO/pgpass psql "host=127.0.0.1 port=${PG_PORTS[0]} user=postgres dbname=postgres" -c 'SELECT pg_last_wal_replay_lsn()'
Site switchover (the other site demoted, this one promoted once it has all
of its WAL: no acknowledged write lost), then back:
  runuser -u $U -- $DEMO/build/batonctl -c $of/conf/node1.conf site-switchover --to-config $DEMO/conf/node1.conf --force
  runuser -u $U -- $DEMO/build/batonctl -c $DEMO/conf/node1.conf site-switchover --to-config $of/conf/node1.conf --force
It follows one member's address, not a proxy: after a failover on the other
site, point it at the new primary's port with
  runuser -u $U -- $DEMO/build/batonctl -c $DEMO/conf/node1.conf demote-cluster --host 127.0.0.1 --port PORT --force
EOF
}

# stop NAME EXE SECONDS: SIGTERM, bounded wait, then SIGKILL.
stop() {
	local name=$1 exe=$2 secs=$3 pid i
	running "$name" "$exe" || { rm -f "$DEMO/run/$name.pid"; return 0; }
	pid=$(cat "$DEMO/run/$name.pid")
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 $((secs * 10))); do
		pid_alive "$pid" || break
		sleep 0.1
	done
	if pid_alive "$pid"; then
		say "$name (pid $pid) did not stop in $secs s: killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$DEMO/run/$name.pid"
	say "$name stopped"
}

cmd_down() {
	local n f pid leader
	[ "$(id -u)" = 0 ] || die "run as root"
	[ -d "$DEMO" ] || { say "nothing to stop ($DEMO does not exist)"; return 0; }
	if ! running etcd /usr/bin/etcd && ! running node1 "$DEMO/build/baton" && ! running node2 "$DEMO/build/baton" &&
		! running node3 "$DEMO/build/baton"; then
		rm -rf "$DEMO/data" "$DEMO/run" "$DEMO/conf" "$DEMO/pgpass" "$DEMO/scope" "$DEMO/standby_of"
		say "nothing was running in $DEMO; its data is removed (build and logs kept)"
		return 0
	fi
	# Replicas first, the leader last, so stopping causes no failover (the
	# leader is asked of this demo's own etcd only).
	leader=
	running etcd /usr/bin/etcd && leader=$(etcdctl_ get --print-value-only "/baton/$SCOPE/leader" 2>/dev/null | head -n1)
	for n in 1 2 3; do [ "node$n" = "$leader" ] || stop "node$n" "$DEMO/build/baton" 30; done
	for n in 1 2 3; do [ "node$n" != "$leader" ] || stop "node$n" "$DEMO/build/baton" 30; done
	# A postmaster that outlived its agent (it should not): stop it too.
	for f in "$DEMO"/data/node*/postmaster.pid; do
		[ -f "$f" ] || continue
		pid=$(head -n1 "$f")
		pid_alive "$pid" && [ "$(readlink "/proc/$pid/cwd")" = "$(dirname "$f")" ] || continue
		say "stopping leftover postmaster $pid"
		kill -INT "$pid"
		sleep 2
		pid_alive "$pid" && kill -KILL "$pid"
	done
	stop etcd /usr/bin/etcd 10
	rm -rf "$DEMO/data" "$DEMO/run" "$DEMO/conf" "$DEMO/pgpass" "$DEMO/scope" "$DEMO/standby_of"
	say "stopped; data removed (build and logs kept in $DEMO; rm -rf $DEMO to remove them)"
}

# restart nodeN: SIGTERM to its agent (it stops its Postgres, and a leader
# hands its key over first), then start it again with its conf as it is.
cmd_restart() {
	local name=${1:-} n i pid
	[ "$(id -u)" = 0 ] || die "run as root"
	case $name in node1 | node2 | node3) ;; *) die "usage: $0 restart node1|node2|node3" ;; esac
	n=${name#node}
	i=$((n - 1))
	[ -f "$DEMO/conf/$name.conf" ] || die "$DEMO/conf/$name.conf is missing: run $0 up first"
	stop "$name" "$DEMO/build/baton" 30
	port_busy "${PG_PORTS[$i]}" && die "port ${PG_PORTS[$i]} is still taken after stopping $name"
	port_busy "${API_PORTS[$i]}" && die "port ${API_PORTS[$i]} is still taken after stopping $name"
	setsid setpriv --reuid="$U" --regid="$U" --init-groups -- env HOME="$DEMO" \
		"$DEMO/build/baton" -c "$DEMO/conf/$name.conf" </dev/null >>"$DEMO/logs/$name.log" 2>&1 &
	pid=$!
	echo "$pid" >"$DEMO/run/$name.pid"
	say "$name started again (pid $pid, log $DEMO/logs/$name.log)"
	for i in $(seq 1 120); do
		healthy && break
		sleep 0.5
	done
	healthy || say "the cluster is not healthy yet: see $DEMO/logs/$name.log"
	list
}

cmd_status() {
	local n
	[ -d "$DEMO/run" ] || { say "not running"; return 0; }
	if running etcd /usr/bin/etcd; then say "etcd: running (pid $(cat "$DEMO/run/etcd.pid"))"; else say "etcd: stopped"; fi
	for n in 1 2 3; do
		if running "node$n" "$DEMO/build/baton"; then
			say "node$n: running (pid $(cat "$DEMO/run/node$n.pid"))"
		else
			say "node$n: stopped"
		fi
	done
	[ -f "$DEMO/conf/node1.conf" ] && list
	return 0
}

case ${1:-} in
up)
	case ${2:-} in
	'') ;;
	--standby-of)
		[ -n "${3:-}" ] || { echo "usage: $0 up [--standby-of DIR]" >&2; exit 2; }
		STANDBY_OF=$3
		;;
	*) echo "usage: $0 up [--standby-of DIR]" >&2; exit 2 ;;
	esac
	cmd_up
	;;
down) cmd_down ;;
status) cmd_status ;;
restart) cmd_restart "${2:-}" ;;
*) echo "usage: $0 up [--standby-of DIR]|down|status|restart nodeN" >&2; exit 2 ;;
esac
