#!/bin/bash
# 28_param_lowering: lowering a hot-standby parameter never breaks a replica,
# and a failed start is never "repaired" by pg_rewind (issue 11).
#  1. With a writer running, the DBA sequence of the issue:
#     `batonctl edit-config --pg max_connections=150`, `restart --pending`,
#     then max_connections=100 and `restart --pending` again. Each replica
#     keeps max_connections 150 (its pg_controldata, the primary's value as
#     replayed) and says so in its log; a marker row written on the primary
#     after the second restart is *replayed* on every replica (SELECT on each)
#     within 30 s.
#  2. Once the primary runs with 100 and the replicas have replayed that,
#     they report a pending restart; `restart --pending` brings every node to
#     SHOW max_connections = 100, and a second marker is replayed everywhere.
#  3. No pg_rewind ran anywhere, and no Postgres log says "insufficient
#     parameter settings".
#  4. A replica made unable to start (postgresql.auto.conf sets
#     max_connections = 50, below the primary's 100 in its pg_controldata):
#     its agent diagnoses the failure from the server log ("hot-standby
#     parameters"), retries with backoff, never rewinds; `batonctl reinit`
#     then yields a fresh streaming replica (no rewind) that replays a marker,
#     and the member key no longer says "start failed".
#  5. Raising max_connections to 200 and restarting only the primary (the
#     wrong order for a raise): each replica's replay pauses on the higher
#     value, and its agent restarts it with the primary's value (SHOW 200 on
#     every node within 60 s, a marker replayed), no rewind.
#  6. max_connections = abc (Postgres refuses it): a reload keeps the old
#     value and says so, restart and switchover are refused naming it, and
#     after a crash the agent starts Postgres without it.
#  7. max_connections taken out of the config (back to the default 100):
#     one `restart --pending` applies it to every node.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init param_lowering

cluster_start 3
wait_healthy 90
p=$PRIMARY
replicas=()
for n in 1 2 3; do [ "$n" = "$p" ] || replicas+=("$n"); done
log "primary node$p, replicas node${replicas[0]} node${replicas[1]}"
for c in edit-config restart reinit; do
	ctl_has "$c" || fail "batonctl has no $c command"
done

writer_start 50
wait_for 20 "the writer's first acks" eval '[ "$(acks_count)" -ge 10 ]'
run_sql "$p" "CREATE TABLE marker (id int primary key, t text)" >/dev/null || fail "cannot create the marker table"

set_pg() {
	local out
	out=$(ctl edit-config --pg "$1=$2" --force </dev/null 2>&1) || fail "batonctl edit-config --pg $1=$2 failed: $out"
	log "batonctl edit-config --pg $1=$2: $out"
}
restart_pending() {
	local out
	out=$(ctl restart --pending --force </dev/null 2>&1) || fail "batonctl restart --pending failed: $out"
	log "batonctl restart --pending: $out"
}
# pending NODE VALUE: members/nodeN says pending_restart VALUE.
pending() { [ "$(jq -r '.pending_restart' <<<"$(member_json "node$1")" 2>/dev/null)" = "$2" ]; }
show_is() { [ "$(run_sql "$1" "SHOW max_connections")" = "$2" ]; }
# replayed NODE ID: the marker row ID is visible on NODE (replayed, not only received).
replayed() { [ "$(run_sql "$1" "SELECT count(*) FROM marker WHERE id = $2")" = 1 ]; }
# mark ID: writes marker ID on the current primary and waits until every
# other running node has replayed it.
mark() {
	local id=$1 n t0
	cluster_healthy "${2:-}" || wait_healthy 60 "${2:-}"
	run_sql "$PRIMARY" "INSERT INTO marker VALUES ($id, 'after $3')" >/dev/null || fail "cannot write marker $id on node$PRIMARY"
	t0=$(now_ms)
	for n in 1 2 3; do
		[ "$n" != "$PRIMARY" ] || continue
		[[ " ${2:-} " != *" $n "* ]] || continue
		wait_for 30 "node$n replayed marker $id ($3)" replayed "$n" "$id"
	done
	pass "marker $id ($3) replayed on every replica within $(($(now_ms) - t0)) ms"
}

