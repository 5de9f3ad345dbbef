#!/bin/bash
# 45_standby_cluster: two baton clusters (two scopes) of 3 + 3 nodes on one
# etcd, site A (node1, node2, node5) and site B (node3, node4, node6); B is a
# standby cluster of A (bootstrap.dcs.standby_cluster = A's primary). With
# three nodes a site has two candidates in a failover: the checks find the
# winner in etcd and never assume which one it is.
#  1. B's first member is a base backup of A's primary (same system
#     identifier), B's other two clones of B's standby leader (started
#     together, as are A's two replicas); B's leader is a standby leader:
#     /standby-leader 200 there, /leader and /primary 503, /patroni and
#     batonctl list say standby_leader and whom it follows; a switchover
#     inside B and a bad standby_cluster (PATCH /config) are refused;
#  2. a row written on A's primary is replayed on all three B members (replay
#     LSN past A's, the row visible);
#     failover inside A while B follows: B is pointed (PATCH /config, the
#     standby leader re-points) at an HAProxy in front of A's three nodes
#     checking /primary; A's primary node1 is lost (kill -9: agent, fence,
#     postmaster): node2 or node5 (whichever etcd names) is A's primary on a
#     new timeline, A's other replica follows it onto that timeline, B's
#     standby leader follows it through HAProxy, a row written on it is
#     replayed on A's other replica and all three B members, and no B member
#     is ever a primary (all three sampled throughout); then node1 rejoins
#     A, a switchover inside A makes it the primary again (B follows through
#     HAProxy again, A's replicas follow node1) and B is pointed back at it;
#  3. B's standby leader killed (agent and postmaster): node4 or node6 takes
#     the key and becomes the standby leader, following A, B's other replica
#     streams from it, and nothing in B is ever promoted (pg_is_in_recovery
#     stays true on every B member, sampled throughout); the killed node
#     comes back as a replica of whichever leads;
#  4. a planned site switchover with a writer running: batonctl
#     demote-cluster on A (pointing at B's standby leader), wait until B's
#     standby leader has replayed A's last WAL, batonctl promote-cluster on
#     B: every write the writer saw acknowledged is on B's new primary;
#     every A member is in recovery and streams (A's replicas from A's
#     standby leader, it from B's primary), B's replicas from B's primary,
#     and it is the only primary of the six; and back with batonctl
#     site-switchover (the same steps), with the same checks;
#  5. disaster and failback: B promoted while A still writes; A demoted
#     afterwards has diverged and is rewound against B (pg_rewind), then
#     follows it; A's replicas, which had replayed A's write past the fork,
#     follow the rewound standby leader without that write;
#  6. a hot-standby parameter raised on B restarts A's standby leader and
#     replicas with B's value; all three A members keep replaying B's WAL;
#  7. permanent slots on a standby leader and site-switchover --slot; then
#     what demote-cluster and site-switchover would do (refused without a
#     terminal).
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init standby_cluster

etcd_start
# The sites' nodes: A = 1 2 5, B = 3 4 6 (node1 and node3 lead first).
A_NODES="1 2 5"
B_NODES="3 4 6"
SCOPE=sitea
for n in $A_NODES; do node_config "$n"; done
SCOPE=siteb
for n in $B_NODES; do node_config "$n"; done
# B follows A's primary, node1.
for n in $B_NODES; do
	sed -i "s|^    maximum_lag_on_failover = $MAX_LAG;|&\n    standby_cluster = { host = \"127.0.0.1\"; port = ${PG_PORT[1]}; };|" "$T/node$n.conf"
	grep -q "standby_cluster = { host" "$T/node$n.conf" || fail "cannot render standby_cluster into node$n.conf"
done

