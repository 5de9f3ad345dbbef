#!/bin/bash
# tests/bench/replica_create.sh - how long creating a replica takes, by
# pgBackRest restore against pg_basebackup, and how long bootstrapping a
# new cluster from the same backup takes (issue 14). Figures, not
# assertions; not run in CI. Needs the Debian package pgbackrest.
#
#   tests/bench/replica_create.sh [--size-mb N | --scale N] [--rounds N] [--keep]
#
# etcd and a primary (node1) archiving to a posix pgBackRest repository in
# the test dir, loaded with pgbench data of about --size-mb MB (default
# 300; use thousands for the "few GB" figure) or of pgbench scale --scale
# (about 15 MB each: 150 to 200 for 2-3 GB), then one full backup. Then
# --rounds rounds (default 3) of: a new replica node2 with
# create_replica_methods = ( "pgbackrest" ), then with ( "basebackup" ),
# each from an empty data directory while a writer inserts into the
# primary. Per round and method:
#   create = the agent's own figure ("replica created with ... in N s":
#            the restore or pg_basebackup alone);
#   stream = agent start -> node2 streaming from node1 (includes replaying
#            the WAL written since the backup, from the archive for
#            pgbackrest).
# and a new one-member cluster (scope bootN, node3) with bootstrap.method =
# "pgbackrest" restoring the same backup to the end of the archive:
#   restore = the agent's own figure ("restored the backup in N s");
#   leader  = agent start -> node3 holds the leader key as a writable
#             primary (restore, recovery, promotion, bootstrap).
# Prints min / median / max of each. Runs as root; BATON_BUILD names the
# build (default /var/tmp/baton-ci/build, made by tests/run.sh).
set -uo pipefail

SIZE_MB=300 ROUNDS=3 SCALE=
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_lib.sh"
bench_parse "--size-mb=SIZE_MB --scale=SCALE --rounds=ROUNDS" "$@"
bench_positive_int --rounds "$ROUNDS"
bench_positive_int --size-mb "$SIZE_MB"
[ -z "$SCALE" ] || bench_positive_int --scale "$SCALE"

. "$here/../lib/cluster.sh"
bench_init bench_replica_create
PGBR=/usr/bin/pgbackrest
[ -x "$PGBR" ] || skip "pgbackrest is not installed (Debian package pgbackrest)"

# stats: min / median / max of the numbers on stdin (seconds).
stats() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "no data"; exit }
		med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "min %.2f s  median %.2f s  max %.2f s  (n = %d)\n", v[1], med, v[NR], NR }'
}

etcd_start
pick_port "PG_PORT[1]"
REPO=$T/repo
mkdir -p "$REPO" "$T/pgbr-log" "$T/pgbr-lock" "$T/pgbr-spool"
cat >"$T/pgbackrest.conf" <<CONF
[global]
repo1-path=$REPO
log-path=$T/pgbr-log
lock-path=$T/pgbr-lock
spool-path=$T/pgbr-spool
log-level-console=warn
start-fast=y
compress-type=none
process-max=2

[main]
pg1-path=$T/node1
pg1-port=${PG_PORT[1]}
pg1-socket-path=$T
pg1-user=postgres
CONF
chown -R "$BATON_USER:" "$REPO" "$T/pgbr-log" "$T/pgbr-lock" "$T/pgbr-spool" "$T/pgbackrest.conf"
pgbr() { as_baton env PGPASSFILE="$PGPASSFILE" "$PGBR" --config="$T/pgbackrest.conf" --stanza=main "$@"; }

# configure N METHOD: nodeN archives and restores through the repository
# and creates its replica with METHOD alone.
configure() {
	local n=$1 method=$2 c="$PGBR --config=$T/pgbackrest.conf --pg1-path=$T/node$1"
	node_config "$n"
	sed -i "s|^  parameters = { shared_buffers = \"32MB\"; };|  parameters = { shared_buffers = \"32MB\";\n    archive_mode = \"on\"; archive_command = \"$c --stanza=main archive-push %p\";\n    restore_command = \"$c --stanza=main archive-get %f \\\\\"%p\\\\\"\"; };\n  create_replica_methods = ( \"$method\" );\n  pgbackrest = { command = \"$c --process-max=2 --stanza=main --delta restore --type=standby\"; no_params = true; timeout = 7200; };|" \
		"$T/node$n.conf"
}
configure 1 basebackup
agent_start 1
wait_for 60 "node1 leads as primary" eval '[ "$(leader_name)" = node1 ] && [ "$(in_recovery 1)" = f ]'
scale=${SCALE:-$(((SIZE_MB + 14) / 15))}
t0=$(now_ms)
as_baton env PGPASSFILE="$PGPASSFILE" "$PG_BIN/pgbench" -i -q -s "$scale" -h 127.0.0.1 -p "${PG_PORT[1]}" -U postgres postgres \
	>"$T/pgbench.out" 2>&1 || fail "pgbench -i failed: $(tail -n3 "$T/pgbench.out")"
