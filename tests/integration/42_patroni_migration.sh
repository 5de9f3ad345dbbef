#!/bin/bash
# 42_patroni_migration: a running Patroni 3.0.2 cluster moves to baton in one
# step, with a writer running (issue 13; README "Migrating from Patroni").
# needs packages: patroni python3-psycopg2 libyaml-dev
#
# A 3-node Patroni cluster (tests/bench/patroni.sh) in synchronous mode, one
# Patroni switchover (so the leader is not the first node and the
# history key holds Patroni's list-of-lists), a writer recording every
# acknowledged write. Then the runbook, step by step:
#   1. patronictl pause (Postgres keeps running without Patroni);
#   2. batonctl import-patroni of each node's YAML: exit 0, namespace and
#      scope carried, nothing needed left behind, `baton -t` accepts it;
#   3. the Patroni daemons stop (paused: Postgres and the leader key stay);
#   4. batonctl resume (baton reads Patroni's config key, pause included);
#   5. clean shutdown of the primary's Postgres, then the replicas';
#   6. baton on the former primary first, then on the replicas, with the
#      same data dirs, ports and etcd namespace.
# Checks: baton's leader is the former Patroni leader, both replicas stream
# from it, the system identifier (initialize key and each data dir) is the
# one Patroni bootstrapped, no acknowledged write is lost, the members' keys
# are baton's, batonctl list/history read the adopted keys; prints the write
# gap (last ack before the primary stopped -> first ack on baton's primary).
# Skips (77) when Debian's patroni or python3-psycopg2 is missing.
. "$(dirname "$0")/../lib/cluster.sh"
. "$(dirname "$0")/../bench/patroni.sh"

# Patroni serves its REST API over plain http and Postgres without TLS here:
# the harness's helpers follow the same (the imported baton config too).
REST_TLS=0
PG_TLS=0
cluster_init patroni_migration
NAMESPACE=$PATRONI_NAMESPACE

# 0. import-patroni alone (no Patroni needed): a file with keys baton has
# no equivalent for, each listed with its line; the default namespace;
# invalid YAML named by line with exit 2; a result the agent refuses is
# not written.
imp() { "$BATON_BUILD/batonctl" import-patroni "$@"; }
cat >"$T/rich.yml" <<YML
scope: main
name: pg1
etcd3:
  urls: https://127.0.0.1:2379,https://127.0.0.2:2379
consul:
  host: 127.0.0.1:8500
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
  authentication: {username: admin, password: 'pw"1'}
bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    postgresql:
      use_pg_rewind: yes
      parameters: {max_connections: 100, pg_stat_statements.track: all}
    slots:
      keep: {type: physical}
      feed: {type: logical, database: app, plugin: pgoutput}
  initdb:
  - encoding: UTF8
  - data-checksums
  - auth-host: md5
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: $T/rich-data
  bin_dir: $PG_BIN
  use_pg_rewind: false
  authentication:
    superuser: {username: postgres, password: su}
    replication: {username: rep, password: r}
  parameters: {unix_socket_directories: '$T,/tmp', port: 5432, work_mem: 8MB}
  callbacks: {on_restart: /bin/true}
  pg_ctl_timeout: 60
tags: {nofailover: false, noloadbalance: true}
log: {level: WARNING}
YML
imp "$T/rich.yml" >"$T/rich.conf" 2>"$T/rich.err"
assert_eq 0 $? "import-patroni with keys it cannot carry exits 0"
for want in "consul (rich.yml:5): baton keeps its state in etcd v3 only" \
	"bootstrap.dcs.postgresql.parameters.pg_stat_statements.track (rich.yml:18)" \
	'bootstrap.dcs.slots.feed (rich.yml:21): baton'"'"'s node file holds physical slots only; the cluster'"'"'s config key takes this one: once baton runs, set it with `batonctl edit-config` or PATCH /config with {"slots":{"feed":{"type":"logical","database":"app","plugin":"pgoutput"}}}' \
	"bootstrap.initdb\[2\] (rich.yml:25): " \
	"postgresql.parameters.port (rich.yml:35): baton sets it itself" \
	"postgresql.callbacks.on_restart (rich.yml:36): baton has no on_restart callback" \
	"rich.yml: 30 keys carried, 6 not carried"; do
	sed "s#$T/##g" "$T/rich.err" | grep -q -- "$want" || fail "import-patroni did not say: $want ($(cat "$T/rich.err"))"