leader_of() { etcdctl_ get --print-value-only "$NAMESPACE/$1/leader" 2>/dev/null | head -n1; }
lsn_num() { run_sql "$1" "SELECT ($2) - '0/0'::pg_lsn"; }
# replayed N: how far nodeN's Postgres has replayed (bytes), or nothing.
replayed() { lsn_num "$1" "pg_last_wal_replay_lsn()"; }
sender_port() { run_sql "$1" "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'"; }
streams_from() { [ "$(sender_port "$1")" = "${PG_PORT[$2]}" ]; }
# leader_num SCOPE: the number of the node named by SCOPE's leader key.
leader_num() {
	local l
	l=$(leader_of "$1")
	[[ "$l" =~ ^node([0-9]+)$ ]] || return 1
	echo "${BASH_REMATCH[1]}"
}
# leads_among SCOPE "N..." IN_RECOVERY: SCOPE's leader key names one of the
# nodes N... and its pg_is_in_recovery() is IN_RECOVERY; sets NEW_LEADER.
NEW_LEADER=
leads_among() {
	local n
	n=$(leader_num "$1") || return 1
	[[ " $2 " == *" $n "* ]] || return 1
	[ "$(in_recovery "$n")" = "$3" ] || return 1
	NEW_LEADER=$n
}
# others N "M...": the nodes M... but N.
others() {
	local m out=""
	for m in $2; do [ "$m" = "$1" ] || out+="${out:+ }$m"; done
	echo "$out"
}
# wait_streams SECONDS UPSTREAM N...: each nodeN streams from nodeUPSTREAM.
wait_streams() {
	local t=$1 up=$2 n
	shift 2
	for n in "$@"; do
		wait_for "$t" "node$n streams from node$up" streams_from "$n" "$up"
	done
}
# wait_replayed SECONDS LSN SQL_COUNT N...: each nodeN has replayed up to
# LSN (bytes) and SQL_COUNT (a count query) answers 1 there.
wait_replayed() {
	# shellcheck disable=SC2034 # q is read by the eval'd check
	local t=$1 lsn=$2 q=$3 n
	shift 3
	for n in "$@"; do
		wait_for "$t" "node$n replays up to $lsn and sees the row" \
			eval '[ "$(replayed '"$n"')" -ge '"$lsn"' ] 2>/dev/null && [ "$(run_sql '"$n"' "$q")" = 1 ]'
	done
}

# ---- site A: a normal cluster
agent_start 1
wait_for 60 "site A: node1 leads as primary" eval '[ "$(leader_of sitea)" = node1 ] && [ "$(in_recovery 1)" = f ]'
# A's two replicas and B's first member (a base backup of node1) start
# together; B's two replicas once node3 leads B.
agent_start 2
agent_start 5

# ---- 1. site B: the standby cluster
agent_start 3
wait_streams 60 1 2 5
wait_for 90 "site B: node3 is the standby leader, streaming from A's node1" \
	eval '[ "$(leader_of siteb)" = node3 ] && streams_from 3 1'
agent_start 4
agent_start 6
wait_streams 90 3 4 6
assert_eq t "$(in_recovery 3)" "B's standby leader is in recovery"
sysid() { run_sql "$1" "SELECT system_identifier FROM pg_control_system()"; }
assert_eq "$(sysid 1)" "$(sysid 3)" "B's first member is a copy of A (system identifier)"
assert_eq "$(sysid 1)" "$(etcdctl_ get --print-value-only "$NAMESPACE/siteb/initialize" | head -n1)" \
	"B's initialize key holds A's system identifier"
grep -q "standby cluster: taking a base backup of the other site's primary 127.0.0.1:${PG_PORT[1]}" "$(agent_log 3)" ||
	fail "node3's log does not say it copied site A"
assert_eq 200 "$(rest_code 3 /standby-leader)" "/standby-leader on B's standby leader"
assert_eq 503 "$(rest_code 3 /leader)" "/leader on B's standby leader (not writable)"
assert_eq 503 "$(rest_code 3 /primary)" "/primary on B's standby leader"
assert_eq 503 "$(rest_code 4 /standby-leader)" "/standby-leader on B's replica node4"
assert_eq 503 "$(rest_code 6 /standby-leader)" "/standby-leader on B's replica node6"
assert_eq 503 "$(rest_code 1 /standby-leader)" "/standby-leader on A's primary"
assert_eq 200 "$(rest_code 1 /leader)" "/leader on A's primary"
rest_call 3 GET /patroni
assert_eq standby_leader "$(jq -r .role <<<"$REST_BODY")" "/patroni role on node3"
rest_call 3 GET /cluster
assert_eq standby_leader "$(jq -r '.members[] | select(.name == "node3") | .role' <<<"$REST_BODY")" \
	"/cluster role of node3"
