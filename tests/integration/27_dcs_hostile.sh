#!/bin/bash
# 27_dcs_hostile: what someone who can write to etcd (or reach the REST API,
# or run batonctl) can no longer do (issue 10, items 3, 6, 7 and 8).
# node3's file allows archive_command and the custom parameter
# auto_explain.log_min_duration from etcd (postgresql.allow_from_dcs); nodes 1
# and 2 allow nothing. Every node runs archive_mode = always, so an
# archive_command in force runs on the node (its working directory, the data
# directory, is what it writes to the marker file).
#  1. archive_command and shared_preload_libraries put into the config key
#     with etcdctl: SHOW archive_command stays '' on node1 and node2, the
#     marker gets lines from node3 only (after pg_switch_wal), no node has
#     shared_preload_libraries in its postgresql.conf, each agent logs one
#     WARN naming what it ignored (once, not every loop); a harmless
#     parameter of the same edit (work_mem) is applied everywhere;
#     custom (dotted) parameters in the same edit: pltcl.start_proc (runs
#     code when PL/Tcl loads) reaches no node (not SHOWn, not in any
#     configuration file), each agent warns once naming it;
#     auto_explain.log_min_duration is applied by node3 only (SHOW 250ms),
#     nodes 1 and 2 warn once and do not have it;
#  2. PATCH /config setting archive_cleanup_command: 400 naming it (when the
#     harness has write credentials); loop_wait = 0.001: 400 naming the bound;
#     plperl.on_init (and lo_compat_privileges): 400 with a JSON error naming
#     it and postgresql.allow_from_dcs, on no node afterwards; PATCH of
#     auto_explain.log_min_duration on node3 (which allows it): 200, applied
#     on node3 only;
#     `batonctl edit-config` with restore_command, shared_preload_libraries,
#     plperl.on_init, loop_wait = 0.001, retry_timeout = 0.001, ttl = 1e308:
#     refused, each
#     naming the parameter or the bound, and the config key is unchanged;
#     edit-config of archive_command from node3's config (which allows it)
#     works, and node1/node2 still ignore it;
#  3. seven keys of 1.4 MB under the scope, a malformed and an oversized
#     member key: /primary stays 200 on the primary through several loops,
#     the leader key stays, the agents name the keys in a WARN, batonctl list
#     works, and a failover (primary's agent and postmaster killed) still
#     elects a new primary;
#  4. a deleted member key comes back within a loop.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init dcs_hostile

MARK="$T/archive-ran"
touch "$MARK"
chown "$BATON_USER:" "$MARK"
etcd_start
for n in 1 2 3; do
	node_config "$n"
	sed -i 's|^  parameters = { shared_buffers = "32MB"; };|  parameters = { shared_buffers = "32MB"; archive_mode = "always"; };|' "$T/node$n.conf"
	grep -q 'archive_mode = "always"' "$T/node$n.conf" || fail "could not add archive_mode to node$n.conf"
done
sed -i 's|^  parameters = {|  allow_from_dcs = [ "archive_command", "auto_explain.log_min_duration" ];\n&|' "$T/node3.conf"
grep -q 'allow_from_dcs' "$T/node3.conf" || fail "could not add allow_from_dcs to node3.conf"
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
p=$PRIMARY
log "primary node$p; node3 allows archive_command and auto_explain.log_min_duration from etcd"

