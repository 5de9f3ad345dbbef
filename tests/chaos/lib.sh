# tests/chaos/lib.sh - the fault-injection suite's harness (sourced by
# tests/chaos/run.sh after tests/lib/cluster.sh).
#
# The integration harness runs everything on loopback, where a network
# partition cannot be made. Here every baton node (agent + Postgres) and every
# etcd member lives in its own network namespace, created by this script and
# named after its PID (bc<PID>-n1, bc<PID>-e1, bc<PID>-hub), so parallel runs
# never clash. Each namespace has its loopback up and one veth link (eth0)
# whose peer is enslaved to a bridge in the hub namespace; nothing is created
# in the root namespace and nothing is routed anywhere. Addresses are
# $CHAOS_NET.N/24 (nodes .1-.9, etcd members .11-.19, the hub .254): they
# exist only inside these namespaces, so every client of the test (psql,
# etcdctl, the writers, the poller) runs in the hub namespace through
# `ip netns exec`.
#
# cluster.sh's functions are reused where they are address-free (waits,
# PIDs, postmaster_pid, cluster_healthy, dump_logs...) and replaced here where
# they assume 127.0.0.1 (node_config, agent_start, run_sql, etcdctl, etcd
# members, writer/poller start). The cleanup trap resumes stopped agents,
# stops what this run started, kills whatever still runs inside the
# namespaces it created (nothing else ever runs there), deletes those
# namespaces and removes the test dir unless KEEP=1.
#
# Partitions are iptables DROP rules inside the primary's namespace (silent
# loss, as a dead switch port looks), removed to heal.

. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"

CHAOS_NET=${CHAOS_NET:-10.77.0}
CHAOS_NS=bc$$
NS_HUB=$CHAOS_NS-hub
HUB_IP=$CHAOS_NET.254
ETCD_CLIENT_PORT=2379
ETCD_RAFT_PORT=2380
SYNC_MODE=off # off | on | strict (set by run.sh before node_config)
declare -a NS_CREATED=() NODE_NS=() NODE_IP=() ETCD_NS=() ETCD_IP=()
declare -A PARTITIONED=()

hub() { ip netns exec "$NS_HUB" "$@"; }

# ---------------------------------------------------------------- network

# ns_add NAME: a new namespace with its loopback up (recorded for cleanup).
ns_add() {
	ip netns add "$1" || fail "cannot create network namespace $1"
	NS_CREATED+=("$1")
	ip -n "$1" link set lo up || fail "cannot bring up lo in $1"
}

# ns_attach NAME IP TAG: a veth pair, eth0 (with IP/24) in NAME and TAG
# enslaved to the hub's bridge.
ns_attach() {
	local ns=$1 ip_=$2 tag=$3
	ip -n "$NS_HUB" link add "$tag" type veth peer name eth0 netns "$ns" ||
		fail "cannot create the veth pair $tag/eth0 for $ns"
	ip -n "$NS_HUB" link set "$tag" master br0 up || fail "cannot attach $tag to the bridge"
	ip -n "$ns" addr add "$ip_/24" dev eth0 || fail "cannot address eth0 in $ns"
	ip -n "$ns" link set eth0 up || fail "cannot bring up eth0 in $ns"
}

# net_setup NODES MEMBERS: the hub with its bridge, then one namespace per
# node and per etcd member.
net_setup() {
	local n_nodes=$1 n_members=$2 i
	ns_add "$NS_HUB"
	ip -n "$NS_HUB" link add br0 type bridge || fail "cannot create the bridge in $NS_HUB"
	ip -n "$NS_HUB" addr add "$HUB_IP/24" dev br0 || fail "cannot address the bridge"
	ip -n "$NS_HUB" link set br0 up || fail "cannot bring up the bridge"
	for i in $(seq 1 "$n_nodes"); do
		NODE_NS[$i]=$CHAOS_NS-n$i
		NODE_IP[$i]=$CHAOS_NET.$i
		ns_add "${NODE_NS[$i]}"
		ns_attach "${NODE_NS[$i]}" "${NODE_IP[$i]}" "vn$i"
	done
	for i in $(seq 1 "$n_members"); do
		ETCD_NS[$i]=$CHAOS_NS-e$i
		ETCD_IP[$i]=$CHAOS_NET.$((10 + i))
		ns_add "${ETCD_NS[$i]}"
		ns_attach "${ETCD_NS[$i]}" "${ETCD_IP[$i]}" "ve$i"
	done
	log "namespaces ${NS_CREATED[*]} on $CHAOS_NET.0/24 (hub $HUB_IP)"
}

