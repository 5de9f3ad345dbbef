#!/bin/bash
# 39_tags_cascade: Patroni's tags on one 3-node cluster.
#  - node3 has tags.replicatefrom = "node2" and a custom tag dc = "east":
#    it streams from node2 (cascading), not from the leader node1; node2
#    holds its slot, the primary none (Patroni's rule), and its tags are in
#    its member key, batonctl list, /patroni, and ?tag_dc=east matches it;
#  - node2 has tags.noloadbalance = true: /replica and /read-only answer
#    503 there, while it replicates like any replica;
#  - node2 killed (agent and postmaster, SIGKILL): node3 falls back to the
#    leader within a bounded wait and replays new rows; node2 started
#    again: node3 streams from node2 again; node2 then promoted (a
#    switchover): node3 streams from it as the primary, node1 follows it.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init tags_cascade

etcd_start
for n in 1 2 3; do node_config "$n"; done
printf 'tags = { noloadbalance = true; };\n' >>"$T/node2.conf"
printf 'tags = { replicatefrom = "node2"; dc = "east"; rack = 7; };\n' >>"$T/node3.conf"

# node1 bootstraps and leads; node2 joins; then node3, which cascades (the
# harness' wait_healthy counts walsenders of the primary, so it runs before
# node3 exists).
agent_start 1
wait_healthy 60
assert_eq 1 "$PRIMARY" "node1 bootstrapped and leads"
agent_start 2
wait_healthy 60
agent_start 3

# 1. node3 streams from node2.
sender_port() { run_sql 3 "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'"; }
wait_for 60 "node3 streaming from node2 (port ${PG_PORT[2]})" eval '[ "$(sender_port)" = "${PG_PORT[2]}" ]'
walsenders() { run_sql "$1" "SELECT coalesce(string_agg(application_name, ',' ORDER BY application_name), '') FROM pg_stat_replication WHERE state = 'streaming'"; }
assert_eq node3 "$(walsenders 2)" "node2's pg_stat_replication has node3"
assert_eq node2 "$(walsenders 1)" "the primary's pg_stat_replication has node2 only"
grep -Eq "(a replica of|streaming from) node2 \(tag replicatefrom; the leader is node1\)" "$(agent_log 3)" ||
	fail "node3's log does not say it streams from node2 by its tag"
pass "node3 streams from node2 (tag replicatefrom), the primary streams to node2 only"

# 2. Slots: node2 keeps node3's (in use); the primary keeps none for it.
slot_active() { run_sql "$1" "SELECT active FROM pg_replication_slots WHERE slot_name = '$2'"; }
wait_for 30 "node3 streaming through its slot on node2" eval '[ "$(slot_active 2 node3)" = t ]'
wait_for 30 "no slot for node3 on the primary" eval '[ "$(run_sql 1 "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '\''node3'\''")" = 0 ]'
assert_eq t "$(slot_active 1 node2)" "node2 streams through its slot on the primary"
pass "node2 keeps node3's slot, the primary none"

# 3. Tags in the member key, in batonctl list (table and JSON), in /patroni.
wait_for 20 "node3's member key carries its tags" \
	eval '[ "$(member_json node3 | jq -c ".tags | {replicatefrom, dc, rack}")" = "{\"replicatefrom\":\"node2\",\"dc\":\"east\",\"rack\":7}" ]'
assert_eq true "$(member_json node2 | jq -c .tags.noloadbalance)" "node2's member key: noloadbalance"
out=$(ctl list 2>&1) || fail "batonctl list failed: $out"
grep -E '^\| node3 .*replicatefrom=node2 dc=east rack=7 *\|$' <<<"$out" >/dev/null || fail "list lacks node3's tags: $out"
grep -E '^\| node2 .*noloadbalance *\|$' <<<"$out" >/dev/null || fail "list lacks node2's tag: $out"
out=$(ctl list --format json 2>&1) || fail "batonctl list --format json failed: $out"
assert_eq '"east"' "$(jq -c '.[] | select(.name == "node3") | .tags.dc' <<<"$out")" "list --format json: node3's dc"
assert_eq true "$(jq -c '.[] | select(.name == "node2") | .tags.noloadbalance' <<<"$out")" \
	"list --format json: node2's noloadbalance"
rest_call 3 GET /patroni
assert_eq 200 "$REST_CODE" "GET /patroni on node3"
assert_eq '{"dc":"east","rack":7,"replicatefrom":"node2"}' "$(jq -c '.tags | {dc, rack, replicatefrom}' <<<"$REST_BODY")" \
	"/patroni tags on node3"
rest_call 1 GET /cluster
assert_eq '"east"' "$(jq -c '.members[] | select(.name == "node3") | .tags.dc' <<<"$REST_BODY")" "/cluster: node3's dc"
pass "the tags are in the member keys, batonctl list, /patroni and /cluster"