all_show() {
	local n
	for n in 1 2 3; do
		[ "$(run_sql "$n" "SHOW $1")" = "$2" ] || return 1
	done
}
warn_count() { grep -c -- "$2" "$(agent_log "$1")" 2>/dev/null || true; }
# setting N NAME: what the running server has for NAME ('' when it has no
# such parameter, not even a placeholder: SHOW would fail).
setting() { run_sql "$1" "SELECT coalesce(current_setting('$2', true), '<unset>')"; }
# in_files N NAME: how many lines of its configuration files set NAME.
in_files() { run_sql "$1" "SELECT count(*) FROM pg_file_settings WHERE name = lower('$2')"; }
# nowhere NAME VALUE: no node runs with NAME, nor has it (or VALUE) in a file.
nowhere() {
	local n
	for n in 1 2 3; do
		assert_eq "<unset>" "$(setting "$n" "$1")" "node$n: $1 not in the running server"
		assert_eq 0 "$(in_files "$n" "$1")" "node$n: $1 in none of its configuration files"
		grep -qF -- "$2" "$(data_dir "$n")/postgresql.conf" && fail "node$n's postgresql.conf holds $2"
		grep -qF -- "$1" "$(data_dir "$n")/postgresql.conf" && fail "node$n's postgresql.conf names $1"
	done
	return 0
}

# ---- 1. straight into etcd
cmd="pwd >> $MARK"
config_update ".postgresql.parameters.archive_command = \"$cmd\" | .postgresql.parameters.shared_preload_libraries = \"pwned_library\" | .postgresql.parameters.work_mem = \"7MB\" | .postgresql.parameters[\"pltcl.start_proc\"] = \"pwned_proc\" | .postgresql.parameters[\"auto_explain.log_min_duration\"] = \"250ms\""
wait_for 20 "work_mem 7MB on every node (the edit was read)" all_show work_mem 7MB
assert_eq "" "$(run_sql 1 "SHOW archive_command")" "node1: archive_command from etcd not applied"
assert_eq "" "$(run_sql 2 "SHOW archive_command")" "node2: archive_command from etcd not applied"
node3_has() { [ "$(run_sql 3 "SHOW archive_command")" = "$cmd" ]; }
wait_for 10 "node3 (allow_from_dcs) applies archive_command" node3_has
for n in 1 2 3; do
	assert_eq 0 "$(run_sql "$n" "SELECT count(*) FROM pg_file_settings WHERE name = 'shared_preload_libraries'")" \
		"node$n: shared_preload_libraries not in its configuration files"
	grep -q pwned_library "$(data_dir "$n")/postgresql.conf" && fail "node$n's postgresql.conf holds pwned_library"
done
for n in 1 2; do
	wait_for 5 "node$n warns about archive_command" eval \
		"[ \"\$(warn_count $n 'postgresql.parameters.archive_command ignored')\" -ge 1 ]"
done
for n in 1 2 3; do
	wait_for 5 "node$n warns about shared_preload_libraries" eval \
		"[ \"\$(warn_count $n 'postgresql.parameters.shared_preload_libraries ignored')\" -ge 1 ]"
done
assert_eq 0 "$(warn_count 3 'postgresql.parameters.archive_command ignored')" "node3 takes archive_command, no warning"
# Custom (dotted) parameters: pltcl.start_proc nowhere, the allowed one on node3 only.
node3_explain() { [ "$(setting 3 auto_explain.log_min_duration)" = 250ms ]; }
wait_for 10 "node3 (allow_from_dcs) applies auto_explain.log_min_duration" node3_explain
for n in 1 2; do
	assert_eq "<unset>" "$(setting "$n" auto_explain.log_min_duration)" \
		"node$n: auto_explain.log_min_duration from etcd not applied"
	assert_eq 0 "$(in_files "$n" auto_explain.log_min_duration)" "node$n: auto_explain.log_min_duration in no file"
	wait_for 5 "node$n warns about auto_explain.log_min_duration" eval \
		"[ \"\$(warn_count $n 'postgresql.parameters.auto_explain.log_min_duration ignored: it is an extension')\" -ge 1 ]"
done
assert_eq 1 "$(in_files 3 auto_explain.log_min_duration)" "node3: auto_explain.log_min_duration in its file"
nowhere pltcl.start_proc pwned_proc
for n in 1 2 3; do
	wait_for 5 "node$n warns about pltcl.start_proc" eval \
		"[ \"\$(warn_count $n 'postgresql.parameters.pltcl.start_proc ignored: .*postgresql.allow_from_dcs')\" -ge 1 ]"