out=$(CTL_NODE=3 ctl list 2>&1) || fail "batonctl list on B failed: $out"
grep -q "^Standby cluster: follows 127.0.0.1:${PG_PORT[1]}\$" <<<"$out" || fail "list lacks what B follows: $out"
grep -Eq '^\| node3 .*\| Standby Leader \|' <<<"$out" || fail "list does not show node3 as Standby Leader: $out"
for n in 4 6; do
	grep -Eq "^\\| node$n .*\\| Replica +\\|" <<<"$out" || fail "list does not show node$n as a Replica: $out"
done
# The same facts in list's JSON: what the standby leader streams from.
out=$(CTL_NODE=3 ctl list --format json) || fail "batonctl list --format json on B failed"
assert_eq "127.0.0.1:${PG_PORT[1]} streaming" \
	"$(jq -r '.[] | select(.name == "node3") | "\(.standby_trust.follows) \(.replication_state)"' <<<"$out")" \
	"list --format json: node3 follows A's primary and streams"
rest_call 3 GET /metrics
assert_eq 1 "$(grep -Ec '^patroni_standby_leader(\{[^}]*\})? 1$' <<<"$REST_BODY")" "patroni_standby_leader is 1 on node3"
out=$(CTL_NODE=3 ctl switchover --candidate node4 2>&1) && fail "a switchover inside B was accepted: $out"
grep -q "inside a standby cluster is not supported" <<<"$out" || fail "the refused switchover does not say why: $out"
rest_call 3 PATCH /config '{"standby_cluster": {"host": "a b", "port": 5432}}'
assert_eq 400 "$REST_CODE" "PATCH /config with a bad standby_cluster.host"
grep -q 'standby_cluster.host: \\"a b\\" must hold only' <<<"$REST_BODY" || fail "PATCH /config does not say why: $REST_BODY"
pass "site B is a standby cluster of site A"

# sample_b SECONDS: every B member's pg_is_in_recovery, every 0.2 s.
sample_b() {
	local end=$(($(date +%s) + $1)) n
	while [ "$(date +%s)" -lt "$end" ]; do
		for n in $B_NODES; do echo "node$n $(in_recovery $n)"; done
		sleep 0.2
	done
}

# ---- 2. a row written on A reaches all three B members
run_sql 1 "CREATE TABLE sb_t (v int); INSERT INTO sb_t VALUES (1)" >/dev/null || fail "cannot write on node1"
a_lsn=$(lsn_num 1 "pg_current_wal_lsn()")
[ -n "$a_lsn" ] || fail "cannot read node1's LSN"
wait_replayed 30 "$a_lsn" "SELECT count(*) FROM sb_t WHERE v = 1" $B_NODES
pass "a row written on A's primary is replayed on all three B members"

# ---- 2b. failover inside A while B follows it through HAProxy checking A's /primary
HAPROXY_NODES="$A_NODES" haproxy_start /primary
rest_call 3 PATCH /config '{"standby_cluster": {"host": "127.0.0.1", "port": '"$HAPROXY_PORT"'}}'
[ "$REST_CODE" = 200 ] || fail "PATCH /config pointing B at HAProxy: $REST_CODE $REST_BODY"
wait_for 30 "B's node3 streams from A through HAProxy" eval '[ "$(sender_port 3)" = "$HAPROXY_PORT" ]'
tl_a=$(timeline 1)
[ -n "$tl_a" ] || fail "cannot read node1's timeline"
assert_eq "$tl_a" "$(timeline 3)" "B's standby leader streams A's timeline"
sample_b 120 >"$T/b-recovery-a.out" 2>/dev/null &
SAMPLER=$!
BG_PIDS+=("$SAMPLER")
pm=$(postmaster_pid 1) || fail "no postmaster PID for node1"
children=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
fence=$(fence_pid 1)
[ -n "$fence" ] || fail "no fence process for node1"
kill -KILL "$fence" "${AGENT_PID[1]}" "$pm" $children 2>/dev/null
agent_wait_exit 1 10 || fail "agent of node1 survived SIGKILL"
# Either of A's replicas may win; etcd says which.
wait_for $((TTL + 30)) "node2 or node5 is A's primary" leads_among sitea "2 5" f
a_new=$NEW_LEADER
a_other=$(others "$a_new" "2 5")
log "A's new primary is node$a_new; node$a_other is its replica"
tl_a2=$(timeline "$a_new")
[ "$tl_a2" -gt "$tl_a" ] 2>/dev/null || fail "node$a_new's timeline $tl_a2 is not past node1's $tl_a"
wait_for 40 "A's node$a_other streams from node$a_new on its timeline $tl_a2" \
	eval 'streams_from '"$a_other"' '"$a_new"' && [ "$(timeline '"$a_other"')" = "$tl_a2" ]'
