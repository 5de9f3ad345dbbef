#!/bin/bash
# 22_sighup: SIGHUP re-reads the agent's configuration file; each key's
# outcome comes from the option table's reload column, one key of each here:
# a changed Postgres parameter reaches Postgres (Postgres reload); a changed
# tag reaches the member key (live); the log level changes at once (log
# level); a bootstrap setting is taken but leaves the running cluster's
# config key alone (bootstrap); a changed replication password is set on the
# primary and in both password files, and streaming reconnects with it
# (passwords); callbacks are replaced (callbacks); a change that needs a
# restart (the REST API address) is named in a warning and not applied; a
# file that no longer loads changes nothing, the agent runs on.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init sighup

cluster_start 2
wait_healthy 90
p=$PRIMARY
r=$((3 - p))
conf=$T/node$p.conf
log_p=$(agent_log "$p")

config_key() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/config" 2>/dev/null; }
ttl_before=$(config_key | jq .ttl)
[ -n "$ttl_before" ] && [ "$ttl_before" != null ] || fail "no ttl in the config key: $(config_key)"
! grep -q " DEBUG " "$log_p" || fail "DEBUG lines at log.level = info"
sed -i 's/^  parameters = { shared_buffers = "32MB"; };/  parameters = { shared_buffers = "32MB"; work_mem = "7MB"; };/' "$conf"
sed -i 's/^log = { level = "info"; };/log = { level = "debug"; };\ntags = { nosync = true; failover_priority = 3; };/' "$conf"
sed -i "s/^    ttl = $TTL;/    ttl = $((TTL + 1));/" "$conf"
agent_signal "$p" HUP
wait_for 20 "work_mem = 7MB on node$p" eval '[ "$(run_sql "$p" "SHOW work_mem")" = 7MB ]'
member() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/members/node$1" 2>/dev/null; }
wait_for 20 "the member key of node$p carrying the new tags" \
	eval '[ "$(member "$p" | jq -c .tags)" = "{\"nofailover\":false,\"nosync\":true,\"failover_priority\":3}" ]'
grep -q "SIGHUP: reloaded .*Postgres parameters/pg_hba changed" "$log_p" || fail "no reload line in the agent log"
pass "the reload is logged: $(grep -o 'SIGHUP: reloaded.*changed' "$log_p" | tail -1)"
# Each changed key with its outcome, in the table's order.
assert_eq "SIGHUP: changed: bootstrap.dcs.ttl (bootstrap), postgresql.parameters (Postgres reload), tags.nosync (live), tags.failover_priority (live), log.level (log level)" \
	"$(grep -o 'SIGHUP: changed: .*\[' "$log_p" | tail -1 | sed 's/ \[$//')" "the per-key reload line"
grep -q "SIGHUP: log.level is now debug" "$log_p" || fail "no log level line"
wait_for 20 "DEBUG lines after log.level = debug" grep -q " DEBUG " "$log_p"
assert_eq "$ttl_before" "$(config_key | jq .ttl)" "bootstrap.dcs.ttl leaves the running cluster's config key alone"
! grep -q "only applied by a restart" "$log_p" || fail "a restart warning for keys that reload"

# Passwords: the replication password, changed in both files (primary
# first: it sets the role's password). Both agents rewrite their password
# files; a walsender cut on the primary makes the replica reconnect, which
# works only with the new password on both sides.
conf_r=$T/node$r.conf
log_r=$(agent_log "$r")
for f in "$conf" "$conf_r"; do
	sed -i "s/replication = { username = \"replicator\"; password = \"$REPL_PASSWORD\"; };/replication = { username = \"replicator\"; password = \"new-$REPL_PASSWORD\"; };/" "$f"
	grep -q "password = \"new-$REPL_PASSWORD\"" "$f" || fail "cannot change the replication password in $f"
done
agent_signal "$p" HUP
wait_for 20 "node$p rewriting its password file" grep -q "SIGHUP: password file rewritten" "$log_p"
grep -q "SIGHUP: changed: postgresql.authentication.replication.password (passwords)" "$log_p" ||
	fail "no passwords line on node$p"
agent_signal "$r" HUP
wait_for 20 "node$r rewriting its password file" grep -q "SIGHUP: password file rewritten" "$log_r"
grep -q ":replicator:new-$REPL_PASSWORD\$" "$T/node$r.pgpass" || fail "the new password is not in node$r's password file"
old_sender=$(run_sql "$p" "SELECT pid FROM pg_stat_replication WHERE application_name = 'node$r'")
[ -n "$old_sender" ] || fail "node$r is not streaming from node$p"
run_sql "$p" "SELECT pg_terminate_backend($old_sender)" >/dev/null
streaming_again() {
	local pid
	pid=$(run_sql "$p" "SELECT pid FROM pg_stat_replication WHERE application_name = 'node$r' AND state = 'streaming'")
	[ -n "$pid" ] && [ "$pid" != "$old_sender" ]
}
wait_for 60 "node$r streaming again with the new replication password" streaming_again

# A change that needs a restart: reported, and the API keeps its port.
old_api=${API_PORT[$p]}
pick_port NEWPORT
sed -i "s/127.0.0.1:$old_api/127.0.0.1:$NEWPORT/g" "$conf"
agent_signal "$p" HUP
wait_for 20 "the restart warning" grep -q "only applied by a restart of the agent, keeping the running values: restapi" "$log_p"
assert_eq "SIGHUP: changed but only applied by a restart of the agent, keeping the running values: restapi.listen, restapi.connect_address" \
	"$(grep -o 'SIGHUP: changed but only.*\[' "$log_p" | tail -1 | sed 's/ \[$//')" "the restart warning names each key"
code=$(rest_code "$p" /health) # API_PORT[p] is still the old port
assert_eq 200 "$code" "the REST API still answers on its old port"

# A broken file: an error naming it, nothing changes, the agent lives on.
cp "$conf" "$T/good.conf"
echo 'postgresql = { listen = ; };' >>"$conf"
agent_signal "$p" HUP
wait_for 20 "the load error in the log" grep -q "SIGHUP: .*node$p.conf:[0-9]*: .*keeping the running configuration" "$log_p"
sleep 1
pid_alive "${AGENT_PID[$p]}" || fail "the agent died on a broken file"
assert_eq 7MB "$(run_sql "$p" "SHOW work_mem")" "work_mem unchanged after the broken file"
assert_eq "node$p" "$(leader_name)" "node$p still leads"

# Callbacks come with a reload too; at shutdown the agent lets a running
# on_stop finish (it may be moving a VIP away) instead of killing it.
cp "$T/good.conf" "$conf"
cat >"$T/on_stop.sh" <<'SH'
#!/bin/sh
sleep 1
echo "$1 $2 $3" >"$(dirname "$0")/on_stop.done"
SH
chmod 755 "$T/on_stop.sh"
chown "$BATON_USER:" "$T/on_stop.sh"
sed -i "s|^  pg_hba = \[|  callbacks = { on_stop = \"$T/on_stop.sh\"; };\n  pg_hba = [|" "$conf"
agent_signal "$p" HUP
wait_for 20 "the callbacks reload" grep -q "SIGHUP: reloaded .*callbacks changed" "$log_p"
agent_stop "$p"
[ -f "$T/on_stop.done" ] || fail "on_stop did not finish before the agent exited"
assert_eq "on_stop primary $SCOPE" "$(cat "$T/on_stop.done")" "on_stop ran to its end at shutdown"
