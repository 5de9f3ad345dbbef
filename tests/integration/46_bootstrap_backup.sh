#!/bin/bash
# 46_bootstrap_backup: new clusters bootstrapped from a pgBackRest backup
# (bootstrap.method = "pgbackrest"; issue 14). One etcd, four scopes:
#   a: node1 archives into a posix repository under the test dir (stanza
#      a); rows of phase 'before', a full backup taken while a writer runs,
#      rows of phase 'pre', the target time, rows of phase 'post';
#   b: node2 bootstraps from the backup to the end of the archive: every
#      row, a new timeline, the leader; node3 then joins as a replica
#      (pg_basebackup from node2) and replays rows written on node2;
#   c: node4 bootstraps to the target time: the 'pre' rows, none of 'post';
#   d: node5 bootstraps to a time before the backup ended: Postgres stops
#      ("before consistent recovery point"), the agent says so, no leader
#      or initialize key is left, the data directory is moved aside, and
#      the agent does not try again.
# needs packages: pgbackrest
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init bootstrap_backup

PGBR=/usr/bin/pgbackrest
[ -x "$PGBR" ] || skip "pgbackrest is not installed (Debian package pgbackrest)"

etcd_start
REPO=$T/repo
mkdir -p "$REPO" "$T/pgbr-log" "$T/pgbr-lock" "$T/pgbr-spool"
cat >"$T/pgbackrest.conf" <<CONF
[global]
repo1-path=$REPO
log-path=$T/pgbr-log
lock-path=$T/pgbr-lock
spool-path=$T/pgbr-spool
log-level-console=warn
log-level-file=info
start-fast=y
compress-type=none

[a]
pg1-path=$T/node1
pg1-socket-path=$T
pg1-user=postgres
CONF
chown -R "$BATON_USER:" "$REPO" "$T/pgbr-log" "$T/pgbr-lock" "$T/pgbr-spool" "$T/pgbackrest.conf"
pick_port "PG_PORT[1]"
sed -i "s|^pg1-user=postgres|pg1-user=postgres\npg1-port=${PG_PORT[1]}|" "$T/pgbackrest.conf"
pgbr() { as_baton env PGPASSFILE="$PGPASSFILE" "$PGBR" --config="$T/pgbackrest.conf" --stanza=a "$@"; }

leader_of() { etcdctl_ get --print-value-only "$NAMESPACE/$1/leader" 2>/dev/null | head -n1; }
init_of() { etcdctl_ get --print-value-only "$NAMESPACE/$1/initialize" 2>/dev/null | head -n1; }
# rows N PHASE: how many rows of that phase nodeN has.
rows() { run_sql "$1" "SELECT count(*) FROM marks WHERE phase = '$2'"; }

# ---- cluster a: node1 archives to stanza a
SCOPE=a node_config 1
# max_connections above the default the new clusters start with: a restored
# backup recovers with hot standby on, which needs at least the source's.
sed -i "s|^  parameters = { shared_buffers = \"32MB\"; };|  parameters = { shared_buffers = \"32MB\"; max_connections = \"150\"; archive_mode = \"on\";\n    archive_command = \"$PGBR --config=$T/pgbackrest.conf --stanza=a archive-push %p\"; };|" "$T/node1.conf"
grep -q archive-push "$T/node1.conf" || fail "cannot render node1's config"
agent_start 1
wait_for 60 "node1 leads scope a" eval '[ "$(leader_of a)" = node1 ] && [ "$(in_recovery 1)" = f ]'
run_sql 1 "CREATE TABLE marks (id serial PRIMARY KEY, phase text NOT NULL, at timestamptz DEFAULT clock_timestamp())" ||
	fail "cannot create the table"