wait_for 40 "B's node3 streams A's new timeline $tl_a2 through HAProxy" \
	eval '[ "$(sender_port 3)" = "$HAPROXY_PORT" ] && [ "$(timeline 3)" = "$tl_a2" ]'
run_sql "$a_new" "INSERT INTO sb_t VALUES (10)" >/dev/null || fail "cannot write on node$a_new"
a_lsn=$(lsn_num "$a_new" "pg_current_wal_lsn()")
[ -n "$a_lsn" ] || fail "cannot read node$a_new's LSN"
wait_replayed 30 "$a_lsn" "SELECT count(*) FROM sb_t WHERE v = 10" "$a_other" $B_NODES
assert_eq node3 "$(leader_of siteb)" "B's standby leader through A's failover"
if grep -q "rewinding against it" "$(agent_log 3)"; then
	fail "B's standby leader rewound on A's failover (it was not ahead of node$a_new)"
fi
# agent_timeline N: the timeline nodeN's agent reports (GET /status).
agent_timeline() {
	rest_call "$1" GET /status
	[ "$REST_CODE" = 200 ] && jq -r .timeline <<<"$REST_BODY"
}
# node1 rejoins A, becomes its primary again (switchover), B is pointed back at it.
agent_start 1
# On A's timeline by its agent's word too, not only streaming: the leader
# asks the candidate's REST API, and refuses one that still says it is on
# timeline 1 (it had streamed 0.3 s when a CI run asked).
wait_for 90 "node1 streams from A's new primary node$a_new on its timeline $tl_a2" \
	eval 'streams_from 1 '"$a_new"' && [ "$(timeline 1)" = "$tl_a2" ] && [ "$(agent_timeline 1)" = "$tl_a2" ]'
out=$(CTL_NODE=$a_new ctl switchover --candidate node1 --wait 40 2>&1) || fail "switchover to node1 in A failed: $out"
wait_for 60 "node1 is A's primary again" eval '[ "$(leader_of sitea)" = node1 ] && [ "$(in_recovery 1)" = f ]'
tl_a3=$(timeline 1)
[ "$tl_a3" -gt "$tl_a2" ] 2>/dev/null || fail "node1's timeline $tl_a3 is not past node$a_new's $tl_a2"
wait_for 40 "B's node3 follows node1 (timeline $tl_a3) through HAProxy" \
	eval '[ "$(sender_port 3)" = "$HAPROXY_PORT" ] && [ "$(timeline 3)" = "$tl_a3" ]'
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
[ "$(grep -c . "$T/b-recovery-a.out")" -gt 20 ] || fail "the sampler recorded too little: $(wc -l <"$T/b-recovery-a.out")"
if grep -q ' f$' "$T/b-recovery-a.out"; then
	fail "a site B member answered as a primary during A's failover: $(grep ' f$' "$T/b-recovery-a.out" | head -3)"
fi
rest_call 3 PATCH /config '{"standby_cluster": {"host": "127.0.0.1", "port": '"${PG_PORT[1]}"'}}'
[ "$REST_CODE" = 200 ] || fail "PATCH /config pointing B back at node1: $REST_CODE $REST_BODY"
wait_for 30 "B's node3 streams from node1 directly" streams_from 3 1
wait_streams 30 1 2 5
haproxy_stop
pass "failover inside A: node$a_new won, node$a_other followed it, B followed it through HAProxy (timeline $tl_a -> $tl_a2), no B member was a primary"