done
pass "import-patroni lists the 6 keys it cannot carry, with line and reason"
for want in 'namespace = "/service";' 'hosts = [ "127.0.0.1:2379", "127.0.0.2:2379" ];' 'protocol = "https";' \
	'password = "pw\"1";' 'use_pg_rewind = false;' 'slots = [ "keep" ];' 'data_checksums = true;' \
	"socket_dir = \"$T\";" 'work_mem = "8MB";' 'level = "warning";' 'nofailover = false;' \
	'pg_ctl_timeout = 60L;' 'noloadbalance = true;'; do
	grep -qF -- "$want" "$T/rich.conf" || fail "the baton config lacks $want: $(cat "$T/rich.conf")"
done
pass "import-patroni carried the rest (stdout)"

# A node file using every Patroni key baton has taken on since: each is
# carried with its value, the rest named with the way to set it, and the
# written file loads (baton -t, as the agent's user).
cat >"$T/all.yml" <<YML
scope: main
name: pg2
etcd3: {hosts: ['127.0.0.1:2379']}
restapi:
  listen: 127.0.0.1:8009
  connect_address: 127.0.0.1:8009
  authentication: {username: admin, password: pw}
  allowlist: [127.0.0.1, 10.0.0.0/24, db1.example.com]
  allowlist_include_members: true
bootstrap:
  dcs:
    synchronous_mode: quorum
    synchronous_node_count: 2
    maximum_lag_on_syncnode: 1048576
    check_timeline: true
    postgresql:
      use_slots: false
    ignore_slots:
    - {name: debezium}
    - {type: logical, plugin: wal2json}
  initdb:
  - {encoding: UTF8}
  - {wal-segsize: 64}
  - no-instructions
  - {auth-local: peer}
  post_init: /bin/true
postgresql:
  listen: 127.0.0.1:5433
  connect_address: 127.0.0.1:5433
  data_dir: $T/all-data
  bin_dir: $PG_BIN
  pg_ctl_timeout: 90
  remove_data_directory_on_diverged_timelines: true
  authentication:
    superuser: {username: postgres, password: su}
    replication: {username: rep, password: r}
    rewind: {username: rewinder, password: rw}
  pg_ident: ['ops root postgres']
  create_replica_methods: [pgbackrest, wal_e, basebackup]
  pgbackrest:
    command: /bin/true --stanza=main
    keep_data: true
    no_params: true
    no_master: true
    stanza: main
  basebackup: [verbose, {max-rate: 100M}, {checkpoint: spread}]
tags:
  clonefrom: true
  noloadbalance: true
  nostream: false
  replicatefrom: pg1
  zone: eu-1
  rack: 7
  ssd: yes
  label: 'on'
YML
imp "$T/all.yml" -o "$T/all.conf" 2>"$T/all.err"
assert_eq 0 $? "import-patroni of a file with the newer keys exits 0"
for want in "restapi.allowlist[2] (all.yml:8): \"db1.example.com\" is not an IP address or network: baton resolves no host names" \
	"restapi.allowlist_include_members (all.yml:9): baton refuses it" \
	'bootstrap.dcs.ignore_slots (all.yml:18): baton'"'"'s node file has no ignore_slots, only the cluster'"'"'s config key: once baton runs, set it with `batonctl edit-config` or PATCH /config with {"ignore_slots":[{"name":"debezium"},{"type":"logical","plugin":"wal2json"}]}' \
	"bootstrap.initdb[3] (all.yml:25): " \
	"postgresql.create_replica_methods[1] (all.yml:39): baton knows the replica creation methods pgbackrest and basebackup only" \
	"postgresql.pgbackrest.stanza (all.yml:45): baton's pgbackrest method passes no other options" \
	"postgresql.basebackup[0] (all.yml:46): baton runs pg_basebackup with its own options"; do
	grep -qF -- "$want" <(sed "s#$T/##g" "$T/all.err") ||
		fail "import-patroni did not say: $want ($(cat "$T/all.err"))"
