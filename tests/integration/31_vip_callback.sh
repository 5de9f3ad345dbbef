#!/bin/bash
# 31_vip_callback: the example VIP callback (deploy/examples/callbacks/vip.sh)
# puts the address on the primary only, and gives it up on on_stop and on
# demotion. No real interface is touched: every address lives in a network
# namespace this test creates, on one end of a veth pair inside it (this
# kernel has no dummy interfaces).
#
#  1. the script alone, as root in `ip netns add` namespace: the argv baton
#     passes (ACTION ROLE SCOPE) for start as primary, again (idempotent),
#     demotion, promotion, on_stop as primary and as replica (nothing to
#     remove), IPv6; refusals: no prefix length (2), unknown interface (1),
#     no CAP_NET_ADMIN (1, the message names it), wrong argc (2), `ip`
#     failing (1, never a false "removed");
#  2. from real agents: two nodes, each firing the script for on_start,
#     on_role_change and on_stop into a namespace of its own (a user+network
#     namespace made by the baton user, so the unprivileged agent's callback
#     may change it). The address is on node1 after bootstrap, never on the
#     replica, moves to node2 with a switchover, leaves node2 when its agent
#     stops (on_stop, before the agent exits), comes back on node1 when it
#     takes over, and leaves node1 too when its agent stops.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init vip_callback

src=$(cd "$(dirname "$0")/../.." && pwd)
install -m 755 -o "$BATON_USER" -g "$BATON_USER" "$src/deploy/examples/callbacks/vip.sh" "$T/vip.sh"
VIP=10.200.0.10/24
NETNS=baton-vip-$$
NS_MADE=0

cleanup_netns() {
	[ "$NS_MADE" = 1 ] && ip netns del "$NETNS" 2>/dev/null
	NS_MADE=0
}
# The harness owns the EXIT trap: remove the namespace first, then run it.
trap 'rc=$?; cleanup_netns; (exit "$rc"); cluster_cleanup' EXIT

# addrs_on_v0 CMD...: the addresses (with prefix) on v0, one line, as CMD sees them.
addrs_on_v0() { "$@" ip -o addr show dev v0 2>/dev/null | awk '{ printf "%s%s", sep, $4; sep = " " }'; }