# 4. Health checks: tag filters and noloadbalance.
assert_eq 200 "$(rest_code 3 /replica)" "/replica on node3"
assert_eq 200 "$(rest_code 3 '/replica?tag_dc=east')" "/replica?tag_dc=east on node3"
assert_eq 200 "$(rest_code 3 '/replica?tag_rack=7&tag_dc=EAST')" "/replica?tag_rack=7&tag_dc=EAST on node3"
assert_eq 503 "$(rest_code 3 '/replica?tag_dc=west')" "/replica?tag_dc=west on node3"
assert_eq 200 "$(rest_code 3 '/read-only?tag_dc=east')" "/read-only?tag_dc=east on node3"
assert_eq 503 "$(rest_code 2 '/replica?tag_dc=east')" "/replica?tag_dc=east on node2 (no such tag)"
assert_eq 503 "$(rest_code 2 /replica)" "/replica on node2 (noloadbalance)"
assert_eq 503 "$(rest_code 2 /read-only)" "/read-only on node2 (noloadbalance)"
assert_eq 503 "$(rest_code 2 /async)" "/async on node2 (noloadbalance)"
assert_eq 200 "$(rest_code 2 /health)" "/health on node2"
rest_call 2 GET /replica
grep -q "tagged noloadbalance" <<<"$REST_BODY" || fail "node2's /replica does not say why: $REST_BODY"
assert_eq 200 "$(rest_code 1 /read-only)" "/read-only on the primary"
pass "tag filters match custom tags; noloadbalance takes node2 out of the replica checks"

# 5. A row written on the primary reaches node3 through node2.
run_sql 1 "CREATE TABLE cascade_t (v int); INSERT INTO cascade_t VALUES (1)" >/dev/null || fail "cannot write on node1"
wait_for 30 "node3 replays the first row" eval '[ "$(run_sql 3 "SELECT count(*) FROM cascade_t")" = 1 ]'
pass "a row written on the primary is replayed on node3 through node2"

# 6. node2 dies (agent and postmaster): node3 streams from the leader.
pm=$(postmaster_pid 2) || fail "no postmaster PID for node2"
children=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
t0=$(now_ms)
kill -KILL "${AGENT_PID[2]}" "$pm" $children 2>/dev/null
agent_wait_exit 2 10 || fail "agent of node2 survived SIGKILL"
wait_for $((TTL + 30)) "node3 streaming from the leader node1 (port ${PG_PORT[1]})" \
	eval '[ "$(sender_port)" = "${PG_PORT[1]}" ]'
log "node3 re-pointed to the leader $(($(now_ms) - t0)) ms after node2 was killed (ttl $TTL)"
grep -Eq "tag replicatefrom = node2, but node2 (is gone|is not a running replica)" "$(agent_log 3)" ||
	fail "node3's log does not say why it left node2"
assert_eq node1 "$(leader_name)" "node1 still leads"
wait_for 30 "node3 streaming through its slot on the primary" eval '[ "$(slot_active 1 node3)" = t ]'
run_sql 1 "INSERT INTO cascade_t VALUES (2)" >/dev/null || fail "cannot write on node1"
wait_for 30 "node3 replays the second row from the leader" eval '[ "$(run_sql 3 "SELECT count(*) FROM cascade_t")" = 2 ]'
pass "node2 gone: node3 streams from the leader and replays new rows"

# 7. node2 returns: node3 goes back to it.
agent_start 2
wait_for 60 "node3 streaming from node2 again" eval '[ "$(sender_port)" = "${PG_PORT[2]}" ]'
wait_for 30 "the primary drops node3's slot again" eval '[ "$(run_sql 1 "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '\''node3'\''")" = 0 ]'
run_sql 1 "INSERT INTO cascade_t VALUES (3)" >/dev/null || fail "cannot write on node1"
wait_for 30 "node3 replays the third row through node2" eval '[ "$(run_sql 3 "SELECT count(*) FROM cascade_t")" = 3 ]'
assert_eq node3 "$(walsenders 2)" "node2's pg_stat_replication has node3 again"
pass "node2 back: node3 streams from node2 again"

# 8. node2 is promoted (a switchover to it): node3 keeps streaming from
# node2, now the primary, through a slot there; the old primary node1
# follows node2 too; a row written on node2 reaches both.
out=$(ctl switchover --candidate node2 2>&1) || fail "switchover to node2 failed: $out"
wait_for 60 "node2 is the primary" eval '[ "$(leader_name)" = node2 ] && [ "$(in_recovery 2)" = f ]'
wait_for 60 "node3 streams from node2, the new primary" eval '[ "$(sender_port)" = "${PG_PORT[2]}" ]'
wait_for 60 "node1 streams from node2" \
	eval '[ "$(run_sql 1 "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = '"'streaming'"'")" = "${PG_PORT[2]}" ]'
run_sql 2 "INSERT INTO cascade_t VALUES (4)" >/dev/null || fail "cannot write on node2"
wait_for 30 "node3 and node1 replay the row written on node2" \
	eval '[ "$(run_sql 3 "SELECT count(*) FROM cascade_t")" = 4 ] && [ "$(run_sql 1 "SELECT count(*) FROM cascade_t")" = 4 ]'
pass "node2 promoted: node3 streams from it as the primary, node1 follows it"
