#!/bin/bash
# 11_scheduled_switchover: a switchover scheduled 9 s ahead happens at its
# time, not before. `batonctl switchover --candidate X --scheduled TIME`
# (fallback while batonctl lacks it: the switchover key with "scheduled_at"
# written with etcdctl). Until 1 s before the time the leader key is polled
# every 200 ms and must not move (and the request must still be pending);
# from then on it is polled every 100 ms: the key must not move before the
# time, and must name X within ttl + 2 s after it. The delay (new leader
# - scheduled time) is printed; afterwards the old primary streams
# from X.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init scheduled_switchover

cluster_start 3
wait_healthy 90
p=$PRIMARY
cand=$((p % 3 + 1))
sched=$(($(date +%s) + 9))
sched_ms=$((sched * 1000))

if ctl_has switchover; then
	path=batonctl
	when=$(date -u -d "@$sched" +%Y-%m-%dT%H:%M:%SZ)
	out=$(ctl switchover --candidate "node$cand" --scheduled "$when" --force --wait 0 </dev/null 2>&1) ||
		fail "batonctl switchover --scheduled $when failed: $out"
	log "batonctl switchover --candidate node$cand --scheduled $when --force --wait 0: $out"
else
	path=etcdctl
	log "FALLBACK: batonctl has no switchover command; writing the switchover key with etcdctl"
	switchover_put "{\"from\":\"node$p\",\"to\":\"node$cand\",\"kind\":\"switchover\",\"scheduled_at\":$sched}"
fi
log "switchover node$p -> node$cand scheduled at $(date -d "@$sched" +%T) ($(((sched_ms - $(now_ms)))) ms from now)"

checks=0
while [ "$(now_ms)" -lt $((sched_ms - 1000)) ]; do
	l=$(leader_name)
	[ "$l" = "node$p" ] || fail "leader key is '$l' $((sched_ms - $(now_ms))) ms before the scheduled time"
	[ -n "$(switchover_json)" ] || fail "the switchover request vanished before its time"
	checks=$((checks + 1))
	sleep 0.2
done
pass "leader unchanged (node$p) and the request pending until 1 s before the time ($checks checks)"
[ "$(in_recovery "$p")" = f ] || fail "node$p is no longer a primary before the scheduled time"

# t_moved: the key first leaves node$p (released, or taken over);
# t_new: it names another member.
deadline=$((sched_ms + (TTL + 2) * 1000))
t_moved= t_new=
while [ "$(now_ms)" -lt "$deadline" ]; do
	l=$(leader_name)
	t=$(now_ms)
	if [ "$l" != "node$p" ] && [ -z "$t_moved" ]; then
		t_moved=$t
	fi
	if [ -n "$l" ] && [ "$l" != "node$p" ]; then
		t_new=$t
		break
	fi
	sleep 0.1
done
[ -n "$t_moved" ] || { cluster_state; fail "the leader key did not move within ttl + 2 s = $((TTL + 2)) s after the scheduled time"; }
delay=$((t_moved - sched_ms))
log "leader key left node$p $delay ms after the scheduled time"
[ "$delay" -ge 0 ] || fail "the switchover happened $((-delay)) ms before its time"
pass "the switchover did not happen before its time"
[ -n "$t_new" ] || { cluster_state; fail "no new leader within ttl + 2 s = $((TTL + 2)) s after the scheduled time"; }
delay=$((t_new - sched_ms))
log "leader key names '$l' $delay ms after the scheduled time"
assert_lt "$delay" $(((TTL + 2) * 1000)) "new leader within ttl + 2 s after the time (ms)"
assert_eq "node$cand" "$l" "the new leader is the candidate"
wait_healthy 60
assert_eq "$cand" "$PRIMARY" "node$cand is the primary"
assert_eq "streaming|${PG_PORT[$cand]}" "$(run_sql "$p" "SELECT status, sender_port FROM pg_stat_wal_receiver")" \
	"old primary node$p streams from node$cand"
wait_for 15 "the switchover key is cleared" switchover_gone
log "scheduled switchover delay: $delay ms; path: $path"
