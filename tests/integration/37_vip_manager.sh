#!/bin/bash
# 37_vip_manager: Debian's vip-manager follows baton's leader key (issue 13).
# needs packages: vip-manager
#
# Debian 12's vip-manager is 1.0.2, which speaks only etcd's v2 keys API
# (it is built on the v2 client); baton's keys are v3 keys, and etcd keeps
# the two stores apart. etcd 3.4 can serve the v2 API from the v3 store
# (--enable-v2 --experimental-enable-v2v3 PREFIX): the v2 key K is then the
# v3 key PREFIX/DDD/k//1K, DDD the depth of /1K in three digits. So with
# namespace = "/v2v3/004/k//1/baton" baton's v3 leader key
# /v2v3/004/k//1/baton/it/leader is the v2 key /baton/it/leader, which
# vip-manager 1.0.2 reads (a vip-manager of 2.x reads v3 keys directly, as
# trigger-key = "<namespace>/<scope>/leader").
#
# Three nodes; a network namespace this test creates holds one veth pair per
# node, vN (with an address of its own: vip-manager's ARP client needs one),
# and one vip-manager per node (run in that namespace) manages the
# VIP on vN for trigger-value "nodeN". vip-manager reaches etcd through a
# veth pair between the root namespace and the test's namespace (the root
# end's 10.x address, made by the test; etcd also listens there). Checks:
#  1. the VIP is on the leader's interface only;
#  2. after `batonctl switchover` it moves to the new leader, and off the
#     old one;
#  3. after kill -9 of the leader's agent and postmaster it moves to the
#     node that took over;
# and prints how fast, in ms from the leader key's PUT (an etcd watch) to
# the address being up on the new leader's interface (polled every 20 ms).
# Skips (77) without vip-manager, ip, or the right to make namespaces and
# veth pairs.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init vip_manager

VIPM_BIN=${VIPM_BIN:-/usr/bin/vip-manager}
VIPM_INTERVAL=${VIPM_INTERVAL:-1000} # vip-manager's default DCS poll interval, ms
[ -x "$VIPM_BIN" ] || skip "vip-manager is not installed ($VIPM_BIN; Debian package vip-manager)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"

NETNS=baton-vipm-$$
HOSTIF=bvipm$$
NET=$(((($$ % 250) + 1)))
HOST_ADDR=10.237.$NET.1
NS_ADDR=10.237.$NET.2
VIP=10.238.$NET.10
NS_MADE=0 HOSTIF_MADE=0
cleanup_net() {
	[ "$HOSTIF_MADE" = 1 ] && ip link del "$HOSTIF" 2>/dev/null
	[ "$NS_MADE" = 1 ] && ip netns del "$NETNS" 2>/dev/null
	NS_MADE=0 HOSTIF_MADE=0
}
# The harness owns the EXIT trap (and exits in it): stop the vip-managers
# and the address poller (BG_PIDS), remove the namespace and the root end of
# the veth pair, then run it.
trap 'rc=$?; for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; cleanup_net; (exit "$rc"); cluster_cleanup' EXIT

ip netns add "$NETNS" 2>"$T/netns.err" || skip "cannot create a network namespace: $(cat "$T/netns.err")"
NS_MADE=1
ip link add "$HOSTIF" type veth peer name e0 netns "$NETNS" 2>"$T/netns.err" ||
	skip "cannot create a veth pair into $NETNS: $(cat "$T/netns.err")"
HOSTIF_MADE=1
ip addr add "$HOST_ADDR/30" dev "$HOSTIF" || fail "cannot add $HOST_ADDR to $HOSTIF"
ip link set "$HOSTIF" up || fail "cannot bring $HOSTIF up"
ip -n "$NETNS" addr add "$NS_ADDR/30" dev e0 || fail "cannot add $NS_ADDR in $NETNS"
ip -n "$NETNS" link set e0 up || fail "cannot bring e0 up in $NETNS"
ip -n "$NETNS" link set lo up
for n in 1 2 3; do
	ip -n "$NETNS" link add "v$n" type veth peer name "v${n}p" || fail "cannot create v$n in $NETNS"
	# vip-manager's ARP client needs an IPv4 address on the interface
	ip -n "$NETNS" addr add "10.239.$NET.$((4 * n + 1))/30" dev "v$n" || fail "cannot address v$n in $NETNS"
	ip -n "$NETNS" link set "v$n" up
	ip -n "$NETNS" link set "v${n}p" up
done

# etcd as the harness starts it, plus the v2 API served from the v3 store,
# and listening on the root end of the veth pair too.
pick_port ETCD_PORT
pick_port ETCD_PEER_PORT
"$ETCD_BIN" --name it --data-dir "$T/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT,http://$HOST_ADDR:$ETCD_PORT" \
	--advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster "it=http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster-state new --enable-v2 --experimental-enable-v2v3 /v2v3 \
	--logger zap --log-outputs "$T/etcd.log" >>"$T/etcd.out" 2>&1 &
