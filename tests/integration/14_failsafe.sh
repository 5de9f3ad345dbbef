#!/bin/bash
# 14_failsafe: failsafe_mode (issue "etcd in production"). With etcd down
# entirely but every member up and confirming it over the REST API, the
# primary keeps taking writes for well past the TTL; the moment one replica
# is gone the confirmations stop and the primary stops taking writes within
# the TTL. Replicas never promote without etcd. With etcd back, the cluster
# returns to exactly one primary. A replica's agent restarted with
# failsafe_mode on says it takes no leader key for a ttl after its start.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init failsafe

cluster_start 3
wait_healthy 90
p=$PRIMARY
ctl edit-config --set failsafe_mode=true --force >/dev/null || fail "edit-config --set failsafe_mode=true failed"
poll_until 10 grep -q '"failsafe_mode":true' <(config_json) || true
sleep 2 # every agent reads the config key within a loop
# A confirmation lives in the agent's memory: one restarted with
# failsafe_mode on keeps the promise for a ttl after its start, as if it had
# confirmed the leader just before.
r0=1
[ "$r0" = "$p" ] && r0=2
agent_kill "$r0"
agent_start "$r0"
promise_kept() { grep -q "failsafe_mode is on: this agent takes no leader key until" "$(agent_log "$r0")"; }
wait_for 20 "node$r0's restarted agent to keep the failsafe promise" promise_kept
wait_healthy 60
assert_eq "$p" "$PRIMARY" "the primary after a replica's agent restarted"
run_sql "$p" "CREATE TABLE failsafe_probe (at timestamptz)" >/dev/null || fail "cannot create the probe table"
writable() { run_sql "$p" "INSERT INTO failsafe_probe VALUES (now())" >/dev/null; }
writable || fail "the primary does not take writes before the fault"

etcd_stop KILL
log "killed etcd; failsafe_mode is on and all members are up"
# Well past the TTL the primary still takes writes, and nobody else does.
until_t=$(($(now_ms) + TTL * 3000))
while [ "$(now_ms)" -lt "$until_t" ]; do
	writable || fail "node$p stopped taking writes although every member confirms it (failsafe_mode)"
	w=$(primaries)
	[ "$w" = "$p" ] || fail "writable node(s) '$w' while etcd is down, expected only node$p"
	sleep 0.3
done
pass "node$p kept taking writes for $((TTL * 3)) s with etcd down (failsafe_mode)"
grep -q "failsafe_mode" "$(agent_log "$p")" || fail "the primary's log does not mention failsafe_mode"

# One replica gone: no more full confirmation, so the primary must stop.
r=1
[ "$r" = "$p" ] && r=2
pm=$(postmaster_pid "$r")
agent_kill "$r"
[ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null
t0=$(now_ms)
log "killed node$r (agent and postmaster)"
not_writable() { ! writable; }
poll_until $((TTL * 3)) not_writable || fail "node$p still takes writes $((TTL * 3)) s after node$r died"
dt=$(($(now_ms) - t0))
log "node$p stopped taking writes $dt ms after node$r died"
assert_lt "$dt" $((TTL * 1000 + 1000)) "primary stopped within ttl of losing a confirming member (ms)"
w=$(primaries)
[ -z "$w" ] || fail "node(s) $w writable after the primary demoted with etcd down"
pass "no writable node once a member stopped confirming"
# The agent was alive all along: if its fence fired first, it says so
# rather than suspecting a frozen agent.
if grep -q "the fence process sent SIGQUIT" "$(agent_log "$p")"; then
	grep "the fence process sent SIGQUIT" "$(agent_log "$p")" | grep -q "the agent was running" ||
		fail "node$p's fence line suspects a frozen agent: $(grep "the fence process sent SIGQUIT" "$(agent_log "$p")" | tail -n 1)"
fi

etcd_start
agent_start "$r"
log "etcd and node$r are back"
wait_healthy 90
assert_eq "$PRIMARY" "$(primaries)" "exactly one primary after etcd came back"
run_sql "$PRIMARY" "INSERT INTO failsafe_probe VALUES (now())" >/dev/null || fail "node$PRIMARY does not take writes"
pass "node$PRIMARY takes writes"
