#!/bin/bash
# 16_watch_compaction: the replicas' agents watch the leader key; etcd
# (one member, no auto-compaction) is then moved 400 revisions on by
# writing and deleting a scratch key outside the cluster's prefix, and
# compacted to the current revision. etcd 3.4 only cancels a watch for
# compaction when its start revision is compacted, so a watch that is
# already streaming would not notice; etcd is therefore restarted (SIGTERM,
# same data dir and port), which makes every agent's watch reconnect from
# the revision after the last one it saw - now compacted. The agents must
# log that their watch recovered, and the recovered watch must work: after
# SIGKILL of the primary's agent and postmaster, the surviving replicas'
# watches deliver the leader key's expiry (the agents log "leader key
# deleted or expired", a line only the watch callback prints), a replica
# takes the key within 2 s of the DELETE (a loop woken by the watch, not a
# later re-check) and the new leader is in place within ttl + 3 s of the kill.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init watch_compaction

cluster_start 3
wait_healthy 90
leader_key="$NAMESPACE/$SCOPE/leader"

rev0=$(etcd_revision)
[[ "$rev0" =~ ^[0-9]+$ ]] || fail "cannot read etcd's revision"
for i in $(seq 1 200); do
	etcdctl_ put /scratch/compaction-test "v$i" >/dev/null || fail "put $i of the scratch key failed"
	etcdctl_ del /scratch/compaction-test >/dev/null || fail "delete $i of the scratch key failed"
done
rev=$(etcd_revision)
log "revision $rev0 -> $rev"
[ "$rev" -ge $((rev0 + 400)) ] || fail "expected at least 400 new revisions, got $((rev - rev0))"
etcdctl_ compact --physical "$rev" >/dev/null || fail "etcdctl compact $rev failed"
if etcdctl_ get "$leader_key" --rev=$((rev - 1)) >/dev/null 2>&1; then
	fail "revision $((rev - 1)) can still be read after compacting to $rev"
fi
pass "etcd compacted to revision $rev (revision $((rev - 1)) is gone)"

# Restart etcd so that every watch has to reconnect from an old revision.
declare -A mark=()
for n in 1 2 3; do mark[$n]=$(wc -l <"$(agent_log "$n")"); done
etcd_stop TERM
etcd_start
log "etcd restarted on the compacted data"
watch_lines() { tail -n +$((${mark[$1]} + 1)) "$(agent_log "$1")" | grep -i 'watch'; }
watch_recovered() {
	local n
	for n in 1 2 3; do
		# the watch reconnected by itself ("watch on PREFIX
		# re-established"), was told of the compaction, or the loop,
		# which saw etcd fail first (a loaded machine), replaced it
		# ("watching PREFIX from revision N ... (after trouble with etcd)")
		watch_lines "$n" | grep -q -E 'watch on .* re-established|was compacted|watching .* from revision [0-9]+ .*\((after trouble with etcd|the watch was lost)\)' || return 1
	done
}
wait_for 20 "every agent's leader watch recovered after the restart" watch_recovered
# The compaction answer comes on the re-established stream, a moment after
# "re-established" is logged: wait for it (bounded) before judging.
some_compacted() { for n in 1 2 3; do watch_lines "$n"; done | grep -q 'was compacted'; }
poll_until 10 some_compacted || true
for n in 1 2 3; do
	log "node$n watch lines since the restart:"
	watch_lines "$n" | sed 's/^/    /'
done
compacted=$(for n in 1 2 3; do watch_lines "$n"; done | grep -c 'was compacted')
[ "$compacted" -ge 1 ] || fail "no agent's watch was told its revision was compacted: the compaction path was not exercised"
pass "$compacted agent(s) were told their watch revision was compacted and re-watched"

wait_healthy 60
for n in 1 2 3; do mark[$n]=$(wc -l <"$(agent_log "$n")"); done
watch_failover $((TTL + 3))
p=$OLD
taking=$(tail -n +$((${mark[$NEW]} + 1)) "$(agent_log "$NEW")" | grep -m1 -E 'taking the key|acquired the leader key')
[ -n "$taking" ] && log "node$NEW: $taking"
wait_healthy 60 "$p"
assert_eq "$NEW" "$PRIMARY" "node$NEW is the primary, the other replica streams from it"
