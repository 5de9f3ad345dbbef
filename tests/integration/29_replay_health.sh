#!/bin/bash
# 29_replay_health: a replica that receives WAL but does not replay it is
# unhealthy and no failover candidate (DESIGN.md rule 8, issue 11).
#  1. With a writer running, SELECT pg_wal_replay_pause() on one replica (P):
#     within 15 s its /replica?lag=1MB answers 503 naming "replay paused",
#     /read-only?lag=1MB and /readiness too, while /health stays 200 (it
#     means "Postgres runs", as Patroni's does); the other replica (Q)
#     answers 200. `batonctl list` shows P as "replay paused", and once the
#     primary wrote 2 MB more, P's lag (from its replay position) in
#     `batonctl list --format json` is above 1 MB while Q's is below.
#  2. Node loss of the primary (agent + postmaster SIGKILL): Q is promoted,
#     never P; P's agent says it is not a candidate because replay is paused.
#  3. SELECT pg_wal_replay_resume() on P: it becomes a healthy replica of Q
#     again (/replica?lag=1MB 200 within 60 s) and replays a marker row
#     written on Q.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init replay_health

cluster_start 3
wait_healthy 90
old=$PRIMARY
reps=()
for n in 1 2 3; do [ "$n" = "$old" ] || reps+=("$n"); done
P=${reps[0]} Q=${reps[1]}
log "primary node$old; pausing replay on node$P, node$Q stays healthy"

writer_start 50
wait_for 20 "the writer's first acks" eval '[ "$(acks_count)" -ge 10 ]'

# code N PATH: the HTTP code nodeN's REST API answers for GET PATH.
code() { rest_call "$1" GET "$2"; echo "$REST_CODE"; }
replica_is() { rest_call "$1" GET "/replica?lag=1MB"; [ "$REST_CODE" = "$2" ]; }

wait_for 20 "node$P and node$Q answer /replica?lag=1MB with 200" eval 'replica_is '"$P"' 200 && replica_is '"$Q"' 200'

# 1. Pause replay on P.
assert_eq t "$(run_sql "$P" "SELECT pg_is_in_recovery()")" "node$P is in recovery"
run_sql "$P" "SELECT pg_wal_replay_pause()" >/dev/null || fail "cannot pause replay on node$P"
t0=$(now_ms)
wait_for 15 "node$P's /replica?lag=1MB answers 503" replica_is "$P" 503
log "node$P unhealthy on /replica $(($(now_ms) - t0)) ms after the pause"
rest_call "$P" GET "/replica?lag=1MB"
case $REST_BODY in *"replay paused"*) pass "node$P /replica 503 says why: $REST_BODY" ;;
*) fail "node$P /replica 503 body does not say 'replay paused': $REST_BODY" ;; esac
assert_eq 503 "$(code "$P" "/replica")" "node$P /replica without a lag limit"
assert_eq 503 "$(code "$P" "/read-only?lag=1MB")" "node$P /read-only?lag=1MB"
assert_eq 503 "$(code "$P" "/readiness")" "node$P /readiness"
assert_eq 200 "$(code "$P" "/health")" "node$P /health (Postgres runs)"
assert_eq 200 "$(code "$Q" "/replica?lag=1MB")" "node$Q /replica?lag=1MB"
assert_eq 200 "$(code "$old" "/read-only?lag=1MB")" "primary node$old /read-only?lag=1MB"

list_state() { ctl list --format json 2>/dev/null | jq -r --arg m "node$1" '.[] | select(.name == $m) | .state'; }
wait_for 15 "batonctl list shows node$P as 'replay paused'" eval '[ "$(list_state '"$P"')" = "replay paused" ]'
out=$(ctl list 2>&1) || fail "batonctl list failed: $out"
printf '%s\n' "$out"
grep -E "node$P .*replay paused" <<<"$out" >/dev/null || fail "batonctl list (table) does not show node$P as replay paused"
pass "batonctl list shows node$P as replay paused"

# The lag tells the truth: 2 MB more on the primary, P does not replay it.
run_sql "$old" "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 10000) AS g" >/dev/null ||
	fail "cannot write filler on node$old"
list_lag() { ctl list --format json 2>/dev/null | jq -r --arg m "node$1" '.[] | select(.name == $m) | .lag'; }
lag_above() { local l; l=$(list_lag "$1"); [[ "$l" =~ ^[0-9]+$ ]] && [ "$l" -gt "$2" ]; }
lag_below() { local l; l=$(list_lag "$1"); [[ "$l" =~ ^[0-9]+$ ]] && [ "$l" -lt "$2" ]; }
wait_for 20 "batonctl list: node$P's lag above 1 MB" lag_above "$P" 1048576
wait_for 20 "batonctl list: node$Q's lag below 1 MB" lag_below "$Q" 1048576
log "lags: node$P $(list_lag "$P") bytes, node$Q $(list_lag "$Q") bytes"
received=$(run_sql "$P" "SELECT pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn()")
log "node$P holds $received bytes received and not replayed"

# 2. Node loss of the primary: Q must win, never P.
pm=$(postmaster_pid "$old") || fail "no postmaster PID for node$old"
children=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
t1=$(now_ms)
kill -KILL $(fence_pid "$old") "${AGENT_PID[$old]}" "$pm" $children 2>/dev/null
agent_wait_exit "$old" 10 || fail "agent of node$old survived SIGKILL"
log "killed node$old (agent ${AGENT_PID[$old]:-gone}, postmaster $pm)"
new_leader() { local l; l=$(leader_name); [[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$old" ] && [ "$(in_recovery "${BASH_REMATCH[1]}")" = f ]; }
wait_for $((TTL + 40)) "a new primary" new_leader
assert_eq "node$Q" "$(leader_name)" "the new leader is the replaying replica"
log "node$Q became primary $(($(now_ms) - t1)) ms after the node loss"
assert_eq t "$(in_recovery "$P")" "node$P (replay paused) stays in recovery"
grep -q "not a candidate: replay paused" "$(agent_log "$P")" || fail "node$P's agent never said it is not a candidate"
pass "node$P's agent refused candidacy: $(grep -m1 "not a candidate: replay paused" "$(agent_log "$P")" | cut -c1-200)"
sleep 2
[ "$(primaries)" = "$Q" ] || fail "primaries after the failover: '$(primaries)', want node$Q"

# 3. Resume: P becomes healthy again, replaying from Q.
run_sql "$P" "SELECT pg_wal_replay_resume()" >/dev/null || fail "cannot resume replay on node$P"
t2=$(now_ms)
wait_for 60 "node$P's /replica?lag=1MB answers 200 again" replica_is "$P" 200
log "node$P healthy $(($(now_ms) - t2)) ms after the resume"
run_sql "$Q" "CREATE TABLE marker AS SELECT 1 AS id" >/dev/null || fail "cannot write the marker on node$Q"
replayed() { [ "$(run_sql "$P" "SELECT count(*) FROM marker")" = 1 ]; }
wait_for 30 "node$P replayed the marker written on node$Q" replayed
wait_for 15 "batonctl list shows node$P running" eval '[ "$(CTL_NODE='"$Q"' list_state '"$P"')" = running ]'
bg_stop "$WRITER_PID"
log "writer: $(acks_count) acknowledged writes"
pass "replay health: paused replica unhealthy, never promoted, healthy again after resume"