ETCD_PID=$!
wait_for 20 "etcd answers on port $ETCD_PORT" etcd_healthy
v2_leader() { ip netns exec "$NETNS" curl -s -m 2 "http://$HOST_ADDR:$ETCD_PORT/v2/keys/baton/$SCOPE/leader" | jq -r '.node.value // empty' 2>/dev/null; }

NAMESPACE=/v2v3/004/k//1/baton
for n in 1 2 3; do node_config "$n"; done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
assert_eq "$LEADER" "$(v2_leader)" "the v2 API inside $NETNS shows baton's leader key as /baton/$SCOPE/leader"

for n in 1 2 3; do
	ip netns exec "$NETNS" "$VIPM_BIN" --ip "$VIP" --netmask 24 --interface "v$n" \
		--trigger-key "/baton/$SCOPE/leader" --trigger-value "node$n" --dcs-type etcd \
		--dcs-endpoints "http://$HOST_ADDR:$ETCD_PORT" --interval "$VIPM_INTERVAL" \
		>"$T/vip-manager-node$n.log" 2>&1 &
	BG_PIDS+=($!)
	log "started vip-manager for node$n on v$n (pid $!)"
done

# vip_on: the interfaces (v1..v3) the VIP is on, space separated.
vip_on() {
	ip -n "$NETNS" -o -4 addr show 2>/dev/null | awk -v ip="$VIP" '$4 ~ "^" ip "/" { sub(/@.*/, "", $2); printf "%s%s", s, $2; s = " " }'
}
only_on() { [ "$(vip_on)" = "v$1" ]; }

# An address poller: a line "MS IFACES" whenever the VIP's place changes
# (bounded: 20 ms steps for at most 10 minutes).
(
	last=x
	for _ in $(seq 1 30000); do
		now=$(vip_on)
		[ "$now" = "$last" ] || { echo "$(now_ms) ${now:--}"; last=$now; }
		sleep 0.02
	done
) >"$T/vip.trace" &
BG_PIDS+=($!)

wait_for 20 "the VIP $VIP on v$PRIMARY only (node$PRIMARY leads)" only_on "$PRIMARY"
pass "the VIP sits on the leader's interface only"
key_watch_start "$NAMESPACE/$SCOPE/leader"

# up_ms N AFTER_MS: unix ms at which the VIP was first on vN alone after AFTER_MS.
up_ms() { awk -v i="v$1" -v t="$2" '$1 > t && $2 == i { print $1; exit }' "$T/vip.trace"; }

# moved HOW OLD T0 [SKIP]: waits for a new leader (SKIP: a dead node the
# health check ignores), for the VIP on its interface only, and reports the
# delay from the leader key's PUT after T0. Sets PRIMARY.
TIMES=()
moved() {
	local how=$1 old=$2 t0=$3 skip=${4:-} put up
	wait_healthy 60 "$skip"
	[ "$PRIMARY" != "$old" ] || fail "$how: node$old still leads"
	wait_for 20 "$how: the VIP on v$PRIMARY only" only_on "$PRIMARY"
	put=$(key_watch_event_ms PUT "$t0")
	# The poller samples every 20 ms plus an `ip` call: on a loaded machine
	# it may record the change a moment after only_on saw it.
	traced() { [ -n "$(up_ms "$PRIMARY" "$t0")" ]; }
	poll_until 5 traced || true
	up=$(up_ms "$PRIMARY" "$t0")
	[ -n "$put" ] || fail "$how: the key watch saw no PUT of the leader key ($(cat "$T/keywatch.out"))"
	[ -n "$up" ] || fail "$how: the address trace has no line for v$PRIMARY alone ($(cat "$T/vip.trace"))"
	assert_eq "node$PRIMARY" "$(v2_leader)" "$how: vip-manager's view of the leader key"
	log "$how: leader key PUT at $put, VIP up on v$PRIMARY at $up: $((up - put)) ms (vip-manager interval $VIPM_INTERVAL ms)"
	TIMES+=("$how $((up - put)) ms")
	pass "$how: the VIP moved from v$old to v$PRIMARY, $((up - put)) ms after the leader key changed"
}

# 2. A switchover with batonctl.
old=$PRIMARY
t0=$(now_ms)
ctl switchover >"$T/switchover.out" 2>&1 || fail "batonctl switchover failed: $(cat "$T/switchover.out")"
moved switchover "$old" "$t0"

# 3. The leader's agent and postmaster killed at once.
old=$PRIMARY
pm=$(postmaster_pid "$old") || fail "no postmaster for node$old"
t0=$(now_ms)
kill -9 "${AGENT_PID[$old]}" "$pm"
agent_wait_exit "$old" 10 || fail "agent node$old survived SIGKILL"
moved failover "$old" "$t0" "$old"
key_watch_stop

echo "vip-manager $("$VIPM_BIN" --version 2>&1 | head -n1) (interval $VIPM_INTERVAL ms), leader key PUT -> VIP up: ${TIMES[*]}"