# 1. Raise, restart, lower, restart: the sequence that used to break a replica.
set_pg max_connections 150
for n in 1 2 3; do wait_for 20 "node$n pending restart after raising" pending "$n" true; done
restart_pending
for n in 1 2 3; do wait_for 90 "node$n runs with max_connections 150" show_is "$n" 150; done
wait_healthy 60
mark 1 "" "the raise"

t_lower=$(now_ms)
set_pg max_connections 100
wait_for 20 "the primary node$p pending restart after lowering" pending "$p" true
for r in "${replicas[@]}"; do
	wait_for 20 "node$r logs that it keeps the primary's 150" \
		grep -q "max_connections raised to 150 from 100: the primary's value as this replica replayed it" "$(agent_log "$r")"
done
restart_pending
wait_for 90 "the primary node$p runs with max_connections 100" show_is "$p" 100
for r in "${replicas[@]}"; do
	show_is "$r" 150 || [ "$(run_sql "$r" "SHOW max_connections")" = 100 ] ||
		fail "node$r runs with max_connections '$(run_sql "$r" "SHOW max_connections")'"
done
wait_healthy 60
mark 2 "" "the primary lowered max_connections"

# 2. Safe now: the replicas replayed the primary's 100, so the lower value is
# pending there; one more restart --pending applies it.
for r in "${replicas[@]}"; do
	show_is "$r" 100 || wait_for 30 "node$r pending restart once the lower value is safe" pending "$r" true
done
restart_pending
for n in 1 2 3; do wait_for 90 "node$n runs with max_connections 100" show_is "$n" 100; done
log "every node at max_connections 100 $(($(now_ms) - t_lower)) ms after lowering it"
wait_healthy 60
mark 3 "" "the replicas applied the lower value"
for n in 1 2 3; do wait_for 20 "node$n no longer pending" pending "$n" false; done

# 3. Nothing was rewound, nothing stopped on its parameters.
for n in 1 2 3; do
	if grep -E "pg_rewind (started|failed)|rewinding" "$(agent_log "$n")"; then
		fail "node$n ran pg_rewind during a parameter change"
	fi
	if grep -q "insufficient parameter settings" "$T/node$n.log"; then
		grep -n "insufficient parameter settings" "$T/node$n.log" | head -5
		fail "node$n's Postgres stopped on insufficient parameter settings"
	fi
done
pass "no pg_rewind, no 'insufficient parameter settings' on any node"

# 4. A forced start failure, then reinit.
r=${replicas[0]}
pm_before=$(postmaster_pid "$r") || fail "node$r has no postmaster"
printf 'max_connections = 50\n' >>"$(data_dir "$r")/postgresql.auto.conf"
log "node$r: postgresql.auto.conf now sets max_connections = 50 (below the primary's 100)"
# The restart is meant to fail: batonctl waits for it and says so.
if out=$(ctl restart "node$r" --force </dev/null 2>&1); then
	fail "batonctl restart node$r succeeded though Postgres cannot start: $out"
fi
grep -q "failed to start" <<<"$out" || fail "batonctl restart node$r did not report the failed start: $out"
log "batonctl restart node$r (expected to fail): $out"
diagnosed() { grep -q "Postgres exited during start-up.*\[hot-standby parameters\]" "$(agent_log "$r")"; }
wait_for 60 "node$r's agent diagnoses the failed start from the server log" diagnosed
grep "Postgres exited during start-up" "$(agent_log "$r")" | tail -n 2
start_failed() { [ "$(jq -r '.state' <<<"$(member_json "node$r")" 2>/dev/null)" = "start failed" ]; }
wait_for 20 "members/node$r says start failed" start_failed
# Let it retry a few times: it backs off and never rewinds.
retried() { [ "$(grep -c "Postgres exited during start-up" "$(agent_log "$r")")" -ge 3 ]; }
wait_for 60 "node$r retried its start (with backoff)" retried
grep -q "starting it again in" "$(agent_log "$r")" || fail "node$r's agent did not back off between failed starts"
if grep -E "pg_rewind (started|failed)|rewinding" "$(agent_log "$r")"; then
	fail "node$r ran pg_rewind after a failed start that was not a diverged timeline"
