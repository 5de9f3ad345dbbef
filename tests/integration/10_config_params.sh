#!/bin/bash
# 10_config_params: Postgres parameters from the cluster-wide config key.
#  1. `batonctl edit-config --pg work_mem=8MB` (fallback while batonctl lacks
#     it: postgresql.parameters rewritten in the config key with etcdctl):
#     within a few loops SHOW work_mem is 8MB on all three nodes, by a reload
#     (every postmaster keeps its PID);
#  2. a restart-only parameter, max_connections=120: SHOW max_connections
#     stays 100, every member key says "pending_restart": true (and batonctl
#     list --format json, when it has the field); `batonctl restart --pending`
#     (fallback: POST /restart {"restart_pending": true} to each member's
#     REST API, replicas first) restarts them: SHOW max_connections is 120 on
#     each, pending_restart is gone, the cluster still has one primary (the
#     same) and two streaming replicas.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init config_params

cluster_start 3
wait_healthy 90
p=$PRIMARY
declare -A pm0=()
for n in 1 2 3; do
	pm0[$n]=$(postmaster_pid "$n") || fail "no postmaster PID for node$n"
done

if ctl_has edit-config; then
	edit_path=batonctl
else
	edit_path=etcdctl
	log "FALLBACK: batonctl has no edit-config; rewriting postgresql.parameters in the config key with etcdctl"
fi
if ctl_has restart; then
	restart_path=batonctl
else
	restart_path=curl
	log "FALLBACK: batonctl has no restart; POST /restart {\"restart_pending\":true} to each member with curl"
fi

# set_pg NAME VALUE
set_pg() {
	local out
	if [ "$edit_path" = batonctl ]; then
		out=$(ctl edit-config --pg "$1=$2" --force </dev/null 2>&1) || fail "batonctl edit-config --pg $1=$2 failed: $out"
		log "batonctl edit-config --pg $1=$2: $out"
	else
		config_update ".postgresql.parameters[\"$1\"] = \"$2\""
	fi
}

# all_show NAME VALUE: SHOW NAME is VALUE on every node.
all_show() {
	local n
	for n in 1 2 3; do
		[ "$(run_sql "$n" "SHOW $1")" = "$2" ] || return 1
	done
}
same_postmasters() {
	local n now
	for n in 1 2 3; do
		now=$(postmaster_pid "$n") || fail "node$n has no postmaster"
		assert_eq "${pm0[$n]}" "$now" "node$n's postmaster PID unchanged ($1)"
	done
}

# 1. A reloadable parameter.
assert_eq 4MB "$(run_sql "$p" "SHOW work_mem")" "work_mem before"
t0=$(now_ms)
set_pg work_mem 8MB
wait_for 15 "SHOW work_mem = 8MB on all three nodes" all_show work_mem 8MB
log "work_mem reached all nodes $(($(now_ms) - t0)) ms after the edit"
same_postmasters "reload, no restart"

# 2. A parameter that needs a restart.
set_pg max_connections 120
pending() {
	local n j
	for n in 1 2 3; do
		j=$(member_json "node$n")
		[ "$(jq -r '.pending_restart' <<<"$j" 2>/dev/null)" = "$1" ] || return 1
	done
}
wait_for 20 "every member key says pending_restart true" pending true
assert_eq 100 "$(run_sql "$p" "SHOW max_connections")" "max_connections unchanged before the restart"
all_show max_connections 100 || fail "a node runs with max_connections != 100 before the restart"
same_postmasters "pending restart, not restarted"
json=$(ctl list --format json 2>/dev/null) || fail "batonctl list --format json failed"
if jq -e 'all(.[]; has("pending_restart"))' >/dev/null 2>&1 <<<"$json"; then
	assert_eq true "$(jq 'all(.[]; .pending_restart == true)' <<<"$json")" "batonctl list: pending restart on every member"
else
	log "NOT CHECKED: batonctl list --format json has no pending_restart field yet"
fi
out=$(ctl list 2>&1) || fail "batonctl list failed: $out"
printf '%s\n' "$out"

t1=$(now_ms)
if [ "$restart_path" = batonctl ]; then
	out=$(ctl restart --pending </dev/null 2>&1) || fail "batonctl restart --pending failed: $out"
	log "batonctl restart --pending: $out"
else
	# Replicas first: a standby must not run with a lower max_connections
	# than its primary.
	order=()
	for n in 1 2 3; do [ "$n" = "$p" ] || order+=("$n"); done
	order+=("$p")
	restarted() { [ "$(postmaster_pid "$1")" != "${pm0[$1]}" ] && [ "$(run_sql "$1" "SHOW max_connections")" = 120 ]; }
	for n in "${order[@]}"; do
		rest_call "$n" POST /restart '{"restart_pending":true}'
		case $REST_CODE in 2??) ;; *) fail "POST /restart on node$n answered $REST_CODE: $REST_BODY" ;; esac
		log "POST /restart on node$n: $REST_CODE $REST_BODY"
		wait_for 30 "node$n restarted with max_connections 120" restarted "$n"
	done
fi
wait_for 60 "SHOW max_connections = 120 on all three nodes" all_show max_connections 120
log "max_connections 120 on all nodes $(($(now_ms) - t1)) ms after the restart request"
for n in 1 2 3; do
	now=$(postmaster_pid "$n") || fail "node$n has no postmaster after the restart"
	[ "$now" != "${pm0[$n]}" ] || fail "node$n's postmaster was not restarted"
done
pass "every postmaster was restarted"
wait_for 20 "every member key says pending_restart false" pending false
wait_healthy 60
assert_eq "$p" "$PRIMARY" "the same primary after the restarts"
assert_eq 8MB "$(run_sql "$p" "SHOW work_mem")" "work_mem survives the restart"
log "paths: edit-config via $edit_path, restart --pending via $restart_path"