done
assert_eq 0 "$(warn_count 3 'postgresql.parameters.auto_explain.log_min_duration ignored')" \
	"node3 takes auto_explain.log_min_duration, no warning"
sleep $((LOOP_WAIT * 4 + 1))
for n in 1 2; do
	assert_eq 1 "$(warn_count "$n" 'postgresql.parameters.archive_command ignored')" \
		"node$n warned once, not every loop"
	assert_eq 1 "$(warn_count "$n" 'postgresql.parameters.auto_explain.log_min_duration ignored')" \
		"node$n warned once about auto_explain.log_min_duration"
done
for n in 1 2 3; do
	assert_eq 1 "$(warn_count "$n" 'postgresql.parameters.pltcl.start_proc ignored')" \
		"node$n warned once about pltcl.start_proc"
done
nowhere pltcl.start_proc pwned_proc
pass "archive_command and shared_preload_libraries from etcd: ignored where not allowed, with one WARN each"
pass "custom parameters from etcd: pltcl.start_proc on no node, auto_explain.log_min_duration on node3 only, one WARN each"

# The marker: a full WAL segment is archived by whoever runs archive_command.
run_sql "$p" "CREATE TABLE t27 (v int); INSERT INTO t27 SELECT generate_series(1, 1000)" >/dev/null || fail "cannot write"
run_sql "$p" "SELECT pg_switch_wal()" >/dev/null || fail "pg_switch_wal failed"
marker_has3() { grep -qxF "$(data_dir 3)" "$MARK"; }
wait_for 30 "node3 archived a segment with the marker command" marker_has3
run_sql "$p" "SELECT pg_switch_wal()" >/dev/null
sleep 2
for n in 1 2; do
	grep -qxF "$(data_dir "$n")" "$MARK" && fail "node$n ran the archive_command from etcd (marker: $(sort -u "$MARK" | tr '\n' ' '))"
done
pass "the marker command ran on node3 only ($(sort -u "$MARK" | wc -l) distinct directory)"

# ---- 2. through the REST API and batonctl
before=$(config_json)
rest_call 1 PATCH /config '{"postgresql":{"parameters":{"archive_cleanup_command":"touch /tmp/pwned-27"}}}'
case $REST_CODE in
400)
	grep -q 'postgresql.parameters.archive_cleanup_command: refused' <<<"$REST_BODY" ||
		fail "PATCH archive_cleanup_command: 400 without naming it: $REST_BODY"
	pass "PATCH /config archive_cleanup_command: 400 naming it"
	rest_call 1 PATCH /config '{"loop_wait":0.001,"retry_timeout":0.001}'
	assert_eq 400 "$REST_CODE" "PATCH /config loop_wait 0.001"
	grep -q 'loop_wait: 0.001 out of range \[0.1, 3600\]' <<<"$REST_BODY" || fail "PATCH loop_wait: $REST_BODY"
	pass "PATCH /config loop_wait 0.001: 400 naming the bound"
	for kv in 'plperl.on_init:system(\"touch /tmp/pwned-27\")' 'lo_compat_privileges:on'; do
		name=${kv%%:*}
		rest_call 1 PATCH /config "{\"postgresql\":{\"parameters\":{\"$name\":\"${kv#*:}\"}}}"
		assert_eq 400 "$REST_CODE" "PATCH /config $name"
		msg=$(jq -er .error <<<"$REST_BODY") || fail "PATCH $name: the answer is not a JSON error: $REST_BODY"
		grep -qF "postgresql.parameters.$name: refused: " <<<"$msg" || fail "PATCH $name: 400 without naming it: $msg"
		grep -qF "postgresql.allow_from_dcs" <<<"$msg" || fail "PATCH $name: 400 without naming the key: $msg"
		log "PATCH $name: 400 $msg"
	done
	pass "PATCH /config plperl.on_init and lo_compat_privileges: 400, a JSON error naming each and the allow key"
	;;
