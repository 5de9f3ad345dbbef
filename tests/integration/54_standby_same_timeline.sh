#!/bin/bash
# 54_standby_same_timeline: two sites that promoted from the same position
# (operator review of issue 14: it left a failback stuck for ever, silently).
# Site A = node1 (primary) and node2 (its replica), scope sitea; site B =
# node3, scope siteb, a standby cluster of node1.
#  1. A's primary node1 is lost (kill -9 of its agent: its Postgres and
#     lease go with it): node2 promotes to timeline N+1 from node1's last
#     record. B is then promoted too (promote-cluster, as in a disaster):
#     timeline N+1 from the same record. Both timeline histories are the
#     same bytes; both sites take a write of their own.
#  2. A is made a standby of B (demote-cluster): node2's server receives
#     B's WAL and cannot replay it. No rewind runs (nothing shows a fork);
#     the agent says what happened and that the site must be re-seeded,
#     `list` shows the standby leader as stuck, and demote-cluster --wait
#     fails instead of reporting success.
#  3. README's re-seed: A's agents stopped, bootstrap.dcs.standby_cluster
#     set in their files, `batonctl remove sitea`, data directories moved
#     aside, agents started: node2 becomes the standby leader by a base
#     backup of node3, node1 clones from it, and a row written on node3 is
#     replayed on both.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init standby_same_timeline

etcd_start
SCOPE=sitea node_config 1
SCOPE=sitea node_config 2
SCOPE=siteb node_config 3
sed -i "s|^    maximum_lag_on_failover = $MAX_LAG;|&\n    standby_cluster = { host = \"127.0.0.1\"; port = ${PG_PORT[1]}; };|" "$T/node3.conf"
grep -q "standby_cluster = { host" "$T/node3.conf" || fail "cannot render standby_cluster into node3.conf"

leader_of() { etcdctl_ get --print-value-only "$NAMESPACE/$1/leader" 2>/dev/null | head -n1; }
lsn_num() { run_sql "$1" "SELECT ($2) - '0/0'::pg_lsn"; }
replayed() { [ "$(lsn_num "$1" "pg_last_wal_replay_lsn()")" -ge "$2" ] 2>/dev/null; }

# ---- 1. both sites promote from node1's last record
agent_start 1
wait_for 60 "site A: node1 leads as primary" eval '[ "$(leader_of sitea)" = node1 ] && [ "$(in_recovery 1)" = f ]'
agent_start 2
agent_start 3
wait_for 120 "node2 and node3 stream from node1" \
	eval '[ "$(run_sql 2 "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = '"'streaming'"'")" = "${PG_PORT[1]}" ] &&
	      [ "$(run_sql 3 "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = '"'streaming'"'")" = "${PG_PORT[1]}" ]'
run_sql 1 "CREATE TABLE same_t (site text)" >/dev/null || fail "cannot write on node1"
a_lsn=$(lsn_num 1 "pg_current_wal_flush_lsn()")
wait_for 30 "node2 and node3 replay node1's table (LSN $a_lsn)" eval 'replayed 2 '"$a_lsn"' && replayed 3 '"$a_lsn"
tl=$(timeline 1)
agent_kill 1
log "killed node1's agent: its Postgres stops with it, its fence revokes its lease"
wait_for 60 "node2 is A's primary" eval '[ "$(leader_of sitea)" = node2 ] && [ "$(in_recovery 2)" = f ]'
out=$(CTL_NODE=3 ctl promote-cluster --force 2>&1) || fail "promote-cluster on B failed: $out"
log "promote-cluster on B: $out"
wait_for 60 "node3 is B's primary" eval '[ "$(in_recovery 3)" = f ]'
h=$(printf '%08X.history' $((tl + 1)))
cmp -s "$(data_dir 2)/pg_wal/$h" "$(data_dir 3)/pg_wal/$h" ||
	fail "the two promotions did not fork at the same record (this scenario needs that): $(cat "$(data_dir 2)/pg_wal/$h") / $(cat "$(data_dir 3)/pg_wal/$h")"
