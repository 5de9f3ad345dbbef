#!/bin/bash
# 20_sync: synchronous mode. The primary names one standby in
# synchronous_standby_names and records it in the sync key only once it is
# synchronous; a node loss promotes exactly that standby and loses no
# acknowledged write; the key follows the new primary. Then strict mode:
# with no standby left, a commit blocks instead of going asynchronous, and
# completes when a standby returns.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init sync

etcd_start
for n in 1 2 3; do
	node_config "$n"
	sed -i 's/^    maximum_lag_on_failover = .*/&\n    synchronous_mode = true;/' "$T/node$n.conf"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
old=$PRIMARY

sync_key() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/sync" 2>/dev/null | head -n1; }
# sync_named LEADER: the sync key belongs to LEADER and names one standby (SYNC).
SYNC=
sync_named() {
	local k
	k=$(sync_key)
	[ "$(jq -r '.leader' <<<"$k" 2>/dev/null)" = "$1" ] || return 1
	SYNC=$(jq -r '.sync_standby[0] // empty' <<<"$k" 2>/dev/null)
	[ -n "$SYNC" ]
}
wait_for 30 "the sync key naming a standby of node$old" sync_named "node$old"
log "sync key: $(sync_key)"
assert_eq "FIRST 1 (\"$SYNC\")" "$(run_sql "$old" "SHOW synchronous_standby_names")" \
	"the primary waits for the recorded standby"
assert_eq sync "$(run_sql "$old" "SELECT sync_state FROM pg_stat_replication WHERE application_name = '$SYNC'")" \
	"Postgres reports $SYNC as synchronous"
[[ "$SYNC" =~ ^node([0-9]+)$ ]] || fail "sync standby '$SYNC' is not a node name"
sync_n=${BASH_REMATCH[1]}
list_out=$("$BATON_BUILD/batonctl" -c "$T/node$old.conf" list) || fail "batonctl list failed"
grep -q "| $SYNC .*| Sync Standby |" <<<"$list_out" || fail "batonctl list does not show $SYNC as Sync Standby: $list_out"
pass "batonctl list shows $SYNC as Sync Standby"
assert_eq true "$("$BATON_BUILD/batonctl" -c "$T/node$old.conf" list --format json |
	jq -r ".[] | select(.name == \"$SYNC\") | .sync_standby")" "batonctl list --format json: sync_standby"
http_code() { rest_code "$1" "$2"; }
for n in 1 2 3; do
	want_sync=503 want_async=503
	[ "$n" = "$sync_n" ] && want_sync=200
	[ "$n" != "$sync_n" ] && [ "$n" != "$old" ] && want_async=200
	wait_for 10 "node$n answering /sync $want_sync and /async $want_async" \
		eval '[ "$(http_code $n /sync)" = $want_sync ] && [ "$(http_code $n /async)" = $want_async ]'
done

# Node loss with a writer running: only the synchronous standby may win,
# and every acknowledged write must be on it.
poller_start
writer_start 20
wait_for 20 "the writer's first acks" eval '[ "$(acks_count)" -ge 40 ]'
pm=$(postmaster_pid "$old") || fail "no postmaster PID for node$old"
children=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
t0=$(now_ms)
kill -KILL $(fence_pid "$old") "${AGENT_PID[$old]}" "$pm" $children 2>/dev/null
log "killed the agent, postmaster and backends of node$old"
agent_wait_exit "$old" 10 || fail "agent of node$old survived SIGKILL"
new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$old" ] || return 1
	NEW=${BASH_REMATCH[1]}
	[ "$(in_recovery "$NEW")" = f ]
}
wait_for $((TTL + 30)) "a new primary" new_leader
assert_eq "$sync_n" "$NEW" "the synchronous standby node$sync_n took over"
acked_elsewhere() { awk -v p="${PG_PORT[$old]}" -v t="$t0" '$1 == "ack" && $3 > t && $4 != p { f = 1 } END { exit !f }' "$T/writer.out"; }
wait_for 30 "a write acknowledged by the new primary" acked_elsewhere
log "node$NEW primary $(($(now_ms) - t0)) ms after the kill"

# The key moves to the new leader and, with node$old dead, names the
# remaining replica once it streams from node$NEW.
other=
for n in 1 2 3; do [ "$n" != "$old" ] && [ "$n" != "$NEW" ] && other=$n; done
wait_for 60 "the sync key naming node$other under node$NEW" eval 'sync_named node$NEW && [ "$SYNC" = node$other ]'
pass "sync key now $(sync_key)"

bg_stop "$WRITER_PID"
awk '$1 == "ack" { print $2 }' "$T/writer.out" | LC_ALL=C sort >"$T/acked"
run_sql "$NEW" "SELECT id FROM baton_writes ORDER BY id" | LC_ALL=C sort >"$T/present" || fail "cannot read baton_writes"
lost=$(LC_ALL=C comm -23 "$T/acked" "$T/present" | wc -l)
assert_eq 0 "$lost" "acknowledged writes missing on the new primary (of $(wc -l <"$T/acked"))"

# The old node rejoins as a replica.
agent_start "$old"
wait_healthy 90
assert_eq "$NEW" "$PRIMARY" "node$NEW kept the lead after node$old rejoined"

# Strict mode: stop both replicas; a commit must block, not turn asynchronous.
"$BATON_BUILD/batonctl" -c "$T/node$NEW.conf" edit-config --force --set synchronous_mode_strict=true >/dev/null ||
	fail "edit-config synchronous_mode_strict=true failed"
for n in 1 2 3; do [ "$n" != "$NEW" ] && agent_stop "$n"; done
wait_for 30 "synchronous_standby_names = '*' on node$NEW" \
	eval '[ "$(run_sql "$NEW" "SHOW synchronous_standby_names")" = "*" ]'
as_baton env PGPASSFILE="$PGPASSFILE" PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -X -q -A -t \
	-h 127.0.0.1 -p "${PG_PORT[$NEW]}" -U postgres -d postgres \
	-c "INSERT INTO baton_writes (id, at) VALUES (-1, now())" >"$T/strict.out" 2>&1 &
blocked=$!
BG_PIDS+=("$blocked")
sleep 3
pid_alive "$blocked" || fail "a commit returned with no synchronous standby in strict mode: $(cat "$T/strict.out")"
pass "the commit waits while no standby is there"
agent_start "$other"
wait_for 60 "the blocked commit to complete once node$other is back" bg_gone "$blocked"
wait "$blocked" || fail "the blocked commit failed: $(cat "$T/strict.out")"
assert_eq 1 "$(run_sql "$NEW" "SELECT count(*) FROM baton_writes WHERE id = -1")" "the blocked commit is there"

bg_stop "$POLLER_PID"
split=$(awk '$1 == "split_brain_samples" { print $2 }' "$T/poller.out")
assert_eq 0 "$split" "no sample with two primaries"