# ---- 3. B's standby leader dies: node4 or node6 becomes the standby leader, no promotion
# (a sampler records every B member's pg_is_in_recovery while it runs)
sample_b 60 >"$T/b-recovery.out" 2>/dev/null &
SAMPLER=$!
BG_PIDS+=("$SAMPLER")
pm=$(postmaster_pid 3) || fail "no postmaster PID for node3"
children=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
kill -KILL "${AGENT_PID[3]}" "$pm" $children 2>/dev/null
agent_wait_exit 3 10 || fail "agent of node3 survived SIGKILL"
wait_for $((TTL + 40)) "node4 or node6 is B's standby leader, streaming from A's node1" \
	eval 'leads_among siteb "4 6" t && streams_from "$NEW_LEADER" 1'
b_new=$NEW_LEADER
b_other=$(others "$b_new" "4 6")
log "B's new standby leader is node$b_new; node$b_other is its replica"
assert_eq t "$(in_recovery "$b_new")" "B's new standby leader is in recovery (not promoted)"
assert_eq 200 "$(rest_code "$b_new" /standby-leader)" "/standby-leader on node$b_new"
wait_for 60 "B's node$b_other streams from its new standby leader node$b_new" streams_from "$b_other" "$b_new"
assert_eq 503 "$(rest_code "$b_other" /standby-leader)" "/standby-leader on node$b_other"
run_sql 1 "INSERT INTO sb_t VALUES (2)" >/dev/null || fail "cannot write on node1"
a_lsn=$(lsn_num 1 "pg_current_wal_lsn()")
[ -n "$a_lsn" ] || fail "cannot read node1's LSN"
wait_replayed 30 "$a_lsn" "SELECT count(*) FROM sb_t WHERE v = 2" "$b_new" "$b_other"
agent_start 3
wait_for 90 "node3 is back as B's replica, streaming from node$b_new" streams_from 3 "$b_new"
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
[ "$(grep -c . "$T/b-recovery.out")" -gt 20 ] || fail "the sampler recorded too little: $(wc -l <"$T/b-recovery.out")"
if grep -q ' f$' "$T/b-recovery.out"; then
	fail "a site B member answered as a primary during B's failover: $(grep ' f$' "$T/b-recovery.out" | head -3)"
fi
grep -q "standby leader: replicating from the other site's primary 127.0.0.1:${PG_PORT[1]}, never promoting" \
	"$(agent_log "$b_new")" || fail "node$b_new's log does not say it follows site A as the standby leader"
pass "failover inside B: node$b_new is the standby leader, following A; no B member was ever a primary"

# ---- 4. site switchover A -> B with a writer running, and back
# site_switchover FROM_SCOPE FROM_NODE(config) FROM_PRIMARY TO_SCOPE TO_NODE(config) TO_LEADER
site_switchover() {
	local from_cfg=$1 from_pg=$2 to_cfg=$3 to_leader=$4 a_end t0
	t0=$(now_ms)
	out=$(CTL_NODE=$from_cfg ctl demote-cluster --host 127.0.0.1 --port "${PG_PORT[$to_leader]}" --force 2>&1) ||
		fail "demote-cluster failed: $out"
	wait_for 60 "node$from_pg is in recovery (demoted)" eval '[ "$(in_recovery '"$from_pg"')" = t ]'
	# Its WAL ends where it replayed to on restart (the shutdown checkpoint).
	a_end=$(lsn_num "$from_pg" "greatest(pg_last_wal_replay_lsn(), coalesce(pg_last_wal_receive_lsn(), '0/0'))")
	[ -n "$a_end" ] || fail "cannot read node$from_pg's last LSN"
	wait_for 60 "node$to_leader has replayed the old site's last WAL ($a_end)" \
		eval '[ "$(replayed '"$to_leader"')" -ge '"$a_end"' ]'
	log "old site's WAL ends at $a_end; node$to_leader replayed $(replayed "$to_leader")"
	out=$(CTL_NODE=$to_cfg ctl promote-cluster --force 2>&1) || fail "promote-cluster failed: $out"
	wait_for 60 "node$to_leader is the new primary" eval '[ "$(in_recovery '"$to_leader"')" = f ]'
	wait_for 60 "a write acknowledged by node$to_leader" \
		eval "awk -v p=${PG_PORT[$to_leader]} -v t=$t0 '\$1 == \"ack\" && \$3 > t && \$4 == p { f = 1 } END { exit !f }' '$T/writer.out'"
	log "site switchover to node$to_leader done in $(($(now_ms) - t0)) ms"
}
lost_on() {
	awk '$1 == "ack" { print $2 }' "$T/writer.out" | LC_ALL=C sort >"$T/acked"
	run_sql "$1" "SELECT id FROM baton_writes ORDER BY id" | LC_ALL=C sort >"$T/present" || fail "cannot read baton_writes"
	LC_ALL=C comm -23 "$T/acked" "$T/present" | wc -l
}
writer_start 50
wait_for 30 "the writer's first acks on node1" eval '[ "$(acks_count)" -ge 10 ]'

