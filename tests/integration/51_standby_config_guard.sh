#!/bin/bash
# 51_standby_config_guard: a standby cluster's mode does not depend on a
# readable config key, and a standby leader drops a remote it no longer
# trusts (PG_TLS=0). Site A = node1 (scope sitea), site B = node2 (scope
# siteb). B is made a standby cluster by its config key only (written into
# etcd before node2 starts; node2's bootstrap.dcs has no standby_cluster, so
# bootstrap.dcs is the wrong fallback), trusting node1 through node2's
# postgresql.standby_cluster_remotes.
#  1. node2 becomes the standby leader streaming from node1 and keeps the
#     last good key in its data directory (baton.dcs.json).
#  2. An invalid key (Patroni's standby_cluster.create_replica_methods) is
#     logged with the settings kept; node2's agent restarted: node2 is the
#     standby leader again, in recovery, streaming from node1, for several
#     loops (never a primary).
#  3. The key deleted while node2's agent is down: after the restart node2
#     stays a standby leader and restores the key (standby_cluster intact).
#  4. pause survives an invalid key across a restart (Postgres is left
#     alone, not started as a primary), until a valid key resumes.
#  5. node1's address taken out of node2's file + SIGHUP: node2 drops
#     primary_conninfo (no stream from node1), still a replica.
#  6. A's key names node1's own address (listed in node1's file, as Postgres
#     TLS would prove any address): refused as a member's address, node1
#     stays the writable primary.
#  6b. The same address spelled LOCALHOST (listed in node1's file): the
#     primary asks the server there who it is and refuses its own member.
#  6c. Its own address while its member key is deleted over and over:
#     refused by the server's baton.cluster, node1 stays the primary.
#  6d. B's standby leader told to follow LOCALHOST at its own port: it asks
#     the server there too, refuses it and streams from nobody.
#  7. A new member (node3) joins B while its key is invalid, then B's
#     leader dies: node3, which never read a valid key, neither takes the
#     leader key nor promotes (B would be a second writable site).
. "$(dirname "$0")/../lib/cluster.sh"
PG_TLS=0
cluster_init standby_config_guard

etcd_start
SCOPE=sitea
node_config 1
SCOPE=siteb
node_config 2
sed -i "s|^postgresql = {|&\n  standby_cluster_remotes = [ \"127.0.0.1:${PG_PORT[1]}\" ];|" "$T/node2.conf"
grep -q "standby_cluster_remotes" "$T/node2.conf" || fail "cannot add standby_cluster_remotes to node2.conf"
grep -q "standby_cluster = " "$T/node2.conf" && fail "node2.conf must not name standby_cluster in bootstrap.dcs"

leader_of() { etcdctl_ get --print-value-only "$NAMESPACE/$1/leader" 2>/dev/null | head -n1; }
sender_port() { run_sql "$1" "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'"; }
streams_from() { [ "$(sender_port "$1")" = "${PG_PORT[$2]}" ]; }
b_standby_leader() { [ "$(leader_of siteb)" = node2 ] && [ "$(in_recovery 2)" = t ] && streams_from 2 1; }
# log_since N MARK: nodeN's agent log from its start number MARK on.
log_since() { awk -v m="----- start $2 of node$1 at" 'index($0, m) == 1 { on = 1 } on' "$(agent_log "$1")"; }
# hold_standby N_SECONDS WHAT: node2 stays B's standby leader, never writable.
hold_standby() {
	for i in $(seq 1 "$1"); do
		assert_eq t "$(in_recovery 2)" "node2 in recovery ${i} s after $2"
		assert_eq node2 "$(leader_of siteb)" "B's leader ${i} s after $2"
		sleep 1
	done
}
b_config='{"ttl":'$TTL',"loop_wait":'$LOOP_WAIT',"retry_timeout":'$RETRY_TIMEOUT',"maximum_lag_on_failover":'$MAX_LAG',"standby_cluster":{"host":"127.0.0.1","port":'${PG_PORT[1]}'}}'
hold=$((4 * LOOP_WAIT + 4))