# ---- 1. the script on its own
command -v ip >/dev/null 2>&1 || fail "ip (iproute2) is not installed"
ip netns add "$NETNS" || fail "cannot create network namespace $NETNS"
NS_MADE=1
ip -n "$NETNS" link add v0 type veth peer name v1 || fail "cannot create a veth pair in $NETNS"
ip -n "$NETNS" link set v0 up
inns() { ip netns exec "$NETNS" env BATON_VIP="${V:-$VIP}" BATON_VIP_DEV="${DEV:-v0}" "$@"; }
run_vip() { # EXPECTED_RC EXPECTED_ADDRS ARGS...: one call of the script, checked
	local want_rc=$1 want=$2 out rc
	shift 2
	out=$(inns "$T/vip.sh" "$@" 2>&1)
	rc=$?
	[ "$rc" = "$want_rc" ] || fail "vip.sh $*: exit $rc, expected $want_rc: $out"
	got=$(addrs_on_v0 ip netns exec "$NETNS")
	[ "$got" = "$want" ] || fail "vip.sh $*: v0 has '$got', expected '$want' ($out)"
	pass "vip.sh $* -> exit $rc, v0 has '${got:-nothing}': $out"
}
run_vip 0 "$VIP" on_start primary main
run_vip 0 "$VIP" on_start primary main
run_vip 0 "" on_role_change replica main
run_vip 0 "" on_start replica main
run_vip 0 "$VIP" on_role_change primary main
run_vip 0 "$VIP" on_reload primary main
run_vip 0 "" on_stop primary main
run_vip 0 "" on_stop replica main
V=fd00:200::10/64 run_vip 0 "fd00:200::10/64" on_role_change primary main
V=fd00:200::10/64 run_vip 0 "" on_stop primary main
V=10.200.0.10 run_vip 2 "" on_start primary main
DEV=nosuch0 run_vip 1 "" on_start primary main
run_vip 2 "" on_start primary
# An unprivileged caller (what the shipped systemd unit gives the agent):
# refused by the kernel, and the message says what the unit lacks.
out=$(inns setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- "$T/vip.sh" on_start primary main 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "without CAP_NET_ADMIN vip.sh exited $rc: $out"
grep -q 'CAP_NET_ADMIN' <<<"$out" || fail "without CAP_NET_ADMIN the message does not name it: $out"
[ -z "$(addrs_on_v0 ip netns exec "$NETNS")" ] || fail "an address appeared without CAP_NET_ADMIN"
pass "without CAP_NET_ADMIN: exit 1, nothing added ($(tail -n1 <<<"$out"))"
# Holding the address while an unprivileged on_stop runs: it cannot give it
# up and must say so (exit 1), not pretend.
run_vip 0 "$VIP" on_start primary main
out=$(inns setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- "$T/vip.sh" on_stop primary main 2>&1)
rc=$?
[ "$rc" = 1 ] && grep -q 'could not remove' <<<"$out" || fail "an on_stop that cannot remove the address exited $rc: $out"
pass "an on_stop without CAP_NET_ADMIN reports that it could not remove the address (exit 1)"
# When `ip` itself fails (here a stand-in that always does), the script
# must not report the address as gone.
mkdir "$T/fakebin"
printf '#!/bin/sh\necho "ip stand-in: failing on purpose" >&2\nexit 2\n' >"$T/fakebin/ip"
chmod 755 "$T/fakebin/ip"
out=$(inns env PATH="$T/fakebin:$PATH" "$T/vip.sh" on_stop primary main 2>&1)
rc=$?
[ "$rc" = 1 ] && grep -q 'failing on purpose' <<<"$out" || fail "on_stop with a failing ip exited $rc: $out"
[ "$(addrs_on_v0 ip netns exec "$NETNS")" = "$VIP" ] || fail "the address changed although ip failed"
pass "on_stop with a failing ip: exit 1 and ip's message, not a false success ($out)"
cleanup_netns

# ---- 2. from real agents
# holder N: a process of the baton user in a user+network namespace of its
# own, with a veth pair; HOLDER[N] is its pid (written by itself: the pid
# inside the new namespaces).
declare -a HOLDER=()
holder_ready() { [ -s "$T/holder$1.pid" ]; }
# Unprivileged user namespaces are needed for this part; a machine (or a
# chroot) without them cannot run it.
if ! out=$(setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- unshare -Urn true 2>&1); then
	skip "the agents' part needs user namespaces for user $BATON_USER, which this machine refuses ($out); the script's part passed above"
fi
for n in 1 2; do
	bg_start "holder$n" setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
		unshare -Urn sh -c "echo \$\$ >'$T/holder$n.pid'; exec sleep 280"
	wait_for 10 "namespace holder $n" holder_ready "$n"
	HOLDER[$n]=$(cat "$T/holder$n.pid")
	[ "$(readlink "/proc/${HOLDER[$n]}/ns/net")" != "$(readlink /proc/self/ns/net)" ] ||
		fail "holder $n (pid ${HOLDER[$n]}) is not in a network namespace of its own"
	nsenter -t "${HOLDER[$n]}" -n ip link add v0 type veth peer name v1 || fail "no veth pair in holder $n"
	nsenter -t "${HOLDER[$n]}" -n ip link set v0 up
	# The callback as the agent runs it (as baton, argv ACTION ROLE SCOPE),
	# carried into that namespace; every call is recorded.
	cat >"$T/vip-node$n.sh" <<SH
#!/bin/sh
echo "\$*" >>"$T/vip-node$n.calls"
export BATON_VIP=$VIP BATON_VIP_DEV=v0 BATON_VIP_ARPING=no
exec nsenter --preserve-credentials --user --net --target ${HOLDER[$n]} -- "$T/vip.sh" "\$@"
SH
	chmod 755 "$T/vip-node$n.sh"
	chown "$BATON_USER:" "$T/vip-node$n.sh"
done
vip_on() { [ "$(addrs_on_v0 nsenter -t "${HOLDER[$1]}" -n)" = "$VIP" ]; }
vip_off() { [ -z "$(addrs_on_v0 nsenter -t "${HOLDER[$1]}" -n)" ]; }
leads() { [ "$(leader_name)" = "node$1" ]; }
where() { echo "node1: '$(addrs_on_v0 nsenter -t "${HOLDER[1]}" -n)', node2: '$(addrs_on_v0 nsenter -t "${HOLDER[2]}" -n)'"; }

etcd_start
for n in 1 2; do
	node_config "$n"
	cb="callbacks = { on_start = \"$T/vip-node$n.sh\"; on_role_change = \"$T/vip-node$n.sh\"; on_stop = \"$T/vip-node$n.sh\"; };"
	sed -i "s|^  pg_hba = \[|  $cb\n  pg_hba = [|" "$T/node$n.conf"
	grep -q "vip-node$n.sh" "$T/node$n.conf" || fail "could not add the callbacks to node$n.conf"
done
agent_start 1
wait_for 60 "node1 leads" leads 1
wait_for 20 "the VIP on node1 (on_start primary)" vip_on 1
agent_start 2
wait_healthy 90
assert_eq 1 "$PRIMARY" "node1 is the primary"
wait_for 20 "node2's on_start as replica" grep -q '^on_start replica ' "$T/vip-node2.calls"
vip_off 2 || fail "the replica node2 holds the VIP: $(where)"
vip_on 1 || fail "node1 lost the VIP: $(where)"
pass "the VIP is on the primary node1 only ($(where))"

# Switchover: node1 gives the address up (on_stop as primary when it stops
# to demote, then on_start/on_role_change as replica), node2 takes it.
out=$(ctl switchover --candidate node2 --wait 60 2>&1) || fail "switchover to node2 failed: $out"
wait_for 30 "node2 leads" leads 2
wait_for 30 "the VIP on node2 (promoted)" vip_on 2
wait_for 30 "the VIP gone from node1 (demoted)" vip_off 1
grep -Eq '^(on_stop primary|on_role_change replica) ' "$T/vip-node1.calls" ||
	fail "node1 was not told it stopped being the primary: $(cat "$T/vip-node1.calls")"
pass "after the switchover the VIP is on node2 only ($(where)); node1's calls: $(tr '\n' ';' <"$T/vip-node1.calls")"

# Agent stop on the primary: on_stop runs to its end before the agent exits.
# First node1 must stream from node2 on the new timeline, or it may not take over.
# (Its agent must have seen that: a replica whose agent still believes it is
# on timeline 1 is no candidate once node2 has gone.)
wait_healthy 60
assert_eq 2 "$PRIMARY" "node2 is the primary, node1 streams from it"
node1_on_tl2() { [ "$(member_json node1 | jq -r '.timeline // empty')" = 2 ]; }
wait_for 30 "node1's member key on timeline 2" node1_on_tl2
agent_stop 2
assert_eq 0 "$AGENT_RC" "node2's agent exits 0 on SIGTERM"
vip_off 2 || fail "node2's agent has exited but the VIP is still on node2: $(where)"
tail -n1 "$T/vip-node2.calls" | grep -q '^on_stop primary ' ||
	fail "node2's last callback was not on_stop primary: $(tail -n3 "$T/vip-node2.calls")"
grep -q 'callback on_stop: .*removed from v0' "$(agent_log 2)" || fail "node2's log lacks the on_stop output"
pass "the stopped primary gave the VIP up on on_stop ($(where))"
wait_for 30 "node1 leads again" leads 1
wait_for 30 "the VIP back on node1" vip_on 1
vip_off 2 || fail "the VIP is on both nodes: $(where)"
pass "node1 took the VIP back when it took over ($(where))"
agent_stop 1
vip_off 1 || fail "node1's agent has exited but the VIP is still on node1: $(where)"
pass "the last primary gave the VIP up when its agent stopped ($(where))"
echo "31_vip_callback: all checks passed"