site_switchover 1 1 3 "$b_new"
wait_for 60 "A's node1 streams from B's new primary node$b_new" streams_from 1 "$b_new"
wait_streams 60 1 2 5
wait_streams 60 "$b_new" 3 "$b_other"
for n in $A_NODES; do assert_eq t "$(in_recovery "$n")" "A's node$n is in recovery"; done
assert_eq 200 "$(rest_code 1 /standby-leader)" "/standby-leader on A's node1 after the switchover"
assert_eq 200 "$(rest_code "$b_new" /primary)" "/primary on B's node$b_new"
wait_for 30 "more acks on node$b_new" eval '[ "$(awk -v p=${PG_PORT[$b_new]} '\''$1 == "ack" && $4 == p'\'' "$T/writer.out" | wc -l)" -ge 10 ]'
assert_eq 0 "$(lost_on "$b_new")" "acknowledged writes missing on B's new primary (of $(grep -c '^ack ' "$T/writer.out"))"
assert_eq "$b_new" "$(primaries)" "node$b_new is the only primary of the six"

# The way back with the helper that does the same steps.
t0=$(now_ms)
out=$(CTL_NODE=3 ctl site-switchover --to-config "$T/node1.conf" --force 2>&1) || fail "site-switchover failed: $out"
log "$out"
grep -q "^sitea: node1 is the primary; siteb follows it" <<<"$out" || fail "site-switchover did not say it is done: $out"
assert_eq f "$(in_recovery 1)" "node1 is A's primary again"
wait_for 60 "a write acknowledged by node1" \
	eval "awk -v p=${PG_PORT[1]} -v t=$t0 '\$1 == \"ack\" && \$3 > t && \$4 == p { f = 1 } END { exit !f }' '$T/writer.out'"
wait_for 60 "B's node$b_new streams from A's primary node1" streams_from "$b_new" 1
wait_streams 60 "$b_new" 3 "$b_other"
wait_streams 60 1 2 5
for n in $B_NODES; do assert_eq t "$(in_recovery "$n")" "B's node$n is in recovery"; done
assert_eq 200 "$(rest_code "$b_new" /standby-leader)" "/standby-leader on B's node$b_new after the way back"
wait_for 30 "more acks on node1" eval '[ "$(awk -v p=${PG_PORT[1]} '\''$1 == "ack" && $4 == p'\'' "$T/writer.out" | wc -l)" -ge 20 ]'
bg_stop "$WRITER_PID"
assert_eq 0 "$(lost_on 1)" "acknowledged writes missing on A's primary after the way back (of $(grep -c '^ack ' "$T/writer.out"))"
assert_eq 1 "$(primaries)" "node1 is the only primary of the six"
pass "site switchover A -> B -> A with a writer: 0 acknowledged writes lost"

