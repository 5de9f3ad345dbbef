#!/bin/bash
# 04_etcd_stop: with etcd gone the primary cannot renew its lease, so it
# must stop accepting writes before the lease could have expired (safety
# rule 2) - measured here from the moment etcd is killed, which is after the
# last renewal, so "not writable" must come in less than the TTL. No node may
# be writable while etcd is down. With etcd back, the cluster returns to
# exactly one primary and streaming replicas.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init etcd_stop

cluster_start 3
wait_healthy 90
p=$PRIMARY
run_sql "$p" "CREATE TABLE etcd_probe (at timestamptz)" >/dev/null || fail "cannot create the probe table"
writable() { run_sql "$p" "INSERT INTO etcd_probe VALUES (now())" >/dev/null; }
writable || fail "the primary does not take writes before the fault"

t0=$(now_ms)
etcd_stop KILL
log "killed etcd"
not_writable() { ! writable; }
poll_until $((TTL * 3)) not_writable || fail "node$p still takes writes $((TTL * 3)) s after etcd died"
dt=$(($(now_ms) - t0))
log "node$p stopped taking writes $dt ms after etcd died"
assert_lt "$dt" $((TTL * 1000)) "primary stopped taking writes before the lease could expire (ms)"

# Nobody may be writable while etcd is down (check for a while past the TTL).
until_t=$(($(now_ms) + TTL * 1000 + 2000))
while [ "$(now_ms)" -lt "$until_t" ]; do
	w=$(primaries)
	[ -z "$w" ] || fail "node(s) $w writable while etcd is down"
	sleep 0.3
done
pass "no writable node while etcd was down ($((TTL + 2)) s)"

etcd_start
log "etcd is back"
wait_healthy 90
assert_eq "$PRIMARY" "$(primaries)" "exactly one primary after etcd came back"
run_sql "$PRIMARY" "INSERT INTO etcd_probe VALUES (now())" >/dev/null || fail "the new primary node$PRIMARY does not take writes"
pass "node$PRIMARY takes writes"