done
grep -q "all.yml: 47 keys carried, 7 not carried; wrote $T/all.conf" "$T/all.err" ||
	fail "import-patroni's summary: $(cat "$T/all.err")"
[ "$(grep -c 'not carried: ' "$T/all.err")" = 7 ] || fail "import-patroni did not list 7 keys: $(cat "$T/all.err")"
for want in 'allowlist = [ "127.0.0.1", "10.0.0.0/24" ];' 'synchronous_mode = true;' 'synchronous_quorum = true;' \
	'maximum_lag_on_syncnode = 1048576L;' 'check_timeline = true;' 'use_slots = false;' 'encoding = "UTF8";' \
	'options = [ "wal-segsize=64", "no-instructions" ];' 'data_checksums = false;' 'post_bootstrap = "/bin/true";' \
	'pg_ctl_timeout = 90L;' 'remove_data_directory_on_diverged_timelines = true;' 'username = "rewinder";' \
	'password = "rw";' 'pg_ident = [ "ops root postgres" ];' \
	'create_replica_methods = [ "pgbackrest", "basebackup" ];' 'command = "/bin/true --stanza=main";' \
	'keep_data = true;' 'no_params = true;' 'no_leader = true;' 'max-rate = "100M";' 'checkpoint = "spread";' \
	'clonefrom = true;' 'noloadbalance = true;' 'nostream = false;' 'replicatefrom = "pg1";' 'zone = "eu-1";' \
	'rack = 7L;' 'ssd = true;' 'label = "on";'; do
	grep -qF -- "$want" "$T/all.conf" || fail "the baton config lacks $want: $(cat "$T/all.conf")"
done
chown "$BATON_USER:" "$T/all.conf"
out=$(as_baton "$BATON_BUILD/baton" -t -c "$T/all.conf" 2>&1) || fail "baton -t refuses all.conf: $out"
pass "import-patroni carries the newer keys (allowlist, quorum, initdb options, replica methods, tags)"
printf 'scope: x\nname: [a\n' >"$T/bad.yml"
out=$(imp "$T/bad.yml" -o "$T/bad.conf" 2>&1)
assert_eq 2 $? "invalid YAML exits 2"
grep -q "bad.yml:3:1: invalid YAML" <<<"$out" || fail "no file:line for invalid YAML: $out"
printf 'scope: x\nname: n1\npostgresql: {data_dir: relative/dir}\n' >"$T/refused.yml"
out=$(imp "$T/refused.yml" -o "$T/refused.conf" 2>&1)
assert_eq 1 $? "a config the agent would refuse exits 1"
[ ! -e "$T/refused.conf" ] || fail "a refused config was written"
grep -q "would not load, nothing written" <<<"$out" || fail "no reason for the refusal: $out"
[ -z "$(find "$T" -name '.baton-import-*')" ] || fail "import-patroni left a temporary file behind"
pass "import-patroni refuses invalid YAML and configs the agent would refuse"
# archive_command under bootstrap.dcs (Patroni's usual place): moved to the
# node's own postgresql.parameters, said on stderr; work_mem stays shared.
cat >"$T/dcsarch.yml" <<'EOF_YML'
scope: main
name: node1
etcd3: {hosts: 127.0.0.1:2379}
restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}
bootstrap:
  dcs:
    postgresql:
      parameters: {archive_command: "/bin/true %p", archive_mode: "on", work_mem: 8MB}
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /var/lib/postgresql/15/main
  authentication: {superuser: {username: postgres, password: pw}, replication: {username: rep, password: rpw}}