fi
pass "node$r: failed start diagnosed (insufficient parameter settings), retried with backoff, not rewound"

out=$(ctl reinit "node$r" --force </dev/null 2>&1) || fail "batonctl reinit node$r failed: $out"
log "batonctl reinit node$r: $out"
wait_for 30 "node$r forgets the old data directory's failures" \
	grep -q "reinit: forgetting the old data directory's failures" "$(agent_log "$r")"
wait_healthy 120
[ "$(postmaster_pid "$r")" != "$pm_before" ] || fail "node$r still runs its old postmaster"
grep -q '^max_connections = 50' "$(data_dir "$r")/postgresql.auto.conf" && fail "node$r's data directory was not re-cloned"
show_is "$r" 100 || fail "node$r runs with max_connections '$(run_sql "$r" "SHOW max_connections")' after reinit"
mark 4 "" "reinit of node$r"
running() { [ "$(jq -r '.state' <<<"$(member_json "node$r")" 2>/dev/null)" = running ]; }
wait_for 20 "members/node$r says running" running
if grep -E "pg_rewind (started|failed)|rewinding" "$(agent_log "$r")"; then
	fail "node$r ran pg_rewind around its reinit"
fi
pass "reinit after a failed start: a fresh streaming replica, no rewind"

# 5. Raising with the primary restarted first (the wrong order for a
# raise): the replicas' replay pauses on the primary's higher value; their
# agents see it in pg_controldata and restart them with it, no operator
# restart of the replicas needed.
set_pg max_connections 200
wait_for 20 "the primary node$p pending restart after raising to 200" pending "$p" true
out=$(ctl restart "node$p" --force </dev/null 2>&1) || fail "batonctl restart node$p failed: $out"
log "batonctl restart node$p: $out"
wait_for 60 "the primary node$p runs with max_connections 200" show_is "$p" 200
for r in "${replicas[@]}"; do
	wait_for 60 "node$r restarted itself with max_connections 200" show_is "$r" 200
done
for r in "${replicas[@]}"; do
	grep -q "replay paused, a hot-standby parameter is below the primary's" "$(agent_log "$r")" ||
		fail "node$r's agent did not say why it restarted"
	log "node$r: $(grep -m1 "replay paused, a hot-standby parameter is below the primary's" "$(agent_log "$r")" | cut -c1-220)"
done
wait_healthy 60
mark 5 "" "raising with the primary first"
for n in 1 2 3; do
	if grep -E "pg_rewind (started|failed)|rewinding" "$(agent_log "$n")"; then
		fail "node$n ran pg_rewind"
	fi
done
pass "raising in the wrong order: replicas follow the primary's value by themselves, no rewind"

# 6. A value Postgres refuses (edit-config does not know Postgres' types):
# the reload keeps the old value and the agent says so; a restart, which
# would take Postgres down, is refused naming the parameter; a crash starts
# Postgres again without it; once fixed, the restart runs.
r=${replicas[0]}
pm_before=$(postmaster_pid "$r") || fail "no postmaster on node$r"
set_pg max_connections abc
refused_logged() { grep -q "Postgres refuses part of its configuration.*max_connections" "$(agent_log "$r")"; }
wait_for 20 "node$r's agent logs that Postgres refuses max_connections = abc" refused_logged
if out=$(ctl restart "node$r" --force </dev/null 2>&1); then
	fail "batonctl restart node$r with max_connections = abc succeeded: $out"
