#!/bin/bash
# 05_agent_kill: SIGKILL on the primary's agent alone must not leave an
# unsupervised primary: the postmaster is the agent's child with a parent-
# death signal, so it must be gone within one second (polled every 50 ms).
# Then the agent's fence process, which outlives it, revokes the leader
# lease once the postmaster and its whole process group are gone (fence.h),
# so a replica takes over without waiting out the ttl: the old node's log
# carries the revoke line, exactly one node is primary, and no write was
# acknowledged by the old primary after it died, nor after any write on the
# new one (a client writes every 50 ms; a poller asks every node every
# 50 ms and must never see two primaries). How fast is measured by
# tests/bench/agent_crash.sh, not asserted here.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init agent_kill

cluster_start 3
wait_healthy 90
old=$PRIMARY
old_port=${PG_PORT[$old]}
pm=$(postmaster_pid "$old") || fail "no postmaster PID for node$old"
log "node$old: agent ${AGENT_PID[$old]}, postmaster $pm"

# The revoke-only mode is the fence's; run by hand it must not end a live
# leadership. leader_lease: the leader key's lease, in hex.
leader_lease() {
	etcdctl_ get "$NAMESPACE/$SCOPE/leader" -w json | python3 -c '
import json, sys
kvs = json.load(sys.stdin).get("kvs") or []
print("%x" % kvs[0]["lease"] if kvs else "")'
}
lease=$(leader_lease)
[ -n "$lease" ] || fail "cannot read the leader key's lease"
other=$(( old % 3 + 1 ))
dead=$(( 4000000 + RANDOM ))
pid_alive "$dead" && fail "pid $dead unexpectedly exists"
revoke_by_hand() { # NODE POSTMASTER AGENT: exit status, output in $T/revoke.out
	as_baton "$BATON_BUILD/baton" --revoke-lease "$lease" --postmaster "$2" --since 0 --agent "$3" \
		-c "$T/node$1.conf" >"$T/revoke.out" 2>&1
}
revoke_by_hand "$old" "$pm" "${AGENT_PID[$old]}" && fail "a by-hand revoke with a live postmaster succeeded: $(cat "$T/revoke.out")"
grep -q "not revoking leader lease $lease: the postmaster $pm still runs" "$T/revoke.out" ||
	fail "unexpected refusal: $(cat "$T/revoke.out")"
revoke_by_hand "$old" "$dead" "$dead" && fail "a by-hand revoke naming made-up pids succeeded: $(cat "$T/revoke.out")"
grep -q "leader lease $lease is not revoked: the postmaster of $T/node$old (pid $pm, postmaster.pid) still runs" "$T/revoke.out" ||
	fail "unexpected refusal: $(cat "$T/revoke.out")"
# Another member's file, its data directory swapped for an empty one (no
# live postmaster there): the leader key names node$old, not it.
mkdir -p "$T/nodata"
chown "$BATON_USER:" "$T/nodata"
chmod 700 "$T/nodata"
sed "s|$T/node$other\b|$T/nodata|g" "$T/node$other.conf" >"$T/other.conf"
chown "$BATON_USER:" "$T/other.conf"
as_baton "$BATON_BUILD/baton" --revoke-lease "$lease" --postmaster "$dead" --since 0 --agent "$dead" \
	-c "$T/other.conf" >"$T/revoke.out" 2>&1 && fail "node$other's revoker revoked node$old's lease: $(cat "$T/revoke.out")"
grep -q "leader lease $lease is not revoked: the leader key .*/leader names node$old, not this member node$other" "$T/revoke.out" ||
	fail "unexpected refusal: $(cat "$T/revoke.out")"
assert_eq "$lease" "$(leader_lease)" "the leader key's lease after three refused by-hand revokes"
assert_eq "node$old" "$(leader_name)" "the leader after three refused by-hand revokes"
pass "the revoke-only mode refuses a live postmaster (named or in the data directory) and another member's lease"

poller_start
writer_start 50
wait_for 20 "the writer's first acks" eval '[ "$(acks_count)" -ge 20 ]'
grep -q "^ack .* $old_port\$" "$T/writer.out" || fail "writer acks do not come from the primary's port $old_port"

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
port_closed() { [ -z "$(ss -ltnH "( sport = :$old_port )")" ]; }
wait_for 2 "node$old's port $old_port closed" port_closed
pass "no process listens on node$old's port"

revoked() { grep -q "the agent died and its postmaster $pm has exited: revoked leader lease [0-9a-f]* so a replica can take over now" "$(agent_log "$old")"; }
wait_for 10 "node$old's fence revokes the leader lease" revoked
log "$(grep -o "revoked leader lease .*" "$(agent_log "$old")" | head -n1)"
pass "the fence process of the dead agent revoked its leader lease"
grep -q "revoked leader lease [0-9a-f]* so a replica can take over now (took [0-9]* ms, the request [0-9]* ms, by the pre-started revoker)" "$(agent_log "$old")" ||
	fail "the revoke did not go through the fence's pre-started revoker"
pass "the fence's pre-started revoker made the revoke"

new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$old" ] || return 1
	NEW=${BASH_REMATCH[1]}
	[ "$(in_recovery "$NEW")" = f ]
}
wait_for $((TTL + 30)) "a replica takes over" new_leader
log "node$NEW became primary $(($(now_ms) - t0)) ms after the agent was killed"
grep -q "leader key deleted or expired" "$(agent_log "$NEW")" ||
	fail "node$NEW did not learn of the deletion through its leader watch"
acked_elsewhere() { awk -v p="$old_port" -v t="$t0" '$1 == "ack" && $3 > t && $4 != p { f = 1 } END { exit !f }' "$T/writer.out"; }
wait_for 30 "a write acknowledged by another server" acked_elsewhere
wait_healthy 60 "$old"
assert_eq "$NEW" "$PRIMARY" "the new primary kept the lead"
assert_eq "$NEW" "$(primaries)" "exactly one node answers as primary"
pass "node$PRIMARY is the new primary"

last_old=$(awk -v p="$old_port" '$1 == "ack" && $4 == p { l = $3 } END { print l }' "$T/writer.out")
first_new=$(awk -v p="$old_port" -v t="$t0" '$1 == "ack" && $3 > t && $4 != p { print $3; exit }' "$T/writer.out")
log "last ack by node$old $((last_old - t0)) ms after the kill; first ack elsewhere $((first_new - t0)) ms after it"
[ "$last_old" -le "$gone_at" ] || fail "node$old acknowledged a write after its postmaster was gone"
[ "$last_old" -lt "$first_new" ] || fail "node$old acknowledged a write after another node did"
pass "no write acknowledged by node$old after its death or after node$NEW's first"

bg_stop "$WRITER_PID"
bg_stop "$POLLER_PID"
samples=$(awk '$1 == "samples" { print $2 }' "$T/poller.out")
split=$(awk '$1 == "split_brain_samples" { print $2 }' "$T/poller.out")
[ -n "$samples" ] && [ "$samples" -gt 20 ] || fail "poller took too few samples ($samples)"
assert_eq 0 "$split" "no sample with two primaries (of $samples)"
