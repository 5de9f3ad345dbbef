#!/bin/bash
# 30_operations: restart, reload and pause do what an operator expects
# (issue 11). Three nodes, a writer and a poller running throughout:
#  1. confirmation: restart, reinit, switchover and failover without a
#     terminal and without --force are refused ("add --force"); on a
#     terminal restart says what it will do and "n" does nothing;
#  2. POST /restart with a role the node does not have: 412, nothing
#     restarted; with a postgres_version not above the running one: 200
#     "restart not needed";
#  3. `batonctl restart` without a member is a rolling restart: every
#     postmaster restarts, the replicas one after the other (each streaming
#     again before the next starts), the leader last and in place (it keeps
#     the leader key); never a second primary, never another node primary;
#     a marker row written after it is replayed on every replica;
#  4. a scheduled restart is listed (batonctl list, member key), refused a
#     second time (409), cancelled (batonctl restart --cancel) and then does
#     not happen; another one happens at its time, not before;
#  5. `restart --pending` right after `edit-config --pg max_connections=150`
#     restarts every member (each says what was pending), returns only once
#     the replicas stream again (it says so: "back: ..."), and a second
#     `restart --pending` restarts none;
#  6. `batonctl reload` re-reads the agent's file: a tag changed in it is
#     published;
#  7. maintenance mode: a switchover without a candidate and a scheduled one
#     are refused with a message naming maintenance mode and leave no key;
#     one with a candidate runs now and the old primary streams from the
#     new one, still paused; `restart --role replica`, still paused,
#     restarts the replicas only and both stream again.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init operations

cluster_start 3
wait_healthy 90
p=$PRIMARY
replicas=()
for n in 1 2 3; do [ "$n" = "$p" ] || replicas+=("$n"); done
writer_start 50
poller_start

# batonctl as the harness runs it, but without the --force the ctl wrapper adds.
ctl_bare() { as_baton "$BATON_BUILD/batonctl" -c "$T/node1.conf" "$@"; }
# start_time N: the postmaster's start time, microseconds since the epoch.
start_time() { run_sql "$1" "SELECT (extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint"; }
declare -A st0=()
snap_starts() { local n; for n in 1 2 3; do st0[$n]=$(start_time "$n") || fail "node$n does not answer"; done; }
same_starts() {
	local n
	for n in 1 2 3; do assert_eq "${st0[$n]}" "$(start_time "$n")" "node$n not restarted ($1)"; done
}
leader_create_rev() {
	etcdctl_ get -w json "$NAMESPACE/$SCOPE/leader" 2>/dev/null | jq -r '.kvs[0].create_revision // empty'
}

# ---- 1. confirmation
snap_starts
for args in "restart" "restart node${replicas[0]}" "reinit node${replicas[0]}" \
	"switchover --candidate node${replicas[0]}" "failover --candidate node${replicas[0]}"; do
	# shellcheck disable=SC2086
	err=$(ctl_bare $args </dev/null 2>&1)
	rc=$?
	assert_eq 1 "$rc" "batonctl $args without a terminal and without --force is refused"
	grep -q "add --force" <<<"$err" || fail "batonctl $args: the refusal does not say to add --force: $err"
done
# On a terminal (script(1) provides one) it asks what it says it will do; "n" does nothing.
out=$(printf 'n\n' | as_baton env BATONCTL_CONFIG="$T/node1.conf" \
	script -qec "$BATON_BUILD/batonctl restart" /dev/null 2>&1)
grep -q "Restart Postgres on node${replicas[0]}, node${replicas[1]}, node$p, one at a time in this order? \[y/N\]" <<<"$out" ||
	fail "batonctl restart on a terminal did not ask as expected: $out"
grep -q "not confirmed; nothing done" <<<"$out" || fail "answering n did not refuse: $out"
pass "batonctl restart on a terminal asks, and 'n' does nothing"
assert_eq "" "$(switchover_json)" "no switchover key after the refused requests"
sleep 2
same_starts "refused without --force"
pass "restart, reinit, switchover and failover need --force without a terminal"