pass "both sites promoted to timeline $((tl + 1)) from the same record: $(tr '\t\n' '  ' <"$(data_dir 2)/pg_wal/$h")"
run_sql 2 "INSERT INTO same_t SELECT 'a' FROM generate_series(1, 50)" >/dev/null || fail "cannot write on node2"
run_sql 3 "CREATE TABLE b_only (v int); INSERT INTO same_t VALUES ('b')" >/dev/null || fail "cannot write on node3"

# ---- 2. A made a standby of B: stuck, said, not reported as done
out=$(CTL_NODE=2 ctl demote-cluster --host 127.0.0.1 --port "${PG_PORT[3]}" --force --wait 20 2>&1)
rc=$?
log "demote-cluster on A (exit $rc): $out"
assert_eq 1 "$rc" "demote-cluster --wait onto a site that promoted from the same record: exit status"
grep -q "does not run as its standby leader streaming from it yet" <<<"$out" ||
	fail "demote-cluster does not say the standby leader does not stream: $out"
wait_for 30 "node2's agent says the two sites' WAL differ on the same timeline and what to do" \
	grep -q "this site's WAL and the other site's differ past that point on the same timeline number .*re-seed this site from the other one (README, \"Re-seeding a standby site\")" "$(agent_log 2)"
grep -q "pg_rewind finished" "$(agent_log 2)" && fail "node2 ran pg_rewind, which cannot see this fork"
out=$(CTL_NODE=2 ctl list 2>&1)
grep -Eq '^\| node2 .*\| stuck replay ' <<<"$out" || fail "list does not show node2's replay as stuck: $out"
assert_eq 0 "$(run_sql 2 "SELECT count(*) FROM same_t WHERE site = 'b'")" "node2 has not replayed B's row"
pass "a standby leader stuck on the other site's WAL says why and how to re-seed; demote-cluster fails"

# ---- 3. re-seeded from B as README says
agent_stop 2
wait_for $((TTL + 10)) "no member key left in site A" \
	eval '[ -z "$(etcdctl_ get --prefix --keys-only "$NAMESPACE/sitea/members/" 2>/dev/null)" ]'
for n in 1 2; do
	sed -i "s|^    maximum_lag_on_failover = $MAX_LAG;|&\n    standby_cluster = { host = \"127.0.0.1\"; port = ${PG_PORT[3]}; };|" "$T/node$n.conf"
	grep -q "standby_cluster = { host" "$T/node$n.conf" || fail "cannot render standby_cluster into node$n.conf"
done
out=$(printf 'sitea\nYes I am aware\n' | CTL_NODE=2 ctl remove sitea 2>&1) || fail "batonctl remove sitea failed: $out"
log "remove: $out"
for n in 1 2; do mv "$(data_dir "$n")" "$(data_dir "$n").aside" || fail "cannot move node$n's data directory aside"; done
agent_start 2
wait_for 120 "node2 is A's standby leader, streaming from node3" \
	eval '[ "$(leader_of sitea)" = node2 ] && [ "$(run_sql 2 "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = '"'streaming'"'")" = "${PG_PORT[3]}" ]'
agent_start 1
wait_for 120 "node1 clones from node2 and streams from it" \
	eval '[ "$(run_sql 1 "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = '"'streaming'"'")" = "${PG_PORT[2]}" ]'
run_sql 3 "INSERT INTO same_t VALUES ('b2')" >/dev/null || fail "cannot write on node3"
b_lsn=$(lsn_num 3 "pg_current_wal_flush_lsn()")
wait_for 30 "node2 and node1 replay B's rows (LSN $b_lsn)" eval 'replayed 2 '"$b_lsn"' && replayed 1 '"$b_lsn"
for n in 1 2; do
	assert_eq "b b2" "$(run_sql "$n" "SELECT string_agg(site, ' ' ORDER BY site) FROM same_t WHERE site LIKE 'b%'")" "node$n has B's rows"
	assert_eq 0 "$(run_sql "$n" "SELECT count(*) FROM same_t WHERE site = 'a'")" "node$n has none of A's rows past the fork"
done
pass "site A re-seeded from B as README says: both members replay B's rows"
