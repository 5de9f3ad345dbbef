#!/bin/bash
# 43_pgbackrest: replicas from pgBackRest backups and the WAL archive
# (issue 14). One etcd and a primary (node1) archiving every segment with
# `pgbackrest archive-push` into a posix repository under the test dir;
# stanza-create and a full backup while a writer runs. Then:
#   - node2 (create_replica_methods = pgbackrest, basebackup) is restored
#     by pgBackRest, not pg_basebackup, and streams;
#   - node3, whose pgbackrest command names a stanza that does not exist,
#     falls back to basebackup, taken from node2 (tagged clonefrom);
#   - every acknowledged row is on both;
#   - node2 is stopped, its slot dropped, the primary (wal_keep_size 0)
#     switches and recycles many segments: node2 comes back, replays the
#     missing WAL through restore_command (archive-get) and streams again,
#     with the same data directory (inode, system identifier, a marker file):
#     no re-clone;
#   - `batonctl reinit node2` with keep_data runs the restore over the old
#     files (--delta) without removing them first;
#   - node3 restarted with the tag nostream: no WAL receiver, no
#     primary_conninfo, no slot on the primary, and new rows arrive through
#     the archive (restore_command) alone.
# needs packages: pgbackrest
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init pgbackrest

PGBR=/usr/bin/pgbackrest
[ -x "$PGBR" ] || skip "pgbackrest is not installed (Debian package pgbackrest)"

etcd_start
pick_port "PG_PORT[1]"
REPO=$T/repo
mkdir -p "$REPO" "$T/pgbr-log" "$T/pgbr-lock" "$T/pgbr-spool"
cat >"$T/pgbackrest.conf" <<CONF
[global]
repo1-path=$REPO
repo1-retention-full=2
log-path=$T/pgbr-log
lock-path=$T/pgbr-lock
spool-path=$T/pgbr-spool
log-level-console=warn
log-level-file=info
start-fast=y
compress-type=none

[main]
pg1-path=$T/node1
pg1-port=${PG_PORT[1]}
pg1-socket-path=$T
pg1-user=postgres
CONF
chown -R "$BATON_USER:" "$REPO" "$T/pgbr-log" "$T/pgbr-lock" "$T/pgbr-spool" "$T/pgbackrest.conf"
pgbr() { as_baton env PGPASSFILE="$PGPASSFILE" "$PGBR" --config="$T/pgbackrest.conf" --stanza=main "$@"; }

# configure N STANZA: nodeN archives to and restores from the repository
# (its own data directory as pg1-path); replicas are created by pgbackrest
# (restoring stanza STANZA), then basebackup.
configure() {
	local n=$1 stanza=$2 c="$PGBR --config=$T/pgbackrest.conf --pg1-path=$T/node$1"
	node_config "$n"
	sed -i "s|^  parameters = { shared_buffers = \"32MB\"; };|  parameters = { shared_buffers = \"32MB\"; wal_keep_size = 0; max_wal_size = \"32MB\"; min_wal_size = \"32MB\";\n    archive_mode = \"on\"; archive_command = \"$c --stanza=main archive-push %p\";\n    restore_command = \"$c --stanza=main archive-get %f \\\\\"%p\\\\\"\"; };\n  create_replica_methods = ( \"pgbackrest\", \"basebackup\" );\n  pgbackrest = { command = \"$c --stanza=$stanza --delta restore --type=standby\"; no_params = true; keep_data = true; timeout = 120; };|" \
		"$T/node$n.conf"
	grep -q 'create_replica_methods' "$T/node$n.conf" || fail "cannot render node$n's config"
}
configure 1 main
agent_start 1
wait_for 60 "node1 leads as primary" eval '[ "$(leader_name)" = node1 ] && [ "$(in_recovery 1)" = f ]'
[ "$(run_sql 1 "SHOW archive_mode")" = on ] || fail "archive_mode is not on for node1"

pgbr stanza-create >"$T/stanza.out" 2>&1 || fail "stanza-create failed: $(cat "$T/stanza.out")"
writer_start 50
wait_for 20 "first acknowledged write" eval '[ "$(acks_count)" -gt 0 ]'
t0=$(now_ms)
pgbr --type=full backup >"$T/backup.out" 2>&1 || fail "full backup failed: $(cat "$T/backup.out")"
log "full backup in $(($(now_ms) - t0)) ms"
pgbr info >"$T/info.out" 2>&1
grep -q 'full backup' "$T/info.out" || fail "no full backup in the repository: $(cat "$T/info.out")"

# streams N: nodeN runs as a replica whose WAL receiver streams from node1
# (pg_basebackup's own WAL stream does not count).
streams() {
	[ "$(run_sql "$1" "SELECT status || ' ' || sender_port FROM pg_stat_wal_receiver")" = "streaming ${PG_PORT[1]}" ]
}
# caught_up N: nodeN replayed everything node1 has written up to now.
caught_up() {
	local target
	target=$(run_sql 1 "SELECT pg_current_wal_lsn()") || return 1
	poll_until 30 eval "[ \"\$(run_sql $1 \"SELECT pg_last_wal_replay_lsn() >= '$target'\")\" = t ]"
}

