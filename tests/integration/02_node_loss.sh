#!/bin/bash
# 02_node_loss: SIGKILL the primary's agent and postmaster together while a
# client writes through a multi-host connection string. A replica is elected
# (after the TTL) and takes the writes; the old node, restarted, comes back as
# a replica on the new timeline through pg_rewind. The poller, asking every
# node every 50 ms, never sees two primaries.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init node_loss

cluster_start 3
wait_healthy 90
old=$PRIMARY
old_port=${PG_PORT[$old]}
old_tl=$(timeline "$old")
log "old primary node$old (port $old_port), timeline $old_tl"

poller_start
writer_start 50
wait_for 20 "the writer's first acks" eval '[ "$(acks_count)" -ge 20 ]'
grep -q "^ack .* $old_port\$" "$T/writer.out" || fail "writer acks do not come from the primary's port $old_port"

pm=$(postmaster_pid "$old") || fail "no postmaster PID for node$old"
# Make the old primary diverge for sure: freeze its WAL senders, then commit
# a row the replicas never receive. Without this the replicas may have every
# byte of its WAL and the rejoin needs no rewind at all.
senders=$(ps -o pid=,args= --ppid "$pm" | awk '/walsender/ { print $1 }' | tr '\n' ' ')
[ -n "$senders" ] || fail "no WAL sender processes under postmaster $pm"
kill -STOP $senders
run_sql "$old" "CREATE TABLE diverged (v text); INSERT INTO diverged VALUES ('only on node$old')" >/dev/null ||
	fail "cannot write on node$old with its WAL senders stopped"
children=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
t0=$(now_ms)
# node loss: the agent, its fence, the postmaster and all its processes at once
kill -KILL $(fence_pid "$old") "${AGENT_PID[$old]}" "$pm" $children 2>/dev/null
log "killed agent ${AGENT_PID[$old]}, postmaster $pm and its processes of node$old (WAL senders $senders were stopped)"
agent_wait_exit "$old" 10 || fail "agent of node$old survived SIGKILL"

new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$old" ] || return 1
	NEW=${BASH_REMATCH[1]}
	[ "$(in_recovery "$NEW")" = f ]
}
wait_for $((TTL + 30)) "a new primary" new_leader
log "node$NEW became primary $(($(now_ms) - t0)) ms after the kill"

acked_elsewhere() { awk -v p="$old_port" -v t="$t0" '$1 == "ack" && $3 > t && $4 != p { f = 1 } END { exit !f }' "$T/writer.out"; }
wait_for 30 "a write acknowledged by another server" acked_elsewhere
first=$(awk -v t="$t0" '$1 == "ack" && $3 > t { print $3; exit }' "$T/writer.out")
last=$(awk -v t="$t0" '$1 == "ack" && $3 <= t { l = $3 } END { print l }' "$T/writer.out")
log "write unavailability: $((first - last)) ms"
new_tl=$(timeline "$NEW")
[ -n "$new_tl" ] && [ "$new_tl" -gt "$old_tl" ] || fail "new primary's timeline '$new_tl' is not above $old_tl"
pass "new primary node$NEW on timeline $new_tl"

# The old node comes back as a replica of the new primary.
agent_start "$old"
rejoined() {
	[ "$(in_recovery "$old")" = t ] || return 1
	[ "$(run_sql "$old" "SELECT status || ':' || received_tli || ':' || sender_port FROM pg_stat_wal_receiver")" = \
		"streaming:$new_tl:${PG_PORT[$NEW]}" ]
}
wait_for 90 "node$old streaming from node$NEW on timeline $new_tl" rejoined
grep -qi rewind "$(agent_log "$old")" || fail "the agent log of node$old does not mention pg_rewind"
pass "node$old rejoined through pg_rewind ($(grep -ci rewind "$(agent_log "$old")") log lines mention it)"
assert_eq 0 "$(run_sql "$old" "SELECT count(*) FROM pg_class WHERE relname = 'diverged'")" \
	"the diverged commit of node$old was rewound away"
wait_healthy 60
assert_eq "$NEW" "$PRIMARY" "the new primary kept the lead"

# Writes still flow, and no sample ever saw two primaries.
n0=$(acks_count)
wait_for 10 "more acks after the rejoin" eval '[ "$(acks_count)" -gt "$n0" ]'
bg_stop "$WRITER_PID"
bg_stop "$POLLER_PID"
samples=$(awk '$1 == "samples" { print $2 }' "$T/poller.out")
split=$(awk '$1 == "split_brain_samples" { print $2 }' "$T/poller.out")
[ -n "$samples" ] && [ "$samples" -gt 50 ] || fail "poller took too few samples ($samples)"
assert_eq 0 "$split" "no sample with two primaries (of $samples)"
rows=$(run_sql "$NEW" "SELECT count(*) FROM baton_writes") || fail "cannot count rows"
log "rows on the new primary: $rows, acks: $(acks_count) (asynchronous replication may lose the last acks of the killed primary)"