EOF_YML
out=$(imp "$T/dcsarch.yml" -o "$T/dcsarch.conf" 2>&1)
assert_eq 0 $? "import-patroni with archive_command under bootstrap.dcs exits 0"
grep -q "moved: bootstrap.dcs.postgresql.parameters.archive_command (.*dcsarch.yml:8) to postgresql.parameters" <<<"$out" ||
	fail "import-patroni did not say it moved archive_command: $out"
chown "$BATON_USER:" "$T/dcsarch.conf"
out=$(as_baton "$BATON_BUILD/baton" -t -c "$T/dcsarch.conf" 2>&1) || fail "baton -t refuses dcsarch.conf: $out"
grep -A3 '^  parameters' "$T/dcsarch.conf" | grep -q 'archive_command = "/bin/true %p"' ||
	fail "archive_command is not in the node's postgresql.parameters: $(cat "$T/dcsarch.conf")"
pass "import-patroni moves archive_command from bootstrap.dcs to the node's own parameters"
# An alias bomb: 900 bytes naming 10^10 nodes once expanded.
{
	echo 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]'
	for i in 1 2 3 4 5 6 7 8 9; do
		printf 'a%s: &a%s {' "$i" "$i"
		for j in 0 1 2 3 4 5 6 7 8 9; do
			[ "$j" = 0 ] || printf ', '
			printf 'k%s: *a%s' "$j" "$((i - 1))"
		done
		echo '}'
	done
	echo 'scope: *a9'
} >"$T/bomb.yml"
t0=$(now_ms)
out=$(timeout 20 "$BATON_BUILD/batonctl" import-patroni "$T/bomb.yml" -o "$T/bomb.conf" 2>&1)
assert_eq 2 $? "an alias bomb exits 2"
grep -q "more than 20000 keys and values once its aliases are expanded" <<<"$out" ||
	fail "no reason for refusing the alias bomb: $(head -c 300 <<<"$out")"
[ "$(wc -l <<<"$out")" = 1 ] || fail "the alias bomb printed $(wc -l <<<"$out") lines, not one"
[ ! -e "$T/bomb.conf" ] || fail "the alias bomb's config was written"
pass "import-patroni refuses an alias bomb at once ($(($(now_ms) - t0)) ms, one line)"

why=$(patroni_check) || skip "$why (needs packages: patroni python3-psycopg2)"

etcd_start
for n in 1 2 3; do
	patroni_config "$n"
	sed -i 's/^    maximum_lag_on_failover:.*/&\n    synchronous_mode: true/' "$(patroni_conf "$n")"