# partition N etcd|all: drops every packet between nodeN and the etcd
# members (etcd), or the etcd members and the other nodes (all), in both
# directions, inside nodeN's namespace. Clients in the hub still reach it.
partition() {
	local n=$1 what=$2 peers=() i p
	for i in "${!ETCD_IP[@]}"; do peers+=("${ETCD_IP[$i]}"); done
	if [ "$what" = all ]; then
		for i in "${!NODE_IP[@]}"; do [ "$i" = "$n" ] || peers+=("${NODE_IP[$i]}"); done
	fi
	for p in "${peers[@]}"; do
		ip netns exec "${NODE_NS[$n]}" iptables -w 5 -A INPUT -s "$p" -j DROP &&
			ip netns exec "${NODE_NS[$n]}" iptables -w 5 -A OUTPUT -d "$p" -j DROP ||
			fail "iptables refused a DROP rule in ${NODE_NS[$n]}"
	done
	PARTITIONED[$n]=1
	log "partitioned node$n from ${peers[*]}"
}

# link_down N / link_up N: nodeN's only link (a pulled cable: nobody,
# clients included, reaches it; its own sends fail at once).
link_down() {
	ip -n "${NODE_NS[$1]}" link set eth0 down || fail "cannot take eth0 down in ${NODE_NS[$1]}"
	PARTITIONED[$1]=1
	log "took node$1's link down"
}
link_up() {
	ip -n "${NODE_NS[$1]}" link set eth0 up || fail "cannot bring eth0 up in ${NODE_NS[$1]}"
	unset "PARTITIONED[$1]"
	log "brought node$1's link up"
}

# heal N: removes every rule of nodeN's namespace.
heal() {
	local n=$1
	ip netns exec "${NODE_NS[$n]}" iptables -w 5 -F INPUT &&
		ip netns exec "${NODE_NS[$n]}" iptables -w 5 -F OUTPUT || fail "cannot flush iptables in ${NODE_NS[$n]}"
	unset "PARTITIONED[$n]"
	log "healed node$n"
}

# ---------------------------------------------------------------- etcd (members in namespaces)

etcd_member_url() { echo "http://${ETCD_IP[$1]}:$ETCD_CLIENT_PORT"; }

etcd_member_start() {
	local n=$1 i cluster=""
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		cluster+="${cluster:+,}m$i=http://${ETCD_IP[$i]}:$ETCD_RAFT_PORT"
	done
	ip netns exec "${ETCD_NS[$n]}" "$ETCD_BIN" --name "m$n" --data-dir "$T/etcd-m$n" \
		--listen-client-urls "$(etcd_member_url "$n")" \
		--advertise-client-urls "$(etcd_member_url "$n")" \
		--listen-peer-urls "http://${ETCD_IP[$n]}:$ETCD_RAFT_PORT" \
		--initial-advertise-peer-urls "http://${ETCD_IP[$n]}:$ETCD_RAFT_PORT" \
		--initial-cluster "$cluster" --initial-cluster-state new \
		--logger zap --log-outputs "$T/etcd-m$n.log" >>"$T/etcd-m$n.out" 2>&1 &
	ETCD_M_PID[$n]=$!
	disown "${ETCD_M_PID[$n]}" # killing it is a planned fault, not a job to report
	log "started etcd member m$n (pid ${ETCD_M_PID[$n]}, $(etcd_member_url "$n"))"
}

etcd_members_start() {
	local i
	ETCD_N_MEMBERS=$1
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do etcd_member_start "$i"; done
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		wait_for 30 "etcd member m$i healthy" etcd_member_healthy "$i"
	done
}

etcd_member_healthy() {
	pid_alive "${ETCD_M_PID[$1]}" || fail "etcd member m$1 exited (see $T/etcd-m$1.log)"
	hub env ETCDCTL_API=3 etcdctl --endpoints="$(etcd_member_url "$1")" --dial-timeout=1s \
		--command-timeout=2s endpoint health >/dev/null 2>&1
}