# ---- 5. disaster and failback: B promoted while A still took writes (a
# site lost, not a plan); A demoted later has diverged from B and is rewound
# against it, losing its own writes past the fork (as a failover does)
out=$(CTL_NODE=3 ctl promote-cluster --force 2>&1) || fail "promote-cluster on B failed: $out"
wait_for 60 "node$b_new is B's primary" eval '[ "$(in_recovery '"$b_new"')" = f ]'
run_sql 1 "INSERT INTO sb_t VALUES (100)" >/dev/null || fail "cannot write on node1"
run_sql "$b_new" "INSERT INTO sb_t VALUES (200)" >/dev/null || fail "cannot write on node$b_new"
# A's replicas replay node1's row past the fork too: they diverge with it.
a_lsn=$(lsn_num 1 "pg_current_wal_lsn()")
[ -n "$a_lsn" ] || fail "cannot read node1's LSN"
wait_replayed 30 "$a_lsn" "SELECT count(*) FROM sb_t WHERE v = 100" 2 5
out=$(CTL_NODE=1 ctl demote-cluster --host 127.0.0.1 --port "${PG_PORT[$b_new]}" --force 2>&1) || fail "demote-cluster failed: $out"
wait_for 90 "node1 has B's row (rewound, following node$b_new)" eval '[ "$(run_sql 1 "SELECT count(*) FROM sb_t WHERE v = 200")" = 1 ]'
wait_for 30 "node1 streams from node$b_new" streams_from 1 "$b_new"
grep -q "standby leader: the timeline of 127.0.0.1:${PG_PORT[$b_new]} forked off before our position: rewinding against it" \
	"$(agent_log 1)" || fail "node1's log does not say it rewound against B"
assert_eq 0 "$(run_sql 1 "SELECT count(*) FROM sb_t WHERE v = 100")" "node1's row past the fork is gone (rewound)"
assert_eq t "$(in_recovery 1)" "node1 is B's standby"
for n in 2 5; do
	wait_for 120 "A's node$n has B's row, streaming from the rewound node1" \
		eval '[ "$(run_sql '"$n"' "SELECT count(*) FROM sb_t WHERE v = 200")" = 1 ] && streams_from '"$n"' 1'
	assert_eq 0 "$(run_sql "$n" "SELECT count(*) FROM sb_t WHERE v = 100")" "node$n's row past the fork is gone"
	assert_eq t "$(in_recovery "$n")" "A's node$n is in recovery"
	# The rewound node1's pg_control lags its new timeline until a
	# restartpoint: a rewind against it must not stop at "no rewind
	# required" (the agent asks node1 for a CHECKPOINT first).
	if grep -q "pg_rewind did not repair it" "$(agent_log "$n")"; then
		fail "node$n's rewind against node1 did not repair it: $(grep -m1 "did not repair" "$(agent_log "$n")")"
	fi
done
wait_streams 30 "$b_new" 3 "$b_other"
assert_eq "$b_new" "$(primaries)" "node$b_new is the only primary of the six"
pass "failback after a disaster: A's old primary rewound against B and follows it, A's replicas follow it"

# ---- 6. a hot-standby parameter raised on the primary site (B): A's
# standby leader pauses replay like any replica and restarts with B's value
# (pg_controldata), still a replica of B, never promoted; restart output
# names B's host:port, never the internal token @standby_cluster
out=$(CTL_NODE=$b_new ctl edit-config --pg max_connections=150 --force 2>&1) || fail "edit-config on B failed: $out"
out=$(CTL_NODE=$b_new ctl restart --pending 2>&1) || fail "restart --pending on B failed: $out"
printf '%s\n' "$out"
wait_for 120 "A's standby leader node1 runs with max_connections 150, streaming from node$b_new" \
	eval '[ "$(run_sql 1 "SHOW max_connections")" = 150 ] && streams_from 1 '"$b_new"
for n in 2 5; do
	wait_for 120 "A's node$n runs with max_connections 150, streaming from node1" \
		eval '[ "$(run_sql '"$n"' "SHOW max_connections")" = 150 ] && streams_from '"$n"' 1'
done
run_sql "$b_new" "INSERT INTO sb_t VALUES (300)" >/dev/null || fail "cannot write on node$b_new"
b_lsn=$(lsn_num "$b_new" "pg_current_wal_lsn()")
[ -n "$b_lsn" ] || fail "cannot read node$b_new's LSN"
wait_replayed 60 "$b_lsn" "SELECT count(*) FROM sb_t WHERE v = 300" $A_NODES
grep -q "standby leader: replay paused, a hot-standby parameter is below the primary's" "$(agent_log 1)" ||
	fail "node1's log does not say it restarted for the paused replay"