done
patroni_start 1
wait_for 90 "Patroni's node1 leading" eval '[ "$(leader_name)" = node1 ] && [ "$(in_recovery 1)" = f ]'
patroni_start 2
patroni_start 3
wait_healthy 120
sync_key() { etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/sync" 2>/dev/null | head -n1; }
wait_for 60 "Patroni's sync key naming a standby" eval '[ "$(jq -r ".sync_standby // empty" <<<"$(sync_key)")" != "" ]'
# In synchronous mode Patroni switches over to the synchronous standby only.
cand=$(jq -r .sync_standby <<<"$(sync_key)")
[[ "$cand" =~ ^node([23])$ ]] || fail "Patroni's sync standby is '$cand'"
cand=${BASH_REMATCH[1]}
patroni_switchover 1 "$cand" || fail "patronictl switchover to node$cand failed (see $T/patronictl.log)"
wait_for 60 "node$cand leading after Patroni's switchover" eval 'cluster_healthy && [ "$PRIMARY" = $cand ]'
wait_for 60 "Patroni's sync key under node$cand" eval '[ "$(jq -r .leader <<<"$(sync_key)")" = node$cand ]'
old=$PRIMARY
sysid=$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/initialize" | head -n1)
[[ "$sysid" =~ ^[0-9]+$ ]] || fail "Patroni's initialize key is not a system identifier: '$sysid'"
history_before=$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/history" | head -n1)
log "Patroni: leader node$old, sync $(sync_key), sysid $sysid, history $history_before"

writer_start 20
wait_for 30 "the writer's first acks" eval '[ "$(acks_count)" -ge 40 ]'

# 1. maintenance mode: Patroni lets go of Postgres
as_baton env HOME="$T" timeout 60 "$PATRONICTL_BIN" -c "$(patroni_conf 1)" pause --wait >>"$T/patronictl.log" 2>&1 ||
	fail "patronictl pause failed"
pass "patronictl pause"

# 2. the baton configs, from Patroni's own files
for n in 1 2 3; do
	"$BATON_BUILD/batonctl" import-patroni "$(patroni_conf "$n")" -o "$T/node$n.conf" 2>"$T/import-node$n.err"
	assert_eq 0 $? "batonctl import-patroni of node$n's YAML"
	grep -q "import-patroni: not carried: " "$T/import-node$n.err" &&
		fail "node$n: keys not carried: $(cat "$T/import-node$n.err")"
	# Patroni's file has no restapi.authentication: said, not silently kept
	grep -q "sets no restapi.authentication" "$T/import-node$n.err" ||
		fail "node$n: no note on the missing REST credentials: $(cat "$T/import-node$n.err")"
	grep -q ": 2[0-9] keys carried, 0 not carried; wrote $T/node$n.conf" "$T/import-node$n.err" ||
		fail "node$n: no summary line: $(cat "$T/import-node$n.err")"
	chown "$BATON_USER:" "$T/node$n.conf"
	assert_eq 600 "$(stat -c %a "$T/node$n.conf")" "node$n.conf is private (mode)"
	grep -q "^namespace = \"$PATRONI_NAMESPACE\";" "$T/node$n.conf" || fail "node$n.conf: namespace not Patroni's"
	grep -q "^scope = \"$SCOPE\";" "$T/node$n.conf" || fail "node$n.conf: scope not Patroni's"
	out=$(as_baton "$BATON_BUILD/baton" -t -c "$T/node$n.conf" 2>&1) || fail "baton -t refuses node$n.conf: $out"
done
pass "the three configs written and valid"

# 3. the Patroni daemons go; paused, they leave Postgres and the keys alone
for n in 1 2 3; do agent_stop "$n" || fail "Patroni on node$n did not stop"; done
for n in 1 2 3; do postmaster_pid "$n" >/dev/null || fail "node$n's Postgres stopped with Patroni (paused?)"; done
# The leader key lives on until Patroni's lease ends (ttl): if it is still
# there, it names the same leader (paused, no one took over).
l=$(leader_name)
[ -z "$l" ] || [ "$l" = "node$old" ] || fail "the leader key names '$l', not Patroni's leader node$old"
pass "leader key: '${l:-expired}' (Patroni's leader was node$old)"

# 4. baton reads Patroni's config key, and Patroni's pause with it
ctl resume >"$T/resume.out" 2>&1 || fail "batonctl resume on Patroni's config key: $(cat "$T/resume.out")"
[ "$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/config" | jq -r '.pause // false')" = false ] ||
	fail "the config key is still paused"
pass "batonctl resume cleared Patroni's pause"

# 5. clean shutdown: the primary first (its walsenders hand the replicas
# every record before it exits), then the replicas
pg_stop() { as_baton "$PG_BIN/pg_ctl" -D "$(data_dir "$1")" stop -m fast -w -t 60 >>"$T/pg_ctl.log" 2>&1; }
t_stop=$(now_ms)
pg_stop "$old" || fail "pg_ctl stop of node$old failed"
for n in 1 2 3; do
	[ "$n" = "$old" ] || pg_stop "$n" || fail "pg_ctl stop of node$n failed"
done
t_down=$(now_ms)
log "all three Postgres stopped cleanly, $((t_down - t_stop)) ms"

# 6. baton on the former primary, then on the replicas
t_agent=$(now_ms)
agent_start "$old"
wait_for 60 "baton's node$old leading and writable" eval '[ "$(leader_name)" = node$old ] && [ "$(in_recovery $old)" = f ]'
for n in 1 2 3; do [ "$n" = "$old" ] || agent_start "$n"; done
# The gap: Postgres was down everywhere from the primary's shutdown until
# baton started it, so it is last ack before baton's start -> first after.
acked_after() { [ -n "$(first_ack_on "${PG_PORT[$old]}" "$t_agent")" ]; }
wait_for 60 "a write acknowledged by baton's primary" acked_after
t_first=$(first_ack_on "${PG_PORT[$old]}" "$t_agent")
t_last=$(last_ack_on "${PG_PORT[$old]}" "$t_agent")
[ -n "$t_last" ] && [ "$t_last" -le "$t_down" ] || fail "a write was acknowledged while every Postgres was down ($t_last)"
gap=$((t_first - t_last))
log "write gap: $gap ms (last ack $t_last, first ack on baton's node$old $t_first; shutdown began $t_stop, all down $t_down, baton started $t_agent)"
wait_healthy 120
assert_eq "$old" "$PRIMARY" "baton's leader is Patroni's former leader node$old"
streaming=$(run_sql "$old" "SELECT string_agg(application_name, ',' ORDER BY application_name) FROM pg_stat_replication WHERE state = 'streaming'")
want=$(for n in 1 2 3; do [ "$n" = "$old" ] || printf 'node%s\n' "$n"; done | paste -sd,)
assert_eq "$want" "$streaming" "both replicas stream from node$old"

# Adopted, not re-made: the same cluster, the keys now baton's
assert_eq "$sysid" "$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/initialize" | head -n1)" "initialize key unchanged"
for n in 1 2 3; do
	assert_eq "$sysid" "$(run_sql "$n" "SELECT system_identifier FROM pg_control_system()")" "node$n's system identifier"
	wait_for 30 "node$n's member key in baton's shape" eval \
		'[ "$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/members/node$n" | jq -r ".host // empty")" = 127.0.0.1 ]'