# etcdctl against the live members, from the hub; also what cluster.sh's
# etcdctl_ (leader_name, cluster_healthy...) uses.
etcdctl_m() {
	local i eps=""
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		pid_alive "${ETCD_M_PID[$i]:-}" && eps+="${eps:+,}$(etcd_member_url "$i")"
	done
	[ -n "$eps" ] || return 1
	hub env ETCDCTL_API=3 etcdctl --endpoints="$eps" --dial-timeout=1s --command-timeout=2s "$@"
}
etcdctl_() { etcdctl_m "$@"; }

# etcd_raft_leader: the member that calls itself raft leader ("" if none).
etcd_raft_leader() {
	local i js id ld
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		pid_alive "${ETCD_M_PID[$i]:-}" || continue
		js=$(hub env ETCDCTL_API=3 etcdctl --endpoints="$(etcd_member_url "$i")" --dial-timeout=1s \
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

# etcd_member_stop N [GRACE_S]: SIGTERM, then SIGKILL after GRACE_S
# (default 10; a raft leader whose peers are gone lingers about 7 s trying to
# hand over leadership); reaps it.
etcd_member_stop() {
	local n=$1 grace=${2:-10}
	kill -TERM "${ETCD_M_PID[$n]}" 2>/dev/null || true
	poll_until "$grace" etcd_member_gone "$n" || kill -KILL "${ETCD_M_PID[$n]}" 2>/dev/null || true
	poll_until 5 etcd_member_gone "$n" || fail "etcd member m$n survived SIGKILL"
	wait "${ETCD_M_PID[$n]}" 2>/dev/null || true
}

# etcd_member_restart N: starts mN again on its data dir (it rejoins).
etcd_member_restart() {
	local n=$1 i cluster=""
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		cluster+="${cluster:+,}m$i=http://${ETCD_IP[$i]}:$ETCD_RAFT_PORT"
	done
	ip netns exec "${ETCD_NS[$n]}" "$ETCD_BIN" --name "m$n" --data-dir "$T/etcd-m$n" \
		--listen-client-urls "$(etcd_member_url "$n")" \
		--advertise-client-urls "$(etcd_member_url "$n")" \
		--listen-peer-urls "http://${ETCD_IP[$n]}:$ETCD_RAFT_PORT" \
		--initial-advertise-peer-urls "http://${ETCD_IP[$n]}:$ETCD_RAFT_PORT" \
		--initial-cluster "$cluster" --initial-cluster-state existing \
		--logger zap --log-outputs "$T/etcd-m$n.log" >>"$T/etcd-m$n.out" 2>&1 &
	ETCD_M_PID[$n]=$!
	disown "${ETCD_M_PID[$n]}" # killing it is a planned fault, not a job to report
	log "restarted etcd member m$n (pid ${ETCD_M_PID[$n]})"
}

# ---------------------------------------------------------------- nodes

pg_port() { echo $((5430 + $1)); }
api_port() { echo $((8000 + $1)); }

# chaos_rest_certs: the REST API's CA and one server certificate valid for
# every node address ($CHAOS_NET.1-9) and 127.0.0.1, in $T/rest-tls (the same
# files as cluster.sh's rest_make_certs, which it calls first); the peers'
# /status checks and failsafe POSTs of this suite run over verified https.
chaos_rest_certs() {
	local d i san="IP:127.0.0.1,DNS:localhost"
	[ ! -f "$T/rest-tls/.chaos" ] || return 0
	rest_make_certs
	d=$REST_TLS_DIR
	for i in $(seq 1 9); do san+=",IP:$CHAOS_NET.$i"; done
	(
		cd "$d" || exit 1
		set -e
		umask 077
		printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >server.ext
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server-key.pem \
			-out server.csr -subj /CN=baton-chaos-server
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server.pem \
			-days 2 -extfile server.ext
		chmod 644 server.pem
		touch .chaos
	) >>"$T/openssl-rest.log" 2>&1 || fail "openssl could not make the chaos REST certificates (see $T/openssl-rest.log)"
	chown -R "$BATON_USER:" "$d"
}

node_config() {
	local n=$1 f=$T/node$1.conf i hosts="" sync="" rest=""
	if [ "$REST_TLS" = 1 ]; then
		chaos_rest_certs
		rest="certfile = \"$REST_TLS_DIR/server.pem\"; keyfile = \"$REST_TLS_DIR/server-key.pem\";"
		rest+=" cafile = \"$REST_TLS_DIR/ca.pem\";"
		rest+=" authentication = { username = \"$REST_USER\"; password = \"$REST_PASSWORD\"; };"
	fi
	PG_PORT[$n]=$(pg_port "$n")
	API_PORT[$n]=$(api_port "$n")
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do hosts+="${hosts:+, }\"${ETCD_IP[$i]}:$ETCD_CLIENT_PORT\""; done
	case $SYNC_MODE in
	on) sync="synchronous_mode = true; synchronous_mode_strict = false; synchronous_node_count = 1;" ;;
	strict) sync="synchronous_mode = true; synchronous_mode_strict = true; synchronous_node_count = 1;" ;;
	esac
	mkdir -p "$T/sock$n"
	chown "$BATON_USER:" "$T/sock$n"
	cat >"$f" <<EOF
# node$n of the chaos suite (rendered by tests/chaos/lib.sh), in namespace ${NODE_NS[$n]}
scope = "$SCOPE";
name = "node$n";
namespace = "$NAMESPACE";
etcd = { hosts = [ $hosts ]; };
restapi = { listen = "${NODE_IP[$n]}:${API_PORT[$n]}"; connect_address = "${NODE_IP[$n]}:${API_PORT[$n]}"; $rest };
bootstrap = {
  dcs = {
    ttl = $TTL;
    loop_wait = $LOOP_WAIT;
    retry_timeout = $RETRY_TIMEOUT;
    maximum_lag_on_failover = $MAX_LAG;
    $sync
  };
};
postgresql = {
  bin_dir = "$PG_BIN";
  data_dir = "$T/node$n";
  listen = "${NODE_IP[$n]}:${PG_PORT[$n]}";
  connect_address = "${NODE_IP[$n]}:${PG_PORT[$n]}";
  socket_dir = "$T/sock$n";
  authentication = {
    superuser = { username = "postgres"; password = "$SU_PASSWORD"; };
    replication = { username = "replicator"; password = "$REPL_PASSWORD"; };
  };
  parameters = { shared_buffers = "32MB"; };
  pg_hba = [
    "local all all scram-sha-256",
    "host all all $CHAOS_NET.0/24 scram-sha-256",
    "host replication replicator $CHAOS_NET.0/24 scram-sha-256"
  ];
};
log = { level = "info"; };
EOF
	chown "$BATON_USER:" "$f"
	chmod 600 "$f"
}

