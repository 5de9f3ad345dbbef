#!/bin/bash
# 15_etcd_quorum_loss: etcd runs as three members on loopback, every agent
# knows all three. A poller samples pg_is_in_recovery() of every node every
# 50 ms for the whole test. We SIGKILL two of the three members - the one the
# primary's agent talks to and another one - so etcd has lost its quorum:
# the survivor answers nothing useful (no leader), so the primary cannot
# renew its lease and must stop taking writes before the lease could have
# expired (measured from the kill, which comes after the last renewal: less
# than TTL). While quorum is lost no node may be writable (checked for
# TTL + 2 s, by SQL and in the poller's samples).
# Which two: the raft leader and the member the primary's agent uses (or
# another one when they are the same). Killing the leader makes "from the
# kill" the right origin: etcd 3.4 renews a lease on the leader without a
# quorum round, so a leader left alone keeps granting renewals until
# CheckQuorum steps it down (about one election timeout, 1 s), and the lease
# then legitimately outlives the kill by that much (seen in a first run:
# renewal granted 0.7 s after the kill, the keeper's SIGQUIT 5.2 s after it). The two members are then
# restarted on the same data dirs and ports: the cluster must return to
# exactly one primary with two streaming replicas, and the poller must have
# seen no sample with two primaries at any moment.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init etcd_quorum_loss

etcd_members_start 3
etcd_use_members
for n in 1 2 3; do
	node_config "$n"
	node_config_etcd "$n"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
p=$PRIMARY
run_sql "$p" "CREATE TABLE quorum_probe (at timestamptz)" >/dev/null || fail "cannot create the probe table"
writable() { run_sql "$p" "INSERT INTO quorum_probe VALUES (now())" >/dev/null; }
writable || fail "the primary does not take writes before the fault"

poller_start
sleep 1
v1=$(etcd_raft_leader)
[ -n "$v1" ] || fail "no etcd member says it is the raft leader"
use=$(etcd_member_most_used "${AGENT_PID[$p]}")
v2=$use
[ -n "$v2" ] && [ "$v2" != "$v1" ] || v2=$((v1 % 3 + 1))
log "raft leader m$v1, node$p's agent talks to m${use:-?}; killing m$v1 and m$v2 (quorum lost, m$((6 - v1 - v2)) survives)"
t0=$(now_ms)
kill -KILL "${ETCD_M_PID[$v1]}" "${ETCD_M_PID[$v2]}" 2>/dev/null || true
etcd_member_kill "$v1"
etcd_member_kill "$v2"

not_writable() { ! writable; }
poll_until $((TTL * 3)) not_writable || fail "node$p still takes writes $((TTL * 3)) s after quorum was lost"
dt=$(($(now_ms) - t0))
t_nw=$(now_ms)
log "node$p stopped taking writes $dt ms after quorum was lost"
assert_lt "$dt" $((TTL * 1000)) "primary stopped taking writes before the lease could expire (ms)"

until_t=$(($(now_ms) + TTL * 1000 + 2000))
while [ "$(now_ms)" -lt "$until_t" ]; do
	w=$(primaries)
	[ -z "$w" ] || fail "node(s) $w writable while etcd has no quorum"
	sleep 0.3
done
t_back=$(now_ms)
pass "no writable node while etcd had no quorum ($((TTL + 2)) s, by SQL)"
# The poller's view of the same window (50 ms samples).
in_window=$(awk -v a="$t_nw" -v b="$t_back" '$1 == "sample" && $2 >= a && $2 <= b' "$T/poller.out" | wc -l)
p_window=$(awk -v a="$t_nw" -v b="$t_back" '$1 == "sample" && $2 >= a && $2 <= b && /=P/' "$T/poller.out" | wc -l)
[ "$in_window" -gt $((TTL * 10)) ] || fail "the poller took only $in_window samples while quorum was lost"
assert_eq 0 "$p_window" "poller samples (of $in_window) with a primary while quorum was lost"

etcd_member_start "$v1"
etcd_member_start "$v2"
wait_for 30 "etcd member m$v1 healthy" etcd_member_healthy "$v1"
wait_for 30 "etcd member m$v2 healthy" etcd_member_healthy "$v2"
log "quorum is back"
wait_healthy 90
assert_eq "$PRIMARY" "$(primaries)" "exactly one primary after quorum came back"
run_sql "$PRIMARY" "INSERT INTO quorum_probe VALUES (now())" >/dev/null || fail "the primary node$PRIMARY does not take writes"
pass "node$PRIMARY takes writes"
sleep 1
bg_stop "$POLLER_PID"
samples=$(grep -c '^sample ' "$T/poller.out")
log "poller: $samples samples"
assert_eq "split_brain_samples 0" "$(grep '^split_brain_samples' "$T/poller.out")" "no two primaries at any sample"