401 | 403) log "NOT CHECKED: PATCH /config needs write credentials the harness does not give yet ($REST_CODE: $REST_BODY)" ;;
*) fail "PATCH /config archive_cleanup_command answered $REST_CODE: $REST_BODY" ;;
esac
assert_eq "$before" "$(config_json)" "config key unchanged by the refused PATCHes"
nowhere plperl.on_init pwned-27
for n in 1 2 3; do
	assert_eq off "$(setting "$n" lo_compat_privileges)" "node$n: lo_compat_privileges stays off"
done
# node3 allows auto_explain.log_min_duration: its REST API sets it, for it alone.
rest_call 3 PATCH /config '{"postgresql":{"parameters":{"auto_explain.log_min_duration":"300ms"}}}'
case $REST_CODE in
200)
	node3_explain300() { [ "$(setting 3 auto_explain.log_min_duration)" = 300ms ]; }
	wait_for 10 "node3 applies auto_explain.log_min_duration 300ms (PATCH on node3)" node3_explain300
	for n in 1 2; do
		assert_eq "<unset>" "$(setting "$n" auto_explain.log_min_duration)" \
			"node$n still ignores auto_explain.log_min_duration"
	done
	pass "PATCH /config of an allowed custom parameter on node3: 200, applied on node3 only"
	;;
401 | 403) log "NOT CHECKED: PATCH /config on node3 needs write credentials ($REST_CODE: $REST_BODY)" ;;
*) fail "PATCH /config auto_explain.log_min_duration on node3 (which allows it) answered $REST_CODE: $REST_BODY" ;;
esac
before=$(config_json)

refused() { # WHAT EXPECTED-TEXT ARGS...
	local what=$1 want=$2 out rc
	shift 2
	out=$(ctl edit-config "$@" --force </dev/null 2>&1) && rc=0 || rc=$?
	[ "$rc" != 0 ] || fail "batonctl edit-config $* was accepted: $out"
	grep -qF -- "$want" <<<"$out" || fail "batonctl edit-config $*: the refusal does not name $what: $out"
	log "edit-config $*: refused ($rc): $out"
}
refused restore_command 'postgresql.parameters.restore_command: refused' --pg "restore_command=cp /x %p"
refused shared_preload_libraries 'postgresql.parameters.shared_preload_libraries: refused' --pg shared_preload_libraries=evil
refused "the loop_wait bound" 'loop_wait: 0.001 out of range [0.1, 3600]' --set loop_wait=0.001
refused "the retry_timeout bound" 'retry_timeout: 0.001 out of range [0.5, 3600]' --set retry_timeout=0.001
refused "the ttl bound" 'ttl: 1e+308 out of range [2, 86400]' --set ttl=1e308
refused "archive_command (node1 does not allow it)" 'postgresql.parameters.archive_command: refused' --pg "archive_command=/bin/false"
refused plperl.on_init "postgresql.parameters.plperl.on_init: refused: it is an extension's custom parameter" \
	--pg "plperl.on_init=system('touch /tmp/pwned-27')"
refused "auto_explain.log_min_duration (node1 does not allow it)" \
	'postgresql.parameters.auto_explain.log_min_duration: refused' --pg "auto_explain.log_min_duration=1s"
assert_eq "$before" "$(config_json)" "config key unchanged by the refused edits"
pass "edit-config refuses code-running parameters and out-of-bound timings, naming them"

cmd2="pwd >> $MARK.2"
out=$(CTL_NODE=3 ctl edit-config --pg "archive_command=$cmd2" --force </dev/null 2>&1) ||
	fail "edit-config of archive_command from node3's config (which allows it) failed: $out"
node3_has2() { [ "$(run_sql 3 "SHOW archive_command")" = "$cmd2" ]; }
wait_for 10 "node3 applies the new archive_command" node3_has2
assert_eq "" "$(run_sql 1 "SHOW archive_command")" "node1 still ignores archive_command"
assert_eq "" "$(run_sql 2 "SHOW archive_command")" "node2 still ignores archive_command"
pass "what node3 allows stays on node3"