# ---- node2: restored by pgBackRest while the writer runs; tagged
# clonefrom, so base backups of later members come from it
configure 2 main
printf 'tags = { clonefrom = true; };\n' >>"$T/node2.conf"
t0=$(now_ms)
agent_start 2
wait_for 90 "node2 streaming from node1" streams 2
log "node2 created and streaming in $(($(now_ms) - t0)) ms"
grep -q 'creating replica with pgbackrest (method 1 of 2)' "$(agent_log 2)" || fail "node2 did not try pgbackrest first"
grep -q 'replica created with pgbackrest (method 1 of 2' "$(agent_log 2)" ||
	fail "node2 does not say it was restored by pgbackrest"
! grep -q 'creating replica with basebackup' "$(agent_log 2)" || fail "node2 ran pg_basebackup too"
pass "node2 restored by pgbackrest: $(grep -o 'replica created with pgbackrest.*' "$(agent_log 2)" | head -n1)"
# The agent's own standby files rule: primary_conninfo and its slot.
[ "$(run_sql 2 "SELECT slot_name FROM pg_stat_wal_receiver")" = node2 ] ||
	fail "node2 does not stream through its slot: $(run_sql 2 "SELECT slot_name, status FROM pg_stat_wal_receiver")"
pass "node2 streams through its slot node2"
# pgBackRest's restore_command in postgresql.auto.conf is gone: the node's
# own (postgresql.parameters, in postgresql.conf) rules.
grep -q 'removed restore_command from postgresql.auto.conf' "$(agent_log 2)" ||
	fail "node2 does not say it removed pgbackrest's restore_command from postgresql.auto.conf"
! grep -q '^restore_command' "$T/node2/postgresql.auto.conf" || fail "restore_command left in node2's postgresql.auto.conf"
assert_eq "$PGBR --config=$T/pgbackrest.conf --pg1-path=$T/node2 --stanza=main archive-get %f \"%p\"" \
	"$(run_sql 2 "SHOW restore_command")" "node2's restore_command (its own file's)"

# ---- node3: a stanza that does not exist; basebackup takes over
configure 3 nosuch
agent_start 3
wait_for 90 "node3 streaming from node1" streams 3
grep -q 'pgbackrest failed after .*, trying basebackup (method 2 of 2)' "$(agent_log 3)" ||
	fail "node3 does not say pgbackrest failed and basebackup follows"
grep -q 'replica created with basebackup (method 2 of 2' "$(agent_log 3)" || fail "node3 was not created by basebackup"
grep -q 'creating replica with basebackup (method 2 of 2) from node2 (tagged clonefrom)' "$(agent_log 3)" ||
	fail "node3's base backup did not come from node2 (tagged clonefrom): $(grep -o 'creating replica with basebackup.*' "$(agent_log 3)")"
pass "node3's base backup came from node2 (tagged clonefrom), not the leader"
pass "node3: $(grep -o 'pgbackrest failed after.*' "$(agent_log 3)" | head -n1 | cut -c1-160)"
assert_eq "$PGBR --config=$T/pgbackrest.conf --pg1-path=$T/node3 --stanza=main archive-get %f \"%p\"" \
	"$(run_sql 3 "SHOW restore_command")" "node3's restore_command (its own file's)"

# ---- every acknowledged row is on both
bg_stop "$WRITER_PID"
awk '$1 == "ack" { print $2 }' "$T/writer.out" | LC_ALL=C sort >"$T/acked"
for n in 2 3; do
	caught_up "$n" || fail "node$n did not catch up with node1"
	run_sql "$n" "SELECT id FROM baton_writes ORDER BY id" | LC_ALL=C sort >"$T/present$n" || fail "cannot read node$n"
	assert_eq 0 "$(LC_ALL=C comm -23 "$T/acked" "$T/present$n" | wc -l)" \
		"acknowledged writes missing on node$n (of $(wc -l <"$T/acked"))"
done

# ---- node2 falls behind its WAL: it catches up from the archive
sysid() { as_baton "$PG_BIN/pg_controldata" "$T/node2" | awk -F': *' '/system identifier/ { print $2 }'; }
as_baton touch "$T/node2/baton-test-marker"
inode0=$(stat -c %i "$T/node2")
sysid0=$(sysid)
# The segment node2 replays next (named on node1: pg_walfile_name() is
# refused during recovery).
at=$(run_sql 2 "SELECT pg_last_wal_replay_lsn()")
need=$(run_sql 1 "SELECT pg_walfile_name('$at')")
[[ "$need" =~ ^[0-9A-F]{24}$ ]] || fail "cannot name the WAL segment node2 needs (replay at '$at': '$need')"
agent_stop 2
[ -z "$(postmaster_pid 2)" ] || fail "node2's Postgres still runs after its agent stopped"
# Its slot goes (the leader keeps none for a member whose key is gone).
wait_for 30 "node2's member key gone" eval '[ -z "$(member_json node2)" ]'
run_sql 1 "SELECT pg_drop_replication_slot('node2') FROM pg_replication_slots WHERE slot_name = 'node2'" >/dev/null ||
	fail "cannot drop node2's slot"
