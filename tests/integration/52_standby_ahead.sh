#!/bin/bash
# 52_standby_ahead: a standby leader whose timeline is AHEAD of the remote
# primary it is told to follow. Site A = node1 (scope sitea), site B = node3
# (scope siteb), B a standby cluster of A.
#  1. B follows A: a row written on node1 is replayed on node3.
#  2. B is promoted (batonctl promote-cluster) and takes a write of its own
#     on its new timeline; A (never told) stays on its timeline. B is then
#     made a standby of A again (batonctl demote-cluster naming node1):
#     node3's walreceiver now fails for ever with "highest timeline N of
#     the primary is behind recovery timeline N+1". With use_pg_rewind off
#     the agent says so and what is needed, and node3 is not shown as a
#     healthy replica (member key, batonctl list, GET /patroni).
#  3. use_pg_rewind switched on (SIGHUP): node3 is rewound against node1,
#     streams from it on A's timeline, has A's new row and no longer B's
#     own row past the fork, and is published as running again.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init standby_ahead

etcd_start
SCOPE=sitea
node_config 1
SCOPE=siteb
node_config 3
sed -i "s|^    maximum_lag_on_failover = $MAX_LAG;|&\n    standby_cluster = { host = \"127.0.0.1\"; port = ${PG_PORT[1]}; };|" "$T/node3.conf"
grep -q "standby_cluster = { host" "$T/node3.conf" || fail "cannot render standby_cluster into node3.conf"
sed -i 's|^  parameters = { shared_buffers = "32MB"; };|&\n  use_pg_rewind = false;|' "$T/node3.conf"
grep -q "^  use_pg_rewind = false;" "$T/node3.conf" || fail "cannot render use_pg_rewind into node3.conf"
# Two sites often name their members alike: B's member is named node1 too
# (its files and logs stay node3's). A primary told to follow the other
# site tells it from its own member by baton.cluster, not by the name.
sed -i 's|^name = "node3";|name = "node1";|' "$T/node3.conf"
grep -q '^name = "node1";' "$T/node3.conf" || fail "cannot rename node3's member in node3.conf"
B=node1 # site B's member name

leader_of() { etcdctl_ get --print-value-only "$NAMESPACE/$1/leader" 2>/dev/null | head -n1; }
lsn_num() { run_sql "$1" "SELECT ($2) - '0/0'::pg_lsn"; }
sender_port() { run_sql "$1" "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'"; }
streams_from() { [ "$(sender_port "$1")" = "${PG_PORT[$2]}" ]; }
# state3: node3's published member state.
state3() { SCOPE=siteb member_json "$B" | jq -r .state 2>/dev/null; }

# ---- 1. B follows A
agent_start 1
wait_for 60 "site A: node1 leads as primary" eval '[ "$(leader_of sitea)" = node1 ] && [ "$(in_recovery 1)" = f ]'
agent_start 3
wait_for 90 "site B: node3 is the standby leader, streaming from node1" \
	eval '[ "$(leader_of siteb)" = "$B" ] && streams_from 3 1'
run_sql 1 "CREATE TABLE ahead_t (v int); INSERT INTO ahead_t VALUES (1)" >/dev/null || fail "cannot write on node1"
a_lsn=$(lsn_num 1 "pg_current_wal_lsn()")
wait_for 30 "node3 replays node1's row (LSN $a_lsn)" \
	eval '[ "$(lsn_num 3 "pg_last_wal_replay_lsn()")" -ge '"$a_lsn"' ] && [ "$(run_sql 3 "SELECT count(*) FROM ahead_t")" = 1 ]'
tl_a=$(timeline 1)
[ -n "$tl_a" ] || fail "cannot read node1's timeline"
pass "B follows A on timeline $tl_a"