# agent_start N: nodeN's agent as baton inside nodeN's namespace (ip netns
# exec and setpriv both exec, so $! is the agent itself).
agent_start() {
	local n=$1
	[ -f "$T/node$n.conf" ] || node_config "$n"
	[ "$n" -le "$N_NODES" ] || N_NODES=$n
	AGENT_LOG_N[$n]=$((${AGENT_LOG_N[$n]:-0} + 1))
	printf -- '----- start %s of node%s at %s\n' "${AGENT_LOG_N[$n]}" "$n" "$(date +%T.%3N)" >>"$T/agent-node$n.log"
	chown "$BATON_USER:" "$T/agent-node$n.log"
	ip netns exec "${NODE_NS[$n]}" setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
		"$BATON_BUILD/baton" -c "$T/node$n.conf" >>"$T/agent-node$n.log" 2>&1 &
	AGENT_PID[$n]=$!
	log "started agent node$n (pid ${AGENT_PID[$n]}, ${NODE_IP[$n]}, pg ${PG_PORT[$n]})"
}

# config_check N: the agent's own verdict on nodeN's rendered config.
config_check() { as_baton "$BATON_BUILD/baton" -t -c "$T/node$1.conf" 2>&1; }

# postmaster_pid N: as the harness's, but the agents run under `ip netns
# exec`, which gives them a mount namespace of their own: seen from here,
# their cwd may carry a prefix (under a chroot it is the path from the real
# root), so the data directory must end the path rather than equal it.
postmaster_pid() {
	local d pid cwd
	d=$(data_dir "$1")
	[ -r "$d/postmaster.pid" ] || return 1
	pid=$(head -n1 "$d/postmaster.pid" 2>/dev/null)
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	pid_alive "$pid" || return 1
	cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
	[[ "$cwd" == *"$d" ]] || return 1
	echo "$pid"
}

conninfo() { echo "host=${NODE_IP[$1]} port=${PG_PORT[$1]} user=postgres dbname=postgres connect_timeout=2"; }

conninfo_all() {
	local hosts="" ports="" n
	for n in $(seq 1 "$N_NODES"); do
		hosts+="${hosts:+,}${NODE_IP[$n]}"
		ports+="${ports:+,}${PG_PORT[$n]}"
	done
	echo "host=$hosts port=$ports user=postgres dbname=postgres connect_timeout=2 target_session_attrs=read-write"
}

