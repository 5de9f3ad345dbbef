#!/bin/bash
# 09_pause: maintenance mode. After `batonctl pause` (fallback while batonctl
# lacks it: "pause": true written into the config key with etcdctl) every
# agent reports maintenance mode, and `batonctl list` shows it. Then the
# primary's postmaster (only the postmaster) is killed with SIGKILL: for 3 x
# ttl nothing fails over - the leader key keeps its holder and revision, both
# replicas stay in recovery - and no agent starts Postgres again. After
# `batonctl resume` the old primary's agent, which still holds the key,
# starts Postgres and the cluster is back to one primary and two streaming
# replicas, with the same leader.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init pause

cluster_start 3
wait_healthy 90
p=$PRIMARY

if ctl_has pause && ctl_has resume; then
	path=batonctl
else
	path=etcdctl
	log "FALLBACK: batonctl has no pause/resume; writing \"pause\" into the config key with etcdctl"
fi
set_pause() {
	local on=$1 out
	if [ "$path" = batonctl ]; then
		local cmd=resume
		[ "$on" = true ] && cmd=pause
		out=$(ctl "$cmd" 2>&1) || fail "batonctl $cmd failed: $out"
		log "batonctl $cmd: $out"
	else
		config_update ".pause = $on"
	fi
}

# An agent in maintenance mode says so: in its REST snapshot ("paused") when
# the API has that field, else in its log (the reason of its action).
agent_paused() {
	local n=$1 want=$2 st
	rest_call "$n" GET /status
	st=$REST_BODY
	if [ "$REST_CODE" = 200 ] && jq -e 'has("paused")' >/dev/null 2>&1 <<<"$st"; then
		evidence='"paused" in GET /status'
		[ "$(jq -r '.paused' <<<"$st")" = "$want" ]
		return
	fi
	evidence="the agent's log"
	if [ "$want" = true ]; then
		grep -q 'maintenance mode' "$(agent_log "$n")"
	else
		return 0
	fi
}
all_paused() {
	local n
	for n in 1 2 3; do agent_paused "$n" "$1" || return 1; done
}

set_pause true
evidence=
wait_for 15 "all three agents in maintenance mode" all_paused true
log "maintenance mode seen in $evidence"
out=$(ctl list 2>&1) || fail "batonctl list failed: $out"
printf '%s\n' "$out"
if grep -qi 'maintenance\|paused' <<<"$out"; then
	pass "batonctl list shows maintenance mode"
elif [ "$path" = batonctl ]; then
	fail "batonctl list does not show maintenance mode"
else
	log "NOT CHECKED: batonctl list does not show maintenance mode yet (batonctl predates pause)"
fi

# leader_rev: "<value> <create_revision>" of the leader key.
leader_rev() {
	etcdctl_ get -w json "$NAMESPACE/$SCOPE/leader" 2>/dev/null |
		jq -r '.kvs[0] | "\(.value | @base64d) \(.create_revision)"' 2>/dev/null
}
before=$(leader_rev)
[[ "$before" == "node$p "* ]] || fail "leader key is '$before', expected node$p"
pm=$(postmaster_pid "$p") || fail "no postmaster PID for node$p"
kill -KILL "$pm"
log "killed the postmaster $pm of primary node$p (SIGKILL)"
t0=$(now_ms)
wait_for 10 "the postmaster $pm is gone" bg_gone "$pm"

# For 3 x ttl: same leader key, both replicas in recovery, no new postmaster.
window=$((3 * TTL * 1000))
checks=0
while [ $(($(now_ms) - t0)) -lt "$window" ]; do
	now=$(leader_rev)
	[ "$now" = "$before" ] || { cluster_state; fail "leader key changed during maintenance: '$before' -> '$now'"; }
	for n in 1 2 3; do
		[ "$n" = "$p" ] && continue
		r=$(in_recovery "$n")
		[ "$r" = t ] || { cluster_state; fail "node$n answers in_recovery='$r' during maintenance (promoted or down)"; }
	done
	if np=$(postmaster_pid "$p"); then
		fail "the agent of node$p started Postgres (pid $np) during maintenance"
	fi
	checks=$((checks + 1))
	sleep 0.5
done
pass "for $((window / 1000)) s ($checks checks): leader key unchanged ($before), both replicas in recovery, node$p's Postgres left down"

set_pause false
t1=$(now_ms)
wait_for 15 "no agent in maintenance mode" all_paused false
pg_back() { postmaster_pid "$p" >/dev/null; }
wait_for 60 "node$p runs Postgres again" pg_back
log "node$p's Postgres is back $(($(now_ms) - t1)) ms after resume"
wait_healthy 60
assert_eq "$p" "$PRIMARY" "the old primary leads again"
assert_eq "$before" "$(leader_rev)" "leader key kept its holder and revision"
out=$(ctl list 2>&1) || fail "batonctl list failed: $out"
printf '%s\n' "$out"
if grep -qi 'maintenance\|paused' <<<"$out"; then
	fail "batonctl list still shows maintenance mode after resume"
fi
pass "batonctl list no longer shows maintenance mode"
log "path: pause/resume via $path"