# ---- 2. POST /restart conditions
r=${replicas[0]}
REST_TIMEOUT=70
rest_call "$r" POST /restart '{"role":"primary"}'
assert_eq 412 "$REST_CODE" "POST /restart role=primary on replica node$r"
grep -q "not the primary" <<<"$REST_BODY" || fail "412 body does not say why: $REST_BODY"
rest_call "$p" POST /restart '{"role":"replica"}'
assert_eq 412 "$REST_CODE" "POST /restart role=replica on primary node$p"
grep -q "not the replica" <<<"$REST_BODY" || fail "412 body does not say why: $REST_BODY"
rest_call "$r" POST /restart '{"postgres_version":"15.0"}'
assert_eq 200 "$REST_CODE" "POST /restart postgres_version=15.0 on node$r (runs 15.x)"
grep -q '"restarted": *false' <<<"$REST_BODY" || fail "restart not needed expected: $REST_BODY"
grep -q "restart not needed: the running server's version" <<<"$REST_BODY" || fail "no reason given: $REST_BODY"
rest_call "$r" POST /restart '{"role":"bogus"}'
assert_eq 400 "$REST_CODE" "POST /restart with an invalid role"
REST_TIMEOUT=3
same_starts "conditions false"
pass "POST /restart: 412 on a role mismatch, 200 'restart not needed' on an old enough version"

# ---- 3. rolling restart
snap_starts
rev0=$(leader_create_rev)
[ -n "$rev0" ] || fail "no leader key"
acks0=$(acks_count)
t0=$(now_ms)
out=$(ctl restart 2>&1) || fail "batonctl restart (rolling) failed: $out"
printf '%s\n' "$out"
log "rolling restart took $(($(now_ms) - t0)) ms"
mapfile -t lines <<<"$out"
assert_eq 4 "${#lines[@]}" "one line per member, then the 'back:' line"
[[ "${lines[3]}" =~ ^back:\ .*node$p\ \(primary\) ]] || fail "the last line does not say the members are back: ${lines[3]}"
for i in 0 1; do
	[[ "${lines[$i]}" =~ ^node([0-9]+):\ restarted\ .*streaming\ from\ node$p$ ]] ||
		fail "line $((i + 1)) is not a replica back to streaming from node$p: ${lines[$i]}"
	[ "${BASH_REMATCH[1]}" != "$p" ] || fail "the leader was not restarted last: ${lines[$i]}"
done
[[ "${lines[2]}" =~ ^node$p:\ restarted\ .*primary$ ]] || fail "the leader node$p is not last: ${lines[2]}"
declare -A st1=()
for n in 1 2 3; do
	st1[$n]=$(start_time "$n") || fail "node$n does not answer after the rolling restart"
	[ "${st1[$n]}" != "${st0[$n]}" ] || fail "node$n's postmaster was not restarted"