# run_sql N SQL: psql from the hub (connect 2 s, statement 5 s).
run_sql() {
	hub env PGPASSFILE="$PGPASSFILE" PGCONNECT_TIMEOUT=2 PGOPTIONS="-c statement_timeout=5000" \
		"$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		-h "${NODE_IP[$1]}" -p "${PG_PORT[$1]}" -U postgres -d postgres -c "$2" 2>/dev/null
}

# ---------------------------------------------------------------- clients (in the hub)

# bg_start NAME CMD...: CMD in the hub, output to $T/NAME.out; sets BG_PID
# (ip netns exec and env exec, so BG_PID is CMD itself).
bg_start() {
	local name=$1
	shift
	ip netns exec "$NS_HUB" env PGPASSFILE="$PGPASSFILE" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# writers_start: the application writer (multi-host, every 50 ms, table
# chaos_app; at most 1 s per host, as a blocking libpq client with
# connect_timeout would, so an isolated first host does not hide the
# others) and one probe writer per node, connected to that node only
# (read-write sessions, every 100 ms, table chaos_wN): a probe keeps its
# connection to a primary for as long as that primary accepts writes, so it
# sees an old primary that goes on writing after the failover.
WRITERS=()
writers_start() {
	local n
	bg_start w_app "$BATON_BUILD/tests/tools/writer" --interval 50 --timeout 3000 --host-timeout 1000 \
		--detail --table chaos_app "$(conninfo_all)"
	WRITERS+=(app)
	for n in $(seq 1 "$N_NODES"); do
		bg_start "w_$n" "$BATON_BUILD/tests/tools/writer" --interval 100 --timeout 1000 --detail \
			--table "chaos_w$n" "$(conninfo "$n") target_session_attrs=read-write"
		WRITERS+=("$n")
	done
}

poller_start() {
	local args=() n names=""
	for n in $(seq 1 "$N_NODES"); do
		args+=("host=${NODE_IP[$n]} port=${PG_PORT[$n]} user=postgres dbname=postgres")
		names+="${names:+,}node$n"
	done
	bg_start poller "$BATON_BUILD/tests/tools/poller" --interval 50 --timeout 500 --names "$names" "${args[@]}"
	POLLER_PID=$BG_PID
}

# ---------------------------------------------------------------- cleanup

chaos_cleanup() {
	local rc=$? n pid pids=() bad=0 ns
	trap - EXIT INT TERM
	[ -n "$T" ] || exit "$rc"
	[ "$rc" = 0 ] || TEST_FAILED=1
	# The clients first (SIGTERM: they print their last lines), bounded.
	for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${BG_PIDS[@]}"; do bg_stop "$pid"; done
	# A SIGSTOPped agent would sit on SIGTERM forever.
	for n in "${!AGENT_PID[@]}"; do
		[ -n "${AGENT_PID[$n]}" ] && kill -CONT "${AGENT_PID[$n]}" 2>/dev/null
	done
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
	etcd_members_stop
	# Anything still inside our namespaces was started by this run.
	for ns in "${NS_CREATED[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
	done
	sleep 0.2
	for ns in "${NS_CREATED[@]}"; do
		ip netns del "$ns" 2>/dev/null || echo "warning: could not delete namespace $ns"
	done
	if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/agent-node*.log >/dev/null 2>&1; then
		echo "FAIL: sanitizer reports in agent logs:"
		grep -h -A 30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/agent-node*.log | head -n 80
		bad=1
	fi
	[ "$bad" = 0 ] || TEST_FAILED=1
	if [ "$TEST_FAILED" != 0 ]; then
		dump_logs
		echo "RESULT: chaos FAILED"
	else
		echo "RESULT: chaos passed"
	fi
	if [ "$KEEP" = 1 ]; then
		echo "kept test dir $T"
	else
		rm -rf "$T"
	fi
	[ "$TEST_FAILED" = 0 ] || exit "${CHAOS_EXIT_CODE:-1}"
	exit 0
}

# chaos_init: cluster.sh's test dir and checks, then our trap.
chaos_init() {
	cluster_init chaos
	command -v iptables >/dev/null 2>&1 || fail "iptables is missing (tests/lib/packages.sh installs it)"
	trap chaos_cleanup EXIT
	trap 'TEST_FAILED=1; exit 130' INT TERM
}
