#!/bin/bash
# 53_watch_dead_endpoint: etcd runs as three members and every agent lists
# m1 first, so their clients and prefix watches start there. m1 (first made
# a raft follower, so that etcd itself needs no election) is then frozen
# with SIGSTOP: it keeps its port and its connections open but answers
# nothing, as a hung or partitioned member does, while m2 and m3 serve
# every request. A watch stream on m1 goes silent without an error. The
# agents must notice (a keepalive that m1 failed and another member then
# answered) and re-create their watch on a member that answers: each agent
# logs a watch established on m2 or m3 within WATCH_MOVE_S. Then SIGKILL of
# the primary's agent and postmaster: the replicas' watches deliver the
# leader key's expiry (the agents log "leader key deleted or expired", a
# line only the watch callback prints), a replica takes the key within 2 s
# of the DELETE, and the new leader holds it within ttl + 5 s of the kill
# (room for a loaded machine: a watch left on the frozen member delivers
# nothing, and the replicas would learn of the expiry only at their
# periodic full read, up to 30 s later).
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init watch_dead_endpoint

WATCH_MOVE_S=15

etcd_members_start 3
etcd_use_members
for n in 1 2 3; do
	node_config "$n"
	node_config_etcd "$n"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
m1_url=$(etcd_member_url 1)

# m1 must not be etcd's raft leader: freezing a raft leader costs an
# election, which is another test (15_etcd_quorum_loss).
m2_leads() { [ "$(etcd_raft_leader)" = 2 ]; }
if [ "$(etcd_raft_leader)" = 1 ]; then
	id2=$(ETCDCTL_API=3 etcdctl --endpoints="$m1_url" --dial-timeout=1s --command-timeout=2s member list 2>>"$T/etcdctl.log" |
		awk -F', ' '$3 == "m2" { print $1 }')
	[ -n "$id2" ] || fail "cannot find etcd member m2's id"
	ETCDCTL_API=3 etcdctl --endpoints="$m1_url" --dial-timeout=1s --command-timeout=5s move-leader "$id2" \
		>>"$T/etcdctl.log" 2>&1 || fail "etcdctl move-leader to m2 failed (see $T/etcdctl.log)"
	wait_for 10 "m2 to be etcd's raft leader" m2_leads
fi
log "etcd's raft leader is m$(etcd_raft_leader)"

# Every agent's watch streams from m1 now (the first listed).
declare -A mark=()
for n in 1 2 3; do
	mark[$n]=$(wc -l <"$(agent_log "$n")")
	use=$(etcd_members_in_use "${AGENT_PID[$n]}")
	log "connections of node$n's agent per member: $use"
	[[ " $use" == *" 1:"[1-9]* ]] || fail "node$n's agent holds no connection to m1 before the freeze ($use)"
done

kill -STOP "${ETCD_M_PID[1]}"
t_stop=$(now_ms)
log "froze etcd member m1 (SIGSTOP)"
# The harness's etcdctl and key watch go to the members that answer.
live_eps="$(etcd_member_url 2),$(etcd_member_url 3)"
etcdctl_() { ETCDCTL_API=3 etcdctl --endpoints="$live_eps" --dial-timeout=1s --command-timeout=2s "$@"; }
KEYWATCH_ENDPOINTS=$live_eps

since_mark() { tail -n +$((${mark[$1]} + 1)) "$(agent_log "$1")"; }
moved_re="watch on .* established on http://127\.0\.0\.1:(${ETCD_M_PORT[2]}|${ETCD_M_PORT[3]})( |$)"
watches_moved() {
	local n
	for n in 1 2 3; do
		since_mark "$n" | grep -q -E "$moved_re" || return 1
	done
}
wait_for "$WATCH_MOVE_S" "every agent's watch on a member that answers" watches_moved
for n in 1 2 3; do
	line=$(since_mark "$n" | grep -m1 -E "$moved_re")
	log "node$n, $(($(log_ms "$line") - t_stop)) ms after the freeze: ${line#* * }"
done
pass "every agent moved its watch off the frozen m1 within $WATCH_MOVE_S s"

# The cluster is still whole: the same kind of view from every agent.
wait_healthy 30
watch_failover $((TTL + 5))
p=$OLD
wait_healthy 60 "$p"
assert_eq "$NEW" "$PRIMARY" "node$NEW is the primary, the other replica streams from it"