done
a=${lines[0]%%:*} b=${lines[1]%%:*}
a=${a#node} b=${b#node}
assert_lt "${st1[$a]}" "${st1[$b]}" "node$a restarted before node$b"
assert_lt "${st1[$b]}" "${st1[$p]}" "node$b restarted before the leader node$p"
assert_eq "$rev0" "$(leader_create_rev)" "the leader key was kept (same create revision)"
assert_eq "node$p" "$(leader_name)" "node$p still leads"
wait_healthy 60
assert_eq "$p" "$PRIMARY" "the same primary"
poll_until 10 test "$(acks_count)" -gt "$acks0" || fail "the writer got no ack after the rolling restart"
run_sql "$p" "CREATE TABLE IF NOT EXISTS ops_marker (v text); INSERT INTO ops_marker VALUES ('rolling')" >/dev/null ||
	fail "cannot write the marker row"
marker_everywhere() {
	local n
	for n in "${replicas[@]}"; do
		[ "$(run_sql "$n" "SELECT count(*) FROM ops_marker WHERE v = '$1'" 2>/dev/null)" = 1 ] || return 1
	done
}
wait_for 30 "the marker row replayed on every replica" marker_everywhere rolling
pass "rolling restart: replicas one at a time, the leader last and in place"

# ---- 4. scheduled restarts
r=${replicas[0]}
later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
snap_starts
out=$(ctl restart "node$r" --scheduled "$later" 2>&1) || fail "batonctl restart --scheduled failed: $out"
assert_eq "node$r: restart scheduled at $later" "$out" "restart --scheduled output"
has_schedule() { [ "$(member_json "node$r" | jq -r '.scheduled_restart.at // empty')" = "$1" ]; }
wait_for 10 "node$r's member key shows the scheduled restart" has_schedule "$later"
out=$(ctl list 2>&1) || fail "batonctl list failed"
grep -q "^Scheduled restart: node$r at $later" <<<"$out" || fail "batonctl list does not show the scheduled restart: $out"
assert_eq "$later" "$(ctl list --format json | jq -r ".[] | select(.name == \"node$r\") | .scheduled_restart.at")" \
	"list --format json shows it"
rest_call "$r" POST /restart "{\"schedule\":\"$(date -u -d '+2 hour' +%Y-%m-%dT%H:%M:%SZ)\"}"
assert_eq 409 "$REST_CODE" "a second scheduled restart is refused"
grep -q "already scheduled" <<<"$REST_BODY" || fail "409 body: $REST_BODY"
out=$(ctl restart --cancel 2>&1) || fail "batonctl restart --cancel failed: $out"
assert_eq "node$r: scheduled restart cancelled" "$out" "restart --cancel output"
wait_for 10 "the scheduled restart is gone from node$r's member key" has_schedule ""
ctl list | grep -q "Scheduled restart" && fail "list still shows a scheduled restart"
rest_call "$r" DELETE /restart
assert_eq 404 "$REST_CODE" "DELETE /restart with nothing scheduled"
# One that happens: a few seconds ahead.
at_s=$(($(date +%s) + 8))
soon=$(date -u -d "@$at_s" +%Y-%m-%dT%H:%M:%SZ)
out=$(ctl restart "node$r" --scheduled "$soon" 2>&1) || fail "batonctl restart --scheduled $soon failed: $out"
restarted_r() {
	local now
	now=$(start_time "$r" 2>/dev/null) && [ -n "$now" ] && [ "$now" != "${st0[$r]}" ]
}
wait_for 40 "node$r restarted by its schedule" restarted_r
t_restart=$(($(start_time "$r") / 1000000))
[ "$t_restart" -ge "$at_s" ] || fail "node$r restarted at $t_restart, before its scheduled time $at_s"
log "scheduled at $at_s, postmaster started at $t_restart"
for n in 1 2 3; do
	[ "$n" = "$r" ] || assert_eq "${st0[$n]}" "$(start_time "$n")" "node$n not restarted by node$r's schedule"
done
wait_for 10 "the schedule is gone from node$r's member key once done" has_schedule ""
wait_healthy 60
pass "scheduled restart: listed, cancelled (did not happen); another happened at its time"

# ---- 5. restart --pending right after edit-config
snap_starts
out=$(ctl edit-config --pg max_connections=150 --force </dev/null 2>&1) || fail "edit-config failed: $out"
out=$(ctl restart --pending 2>&1) || fail "batonctl restart --pending failed: $out"
printf '%s\n' "$out"
assert_eq 3 "$(grep -c ': restarted (max_connections 100 -> 150)' <<<"$out")" \
	"every member says it restarted for max_connections 100 -> 150"
for n in 1 2 3; do
	[ "$(start_time "$n")" != "${st0[$n]}" ] || fail "node$n was not restarted"
	assert_eq 150 "$(run_sql "$n" "SHOW max_connections")" "node$n runs max_connections 150"
done
# It returned only once every restarted member was back: the replicas
# stream again (the primary's restart, last, had broken their streams).
back=$(grep '^back: ' <<<"$out") || fail "restart --pending does not say the members are back: $out"
grep -q "node$p (primary)" <<<"$back" || fail "restart --pending does not say node$p is back as the primary: $back"
for n in "${replicas[@]}"; do
	grep -q "node$n (replica, streaming)" <<<"$back" || fail "restart --pending does not say node$n streams: $back"
	assert_eq streaming "$(run_sql "$n" "SELECT status FROM pg_stat_wal_receiver")" \
		"node$n's WAL receiver right after restart --pending returned"
done
wait_healthy 60
snap_starts
out=$(ctl restart --pending 2>&1) || fail "second batonctl restart --pending failed: $out"
printf '%s\n' "$out"
assert_eq 3 "$(grep -c ': restart not needed: no parameter is pending a restart' <<<"$out")" \
	"a second restart --pending restarts nothing"
same_starts "nothing pending"
pass "restart --pending right after edit-config restarts exactly what the edit made pending"

# ---- 6. reload re-reads the agent's file
r=${replicas[1]}
assert_eq 1 "$(member_json "node$r" | jq -r '.tags.failover_priority')" "node$r's failover_priority before"
printf 'tags = { failover_priority = 7; };\n' >>"$T/node$r.conf"
out=$(ctl reload "node$r" 2>&1) || fail "batonctl reload node$r failed: $out"
log "batonctl reload node$r: $out"
prio_is() { [ "$(member_json "node$r" | jq -r '.tags.failover_priority')" = "$1" ]; }
wait_for 10 "node$r publishes failover_priority 7 after batonctl reload" prio_is 7
grep -q "reload requested by an operator: re-reading" "$(agent_log "$r")" || fail "node$r's log does not say it re-read its file"
pass "batonctl reload re-reads the agent's file"

# ---- 7. maintenance mode
out=$(ctl pause 2>&1) || fail "batonctl pause failed: $out"
err=$(ctl switchover 2>&1)
assert_eq 1 "$?" "switchover without a candidate in pause is refused"
grep -q "maintenance mode" <<<"$err" || fail "the refusal does not name maintenance mode: $err"
c=${replicas[0]}
err=$(ctl switchover --candidate "node$c" --scheduled "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" 2>&1)
assert_eq 1 "$?" "scheduled switchover in pause is refused"
grep -q "maintenance mode" <<<"$err" || fail "the refusal does not name maintenance mode: $err"
assert_eq "" "$(switchover_json)" "no switchover key after the refusals"
out=$(ctl switchover --candidate "node$c" --wait 40 2>&1) || fail "switchover --candidate node$c in pause failed: $out"
log "$out"
grep -q "switched over from node$p to node$c" <<<"$out" || fail "switchover outcome: $out"
wait_healthy 60
assert_eq "$c" "$PRIMARY" "node$c is the primary, node$p streams from it, in pause"
ctl list | head -n1 | grep -q "Maintenance mode: on" || fail "no longer paused after the switchover"
# Still paused: a restart of the replicas only (--role) brings each back.
snap_starts
out=$(ctl restart --role replica 2>&1) || fail "batonctl restart --role replica in pause failed: $out"
printf '%s\n' "$out"
assert_eq 2 "$(grep -c "^node[0-9]: restarted in [0-9.]* s, streaming from node$c\$" <<<"$out")" \
	"in pause both replicas restarted and stream from node$c again"
grep -q "^node$c:" <<<"$out" && fail "--role replica restarted the primary node$c: $out"
assert_eq "${st0[$c]}" "$(start_time "$c")" "the primary node$c not restarted by --role replica"
wait_healthy 60
out=$(ctl resume 2>&1) || fail "batonctl resume failed: $out"
pass "pause: switchover without a candidate or scheduled refused, with a candidate runs now"

# ---- the writer and the poller
bg_stop "$WRITER_PID"
bg_stop "$POLLER_PID"
assert_eq "split_brain_samples 0" "$(grep '^split_brain_samples' "$T/poller.out")" "never two primaries"
# Until the switchover of part 7 only node$p may ever answer as primary.
t_sw=$(grep -m1 -n "node$c=P" "$T/poller.out" | cut -d: -f1)
others=$(head -n "${t_sw:-999999999}" "$T/poller.out" | grep '^sample ' | grep -E -c " node[0-9]+=P" | tr -d ' ')
wrong=$(head -n "$((${t_sw:-999999999} - 1))" "$T/poller.out" | grep '^sample ' | grep -E " node[0-9]+=P" |
	grep -v -c " node$p=P")
assert_eq 0 "$wrong" "before the switchover no node but node$p answered as primary ($others samples with a primary)"
wait_healthy 60
run_sql "$PRIMARY" "INSERT INTO ops_marker VALUES ('end')" >/dev/null || fail "cannot write the last marker row"
replicas=()
for n in 1 2 3; do [ "$n" = "$PRIMARY" ] || replicas+=("$n"); done
wait_for 30 "the last marker row replayed on every replica" marker_everywhere end
