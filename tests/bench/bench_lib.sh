# tests/bench/bench_lib.sh - helpers the failover benchmarks share (sourced
# after tests/lib/cluster.sh by failover.sh and agent_crash.sh). They read
# the caller's OLD (the old primary's number) and T0 (unix ms of the fault),
# and set NEW.

# random_pause: sleeps a random part of loop_wait, so that each fault lands
# at another moment of the agents' loop.
random_pause() {
	sleep "$(awk -v r="$RANDOM" -v lw="$LOOP_WAIT" 'BEGIN { printf "%.3f", r / 32768 * lw }')"
}

# cluster_reset: tears the cluster down completely (writer, poller, agents,
# etcd, data) for the next setting.
cluster_reset() {
	local n
	[ -n "${WRITER_PID:-}" ] && bg_stop "$WRITER_PID"
	[ -n "${POLLER_PID:-}" ] && bg_stop "$POLLER_PID"
	WRITER_PID= POLLER_PID=
	for n in $(seq 1 "$N_NODES"); do
		pid_alive "${AGENT_PID[$n]:-}" && agent_stop "$n"
	done
	etcd_stop TERM
	rm -rf "$T"/node[0-9]* "$T/etcd" "$T"/node*.pgpass
}

# new_leader: another node than OLD holds the leader key and is primary
# (sets NEW).
new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$OLD" ] || return 1
	NEW=${BASH_REMATCH[1]}
	[ "$(in_recovery "$NEW")" = f ]
}

# acked_by_new: the writer has an ack since T0 from another server than OLD's.
acked_by_new() {
	awk -v t="$T0" -v p="${PG_PORT[$OLD]}" '$1 == "ack" && $3 >= t && $4 != p { f = 1 } END { exit !f }' "$T/writer.out"
}
