#!/bin/bash
# 41_batonctl_patroni: batonctl with patronictl's habits, on one short
# three-node cluster:
#  1. the cluster name as the first argument (list, edit-config, switchover,
#     flush), a wrong one refused with exit 2;
#  2. list --format yaml parses (python3-yaml) to the members; show-config
#     in YAML equals its JSON; list -e has the Scheduled restart column;
#     list -W --count 2 draws two tables;
#  3. dsn of the leader and of a replica: psql connects there and finds a
#     primary / a replica; query -c on the leader and on a replica, also
#     with the superuser password of the config file when libpq has none
#     (-U, said on stderr);
#  4. edit-config -s loop_wait=2, -p work_mem=8MB and the dotted
#     postgresql.parameters.work_mem=16MB change the config key;
#  5. flush switchover withdraws a scheduled switchover, flush restart a
#     scheduled restart;
#  6. remove: refused while agents run; with a wrong answer nothing
#     changes; after the agents stopped, the right answers (piped on stdin)
#     delete every key of the cluster.
# needs packages: python3-yaml (in tests/lib/packages.sh)
. "$(dirname "$0")/../lib/cluster.sh"
# loop_wait = 2 below must keep the timing rule: 2 + 2 * 2 <= ttl.
TTL=6
cluster_init batonctl_patroni

python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (apt-get install python3-yaml)"

cluster_start 3
wait_healthy 90
p=$PRIMARY
replicas=()
for n in 1 2 3; do [ "$n" = "$p" ] || replicas+=("$n"); done
r=${replicas[0]}

# bc ARGS...: batonctl as baton with node1's config and the test's password
# file (what an operator's ~/.pgpass is); prints stdout and stderr apart.
bc() { as_baton env PGPASSFILE="$PGPASSFILE" "$BATON_BUILD/batonctl" -c "$T/node1.conf" "$@"; }
keys() { etcdctl_ get --prefix --keys-only "$NAMESPACE/$SCOPE/" | grep -v '^$'; }

# ---- 1. the cluster name as the first argument

out=$(bc list "$SCOPE" 2>&1) || fail "batonctl list $SCOPE failed: $out"
grep -q "^Cluster: $SCOPE " <<<"$out" || fail "list $SCOPE: no Cluster line: $out"
grep -q "| node$p .*| Leader " <<<"$out" || fail "list $SCOPE does not mark node$p as the leader: $out"
err=$(bc list other 2>&1 >/dev/null)
assert_eq 2 "$?" "list with another cluster's name exits 2"
grep -q "cluster 'other' is not this configuration's cluster '$SCOPE'" <<<"$err" || fail "list other: reason '$err'"
err=$(bc list "$SCOPE" extra 2>&1 >/dev/null)
assert_eq 2 "$?" "list with two arguments exits 2"

# ---- 2. YAML, -e, -W

