#!/bin/bash
# tests/bench/site_switchover.sh - the write gap of a planned site
# switchover, and its acknowledged writes lost. Figures, not assertions
# (but a lost acknowledged write is reported loudly and exits 1); not run in
# CI.
#
#   tests/bench/site_switchover.sh [--rounds N] [--interval MS]
#
# Builds two baton clusters on one etcd on loopback (tests/lib/cluster.sh):
# site A (node1, node2) and site B (node3, node4), B a standby cluster of A
# (bootstrap.dcs.standby_cluster = node1). A client (tests/tools/writer)
# inserts a row every --interval ms (default 20) through one multi-host
# connection string over all four nodes (target_session_attrs=read-write),
# as an application that moves with the primary site would. Then N rounds
# (default 5) of `batonctl site-switchover`, alternating A -> B and B -> A.
# Per round: the write gap = first write acknowledged by the new site's
# primary - last write acknowledged by the old site's primary; the
# helper's own time (demote, catch-up, promote); and the acknowledged writes
# missing on the new primary (every id the writer saw acknowledged so far).
# Prints min / median / max (n) of the gap and of the helper's time. Runs
# as root; BATON_BUILD names the build (default /var/tmp/baton-ci/build).
set -uo pipefail

ROUNDS=5
INTERVAL=20
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_lib.sh"
bench_parse "--rounds=ROUNDS --interval=INTERVAL" "$@"
bench_positive_int --rounds "$ROUNDS"
bench_positive_int --interval "$INTERVAL" ms

. "$here/../lib/cluster.sh"
bench_init bench_site

# stats: min / median / max of the numbers on stdin (ms), in seconds.
stats() { bench_stats min %.2f " s" 1000; }

leader_of() { etcdctl_ get --print-value-only "$NAMESPACE/$1/leader" 2>/dev/null | head -n1; }
streams_from() { [ "$(run_sql "$1" "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'")" = "${PG_PORT[$2]}" ]; }

etcd_start
SCOPE=sitea
node_config 1
node_config 2
SCOPE=siteb
node_config 3
node_config 4
for n in 3 4; do
	sed -i "s|^    maximum_lag_on_failover = $MAX_LAG;|&\n    standby_cluster = { host = \"127.0.0.1\"; port = ${PG_PORT[1]}; };|" "$T/node$n.conf"
done
agent_start 1
wait_for 60 "site A: node1 leads as primary" eval '[ "$(leader_of sitea)" = node1 ] && [ "$(in_recovery 1)" = f ]'
agent_start 2
agent_start 3
wait_for 90 "site B: node3 is the standby leader" eval '[ "$(leader_of siteb)" = node3 ] && streams_from 3 1'
agent_start 4
wait_for 90 "site A: node2 streams from node1" streams_from 2 1
wait_for 90 "site B: node4 streams from node3" streams_from 4 3
writer_start "$INTERVAL"
wait_for 30 "the writer's first acks" eval '[ "$(acks_count)" -ge 20 ]'

# OLD_CFG/OLD (the primary site's config node and primary), NEW_CFG/NEW.
OLD_CFG=1 OLD=1 NEW_CFG=3 NEW=3
for i in $(seq 1 "$ROUNDS"); do
	# the standby site's current standby leader
	NEW=$(leader_of "$([ "$NEW_CFG" = 1 ] && echo sitea || echo siteb)")
	NEW=${NEW#node}
	OLD=$(leader_of "$([ "$OLD_CFG" = 1 ] && echo sitea || echo siteb)")
	OLD=${OLD#node}
	n0=$(acks_count)
	wait_for 30 "writes flowing on node$OLD" eval '[ "$(acks_count)" -ge $((n0 + 20)) ]'
	T0=$(now_ms)
	out=$(CTL_NODE=$OLD_CFG ctl site-switchover --to-config "$T/node$NEW_CFG.conf" --force 2>&1) ||
		fail "round $i: site-switchover failed: $out"
	T1=$(now_ms)
	wait_for 60 "a write acknowledged by node$NEW" \
		eval '[ -n "$(first_ack_since "$T0" "${PG_PORT[$OLD]}" "${PG_PORT[$NEW]}")" ]'
	acks_around "${PG_PORT[$OLD]}" "$T0" "${PG_PORT[$NEW]}" ||
		fail "round $i: cannot find the acks around the switchover (last '$ACK_LAST', first '$ACK_FIRST')"
	last=$ACK_LAST first=$ACK_FIRST
	awk '$1 == "ack" { print $2 }' "$T/writer.out" | LC_ALL=C sort >"$T/acked"
	run_sql "$NEW" "SELECT id FROM baton_writes ORDER BY id" | LC_ALL=C sort >"$T/present" || fail "cannot read baton_writes on node$NEW"
	lost=$(LC_ALL=C comm -23 "$T/acked" "$T/present" | wc -l)
	printf 'gap %s\nhelper %s\nlost %s\n' "$((first - last))" "$((T1 - T0))" "$lost" >>"$RESULTS"
	log "round $i: node$OLD -> node$NEW: write gap $((first - last)) ms, site-switchover $((T1 - T0)) ms, lost $lost of $(wc -l <"$T/acked") acked; $(tail -n1 <<<"$out")"
	# the old site follows the new one before the next round
	wait_for 60 "node$OLD streams from node$NEW" streams_from "$OLD" "$NEW"
	x=$OLD_CFG
	OLD_CFG=$NEW_CFG
	NEW_CFG=$x
done
bg_stop "$WRITER_PID"
WRITER_PID=

echo
echo "site switchover (2 + 2 nodes, writer every $INTERVAL ms, ttl $TTL, loop_wait $LOOP_WAIT):"
echo "  write gap:             $(awk '$1 == "gap" { print $2 }' "$RESULTS" | stats)"
echo "  site-switchover time:  $(awk '$1 == "helper" { print $2 }' "$RESULTS" | stats)"
lost=$(awk '$1 == "lost" { s += $2 } END { print s + 0 }' "$RESULTS")
echo "  acknowledged writes lost: $lost (over $ROUNDS rounds)"
[ "$lost" = 0 ] || fail "acknowledged writes were lost"