# ---- 1. B follows A, through its config key only
agent_start 1
wait_for 60 "site A: node1 leads as primary" eval '[ "$(leader_of sitea)" = node1 ] && [ "$(in_recovery 1)" = f ]'
etcdctl_ put "$NAMESPACE/siteb/config" "$b_config" >/dev/null || fail "cannot write B's config key"
agent_start 2
wait_for 90 "site B: node2 is the standby leader, streaming from node1" b_standby_leader
run_sql 1 "CREATE TABLE guard_t (v int); INSERT INTO guard_t VALUES (1)" >/dev/null || fail "cannot write on node1"
wait_for 30 "node2 replays node1's row" eval '[ "$(run_sql 2 "SELECT count(*) FROM guard_t")" = 1 ]'
rec="$(data_dir 2)/baton.dcs.json"
wait_for 20 "node2 keeps the last good key in $rec" test -s "$rec"
assert_eq "node2 siteb 127.0.0.1" "$(jq -r '.name + " " + .scope + " " + (.config | fromjson | .standby_cluster.host)' "$rec")" \
	"the record's member, scope and standby_cluster.host"
assert_eq 600 "$(stat -c %a "$rec")" "the record's mode"
pass "B is a standby cluster of A by its config key; node2 keeps the last good key in its data directory"

# ---- 2. an invalid key, then a restart of node2's agent
SCOPE=siteb config_update '.standby_cluster.create_replica_methods = ["basebackup"]'
wait_for 20 "node2 logs the invalid key and what it keeps" \
	grep -q "the config key $NAMESPACE/siteb/config is invalid (standby_cluster.create_replica_methods: not supported by baton.*); keeping the last good settings from revision [0-9]*: standby cluster following 127.0.0.1:${PG_PORT[1]}" "$(agent_log 2)"
agent_stop 2
agent_start 2
mark=${AGENT_LOG_N[2]}
wait_for 90 "node2 is B's standby leader again after the restart" b_standby_leader
hold_standby "$hold" "the restart with an invalid key"
streams_from 2 1 || fail "node2 no longer streams from node1"
assert_eq 200 "$(rest_code 2 /standby-leader)" "/standby-leader on node2"
# batonctl parses node2's bootstrap.dcs (no standby_cluster) while the key
# is invalid: list must show what the leader follows, and say why.
SCOPE=siteb CTL_NODE=2 ctl list >"$T/list-invalid.out" 2>&1 || fail "batonctl list failed: $(cat "$T/list-invalid.out")"
grep -q "^Config key: invalid" "$T/list-invalid.out" || fail "list does not say the config key is invalid: $(cat "$T/list-invalid.out")"
grep -q "^Standby cluster: follows 127.0.0.1:${PG_PORT[1]}" "$T/list-invalid.out" ||
	fail "list does not show what node2 follows: $(cat "$T/list-invalid.out")"
assert_eq 503 "$(rest_code 2 /primary)" "/primary on node2"
log_since 2 "$mark" | grep -q "settings from this member's last good config key (revision [0-9]*, $rec) until etcd is read: standby cluster following 127.0.0.1:${PG_PORT[1]}" ||
	fail "node2 did not say it starts from its last good key: $(log_since 2 "$mark" | head -n 20)"
log_since 2 "$mark" | grep -q "starting Postgres as primary\|we hold the leader key: promoting" &&
	fail "node2 started as (or promoted to) a primary: $(log_since 2 "$mark" | grep -m3 "primary\|promot")"
SCOPE=siteb config_update 'del(.standby_cluster.create_replica_methods)'
wait_for 20 "node2 sees the valid key again" grep -q "the config key $NAMESPACE/siteb/config is valid again" "$(agent_log 2)"
pass "an invalid config key and an agent restart leave node2 a standby leader (${hold} s sampled)"

