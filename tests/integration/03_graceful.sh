#!/bin/bash
# 03_graceful: SIGTERM on the primary's agent hands over without waiting for
# the TTL: the agent stops Postgres (fast), deletes the leader key, and a
# replica takes it. The TTL is 10 s here so "less than the TTL" cannot be
# met by the key simply expiring. The stopped agent exits 0 and leaves no
# Postgres running; the remaining replica follows the new primary.
TTL=10 LOOP_WAIT=1 RETRY_TIMEOUT=2
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init graceful

cluster_start 3
wait_healthy 90
old=$PRIMARY
pm=$(postmaster_pid "$old") || fail "no postmaster PID for node$old"
writer_start 50
wait_for 20 "the writer's first acks" eval '[ "$(acks_count)" -ge 10 ]'

t0=$(now_ms)
agent_signal "$old" TERM
log "sent SIGTERM to the agent of node$old"
new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$old" ] || return 1
	NEW=${BASH_REMATCH[1]}
}
# Poll the key as fast as etcdctl allows; the bound is well past the TTL so
# a failure to hand over shows up as a measured time, not a timeout.
poll_until $((TTL * 3)) new_leader || fail "no new leader within $((TTL * 3)) s"
t1=$(now_ms)
dt=$((t1 - t0))
log "leader key moved to node$NEW $dt ms after SIGTERM"
assert_lt "$dt" $((TTL * 1000)) "handover faster than the TTL (ms)"
wait_for 10 "node$NEW answers as primary" eval '[ "$(in_recovery "$NEW")" = f ]'

agent_wait_exit "$old" 30 || fail "agent of node$old still running 30 s after SIGTERM"
assert_eq 0 "$AGENT_RC" "agent of node$old exit status after SIGTERM"
pid_alive "$pm" && fail "postmaster $pm of node$old still runs after its agent stopped"
pass "postmaster of node$old is gone"
[ -z "$(ss -ltnH "( sport = :${PG_PORT[$old]} )")" ] || fail "something still listens on node$old's port ${PG_PORT[$old]}"
pass "nothing listens on node$old's port"
[ -e "$(data_dir "$old")/postmaster.pid" ] && fail "node$old left a postmaster.pid behind"
pass "no postmaster.pid in node$old's data dir"

# The member key of the stopped node: a primary releases the leader key; its
# member key may stay until its lease runs out, so only log it.
log "member keys: $(etcdctl_ get --prefix --keys-only "$NAMESPACE/$SCOPE/members/" | grep -v '^$' | tr '\n' ' ')"

acked_new() { awk -v p="${PG_PORT[$NEW]}" -v t="$t0" '$1 == "ack" && $3 > t && $4 == p { f = 1 } END { exit !f }' "$T/writer.out"; }
wait_for 20 "a write acknowledged by node$NEW" acked_new
# last write acknowledged by the old primary -> first by the new one
first=$(awk -v p="${PG_PORT[$NEW]}" -v t="$t0" '$1 == "ack" && $3 > t && $4 == p { print $3; exit }' "$T/writer.out")
last=$(awk -v p="${PG_PORT[$old]}" '$1 == "ack" && $4 == p { l = $3 } END { print l }' "$T/writer.out")
log "write unavailability during the handover: $((first - last)) ms"
bg_stop "$WRITER_PID"

wait_healthy 60 "$old"
assert_eq "$NEW" "$PRIMARY" "the remaining replica follows node$NEW"
