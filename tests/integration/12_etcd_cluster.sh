#!/bin/bash
# 12_etcd_cluster: etcd runs as three members on loopback; every agent is
# configured with all three. We find the member the primary's agent talks to
# (its established connections, from ss) and SIGKILL that member. A dead
# member must cost the primary nothing: the client moves to a live member at
# once, so for the next 3 x TTL the leader key and the primary's postmaster
# PID are unchanged (checked in a loop, 100 ms apart) and pg_is_in_recovery()
# stays false (the poller, every 50 ms); the replicas keep streaming and the
# primary's agent ends up connected to surviving members only.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init etcd_cluster

etcd_members_start 3
etcd_use_members
for n in 1 2 3; do
	node_config "$n"
	node_config_etcd "$n"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
p=$PRIMARY
leader=$LEADER
apid=${AGENT_PID[$p]}
pm=$(postmaster_pid "$p") || fail "no postmaster for node$p"

# The member in use: the one the primary's agent holds most connections to
# (the first listed wins a tie: the client starts there and stays).
use=$(etcd_members_in_use "$apid")
log "connections of node$p's agent (pid $apid) per member: $use"
victim=
best=0
for mc in $use; do
	m=${mc%%:*} c=${mc#*:}
	if [ "$c" -gt "$best" ]; then best=$c victim=$m; fi
done
[ -n "$victim" ] || fail "node$p's agent holds no connection to any etcd member ($use)"
# pg_is_in_recovery() of every node every 50 ms, from outside (poller).
poller_start
sleep 0.5
log "node$p's agent talks to m$victim ($best connections): killing it"
etcd_member_kill "$victim"

bad=0
checks=0
until_t=$(($(now_ms) + TTL * 3000))
while [ "$(now_ms)" -lt "$until_t" ]; do
	r=$(in_recovery "$p")
	[ "$r" = f ] || { log "node$p: pg_is_in_recovery() = '$r'"; bad=1; }
	pm_now=$(postmaster_pid "$p") || pm_now=none
	[ "$pm_now" = "$pm" ] || { log "node$p: postmaster $pm is now '$pm_now'"; bad=1; }
	# A linearizable read fails while etcd elects a new raft leader (when
	# the victim led, that takes seconds): read the surviving member's own
	# state, and count only an answer that shows the key changed or gone.
	if l=$(etcdctl_ get --consistency=s --print-value-only "$NAMESPACE/$SCOPE/leader" 2>/dev/null); then
		l=$(head -n1 <<<"$l")
		[ "$l" = "$leader" ] || { log "leader key is '$l', was '$leader'"; bad=1; }
	fi
	[ "$bad" = 0 ] || break
	checks=$((checks + 1))
	sleep 0.1
done
bg_stop "$POLLER_PID"
[ "$bad" = 0 ] || fail "the primary was disturbed by the loss of the etcd member it used"
samples=$(grep -c '^sample ' "$T/poller.out")
not_p=$(grep '^sample ' "$T/poller.out" | grep -c -v " node$p=P")
[ "$samples" -gt $((TTL * 3 * 10)) ] || fail "the poller took only $samples samples"
assert_eq 0 "$not_p" "samples (of $samples, every 50 ms) in which node$p was not a primary"
assert_eq "split_brain_samples 0" "$(grep '^split_brain_samples' "$T/poller.out")" "no two primaries"
pass "node$p stayed primary for $((TTL * 3)) s after m$victim died ($checks checks: leader key, postmaster $pm, not in recovery)"
if grep -q -i -E 'demot' "$(agent_log "$p")"; then
	grep -i -E 'demot' "$(agent_log "$p")" | head -n 5
	fail "node$p's agent logged a demotion"
fi
pass "node$p's agent logged no demotion"
wait_healthy 30
assert_eq "$p" "$PRIMARY" "the same primary, replicas streaming"
assert_eq "$leader" "$(leader_name)" "the leader key (linearizable read) still names node$p"
use=$(etcd_members_in_use "$apid")
[[ " $use" != *" $victim:"[1-9]* ]] || fail "node$p's agent still connected to the dead m$victim ($use)"
log "connections of node$p's agent per member now: $use"
for mc in $use; do
	[ "${mc#*:}" -eq 0 ] || { pass "node$p's agent now uses m${mc%%:*}"; break; }
done