run_sql 1 "INSERT INTO marks (phase) SELECT 'before' FROM generate_series(1, 100)" || fail "insert 'before' failed"
pgbr stanza-create >"$T/stanza.out" 2>&1 || fail "stanza-create failed: $(cat "$T/stanza.out")"
# A time before the backup: commits follow it during the backup (the
# writer), so a recovery stopping there stops before consistency.
too_early=$(run_sql 1 "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 0.2
writer_start 50
wait_for 20 "first acknowledged write" eval '[ "$(acks_count)" -gt 0 ]'
t0=$(now_ms)
pgbr --type=full backup >"$T/backup.out" 2>&1 || fail "full backup failed: $(cat "$T/backup.out")"
log "full backup in $(($(now_ms) - t0)) ms"
bg_stop "$WRITER_PID"
run_sql 1 "INSERT INTO marks (phase) SELECT 'pre' FROM generate_series(1, 100)" || fail "insert 'pre' failed"
sleep 0.5
target=$(run_sql 1 "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 0.5
run_sql 1 "INSERT INTO marks (phase) SELECT 'post' FROM generate_series(1, 100)" || fail "insert 'post' failed"
# Everything is in the archive before the new clusters read it.
last=$(run_sql 1 "SELECT pg_walfile_name(pg_switch_wal())")
wait_for 30 "$last archived" eval '[ "$(run_sql 1 "SELECT last_archived_wal >= '"'$last'"' FROM pg_stat_archiver")" = t ]'
tl_a=$(run_sql 1 "SELECT timeline_id FROM pg_control_checkpoint()")
log "backup done; target $target (too early: $too_early); scope a on timeline $tl_a"

# configure N SCOPE [TARGET_TIME]: nodeN of SCOPE bootstraps from stanza a
# (the block goes into the rendered bootstrap group: libconfig has no merge).
configure() {
	local n=$1 scope=$2 tt=${3:-} c="$PGBR --config=$T/pgbackrest.conf --stanza=a --pg1-path=$T/node$1"
	SCOPE=$scope node_config "$n"
	sed -i "s|^bootstrap = {\$|bootstrap = {\n  method = \"pgbackrest\";\n  pgbackrest = { command = \"$c restore\"; no_params = true; timeout = 120;\n    restore_command = \"$c archive-get %f \\\\\"%p\\\\\"\";${tt:+ recovery_target_time = \"$tt\";} };|" \
		"$T/node$n.conf"
	grep -q 'method = "pgbackrest"' "$T/node$n.conf" || fail "cannot render node$n's config"
}

# ---- (a) scope b: node2 to the end of the archive, node3 a replica
configure 2 b
agent_start 2
wait_for 90 "node2 leads scope b as a primary" eval '[ "$(leader_of b)" = node2 ] && [ "$(in_recovery 2)" = f ]'
wait_for 30 "scope b initialized" eval '[ -n "$(init_of b)" ] && [ "$(init_of b)" != node2 ]'
grep -q "bootstrapping cluster 'b' from a backup (bootstrap.method pgbackrest): restoring it, then recovering to the end of the archive" "$(agent_log 2)" ||
	fail "node2 does not say it bootstraps from the backup"
grep -q 'recovery of the restored backup ended: Postgres was promoted on timeline' "$(agent_log 2)" ||
	fail "node2 does not say its recovery ended with a promotion"
! grep -q 'running initdb\|initdb started' "$(agent_log 2)" || fail "node2 ran initdb"
grep -q 'max_connections raised to 150 from 100' "$(agent_log 2)" ||
	fail "node2 did not raise max_connections to the backup's 150 for its recovery"
assert_eq "100 100 100" "$(rows 2 before) $(rows 2 pre) $(rows 2 post)" "node2's rows (before, pre, post)"
run_sql 2 "CHECKPOINT" >/dev/null
tl_b=$(run_sql 2 "SELECT timeline_id FROM pg_control_checkpoint()")
[ "$tl_b" -gt "$tl_a" ] || fail "node2 is on timeline $tl_b, not a new one after $tl_a"
assert_eq "$(run_sql 1 "SELECT system_identifier FROM pg_control_system()")" "$(init_of b)" \
	"scope b's initialize key (the backup's system identifier)"
! grep -qi '^\(restore_command\|recovery_target\)' "$T/node2/postgresql.auto.conf" ||
	fail "recovery settings left in node2's postgresql.auto.conf: $(cat "$T/node2/postgresql.auto.conf")"
[ ! -e "$T/node2/recovery.signal" ] || fail "recovery.signal left in node2's data directory"
pass "scope b bootstrapped from the backup: all 300 rows, timeline $tl_a -> $tl_b, recovery settings gone"
configure 3 b
agent_start 3
wait_for 90 "node3 streams from node2" \
	eval '[ "$(run_sql 3 "SELECT status || '"' '"' || sender_port FROM pg_stat_wal_receiver")" = "streaming ${PG_PORT[2]}" ]'
! grep -q 'bootstrap restore started' "$(agent_log 3)" || fail "node3 restored the backup although scope b exists"
run_sql 2 "INSERT INTO marks (phase) SELECT 'b-new' FROM generate_series(1, 50)" || fail "insert on node2 failed"
wait_for 30 "node3 replays node2's new rows" eval '[ "$(rows 3 b-new)" = 50 ]'
assert_eq "100 100 100" "$(rows 3 before) $(rows 3 pre) $(rows 3 post)" "node3's rows (before, pre, post)"
pass "node3 joined scope b as a replica of node2 and replays its new rows"
# A data directory left by a bootstrap interrupted before its promotion
# (the marker of its prepared recovery) is never started: it would promote
# itself at its target without the leader key. Moved aside, re-cloned.
agent_stop 3
as_baton touch "$T/node3/baton.bootstrap-recovery"
lines0=$(wc -l <"$(agent_log 3)")
agent_start 3
wait_for 30 "node3 refuses the interrupted bootstrap" \
	eval 'tail -n +"$lines0" "$(agent_log 3)" | grep -q "bootstrap from a backup failed: the data directory holds a bootstrap from a backup interrupted before its promotion"'
wait_for 90 "node3 streams from node2 again" \
	eval '[ "$(run_sql 3 "SELECT status || '"' '"' || sender_port FROM pg_stat_wal_receiver")" = "streaming ${PG_PORT[2]}" ]'
ls -d "$T"/node3.failed-* >/dev/null 2>&1 || fail "node3's interrupted data directory was not moved aside"
[ ! -e "$T/node3/baton.bootstrap-recovery" ] || fail "the marker is in node3's new copy"
assert_eq 50 "$(rows 3 b-new)" "node3's rows of node2 after the re-clone"
pass "an interrupted bootstrap's data directory is moved aside, never started; node3 cloned again"
agent_stop 3
agent_stop 2

# ---- (b) scope c: node4 to the target time
configure 4 c "$target"
agent_start 4
wait_for 90 "node4 leads scope c as a primary" eval '[ "$(leader_of c)" = node4 ] && [ "$(in_recovery 4)" = f ]'
grep -q "recovering to recovery_target_time = '$target' (inclusive)" "$(agent_log 4)" ||
	fail "node4 does not name its recovery target: $(grep -o 'bootstrapping cluster.*' "$(agent_log 4)")"
assert_eq "100 100 0" "$(rows 4 before) $(rows 4 pre) $(rows 4 post)" "node4's rows at the target (before, pre, post)"
assert_eq "0" "$(run_sql 4 "SELECT count(*) FROM marks WHERE at > '$target'")" "node4's rows after the target time"
wait_for 30 "scope c initialized" eval '[ -n "$(init_of c)" ] && [ "$(init_of c)" != node4 ]'
pass "scope c bootstrapped to $target: the 200 rows before it, none of the 100 after"
agent_stop 4

# ---- (c) scope d: a target before the backup ended
configure 5 d "$too_early"
agent_start 5
wait_for 90 "node5 gives up its bootstrap" \
	eval 'grep -q "no cluster was created and this member will not try again" "$(agent_log 5)"'
grep -q 'bootstrap from a backup failed: Postgres stopped before the recovery of the restored backup ended: .*before consistent recovery point' "$(agent_log 5)" ||
	fail "node5 does not say why: $(grep -o 'bootstrap from a backup failed.*' "$(agent_log 5)")"
assert_eq "" "$(leader_of d)" "scope d's leader key"
assert_eq "" "$(init_of d)" "scope d's initialize key"
[ ! -e "$T/node5" ] || fail "node5's data directory is still there"
aside=$(ls -d "$T"/node5.failed-* 2>/dev/null | head -n1)
[ -n "$aside" ] && [ -f "$aside/PG_VERSION" ] || fail "node5's data directory was not moved aside: $(ls "$T")"
grep -q "moved aside to $aside" "$(agent_log 5)" || fail "node5's log does not name $aside"
[ -z "$(postmaster_pid 5)" ] || fail "a postmaster still runs for node5"
# It does not race again: no key, no second restore, for several loops.
sleep 5
assert_eq "" "$(leader_of d)$(init_of d)" "scope d's leader and initialize keys after 5 s"
assert_eq 1 "$(grep -c 'bootstrap restore started' "$(agent_log 5)")" "restores run by node5"
grep -q 'cluster not initialized; our bootstrap from a backup failed (see the log): not racing again until the agent is restarted' "$(agent_log 5)" ||
	fail "node5 does not say it waits for a restart"
pid_alive "${AGENT_PID[5]}" || fail "node5's agent exited"
pass "scope d: a target before the end of the backup fails clearly; no keys left, data directory moved aside to $(basename "$aside")"
pass "46_bootstrap_backup"