# ---- 3. the key deleted while node2's agent is down
agent_stop 2
etcdctl_ del "$NAMESPACE/siteb/config" >/dev/null || fail "cannot delete B's config key"
assert_eq "" "$(SCOPE=siteb config_json)" "B's config key after the delete"
agent_start 2
mark=${AGENT_LOG_N[2]}
wait_for 90 "node2 is B's standby leader again after the restart" b_standby_leader
wait_for 20 "node2 restores B's config key" eval '[ "$(SCOPE=siteb config_json | jq -r .standby_cluster.port)" = "${PG_PORT[1]}" ]'
log_since 2 "$mark" | grep -q "the config key $NAMESPACE/siteb/config was missing: restored it from the last good settings (revision [0-9]*): standby cluster following 127.0.0.1:${PG_PORT[1]}" ||
	fail "node2 did not log the restore: $(log_since 2 "$mark" | grep -m3 config)"
hold_standby "$hold" "the restart with a deleted key"
pass "a deleted config key is restored from the last good one; node2 stayed a standby leader"

# ---- 4. pause survives an invalid key across a restart
SCOPE=siteb config_update '.pause = true'
wait_for 20 "node2 is paused" eval '[ "$(rest_call 2 GET /patroni >/dev/null; jq -r .pause <<<"$REST_BODY")" = true ]'
wait_for 20 "node2 saved the paused key" eval '[ "$(jq -r ".config | fromjson | .pause" "$rec")" = true ]'
SCOPE=siteb config_update '.ttl = "soon"'
wait_for 20 "node2 logs the invalid key, paused kept" \
	grep -q "is invalid (ttl: .*); keeping the last good settings from revision [0-9]*: standby cluster following 127.0.0.1:${PG_PORT[1]}, paused" "$(agent_log 2)"
agent_stop 2
agent_start 2
mark=${AGENT_LOG_N[2]}
wait_for 60 "node2 answers /patroni after the restart" eval 'rest_call 2 GET /patroni >/dev/null; [ "$REST_CODE" = 200 ] || [ "$REST_CODE" = 503 ]'
for i in $(seq 1 "$hold"); do
	rest_call 2 GET /patroni >/dev/null
	assert_eq true "$(jq -r .pause <<<"$REST_BODY")" "/patroni pause on node2 ${i} s after the restart"
	[ "$(in_recovery 2 2>/dev/null)" != f ] || fail "node2 is a primary ${i} s after the restart under pause"
	sleep 1
done
log_since 2 "$mark" | grep -q "maintenance mode (paused)" ||
	fail "node2 does not act paused: $(log_since 2 "$mark" | tail -n 5)"
SCOPE=siteb config_update '.ttl = '"$TTL"' | .pause = false'
wait_for 90 "resumed: node2 is the standby leader again" b_standby_leader
pass "pause survived an invalid key and a restart; resuming made node2 the standby leader again"

# ---- 5. node1 taken out of node2's file: the stream from it is dropped
sed -i '/standby_cluster_remotes/d' "$T/node2.conf"
agent_signal 2 HUP
wait_for 20 "node2 reloads its file" grep -q "SIGHUP: changed: postgresql.standby_cluster_remotes" "$(agent_log 2)"
wait_for 20 "node2 drops the untrusted remote" \
	grep -q "standby leader: this node no longer trusts 127.0.0.1:${PG_PORT[1]}, which it streams from: dropping primary_conninfo" "$(agent_log 2)"
wait_for 20 "node2's primary_conninfo is empty" eval '[ -z "$(run_sql 2 "SHOW primary_conninfo")" ]'
wait_for 20 "node2 no longer streams from node1" eval '[ -z "$(run_sql 2 "SELECT pid FROM pg_stat_wal_receiver")" ]'
assert_eq t "$(in_recovery 2)" "node2 after dropping the remote"
assert_eq node2 "$(leader_of siteb)" "B's leader after dropping the remote"
pass "a remote taken out of the node file is dropped on SIGHUP"