for i in $(seq 1 8); do
	run_sql 1 "INSERT INTO baton_writes (id, node) SELECT 1000000 + $i * 1000 + g, 'gap' FROM generate_series(1, 500) g" ||
		fail "insert $i failed"
	run_sql 1 "SELECT pg_switch_wal()" >/dev/null || fail "pg_switch_wal failed"
done
run_sql 1 "CHECKPOINT" >/dev/null && run_sql 1 "CHECKPOINT" >/dev/null || fail "checkpoint failed"
oldest=$(run_sql 1 "SELECT min(name) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}\$'")
[[ "$oldest" > "$need" ]] || fail "node1 still holds $need (oldest $oldest): the test would not need the archive"
pass "node1 recycled the WAL node2 needs ($need < oldest $oldest)"
# It is in the archive, pushed by archive_command.
wait_for 30 "$need in the archive" eval '[ -n "$(find "$REPO/archive/main" -name "$need*" | head -n1)" ]'

restored0=$(grep -c 'restored log file' "$T/node2.log" || true)
lines0=$(wc -l <"$(agent_log 2)")
agent_start 2
wait_for 90 "node2 streaming again" streams 2
restored=$(($(grep -c 'restored log file' "$T/node2.log" || true) - restored0))
[ "$restored" -ge 1 ] || fail "node2 restored no WAL from the archive (see $T/node2.log)"
pass "node2 replayed $restored segments from the archive, then streams"
! tail -n +"$lines0" "$(agent_log 2)" | grep -q 'creating replica' || fail "node2 was cloned again"
assert_eq "$inode0" "$(stat -c %i "$T/node2")" "node2's data directory is the same directory"
[ -f "$T/node2/baton-test-marker" ] || fail "the marker file in node2's data directory is gone"
assert_eq "$sysid0" "$(sysid)" "node2's system identifier"
caught_up 2 || fail "node2 did not catch up"
assert_eq 4000 "$(run_sql 2 "SELECT count(*) FROM baton_writes WHERE node = 'gap'")" "rows written while node2 was away"

# ---- batonctl reinit with keep_data: pgbackrest restores over the old
# files (--delta) instead of a removal and a full restore
lines0=$(wc -l <"$(agent_log 2)")
since() { tail -n +"$((lines0 + 1))" "$(agent_log 2)"; }
ctl reinit node2 >"$T/reinit.out" 2>&1 || fail "batonctl reinit node2 failed: $(cat "$T/reinit.out")"
wait_for 120 "node2 restored again by pgbackrest" eval 'since | grep -q "replica created with pgbackrest"'
since | grep -q 'creating replica with pgbackrest (method 1 of 2), leader node1, over the old data directory (keep_data)' ||
	fail "the reinit did not run pgbackrest over the old data directory: $(since | grep -o 'reinit.*' | head -n3)"
! since | grep -q "removing data directory" || fail "the reinit removed node2's data directory despite keep_data"
wait_for 90 "node2 streaming after the reinit" streams 2
pass "reinit with keep_data: $(since | grep -o 'replica created with pgbackrest.*' | head -n1)"

# ---- nostream: node3 replays from the archive only (Patroni's tag)
agent_stop 3
printf 'tags = { nostream = true; };\n' >>"$T/node3.conf"
agent_start 3
wait_for 60 "node3 back in recovery" eval '[ "$(in_recovery 3)" = t ]'
grep -q 'nostream' "$(agent_log 3)" || fail "node3's log does not mention its nostream tag"
assert_eq "" "$(run_sql 3 "SELECT status FROM pg_stat_wal_receiver")" "node3's WAL receiver (nostream: none)"
assert_eq "" "$(run_sql 3 "SHOW primary_conninfo")" "node3's primary_conninfo (nostream)"
wait_for 60 "no slot for node3 on node1" eval '[ "$(run_sql 1 "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '"'node3'"'")" = 0 ]'
run_sql 1 "INSERT INTO baton_writes (id, node) SELECT 2000000 + g, 'nostream' FROM generate_series(1, 100) g" >/dev/null ||
	fail "insert for the nostream check failed"
run_sql 1 "SELECT pg_switch_wal()" >/dev/null || fail "pg_switch_wal failed"
wait_for 90 "node3 replayed the new rows from the archive" \
	eval '[ "$(run_sql 3 "SELECT count(*) FROM baton_writes WHERE node = '"'nostream'"'")" = 100 ]'
assert_eq "" "$(run_sql 3 "SELECT status FROM pg_stat_wal_receiver")" "node3 still does not stream"
pass "nostream: node3 replays from the archive, with no WAL receiver and no slot on the primary"
pass "43_pgbackrest"