# ---- 2. B promoted (A not told), then made a standby of A again: ahead of it
out=$(CTL_NODE=3 ctl promote-cluster --force 2>&1) || fail "promote-cluster on B failed: $out"
wait_for 60 "node3 is B's primary" eval '[ "$(in_recovery 3)" = f ]'
tl_b=$(timeline 3)
[ "$tl_b" -gt "$tl_a" ] 2>/dev/null || fail "node3's timeline '$tl_b' is not past node1's $tl_a"
run_sql 3 "INSERT INTO ahead_t VALUES (300)" >/dev/null || fail "cannot write on node3"
run_sql 1 "INSERT INTO ahead_t VALUES (100)" >/dev/null || fail "cannot write on node1"
assert_eq "$tl_a" "$(timeline 1)" "node1 stays on its timeline"
out=$(CTL_NODE=3 ctl demote-cluster --host 127.0.0.1 --port "${PG_PORT[1]}" --force --wait 0 2>&1) ||
	fail "demote-cluster on B failed: $out"
wait_for 60 "node3 is in recovery again" eval '[ "$(in_recovery 3)" = t ]'
wait_for 60 "node3's agent reads the walreceiver's refusal as divergence" \
	grep -q "standby leader: FATAL:  highest timeline $tl_a of the primary is behind recovery timeline $tl_b" \
	"$(agent_log 3)"
wait_for 30 "node3's agent says what is needed" \
	grep -q "standby leader: diverged from 127.0.0.1:${PG_PORT[1]} and use_pg_rewind is off: reinit this member by hand (or turn on postgresql.use_pg_rewind and reload)" \
	"$(agent_log 3)"
wait_for 30 "node3 is published as not streaming" eval '[ "$(state3)" = "not streaming" ]'
out=$(CTL_NODE=3 ctl list 2>&1) || fail "batonctl list on B failed: $out"
grep -Eq "^\\| $B .*\\| not streaming " <<<"$out" || fail "list does not show node3 as not streaming: $out"
if grep -Eq "^\\| $B .*\\| (running|streaming) " <<<"$out"; then
	fail "list shows node3 as a healthy replica: $out"
fi
rest_call 3 GET /patroni
assert_eq "not streaming" "$(jq -r .state <<<"$REST_BODY")" "/patroni state of the diverged standby leader"
assert_eq 0 "$(run_sql 3 "SELECT count(*) FROM ahead_t WHERE v = 100")" "node3 has not replayed node1's new row"
pass "a standby leader ahead of its remote (timeline $tl_b > $tl_a) is diverged, not healthy, and says what is needed"

# ---- 3. with use_pg_rewind it is rewound against A and follows it
sed -i 's|^  use_pg_rewind = false;|  use_pg_rewind = true;|' "$T/node3.conf"
agent_signal 3 HUP
wait_for 90 "node3 streams from node1 again" streams_from 3 1
grep -q "standby leader: the timeline of 127.0.0.1:${PG_PORT[1]} forked off before our position: rewinding against it" \
	"$(agent_log 3)" || fail "node3's log does not say it rewound against node1"
grep -q "pg_rewind finished" "$(agent_log 3)" || fail "node3's log does not say pg_rewind finished"
a_lsn=$(lsn_num 1 "pg_current_wal_lsn()")
wait_for 30 "node3 replays node1's rows (LSN $a_lsn)" \
	eval '[ "$(lsn_num 3 "pg_last_wal_replay_lsn()")" -ge '"$a_lsn"' ] && [ "$(run_sql 3 "SELECT count(*) FROM ahead_t WHERE v = 100")" = 1 ]'
assert_eq 0 "$(run_sql 3 "SELECT count(*) FROM ahead_t WHERE v = 300")" "B's own row past the fork is gone (rewound)"
assert_eq "$tl_a" "$(timeline 3)" "node3 is on node1's timeline"
assert_eq t "$(in_recovery 3)" "node3 is A's standby"
assert_eq "$B" "$(leader_of siteb)" "node3 (member $B) keeps B's leader key"
wait_for 30 "node3 is published as running" eval '[ "$(state3)" = running ]'
assert_eq f "$(in_recovery 1)" "node1 is still A's primary"
pass "the standby leader ahead of its remote is rewound against it and follows it"