# ---- 3. hostile content under the scope
head -c 1400000 /dev/zero | tr '\0' 'A' >"$T/big.value"
for i in 0 1 2 3 4 5 6; do
	etcdctl_ put "$NAMESPACE/$SCOPE/junk$i" <"$T/big.value" >/dev/null || fail "cannot put junk$i (1.4 MB)"
done
etcdctl_ put "$NAMESPACE/$SCOPE/members/evil" '{not json' >/dev/null || fail "cannot put members/evil"
etcdctl_ put "$NAMESPACE/$SCOPE/members/huge" <"$T/big.value" >/dev/null || fail "cannot put members/huge"
log "put 7 keys of 1.4 MB, members/evil (malformed) and members/huge (1.4 MB) under $NAMESPACE/$SCOPE/"
leader_before=$(leader_name)
primary_ok() { rest_call "$p" GET /primary; [ "$REST_CODE" = 200 ]; }
t_end=$(($(now_ms) + (LOOP_WAIT * 6 + 4) * 1000))
checks=0
while [ "$(now_ms)" -lt "$t_end" ]; do
	primary_ok || fail "/primary on node$p answered $REST_CODE with hostile keys in etcd: $REST_BODY"
	checks=$((checks + 1))
	sleep 0.5
done
assert_eq "$leader_before" "$(leader_name)" "the leader keeps its key"
pass "/primary answered 200 on node$p $checks times over $((LOOP_WAIT * 6 + 4)) s with ~11 MB of hostile keys"
for n in 1 2 3; do
	wait_for 40 "node$n names the unknown keys" eval "grep -q 'key.* that baton does not use, not read: .*junk0' '$(agent_log "$n")'"
	wait_for 10 "node$n names the malformed member" eval "grep -q 'members/evil: skipped' '$(agent_log "$n")'"
	wait_for 10 "node$n names the oversized member" eval "grep -q 'members/huge: a value of 1400000 bytes' '$(agent_log "$n")'"
done
out=$(ctl list 2>&1) || fail "batonctl list failed with hostile keys: $out"
grep -q "node$p" <<<"$out" || fail "batonctl list does not show node$p: $out"
pass "agents name the hostile keys; batonctl list works"

# a failover still works
pm=$(postmaster_pid "$p") || fail "no postmaster for node$p"
children=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
t0=$(now_ms)
kill -KILL $(fence_pid "$p") "${AGENT_PID[$p]}" "$pm" $children 2>/dev/null
agent_wait_exit "$p" 10 || fail "agent of node$p survived SIGKILL"
new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$p" ] || return 1
	NEW=${BASH_REMATCH[1]}
	[ "$(in_recovery "$NEW")" = f ]
}
wait_for $((TTL + 30)) "a new primary despite the hostile keys" new_leader
pass "failover to node$NEW $(($(now_ms) - t0)) ms after the primary was killed"
new_primary_ok() { rest_call "$NEW" GET /primary; [ "$REST_CODE" = 200 ]; }
wait_for $((LOOP_WAIT * 3 + 5)) "/primary 200 on the new primary node$NEW" new_primary_ok

# ---- 4. a deleted member key comes back within a loop
other=1
[ "$other" != "$p" ] || other=2
etcdctl_ del "$NAMESPACE/$SCOPE/members/node$other" >/dev/null || fail "cannot delete members/node$other"
t0=$(now_ms)
back() { [ -n "$(member_json "node$other")" ]; }
wait_for $((LOOP_WAIT * 2 + 3)) "members/node$other written again" back
log "members/node$other came back $(($(now_ms) - t0)) ms after it was deleted"
jq -e --arg n "node$other" '.name == $n' >/dev/null <<<"$(member_json "node$other")" ||
	fail "members/node$other is not a member record: $(member_json "node$other")"
pass "a deleted member key comes back"
