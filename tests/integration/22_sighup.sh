#!/bin/bash
# 22_sighup: SIGHUP re-reads the agent's configuration file. A changed
# Postgres parameter reaches Postgres; a changed tag reaches the member
# key; a change that needs a restart (the REST API address) is reported and
# not applied; a file that no longer loads changes nothing, the agent runs on.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init sighup

cluster_start 2
wait_healthy 90
p=$PRIMARY
r=$((3 - p))
conf=$T/node$p.conf
log_p=$(agent_log "$p")

sed -i 's/^  parameters = { shared_buffers = "32MB"; };/  parameters = { shared_buffers = "32MB"; work_mem = "7MB"; };/' "$conf"
sed -i 's/^log = { level = "info"; };/log = { level = "info"; };\ntags = { nosync = true; failover_priority = 3; };/' "$conf"
agent_signal "$p" HUP
wait_for 20 "work_mem = 7MB on node$p" eval '[ "$(run_sql "$p" "SHOW work_mem")" = 7MB ]'
member() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/members/node$1" 2>/dev/null; }
wait_for 20 "the member key of node$p carrying the new tags" \
	eval '[ "$(member "$p" | jq -c .tags)" = "{\"nofailover\":false,\"nosync\":true,\"failover_priority\":3}" ]'
grep -q "SIGHUP: reloaded .*Postgres parameters/pg_hba changed" "$log_p" || fail "no reload line in the agent log"
pass "the reload is logged: $(grep -o 'SIGHUP: reloaded.*changed' "$log_p" | tail -1)"

# A change that needs a restart: reported, and the API keeps its port.
old_api=${API_PORT[$p]}
pick_port NEWPORT
sed -i "s/127.0.0.1:$old_api/127.0.0.1:$NEWPORT/g" "$conf"
agent_signal "$p" HUP
wait_for 20 "the restart warning" grep -q "only applied by a restart of the agent, keeping the running values: restapi" "$log_p"
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