log "loaded pgbench scale $scale ($(run_sql 1 "SELECT pg_size_pretty(pg_database_size('postgres'))")) in $(($(now_ms) - t0)) ms"
pgbr stanza-create >"$T/stanza.out" 2>&1 || fail "stanza-create failed: $(cat "$T/stanza.out")"
t0=$(now_ms)
pgbr --type=full backup >"$T/backup.out" 2>&1 || fail "full backup failed: $(cat "$T/backup.out")"
log "full backup in $(($(now_ms) - t0)) ms"
writer_start 50

streams() { [ "$(run_sql 2 "SELECT status FROM pg_stat_wal_receiver")" = streaming ]; }
for r in $(seq 1 "$ROUNDS"); do
	for method in pgbackrest basebackup; do
		configure 2 "$method"
		lines0=$(cat "$(agent_log 2)" 2>/dev/null | wc -l)
		t0=$(now_ms)
		agent_start 2
		wait_for 7200 "node2 ($method) streaming" streams
		stream_ms=$(($(now_ms) - t0))
		create=$(tail -n +"$((lines0 + 1))" "$(agent_log 2)" |
			sed -n "s/.*replica created with $method (method 1 of 1, .*) in \([0-9.]*\) s.*/\1/p" | head -n1)
		[ -n "$create" ] || fail "node2 did not say how long $method took"
		echo "$method create $create" >>"$RESULTS"
		echo "$method stream $(awk -v m="$stream_ms" 'BEGIN { printf "%.3f", m / 1000 }')" >>"$RESULTS"
		log "round $r $method: created in $create s, streaming after $stream_ms ms"
		agent_stop 2
		rm -rf "$(data_dir 2)"
	done
	# A new cluster from the same backup, to the end of the archive.
	c="$PGBR --config=$T/pgbackrest.conf --stanza=main --pg1-path=$T/node3"
	SCOPE=boot$r node_config 3
	sed -i "s|^bootstrap = {\$|bootstrap = {\n  method = \"pgbackrest\";\n  pgbackrest = { command = \"$c --process-max=2 restore\"; no_params = true; timeout = 7200;\n    restore_command = \"$c archive-get %f \\\\\"%p\\\\\"\"; };|" \
		"$T/node3.conf"
	lines0=$(cat "$(agent_log 3)" 2>/dev/null | wc -l)
	t0=$(now_ms)
	agent_start 3
	wait_for 7200 "node3 leads scope boot$r" \
		eval '[ "$(etcdctl_ get --print-value-only "$NAMESPACE/boot$r/leader" | head -n1)" = node3 ] && [ "$(in_recovery 3)" = f ]'
	lead_ms=$(($(now_ms) - t0))
	restore=$(tail -n +"$((lines0 + 1))" "$(agent_log 3)" | sed -n 's/.*restored the backup in \([0-9.]*\) s.*/\1/p' | head -n1)
	[ -n "$restore" ] || fail "node3 did not say how long the restore took"
	echo "bootstrap restore $restore" >>"$RESULTS"
	echo "bootstrap leader $(awk -v m="$lead_ms" 'BEGIN { printf "%.3f", m / 1000 }')" >>"$RESULTS"
	log "round $r bootstrap: restored in $restore s, leader after $lead_ms ms"
	agent_stop 3
	rm -rf "$(data_dir 3)"
done
bg_stop "$WRITER_PID"

echo
echo "replica creation, database $(run_sql 1 "SELECT pg_size_pretty(pg_database_size('postgres'))"), $ROUNDS rounds:"
for method in pgbackrest basebackup; do
	for what in create stream; do
		printf '  %-10s %-6s ' "$method" "$what"
		awk -v m="$method" -v w="$what" '$1 == m && $2 == w { print $3 }' "$RESULTS" | stats
	done
done
for what in restore leader; do
	printf '  %-10s %-7s ' bootstrap "$what"
	awk -v w="$what" '$1 == "bootstrap" && $2 == w { print $3 }' "$RESULTS" | stats
done