fi
grep -q "refused: Postgres would not start with its configuration: invalid value for parameter \"max_connections\"" <<<"$out" ||
	fail "the refusal does not name the parameter: $out"
log "batonctl restart node$r (refused, as it must be): $out"
assert_eq "$pm_before" "$(postmaster_pid "$r")" "node$r's postmaster after the refused restart"
# A switchover would leave the old primary unable to start as a replica:
# the leader refuses it, and batonctl quotes why.
wait_for 20 "the primary node$p's agent logs that Postgres refuses max_connections = abc" \
	grep -q "Postgres refuses part of its configuration.*max_connections" "$(agent_log "$p")"
if out=$(ctl switchover --candidate "node$r" --force --wait 30 </dev/null 2>&1); then
	fail "a switchover with max_connections = abc in the config succeeded: $out"
fi
grep -q "node$p refused the switchover (its member key says): Postgres would not start again with its configuration" <<<"$out" ||
	fail "the switchover's refusal does not say why: $out"
assert_eq "node$p" "$(leader_name)" "the leader after the refused switchover"
log "batonctl switchover (refused, as it must be): $out"
out=$(ctl list 2>&1) || fail "batonctl list failed: $out"
grep -q "^Config error: node$r: Postgres refuses .*max_connections" <<<"$out" || fail "list does not show the refused value: $out"
# A crash is not an operator's restart: the agent starts Postgres again
# without the refused value (naming it) rather than fail on it.
pm=$(postmaster_pid "$r") || fail "no postmaster on node$r"
kill -KILL "$pm"
log "killed node$r's postmaster $pm with max_connections = abc in the config"
started_without() { grep -q "starting Postgres without postgresql.parameters.max_connections = 'abc'" "$(agent_log "$r")"; }
wait_for 30 "node$r's agent to start Postgres without max_connections = abc" started_without
wait_healthy 60
pm2=$(postmaster_pid "$r") || fail "no postmaster on node$r after the crash"
[ "$pm2" != "$pm" ] || fail "node$r still runs postmaster $pm"
pass "after a crash node$r runs again (postmaster $pm2) without the refused value, and streams"
set_pg max_connections 200
out=$(ctl restart "node$r" --force </dev/null 2>&1) || fail "batonctl restart node$r after the fix failed: $out"
log "batonctl restart node$r after the fix: $out"
no_config_error() { ! ctl list 2>&1 | grep -q "^Config error:"; }
wait_for 20 "list no longer shows a config error" no_config_error
mark 6 "" "a refused value fixed"
pass "a value Postgres refuses: reload keeps the old value, restart refused naming it, fixed and restarted"

# 7. The parameter taken out of the config (back to Postgres' default,
# 100): a lowering too, so one `restart --pending` restarts the primary,
# waits for the replicas to replay its lower value and restarts them (the
# agent describes the change as "200 -> default 100"; it once said "-> ?",
# which batonctl could not read, leaving both replicas pending).
set_pg max_connections ""
wait_for 20 "the primary node$p pending restart after taking the parameter out" pending "$p" true
out=$(ctl restart --pending --force </dev/null 2>&1) || fail "batonctl restart --pending failed: $out"
log "batonctl restart --pending: $out"
grep -q "max_connections 200 -> default 100" <<<"$out" || fail "the primary's restart does not say 200 -> default 100: $out"
for n in 1 2 3; do wait_for 30 "node$n runs with max_connections 100" show_is "$n" 100; done
for n in 1 2 3; do wait_for 20 "node$n no longer pending" pending "$n" false; done
mark 7 "" "the parameter taken out"
pass "a hot-standby parameter taken out of the config: one restart --pending applies the default everywhere"

bg_stop "$WRITER_PID"
log "writer: $(acks_count) acknowledged writes"
[ "$(primaries)" = "$p" ] || fail "primaries at the end: '$(primaries)', want node$p"
pass "one primary (node$p) throughout"
