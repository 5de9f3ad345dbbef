#!/bin/bash
# 05_agent_kill: SIGKILL on the primary's agent alone must not leave an
# unsupervised primary: the postmaster is the agent's child with a parent-
# death signal, so it must be gone within one second (polled every 50 ms).
# Then a replica takes over once the leader key expires.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init agent_kill

cluster_start 3
wait_healthy 90
old=$PRIMARY
pm=$(postmaster_pid "$old") || fail "no postmaster PID for node$old"
log "node$old: agent ${AGENT_PID[$old]}, postmaster $pm"

t0=$(now_ms)
kill -KILL "${AGENT_PID[$old]}"
gone_at=
for _ in $(seq 1 60); do
	if ! pid_alive "$pm"; then
		gone_at=$(now_ms)
		break
	fi
	sleep 0.05
done
[ -n "$gone_at" ] || fail "postmaster $pm of node$old still runs 3 s after its agent was killed"
dt=$((gone_at - t0))
log "postmaster gone $dt ms after the agent was killed"
assert_lt "$dt" 1000 "postmaster gone within a second (ms)"
agent_wait_exit "$old" 5 || fail "agent survived SIGKILL"
port_closed() { [ -z "$(ss -ltnH "( sport = :${PG_PORT[$old]} )")" ]; }
wait_for 2 "node$old's port ${PG_PORT[$old]} closed" port_closed
pass "no process listens on node$old's port"

new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$old" ] || return 1
	[ "$(in_recovery "${BASH_REMATCH[1]}")" = f ]
}
wait_for $((TTL + 30)) "a replica takes over" new_leader
wait_healthy 60 "$old"
pass "node$PRIMARY is the new primary"