done
list=$(ctl list --format json) || fail "batonctl list failed"
assert_eq 3 "$(jq 'length' <<<"$list")" "batonctl list shows three members"
hist=$(ctl history --format json) || fail "batonctl history failed"
assert_eq "no recovery target specified" \
	"$(jq -r '.[0] | if type == "array" then .[2] else .reason end' <<<"$hist")" "batonctl history shows Patroni's switchover"

# Synchronous mode carried over: a synchronous standby under baton.
wait_for 60 "the sync key (baton's shape) naming a standby of node$old" eval \
	'[ "$(jq -r .leader <<<"$(sync_key)")" = node$old ] && [ "$(jq -r ".sync_standby | if type == \"array\" then .[0] else empty end // empty" <<<"$(sync_key)")" != "" ]'
pass "sync key $(sync_key)"

# Every acknowledged write is on the primary.
t_join=$(now_ms)
wait_for 30 "writes acknowledged with the replicas back" eval '[ -n "$(first_ack_on "${PG_PORT[$old]}" "$t_join")" ]'
bg_stop "$WRITER_PID"
awk '$1 == "ack" { print $2 }' "$T/writer.out" | LC_ALL=C sort >"$T/acked"
run_sql "$old" "SELECT id FROM baton_writes ORDER BY id" | LC_ALL=C sort >"$T/present" || fail "cannot read baton_writes"
lost=$(LC_ALL=C comm -23 "$T/acked" "$T/present" | wc -l)
assert_eq 0 "$lost" "acknowledged writes missing (of $(wc -l <"$T/acked"))"
gap_max=$(acks_max_gap "$t_stop" "$(now_ms)")
log "RESULT: write gap $gap ms (stop of the primary -> first ack on baton), largest gap during the migration $gap_max ms"
pass "migration: 0 acknowledged writes lost, write gap $gap ms"
