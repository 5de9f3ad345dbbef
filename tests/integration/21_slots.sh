#!/bin/bash
# 21_slots: replication slots. Each replica streams through its own slot;
# every replica keeps slots for the other members, so that after a
# failover the new primary already retains the WAL a stopped replica still
# needs. With wal_keep_size = 0 and WAL recycled hard on the new primary,
# the stopped replica comes back and streams again without a re-clone.
# A permanent slot from the config exists on whichever node is primary.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init slots

etcd_start
for n in 1 2 3; do
	node_config "$n"
	# No WAL kept for replicas but through slots; small segments recycled fast.
	sed -i 's/^  parameters = { shared_buffers = "32MB"; };/  parameters = { shared_buffers = "32MB"; wal_keep_size = 0; max_wal_size = "64MB"; min_wal_size = "32MB"; };/' \
		"$T/node$n.conf"
	sed -i 's/^    maximum_lag_on_failover = .*/&\n    slots = ["backup_tool"];/' "$T/node$n.conf"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
old=$PRIMARY
r1= r2=
for n in 1 2 3; do
	[ "$n" = "$old" ] && continue
	if [ -z "$r1" ]; then r1=$n; else r2=$n; fi
done

# Each replica streams through its slot on the primary.
slot_active() { [ "$(run_sql "$1" "SELECT active FROM pg_replication_slots WHERE slot_name = '$2'")" = t ]; }
for n in $r1 $r2; do
	wait_for 30 "node$n streaming through slot node$n on node$old" slot_active "$old" "node$n"
done
wait_for 30 "the permanent slot on the primary" \
	eval '[ "$(run_sql "$old" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '\''backup_tool'\''")" = 1 ]'
# Every replica holds slots for the two other members.
have_slots() { [ "$(run_sql "$1" "SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots")" = "$2" ]; }
names() { local n out=""; for n in "$@"; do out+="${out:+,}node$n"; done; echo "$out"; }
wait_for 30 "slots for the others on node$r1" have_slots "$r1" "$(names $(printf '%s\n' "$old" "$r2" | sort))"
wait_for 30 "slots for the others on node$r2" have_slots "$r2" "$(names $(printf '%s\n' "$old" "$r1" | sort))"

# A replica moves its slots forward as the members advance.
run_sql "$old" "CREATE TABLE filler (v text); INSERT INTO filler SELECT repeat('x', 100) FROM generate_series(1, 20000)" \
	>/dev/null || fail "cannot create the filler table"
lsn=$(run_sql "$old" "SELECT pg_current_wal_lsn()")
slot_past() { [ "$(run_sql "$1" "SELECT restart_lsn >= '$3' FROM pg_replication_slots WHERE slot_name = '$2'")" = t ]; }
wait_for 30 "node$r1's slot for node$r2 moved past $lsn" slot_past "$r1" "node$r2" "$lsn"

# Stop replica r2 (its member key goes away), then lose the primary.
agent_stop "$r2"
pm=$(postmaster_pid "$old") || fail "no postmaster PID for node$old"
children=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
kill -KILL $(fence_pid "$old") "${AGENT_PID[$old]}" "$pm" $children 2>/dev/null
agent_wait_exit "$old" 10 || fail "agent of node$old survived SIGKILL"
wait_for $((TTL + 30)) "node$r1 to become primary" eval '[ "$(leader_name)" = node$r1 ] && [ "$(in_recovery $r1)" = f ]'
restart_before=$(run_sql "$r1" "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'node$r2'")
[ -n "$restart_before" ] || fail "the new primary node$r1 has no slot for node$r2"
pass "the new primary node$r1 kept a slot for the stopped node$r2 (restart_lsn $restart_before)"
wait_for 30 "the permanent slot on the new primary" \
	eval '[ "$(run_sql "$r1" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '\''backup_tool'\''")" = 1 ]'

# Recycle WAL hard on the new primary: ~200 MB of WAL and checkpoints.
for i in 1 2 3 4; do
	run_sql "$r1" "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 50000); CHECKPOINT" >/dev/null ||
		fail "cannot write filler on node$r1"
done
[ "$(run_sql "$r1" "SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}\$' AND name <= pg_walfile_name('$restart_before')")" -ge 1 ] ||
	fail "the WAL node$r2 needs (from $restart_before) was recycled on node$r1"
pass "node$r1 still has the WAL node$r2 needs after $(run_sql "$r1" "SELECT pg_size_pretty(pg_current_wal_lsn() - '$restart_before'::pg_lsn)") of new WAL"

# The stopped replica returns and streams from the new primary, no clone.
clones_before=$(grep -c "starting pg_basebackup" "$(agent_log "$r2")")
agent_start "$r2"
wait_for 90 "node$r2 streaming from node$r1 through its slot" slot_active "$r1" "node$r2"
assert_eq "$clones_before" "$(grep -c "starting pg_basebackup" "$(agent_log "$r2")")" "node$r2 was not re-cloned"
rows=$(run_sql "$r1" "SELECT count(*) FROM filler")
wait_for 60 "node$r2 to replay all $rows filler rows" eval '[ "$(run_sql "$r2" "SELECT count(*) FROM filler")" = "$rows" ]'

# The old primary rejoins too (rewind or follow), without a clone.
clones_before=$(grep -c "starting pg_basebackup" "$(agent_log "$old")")
agent_start "$old"
wait_healthy 120
assert_eq "$clones_before" "$(grep -c "starting pg_basebackup" "$(agent_log "$old")")" "node$old was not re-cloned"
wait_for 30 "node$old streaming through its slot" slot_active "$r1" "node$old"

# A planned switchover: the old primary keeps running and demotes to a
# replica with no upstream at first, then follows the new leader; it must
# stream through its own slot there (primary_slot_name written when it
# follows), or the slot it has on the new primary holds WAL for ever.
out=$(ctl switchover --candidate "node$r2" --wait 60 </dev/null 2>&1) || fail "switchover to node$r2 failed: $out"
log "switchover: $out"
wait_for 60 "node$r1 (former primary) streaming from node$r2 through its slot" slot_active "$r2" "node$r1"
assert_eq "node$r1" "$(run_sql "$r1" "SELECT slot_name FROM pg_stat_wal_receiver")" "node$r1's walreceiver uses its slot"
pass "after the switchover, the former primary node$r1 streams through its slot on node$r2"