assert_eq t "$(in_recovery 1)" "node1 is still B's standby after its restart"
assert_eq "node1" "$(leader_of sitea)" "node1 still holds A's leader key"
out=$(CTL_NODE=1 ctl restart sitea node1 2>&1) || fail "restart of A's standby leader failed: $out"
printf '%s\n' "$out"
grep -q "streaming from 127.0.0.1:${PG_PORT[$b_new]}" <<<"$out" || fail "restart does not name B's host:port: $out"
grep -q "@standby_cluster" <<<"$out" && fail "restart output shows the internal token: $out"
pass "a hot-standby parameter raised on B: A's standby leader and replicas restarted with it and follow B"

# ---- 7. permanent slots on a standby leader, and site-switchover --slot:
# A (a standby cluster now) lists site_b in its slots: its standby leader
# node1 keeps it too; a site switchover back to A with --slot site_b makes
# B stream through it; LSNs are printed as Postgres prints them
slot_active() { run_sql "$1" "SELECT active FROM pg_replication_slots WHERE slot_name = '$2'"; }
out=$(CTL_NODE=1 ctl edit-config --set slots=site_b --force 2>&1) || fail "edit-config slots on A failed: $out"
wait_for 30 "A's standby leader node1 keeps the permanent slot site_b" eval '[ -n "$(slot_active 1 site_b)" ]'
out=$(CTL_NODE=$b_new ctl site-switchover --to-config "$T/node1.conf" --slot site_b --force 2>&1) ||
	fail "site-switchover to A with --slot failed: $out"
printf '%s\n' "$out"
grep -Eq "^siteb: its WAL ends at [0-9A-F]+/[0-9A-F]+; node1 has it \([0-9A-F]+/[0-9A-F]+\)" <<<"$out" ||
	fail "site-switchover does not print LSNs as Postgres does: $out"
wait_for 60 "B's standby leader node$b_new streams from node1 through site_b" \
	eval 'streams_from '"$b_new"' 1 && [ "$(slot_active 1 site_b)" = t ]'
wait_streams 60 "$b_new" 3 "$b_other"
wait_streams 60 1 2 5
for n in $B_NODES; do assert_eq t "$(in_recovery "$n")" "B's node$n is in recovery"; done
assert_eq 1 "$(primaries)" "node1 is the only primary of the six"
assert_eq site_b "$(etcdctl_ get --print-value-only "$NAMESPACE/siteb/config" | jq -r .standby_cluster.primary_slot_name)" \
	"B's standby_cluster names the slot"
pass "a standby leader keeps permanent slots; site-switchover --slot streams through one"
# Refused without a terminal (nothing changes), but the texts say what
# would happen: demote-cluster on a standby cluster re-points its standby
# leader; site-switchover without --slot names A's permanent slot.
out=$(CTL_NODE=$b_new ctl demote-cluster --host 127.0.0.1 --port "${PG_PORT[2]}" </dev/null 2>&1) &&
	fail "demote-cluster without a terminal and --force was not refused: $out"
grep -q "its standby leader node$b_new re-points to 127.0.0.1:${PG_PORT[2]}" <<<"$out" ||
	fail "demote-cluster on a standby cluster does not say its standby leader re-points: $out"
out=$(CTL_NODE=1 ctl site-switchover --to-config "$T/node$b_new.conf" </dev/null 2>&1) &&
	fail "site-switchover without a terminal and --force was not refused: $out"
grep -q "warning: cluster 'sitea' keeps the permanent slot(s) site_b" <<<"$out" ||
	fail "site-switchover without --slot does not warn about site_b: $out"
assert_eq site_b "$(etcdctl_ get --print-value-only "$NAMESPACE/siteb/config" | jq -r .standby_cluster.primary_slot_name)" \
	"the refused demote-cluster left B's standby_cluster as it was"
pass "demote-cluster and site-switchover say what they would do to a standby cluster and its slots"