yaml=$(bc list "$SCOPE" --format yaml) || fail "list --format yaml failed"
printf '%s\n' "$yaml"
got=$(python3 -c '
import sys, yaml
d = yaml.safe_load(sys.stdin)
assert isinstance(d, list), type(d)
print(" ".join(sorted(m["name"] for m in d)), [m["name"] for m in d if m["leader"] is True][0],
      all(isinstance(m["port"], int) and isinstance(m["tags"], dict) for m in d))
' <<<"$yaml") || fail "list --format yaml does not parse as YAML: $yaml"
assert_eq "node1 node2 node3 node$p True" "$got" "list YAML: three members, the leader, typed values"
same=$(python3 -c '
import json, sys, yaml
print(yaml.safe_load(open(sys.argv[1])) == json.load(open(sys.argv[2])))
' <(bc show-config --format yaml) <(bc show-config --format json)) || fail "show-config YAML/JSON did not load"
assert_eq True "$same" "show-config --format yaml equals its JSON"
hist=$(bc history --format yaml | python3 -c 'import sys, yaml; d = yaml.safe_load(sys.stdin); print(d[0]["reason"], d[0]["leader"])') ||
	fail "history --format yaml does not parse"
assert_eq "bootstrap node$p" "$hist" "history YAML: the bootstrap entry"

out=$(bc list -e) || fail "list -e failed"
head=$(grep -m1 '^| Member' <<<"$out")
assert_eq "Member Host Role State TL Lag in MB Pending restart Scheduled restart Tags" \
	"$(tr -s ' |' ' ' <<<"$head" | sed 's/^ //; s/ $//')" "list -e: the columns"
grep -q 'Scheduled restart' <<<"$(bc list | grep -m1 '^| Member')" && fail "list without -e shows a Scheduled restart column"

t0=$(now_ms)
out=$(as_baton timeout 20 "$BATON_BUILD/batonctl" -c "$T/node1.conf" list -W -w 0.5 --count 2) ||
	fail "list -W --count 2 failed or did not end"
took=$(($(now_ms) - t0))
printf '%s\n' "$out"
assert_eq 2 "$(grep -c "^Cluster: $SCOPE " <<<"$out")" "list -W --count 2 draws two tables"
assert_eq 2 "$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}' <<<"$out")" "list -W: a time above each table"
[ "$took" -ge 500 ] || fail "list -W -w 0.5 --count 2 took $took ms: no wait between the draws"

# ---- 3. dsn and query

for role in leader replica; do
	dsn=$(bc dsn "$SCOPE" --role "$role") || fail "dsn --role $role failed"
	grep -Eq '^host=127\.0\.0\.1 port=[0-9]+$' <<<"$dsn" || fail "dsn --role $role: '$dsn'"
	want=f
	[ "$role" = replica ] && want=t
	got=$(as_baton env PGPASSFILE="$PGPASSFILE" PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -A -t \
		-d "$dsn user=postgres dbname=postgres" -c 'select pg_is_in_recovery()') || fail "psql on dsn '$dsn' failed"
	assert_eq "$want" "$got" "psql on the $role's dsn ($dsn): pg_is_in_recovery"
done
assert_eq "host=127.0.0.1 port=${PG_PORT[$p]}" "$(bc dsn)" "dsn: the leader by default"
assert_eq "host=127.0.0.1 port=${PG_PORT[$r]}" "$(bc dsn --member "node$r")" "dsn --member node$r"
err=$(bc dsn --member "node$r" --role leader 2>&1 >/dev/null)
assert_eq 1 "$?" "dsn of a replica as --role leader is refused"

out=$(bc query "$SCOPE" -U postgres -c 'select pg_is_in_recovery()') || fail "query on the leader failed"
assert_eq $'pg_is_in_recovery\nf' "$out" "query on the leader (tsv, header first)"
out=$(bc query -r replica -U postgres -c 'select pg_is_in_recovery() as rec, 1 as one' --delimiter ';') ||
	fail "query on a replica failed"
assert_eq $'rec;one\nt;1' "$out" "query -r replica with --delimiter"
out=$(bc query -m "node$r" -U postgres -c 'select pg_is_in_recovery() as rec, null as n' --format json) ||
	fail "query --format json failed"
assert_eq '[{"rec":"t","n":null}]' "$(jq -c . <<<"$out")" "query --format json"
out=$(bc query -U postgres -c "select 'a: b' as v" --format yaml) || fail "query --format yaml failed"
assert_eq "a: b" "$(python3 -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)[0]["v"])' <<<"$out")" \
	"query --format yaml quotes a value with ': '"
# without a password file: -U names the config's superuser, so its password is used, and said
err=$(bc query -U postgres -c 'select 1' 2>&1 >/dev/null) || fail "query failed: $err"
assert_eq "" "$err" "query with a password file: nothing said on stderr"
out=$(as_baton env PGPASSFILE="$T/no-such.pgpass" "$BATON_BUILD/batonctl" -c "$T/node1.conf" query -U postgres \
	-c 'select 42' 2>"$T/q.err") ||
	fail "query with the config's superuser password failed: $(cat "$T/q.err")"
assert_eq $'?column?\n42' "$out" "query -U postgres without a password file"
grep -q "using the password of postgresql.authentication.superuser (postgres) from $T/node1.conf" "$T/q.err" ||
	fail "query did not say whose password it used: $(cat "$T/q.err")"
out=$(printf 'select 2 as two;\n' | bc query -r replica -U postgres --file - --format table) ||
	fail "query --file - failed"
assert_eq "| two |" "$(sed -n 2p <<<"$out")" "query --file - --format table: the header"
assert_eq "| 2   |" "$(sed -n 4p <<<"$out")" "query --file - --format table: the row"
err=$(bc query -U postgres -c 'select nope' 2>&1 >/dev/null)
assert_eq 1 "$?" "query with an SQL error exits 1"
grep -q 'column "nope" does not exist' <<<"$err" || fail "query error: '$err'"
err=$(bc query 2>&1 >/dev/null)
assert_eq 2 "$?" "query without -c/--file exits 2"

# ---- 4. edit-config -s / -p / dotted keys

out=$(bc edit-config "$SCOPE" -s loop_wait=2 --force 2>&1) || fail "edit-config -s loop_wait=2 failed: $out"
assert_eq 2 "$(config_json | jq .loop_wait)" "edit-config -s loop_wait=2 reached the config key"
out=$(bc edit-config -p work_mem=8MB --force 2>&1) || fail "edit-config -p work_mem=8MB failed: $out"
assert_eq 8MB "$(config_json | jq -r .postgresql.parameters.work_mem)" "edit-config -p work_mem=8MB"
out=$(bc edit-config -s postgresql.parameters.work_mem=16MB -s ttl=7 --force 2>&1) ||
	fail "edit-config -s postgresql.parameters.work_mem=16MB failed: $out"
assert_eq "16MB 7" "$(config_json | jq -r '"\(.postgresql.parameters.work_mem) \(.ttl)"')" \
	"edit-config: the dotted postgresql.parameters key is --pg"
before=$(config_json)
err=$(bc edit-config -s postgresql.bogus=1 --force 2>&1 >/dev/null)
assert_eq 1 "$?" "edit-config with an unknown dotted key is refused"
assert_eq "$before" "$(config_json)" "the refused edit left the config key unchanged"

# ---- 5. flush

later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
out=$(bc switchover "$SCOPE" --candidate "node$r" --scheduled "$later" --force --wait 0 2>&1) ||
	fail "switchover $SCOPE --scheduled failed: $out"
[ -n "$(switchover_json)" ] || fail "no switchover key after switchover --scheduled"
err=$(bc flush "$SCOPE" switchover 2>&1 </dev/null)
assert_eq 1 "$?" "flush switchover without --force and without a terminal is refused"
[ -n "$(switchover_json)" ] || fail "the refused flush removed the switchover key"
out=$(bc flush "$SCOPE" switchover --force 2>&1) || fail "flush switchover failed: $out"
assert_eq "Pending switchover cancelled (by node$p)." "$out" "flush switchover: through the leader's REST API"
switchover_gone || fail "the switchover key is still there after flush switchover"
err=$(bc flush switchover --force 2>&1)
assert_eq 1 "$?" "flush switchover with nothing pending exits 1"

out=$(bc restart "node$r" --scheduled "$later" --force 2>&1) || fail "restart --scheduled failed: $out"
has_schedule() { [ "$(member_json "node$r" | jq -r '.scheduled_restart.at // empty')" = "$1" ]; }
wait_for 10 "node$r's member key shows the scheduled restart" has_schedule "$later"
grep -q "| node$r .*| $later |" <<<"$(bc list -e)" || fail "list -e does not show node$r's scheduled restart"
out=$(bc flush "$SCOPE" "node$r" restart --force 2>&1) || fail "flush node$r restart failed: $out"
assert_eq "node$r: scheduled restart cancelled" "$out" "flush restart output"
wait_for 10 "the scheduled restart is gone from node$r's member key" has_schedule ""
err=$(bc flush ghost restart --force 2>&1)
assert_eq 1 "$?" "flush restart of an unknown member exits 1"
err=$(bc flush "$SCOPE" reboot --force 2>&1)
assert_eq 2 "$?" "flush with another target than restart|switchover exits 2"

# ---- 6. remove

n_keys=$(keys | wc -l)
[ "$n_keys" -ge 5 ] || fail "only $n_keys keys under $NAMESPACE/$SCOPE/ before remove"
err=$(printf '%s\nYes I am aware\nnode%s\n' "$SCOPE" "$p" | bc remove "$SCOPE" 2>&1 >/dev/null)
assert_eq 1 "$?" "remove while the agents run is refused"
grep -q "member(s) still registered" <<<"$err" || fail "remove refusal: '$err'"
assert_eq "$n_keys" "$(keys | wc -l)" "the refused remove deleted nothing"
err=$(bc remove other 2>&1 </dev/null >/dev/null)
assert_eq 2 "$?" "remove of another cluster's name exits 2"
err=$(bc remove 2>&1 </dev/null >/dev/null)
assert_eq 2 "$?" "remove without the cluster's name exits 2"

for n in 1 2 3; do agent_stop "$n"; done
no_members() { [ -z "$(etcdctl_ get --prefix --keys-only "$NAMESPACE/$SCOPE/members/" | grep -v '^$')" ]; }
wait_for $((TTL + 10)) "no member key left once the agents stopped" no_members
snapshot=$(etcdctl_ get --prefix "$NAMESPACE/$SCOPE/" -w json | jq -c '[.kvs[] | [.key, .mod_revision]]')
leader=$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/leader")
answers() { # answers CLUSTER PHRASE: the lines remove asks for (the leader's name when there is one)
	printf '%s\n%s\n' "$1" "$2"
	[ -z "$leader" ] || printf '%s\n' "$leader"
}
out=$(answers "$SCOPE" "yes i am aware" | bc remove "$SCOPE" 2>&1)
assert_eq 1 "$?" "remove with a wrong phrase exits 1"
grep -q "nothing removed" <<<"$out" || fail "remove with a wrong phrase: '$out'"
out=$(answers "${SCOPE}x" "Yes I am aware" | bc remove "$SCOPE" 2>&1)
assert_eq 1 "$?" "remove with a wrong cluster name typed exits 1"
out=$(printf '%s\n' "$SCOPE" | bc remove "$SCOPE" 2>&1)
assert_eq 1 "$?" "remove with the input ending early exits 1"
assert_eq "$snapshot" "$(etcdctl_ get --prefix "$NAMESPACE/$SCOPE/" -w json | jq -c '[.kvs[] | [.key, .mod_revision]]')" \
	"the refused removes changed no key"
out=$(answers "$SCOPE" "Yes I am aware" | bc remove "$SCOPE" 2>&1) || fail "remove with the right answers failed: $out"
printf '%s\n' "$out"
grep -q "Please confirm the cluster name to remove" <<<"$out" || fail "remove did not ask for the cluster name"
grep -q "please type \"Yes I am aware\"" <<<"$out" || fail "remove did not ask for the phrase"
grep -q "^Removed [0-9]* keys under $NAMESPACE/$SCOPE/" <<<"$out" || fail "remove did not report the deletion"
assert_eq "" "$(keys)" "no key left under $NAMESPACE/$SCOPE/ after remove"
out=$(bc remove "$SCOPE" </dev/null 2>&1) || fail "remove of an empty cluster failed: $out"
grep -q "nothing to remove" <<<"$out" || fail "remove of an empty cluster: '$out'"
pass "batonctl with patronictl's habits"
