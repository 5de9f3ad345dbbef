#!/bin/bash
# 24_quorum: quorum commit (synchronous_quorum). With two replicas and
# synchronous_node_count 1, the primary waits for ANY 1 of both and the
# sync key promises that every commit is on 1 of the 2. When the primary
# and one replica die together, the last replica cannot know whether it
# holds every commit: it must not take over. When the other replica comes
# back, the more advanced of the two does, and no acknowledged write is lost.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init quorum

etcd_start
for n in 1 2 3; do
	node_config "$n"
	sed -i 's/^    maximum_lag_on_failover = .*/&\n    synchronous_mode = true;\n    synchronous_quorum = true;/' "$T/node$n.conf"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
old=$PRIMARY
a= b=
for n in 1 2 3; do
	[ "$n" = "$old" ] && continue
	if [ -z "$a" ]; then a=$n; else b=$n; fi
done

sync_key() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/sync" 2>/dev/null | head -n1; }
want_key="{\"leader\":\"node$old\",\"sync_standby\":[\"node$a\",\"node$b\"],\"quorum\":1}"
want_key2="{\"leader\":\"node$old\",\"sync_standby\":[\"node$b\",\"node$a\"],\"quorum\":1}"
wait_for 30 "the sync key naming both replicas with quorum 1" \
	eval '[ "$(sync_key)" = "$want_key" ] || [ "$(sync_key)" = "$want_key2" ]'
ssn=$(run_sql "$old" "SHOW synchronous_standby_names")
[[ "$ssn" =~ ^ANY\ 1\ \(\"node[0-9]\",\ \"node[0-9]\"\)$ ]] || fail "synchronous_standby_names is '$ssn'"
pass "the primary waits for $ssn"
assert_eq "quorum quorum" "$(run_sql "$old" "SELECT string_agg(sync_state, ' ') FROM pg_stat_replication")" \
	"Postgres reports both standbys in the quorum"

poller_start
writer_start 20
wait_for 20 "the writer's first acks" eval '[ "$(acks_count)" -ge 40 ]'

# The primary and replica a die together: b alone sees 1 of 2 named.
pm_old=$(postmaster_pid "$old") || fail "no postmaster PID for node$old"
pm_a=$(postmaster_pid "$a") || fail "no postmaster PID for node$a"
kill -KILL $(fence_pid "$old") $(fence_pid "$a") "${AGENT_PID[$old]}" "${AGENT_PID[$a]}" "$pm_old" "$pm_a" \
	$(ps -o pid= --ppid "$pm_old" | tr '\n' ' ') $(ps -o pid= --ppid "$pm_a" | tr '\n' ' ') 2>/dev/null
agent_wait_exit "$old" 10 || fail "agent of node$old survived SIGKILL"
agent_wait_exit "$a" 10 || fail "agent of node$a survived SIGKILL"
log "killed node$old (primary) and node$a (replica) together"
sleep $((TTL * 3))
assert_eq "" "$(leader_name)" "no leader while node$b cannot see a quorum"
assert_eq t "$(in_recovery "$b")" "node$b stays a replica"
grep -q "quorum commit: we see 1 of the 2 synchronous standbys, need 2" "$(agent_log "$b")" ||
	fail "node$b does not say why it waits"
pass "node$b waits: $(grep -o 'quorum commit: we see.*' "$(agent_log "$b")" | tail -1)"

# Replica a returns: now the more advanced of a and b takes over.
agent_start "$a"
new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$old" ] || return 1
	NEW=${BASH_REMATCH[1]}
	[ "$(in_recovery "$NEW")" = f ]
}
wait_for 90 "a new primary among node$a and node$b" new_leader
log "node$NEW took over"
acked_new() { awk -v p="${PG_PORT[$NEW]}" '$1 == "ack" && $4 == p { f = 1 } END { exit !f }' "$T/writer.out"; }
wait_for 30 "a write acknowledged by node$NEW" acked_new
bg_stop "$WRITER_PID"
awk '$1 == "ack" { print $2 }' "$T/writer.out" | LC_ALL=C sort >"$T/acked"
run_sql "$NEW" "SELECT id FROM baton_writes ORDER BY id" | LC_ALL=C sort >"$T/present" || fail "cannot read baton_writes"
assert_eq 0 "$(LC_ALL=C comm -23 "$T/acked" "$T/present" | wc -l)" "acknowledged writes missing on node$NEW (of $(wc -l <"$T/acked"))"
bg_stop "$POLLER_PID"
assert_eq 0 "$(awk '$1 == "split_brain_samples" { print $2 }' "$T/poller.out")" "no sample with two primaries"