# ---- 6. A's key names node1's own address: refused, node1 stays the primary
sed -i "s|^postgresql = {|&\n  standby_cluster_remotes = [ \"127.0.0.1:${PG_PORT[1]}\" ];|" "$T/node1.conf"
agent_signal 1 HUP
wait_for 20 "node1 reloads its file" grep -q "SIGHUP: changed: postgresql.standby_cluster_remotes" "$(agent_log 1)"
SCOPE=sitea config_update '.standby_cluster = {"host": "127.0.0.1", "port": '"${PG_PORT[1]}"'}'
wait_for 20 "node1 refuses its own address as the remote" \
	grep -q "standby_cluster names 127.0.0.1:${PG_PORT[1]}, the Postgres address of node1, a member of this cluster (members/node1): refusing it" "$(agent_log 1)"
for i in $(seq 1 "$hold"); do
	assert_eq f "$(in_recovery 1)" "node1 is still a primary ${i} s after the config change"
	sleep 1
done
run_sql 1 "INSERT INTO guard_t VALUES (2)" >/dev/null || fail "node1 no longer takes writes"
assert_eq node1 "$(leader_of sitea)" "A's leader"
pass "a member's own address as standby_cluster is refused: node1 stays the primary"

# ---- 6b. the same address spelled otherwise (LOCALHOST), listed in node1's
# file too: the text matches no member, so the primary asks the server
# there who it is before demoting, and refuses its own member.
sed -i "s|^  standby_cluster_remotes = \[ \"127.0.0.1:${PG_PORT[1]}\" \];|  standby_cluster_remotes = [ \"127.0.0.1:${PG_PORT[1]}\", \"localhost:${PG_PORT[1]}\" ];|" "$T/node1.conf"
grep -q "\"localhost:${PG_PORT[1]}\"" "$T/node1.conf" || fail "cannot list localhost in node1.conf"
agent_signal 1 HUP
SCOPE=sitea config_update '.standby_cluster = {"host": "LOCALHOST", "port": '"${PG_PORT[1]}"'}'
wait_for 20 "node1 asks LOCALHOST who it is and refuses it" \
	grep -q "standby_cluster names LOCALHOST:${PG_PORT[1]}, and the server there says it is node1, a member of this cluster ($NAMESPACE/sitea): refusing it" "$(agent_log 1)"
for i in $(seq 1 "$hold"); do
	assert_eq f "$(in_recovery 1)" "node1 is still a primary ${i} s after LOCALHOST was named"
	sleep 1
done
SCOPE=sitea config_update 'del(.standby_cluster)'
pass "a member's address in another spelling is refused once the server there names itself"

# ---- 6c. node1's own address again, while someone who can write etcd
# deletes node1's member key over and over (attacker review: the address
# then matched no member, and the server's name none either): the server
# there answers with this cluster's baton.cluster, so node1 refuses it all
# the same and stays the primary.
MKEY=$NAMESPACE/sitea/members/node1
(
	end=$(($(date +%s) + hold + 3))
	while [ "$(date +%s)" -lt "$end" ]; do
		etcdctl_ del "$MKEY" >/dev/null 2>&1
		sleep 0.05
	done
) &
deleter=$!
BG_PIDS+=("$deleter")
SCOPE=sitea config_update '.standby_cluster = {"host": "127.0.0.1", "port": '"${PG_PORT[1]}"'}'
wait_for "$hold" "node1 asks the server at its own address (no member key names it) and refuses it" \
	grep -q "standby_cluster names 127.0.0.1:${PG_PORT[1]}, and the server there says it is node1, a member of this cluster ($NAMESPACE/sitea): refusing it" "$(agent_log 1)"
for i in $(seq 1 "$hold"); do
	assert_eq f "$(in_recovery 1)" "node1 is still a primary ${i} s into the deletions"
	sleep 1
