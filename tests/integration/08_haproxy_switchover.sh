#!/bin/bash
# 08_haproxy_switchover: planned switchovers while a client writes through
# HAProxy (Debian's haproxy, started by the test in the foreground on its own
# loopback port). HAProxy's backends are the three Postgres ports; each is
# checked with GET /primary against that node's REST API every 200 ms
# (fall 1, rise 1, sessions shut down when a server is marked down), so only
# the primary takes connections. The writer inserts a row every 20 ms through
# HAProxy's port and prints which Postgres port acknowledged each write.
#  1. switchover to a named candidate X: the leader key moves to X, writes go
#     on and are acknowledged by X's port (and no longer by the old one), and
#     the old primary streams from X;
#  2. switchover without a candidate: the leader moves to one of the replicas,
#     writes go on there, the other two stream from it.
# The write gap of each (last ack by the old primary -> first ack by the new
# one) is printed. With HAProxy's default retries (3) it is about 1 s: a
# connection that reaches the old primary after its Postgres stopped but
# before its check failed is refused, and HAProxy waits min(timeout connect,
# 1 s) before retrying it; HAPROXY_RETRIES=0 leaves the retry to the client
# (0.3-0.4 s here). The operator path is `batonctl switchover`; while batonctl
# lacks that command the test writes the switchover key with etcdctl (the
# agents act on that key either way) and says so. Likewise, while the agents'
# REST API lacks /primary, HAProxy checks GET /status for "role":"primary".
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init haproxy_switchover

cluster_start 3
wait_healthy 90
old=$PRIMARY

rest_call "$old" GET /primary
if [ "$REST_CODE" = 200 ]; then
	check=/primary
else
	check=status
	log "FALLBACK: GET /primary answers $REST_CODE on the primary; HAProxy checks GET /status for \"role\":\"primary\""
fi
haproxy_start "$check"
if ctl_has switchover; then
	path=batonctl
else
	path=etcdctl
	log "FALLBACK: batonctl has no switchover command; writing the switchover key with etcdctl"
fi

writer_start_to "host=127.0.0.1 port=$HAPROXY_PORT user=postgres dbname=postgres connect_timeout=2" 20
acked_by() { [ -n "$(first_ack_on "${PG_PORT[$1]}" "$2")" ]; }
wait_for 30 "writes acknowledged by node$old through HAProxy" acked_by "$old" 0

# switchover N_FROM [CANDIDATE]: asks for it by the path chosen above.
switchover() {
	local from=$1 cand=${2:-} out
	if [ "$path" = batonctl ]; then
		local args=(switchover --force)
		[ -n "$cand" ] && args+=(--candidate "node$cand")
		out=$(ctl "${args[@]}" 2>&1) || fail "batonctl ${args[*]} failed: $out"
		log "batonctl ${args[*]}: $out"
	else
		switchover_put "{\"from\":\"node$from\",\"to\":\"${cand:+node$cand}\",\"kind\":\"switchover\"}"
	fi
}

leader_is_not() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$1" ] || return 1
	NEW=${BASH_REMATCH[1]}
}

# after_switchover OLD T0: the checks common to both rounds; prints the gap.
GAPS=()
after_switchover() {
	local o=$1 t0=$2 first last later stray
	wait_for 30 "node$NEW answers as primary" eval '[ "$(in_recovery "$NEW")" = f ]'
	wait_for 20 "a write through HAProxy acknowledged by node$NEW" acked_by "$NEW" "$t0"
	first=$(first_ack_on "${PG_PORT[$NEW]}" "$t0")
	last=$(last_ack_on "${PG_PORT[$o]}" "$first")
	[[ "$first" =~ ^[0-9]+$ && "$last" =~ ^[0-9]+$ ]] || fail "cannot find the acks around the switchover (last '$last', first '$first')"
	# Writes go on: at least 20 more acks by the new primary within 5 s.
	later() { [ "$(awk -v p="${PG_PORT[$NEW]}" -v t="$first" '$1 == "ack" && $3 > t && $4 == p' "$T/writer.out" | wc -l)" -ge 20 ]; }
	wait_for 5 "writes keep being acknowledged by node$NEW" later
	stray=$(awk -v p="${PG_PORT[$NEW]}" -v t="$first" '$1 == "ack" && $3 >= t && $4 != p' "$T/writer.out" | wc -l)
	assert_eq 0 "$stray" "no write acknowledged by another server after node$NEW's first"
	GAPS+=("$((first - last))")
	log "write gap through HAProxy: $((first - last)) ms (last ack by node$o $last, first by node$NEW $first)"
	wait_healthy 60
	assert_eq "$NEW" "$PRIMARY" "node$NEW is the primary the others stream from"
	assert_eq "streaming|${PG_PORT[$NEW]}" \
		"$(run_sql "$o" "SELECT status, sender_port FROM pg_stat_wal_receiver")" \
		"old primary node$o streams from node$NEW"
}

# 1. To a named candidate.
cand=$((old % 3 + 1))
t0=$(now_ms)
switchover "$old" "$cand"
wait_for 30 "the leader key leaves node$old" leader_is_not "$old"
assert_eq "node$cand" "$(leader_name)" "switchover --candidate: the leader is the candidate"
log "leader key moved to node$NEW $(($(now_ms) - t0)) ms after the request"
after_switchover "$old" "$t0"
wait_for 15 "the switchover key is cleared" switchover_gone

# 2. Without a candidate.
old=$NEW
t0=$(now_ms)
switchover "$old"
wait_for 30 "the leader key leaves node$old" leader_is_not "$old"
log "leader key moved to node$NEW $(($(now_ms) - t0)) ms after the request"
[ "$NEW" != "$old" ] && [ "$NEW" -ge 1 ] && [ "$NEW" -le 3 ] || fail "unexpected new leader node$NEW"
pass "switchover without a candidate: the leader moved from node$old to replica node$NEW"
after_switchover "$old" "$t0"
wait_for 15 "the switchover key is cleared" switchover_gone

bg_stop "$WRITER_PID"
haproxy_stop
errs=$(grep -c '^err ' "$T/writer.out" || true)
acks=$(acks_count)
log "writer: $acks acks, $errs errors"
log "paths: switchover via $path, HAProxy check $check"
log "write gaps through HAProxy: with --candidate ${GAPS[0]} ms, without ${GAPS[1]} ms"
