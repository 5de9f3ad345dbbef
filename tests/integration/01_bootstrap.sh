#!/bin/bash
# 01_bootstrap: three agents on an empty etcd bootstrap one cluster: exactly
# one primary, two replicas streaming from it (pg_stat_replication on the
# primary, pg_stat_wal_receiver on the replicas), the leader key names the
# primary, and `batonctl list` shows the same picture as a table and as JSON.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init bootstrap

cluster_start 3
wait_healthy 90
p=$PRIMARY

assert_eq "node$p" "$(leader_name)" "leader key names the primary"
assert_eq "$p" "$(primaries)" "exactly one node answers as primary"
assert_eq 2 "$(run_sql "$p" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" \
	"pg_stat_replication on the primary has two streaming rows"
for n in 1 2 3; do
	[ "$n" = "$p" ] && continue
	assert_eq t "$(in_recovery "$n")" "node$n is in recovery"
	assert_eq "streaming|${PG_PORT[$p]}" \
		"$(run_sql "$n" "SELECT status, sender_port FROM pg_stat_wal_receiver")" \
		"node$n streams from the primary's port"
done

# A write on the primary reaches both replicas.
run_sql "$p" "CREATE TABLE bootstrap_probe (v text); INSERT INTO bootstrap_probe VALUES ('hello')" >/dev/null ||
	fail "write on the primary failed"
replicated() {
	local n
	for n in 1 2 3; do
		[ "$(run_sql "$n" "SELECT v FROM bootstrap_probe")" = hello ] || return 1
	done
}
wait_for 20 "the probe row on every node" replicated

# batonctl: the table and the JSON.
ctl="$BATON_BUILD/batonctl"
out=$(as_baton "$ctl" -c "$T/node1.conf" list 2>&1) || fail "batonctl list failed: $out"
printf '%s\n' "$out"
for n in 1 2 3; do
	grep -q "node$n" <<<"$out" || fail "batonctl list does not show node$n"
done
pass "batonctl list shows the three members"

json=$(as_baton "$ctl" -c "$T/node2.conf" list --format json 2>/dev/null) || fail "batonctl list --format json failed"
jq -e 'type == "array"' >/dev/null <<<"$json" || fail "batonctl JSON is not an array: $json"
assert_eq 3 "$(jq 'length' <<<"$json")" "JSON lists three members"
assert_eq "node$p" "$(jq -r '[.[] | select(.role == "primary")] | map(.name) | join(",")' <<<"$json")" \
	"JSON: the one primary is the leader-key holder"
assert_eq "node$p" "$(jq -r '[.[] | select(.leader == true)] | map(.name) | join(",")' <<<"$json")" \
	"JSON: leader flag on the primary only"
assert_eq 2 "$(jq '[.[] | select(.role == "replica")] | length' <<<"$json")" "JSON: two replicas"
assert_eq "${PG_PORT[$p]}" "$(jq -r ".[] | select(.name == \"node$p\") | .port" <<<"$json")" "JSON: primary's port"
assert_eq true "$(jq '[.[] | has("name","host","port","role","state","timeline","lag")] | all' <<<"$json")" \
	"JSON: every member has name, host, port, role, state, timeline, lag"
tl=$(timeline "$p")
assert_eq "$tl" "$(jq -r ".[] | select(.name == \"node$p\") | .timeline" <<<"$json")" "JSON: primary's timeline"