done
wait "$deleter" 2>/dev/null
SCOPE=sitea config_update 'del(.standby_cluster)'
run_sql 1 "INSERT INTO guard_t VALUES (3)" >/dev/null || fail "node1 no longer takes writes"
wait_for 20 "node1 publishes its member key again" eval '[ -n "$(SCOPE=sitea member_json node1)" ]'
pass "its own address with its member key deleted is refused too: the server says which cluster it is"

# ---- 6d. B's standby leader told to follow LOCALHOST at its own port
# (listed in node2's file): it asks the server there too (attacker review:
# only a primary asked, so a standby leader streamed from its own member and
# every check stayed green), and streams from nobody.
b_config=$(etcdctl_ get --print-value-only "$NAMESPACE/siteb/config" | head -n1)
sed -i "s|^postgresql = {|&\n  standby_cluster_remotes = [ \"localhost:${PG_PORT[2]}\" ];|" "$T/node2.conf"
agent_signal 2 HUP
wait_for 20 "node2 reloads its file" eval '[ "$(grep -c "SIGHUP: changed: postgresql.standby_cluster_remotes" "$(agent_log 2)")" -ge 2 ]'
SCOPE=siteb config_update '.standby_cluster = {"host": "LOCALHOST", "port": '"${PG_PORT[2]}"'}'
wait_for 20 "node2 asks the server at LOCALHOST:${PG_PORT[2]} who it is and refuses it" \
	grep -q "standby_cluster names LOCALHOST:${PG_PORT[2]}, and the server there says it is node2, a member of this cluster ($NAMESPACE/siteb): refusing it; not streaming from it" "$(agent_log 2)"
for i in $(seq 1 "$hold"); do
	ci=$(run_sql 2 "SHOW primary_conninfo")
	grep -q "port=${PG_PORT[2]}" <<<"$ci" && fail "node2 streams from its own address ${i} s after it was named: $ci"
	assert_eq t "$(in_recovery 2)" "node2 is still a replica ${i} s after its own address was named"
	sleep 1
done
sed -i '/standby_cluster_remotes/d' "$T/node2.conf"
agent_signal 2 HUP
etcdctl_ put "$NAMESPACE/siteb/config" "$b_config" >/dev/null || fail "cannot restore B's config key"
pass "a standby leader refuses to follow its own address in another spelling"

# ---- 7. a member that never read a valid key takes no free leader key:
# node3 joins B while its key is invalid (no last good copy: bootstrap.dcs,
# not a standby cluster, is all it knows), then B's leader dies. Taking the
# key and promoting would make B a second writable site.
SCOPE=siteb config_update '.standby_cluster.create_replica_methods = ["basebackup"]'
SCOPE=siteb node_config 3
agent_start 3
wait_for 120 "node3 joins B as a replica of node2" eval '[ "$(in_recovery 3 2>/dev/null)" = t ]'
wait_for 20 "node3 says it has no last good copy" \
	grep -q "the config key $NAMESPACE/siteb/config is invalid (.*) and this node has no last good copy of it" "$(agent_log 3)"
agent_kill 2
log "killed node2's agent (its fence stops its Postgres and revokes its lease)"
wait_for $((TTL + 5)) "B's leader key is gone" eval '[ -z "$(leader_of siteb)" ]'
for i in $(seq 1 $((TTL + 4))); do
	[ "$(in_recovery 3)" = t ] || fail "node3 became writable ${i} s after B's leader died (a second writable site)"
	[ "$(leader_of siteb)" != node3 ] || fail "node3 took B's leader key ${i} s after B's leader died"
	sleep 1
done
grep -q "no leader; not a candidate: the config key is invalid and this member never read a valid one" "$(agent_log 3)" ||
	fail "node3 does not say why it stays out: $(tail -n 5 "$(agent_log 3)")"
assert_eq f "$(in_recovery 1)" "node1 (site A) is the only writable primary"
pass "a member that never read a valid config key does not take the leader key or promote"
