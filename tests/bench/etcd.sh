#!/bin/bash
# tests/bench/etcd.sh - what etcd costs and how fast the leader watch is.
# Figures, not assertions; not run in CI.
#
#   tests/bench/etcd.sh [--rounds N] [--idle SECONDS] [--settings "TTL/LW/RT ..."] [--keep]
#
# etcd runs as three members on loopback; for each timing setting (default
# "5/1/2 3/1/1": ttl/loop_wait/retry_timeout) three agents configured with
# all three members build a fresh cluster (tests/lib/cluster.sh), then:
#  (a) idle cost: each agent's baton_etcd_requests_total (GET /metrics; every
#      request of the loop's and the keeper's clients, not the watch stream)
#      at the start and the end of --idle seconds (default 60), divided by
#      the seconds, per agent and the mean; the watch streams are counted
#      apart, from etcd's own gauge etcd_debugging_mvcc_watch_stream_total
#      summed over the members (one long-lived stream per agent expected),
#      and so are each agent's established connections to etcd (ss);
#  (b) watch latency, N rounds (default 5): SIGKILL of the primary's agent
#      and postmaster; an `etcdctl watch` started by the bench stamps (unix
#      ms) the DELETE of the leader key when it expires; the latency is the
#      first replica's "taking the key" log line (the agents print wall-clock
#      ms) minus that stamp; also the first replica's "leader key deleted or
#      expired" line (the watch's delivery). The old node then rejoins;
#  (c) write unavailability when the etcd member in use is killed, N rounds:
#      a writer inserts every 20 ms through the multi-host conninfo
#      (target_session_attrs=read-write); the member the primary's agent
#      holds most connections to is SIGKILLed; the largest gap between
#      consecutive acks during the 15 s after the kill (counted from the last
#      ack before it) is the figure - target 0 s, i.e. no failover; also
#      whether the leader changed, whether the killed member was etcd's raft
#      leader (its death then costs an etcd election, during which no lease
#      can be renewed) and whether the primary's keeper hit its lease
#      deadline (it then SIGQUITs Postgres). The member is restarted on its
#      data.
# Prints a summary table at the end. Runs as root; BATON_BUILD names the
# build (default /var/tmp/baton-ci/build, made by tests/run.sh).
set -uo pipefail

ROUNDS=5
IDLE=60
SETTINGS="5/1/2 3/1/1"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_lib.sh"
bench_parse "--rounds=ROUNDS --idle=IDLE --settings=SETTINGS" "$@"
bench_positive_int --rounds "$ROUNDS"
bench_positive_int --idle "$IDLE" seconds

. "$here/../lib/cluster.sh"
bench_init bench_etcd

# stats: min / median / max of the numbers on stdin, with UNIT appended.
stats() { bench_stats min %s "$1"; }
result() { printf '%s %s\n' "$SET" "$*" >>"$RESULTS"; }
results() { awk -v s="$SET" -v k="$1" '$1 == s && $2 == k { print $3 }' "$RESULTS"; }

# metric N NAME: the value of NAME in nodeN's GET /metrics ("" if absent).
metric() {
	rest_call "$1" GET /metrics
	[ "$REST_CODE" = 200 ] || return 1
	awk -v m="$2" '{ n = $1; sub(/\{.*/, "", n) } n == m { print $NF; exit }' <<<"$REST_BODY"
}

# etcd_watch_streams: etcd's watch stream gauge summed over the live members.
etcd_watch_streams() {
	local i sum=0 v
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		v=$(curl -s --noproxy '*' -m 3 "$(etcd_member_url "$i")/metrics" |
			awk '$1 == "etcd_debugging_mvcc_watch_stream_total" { print $2 }')
		[ -n "$v" ] && sum=$(awk -v a="$sum" -v b="$v" 'BEGIN { print a + b }')
	done
	echo "$sum"
}

# (a) idle cost
idle_cost() {
	local n r0 r1 t0 t1 rate sum=0 conns
	declare -A r0s=()
	wait_healthy 60
	sleep $((LOOP_WAIT * 2))
	t0=$(now_ms)
	for n in 1 2 3; do
		r0s[$n]=$(metric "$n" baton_etcd_requests_total) || fail "no /metrics from node$n"
	done
	log "idle for $IDLE s"
	sleep "$IDLE"
	t1=$(now_ms)
	for n in 1 2 3; do
		r1=$(metric "$n" baton_etcd_requests_total) || fail "no /metrics from node$n"
		rate=$(awk -v a="${r0s[$n]}" -v b="$r1" -v ms=$((t1 - t0)) 'BEGIN { printf "%.2f", (b - a) / (ms / 1000) }')
		conns=$(etcd_members_in_use "${AGENT_PID[$n]}" | tr ' ' '\n' | awk -F: '{ s += $2 } END { print s + 0 }')
		role=replica
		[ "$(leader_name)" = "node$n" ] && role=primary
		result idle_rate "$rate"
		result idle_line "node$n($role):${rate}req/s,${conns}conns"
		log "node$n ($role): $((r1 - r0s[$n])) etcd requests in $(((t1 - t0) / 1000)) s = $rate req/s; $conns connections to etcd"
	done
	result watch_streams "$(etcd_watch_streams)"
}

# (b) watch latency
watch_round() {
	local i=$1 pm n line t_del t_take= t_seen= ms
	declare -A mark=()
	wait_healthy 120
	OLD=$PRIMARY
	for n in 1 2 3; do mark[$n]=$(wc -l <"$(agent_log "$n")"); done
	key_watch_start "$NAMESPACE/$SCOPE/leader"
	random_pause
	pm=$(postmaster_pid "$OLD") || fail "no postmaster for node$OLD"
	T0=$(now_ms)
	kill -KILL "${AGENT_PID[$OLD]}" "$pm"
	agent_wait_exit "$OLD" 10 || fail "agent survived SIGKILL"
	wait_for $((TTL * 4 + 30)) "a new primary" new_leader
	sleep 0.3
	key_watch_stop
	t_del=$(key_watch_event_ms DELETE "$T0")
	[[ "$t_del" =~ ^[0-9]+$ ]] || { log "round $i: the key watch saw no DELETE"; result watch_missing 1; rejoin "$OLD"; return 0; }
	for n in 1 2 3; do
		[ "$n" != "$OLD" ] || continue
		line=$(tail -n +$((${mark[$n]} + 1)) "$(agent_log "$n")" | grep -m1 'taking the key')
		if [ -n "$line" ]; then
			ms=$(log_ms "$line")
			[ -z "$t_take" ] || [ "$ms" -lt "$t_take" ] && t_take=$ms
		fi
		line=$(tail -n +$((${mark[$n]} + 1)) "$(agent_log "$n")" | grep -m1 'leader key deleted or expired')
		if [ -n "$line" ]; then
			ms=$(log_ms "$line")
			[ -z "$t_seen" ] || [ "$ms" -lt "$t_seen" ] && t_seen=$ms
		fi
	done
	if [ -n "$t_take" ]; then
		result watch_latency $((t_take - t_del))
		result expiry_after_kill $((t_del - T0))
		[ -z "$t_seen" ] || result watch_delivery $((t_seen - t_del))
		log "round $i: DELETE $((t_del - T0)) ms after the kill; first 'taking the key' $((t_take - t_del)) ms after the DELETE; watch delivered it $([ -n "$t_seen" ] && echo "$((t_seen - t_del)) ms" || echo never) after"
	else
		log "round $i: no replica logged 'taking the key'"
		result watch_missing 1
	fi
	rejoin "$OLD"
}

# deadline_hits N: how often nodeN's keeper logged that the lease deadline passed.
deadline_hits() { grep -c 'lease deadline passed' "$(agent_log "$1")" 2>/dev/null || true; }

# (c) the etcd member in use is killed
member_round() {
	local i=$1 v t_k gap leader_before leader_after raft what="" hits0
	wait_healthy 120
	OLD=$PRIMARY
	leader_before=$(leader_name)
	writes_flowing
	v=$(etcd_member_most_used "${AGENT_PID[$OLD]}")
	[ -n "$v" ] || fail "node$OLD's agent holds no connection to etcd"
	raft=$(etcd_raft_leader)
	if [ "$raft" = "$v" ]; then
		what=", etcd's raft leader"
	fi
	hits0=$(deadline_hits "$OLD")
	t_k=$(now_ms)
	etcd_member_kill "$v"
	sleep 15
	gap=$(acks_max_gap "$t_k" $((t_k + 15000)))
	leader_after=$(leader_name)
	result member_gap "$gap"
	[ -z "$what" ] || result member_gap_raft_leader "$gap"
	[ "$(deadline_hits "$OLD")" -gt "$hits0" ] && { result member_deadline_hit 1; what+="; its keeper hit the lease deadline"; }
	[ "$leader_after" = "$leader_before" ] || result member_failover 1
	log "round $i: killed m$v (used by node$OLD's agent$what): max gap between acks $gap ms; leader $leader_before -> $leader_after"
	etcd_member_start "$v"
	wait_for 30 "etcd member m$v healthy" etcd_member_healthy "$v"
}

etcd_members_start 3
etcd_use_members
for SET in $SETTINGS; do
	IFS=/ read -r TTL LOOP_WAIT RETRY_TIMEOUT <<<"$SET"
	log "=== setting ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT"
	SCOPE=bench$(tr -dc 0-9 <<<"$SET")
	for n in 1 2 3; do
		node_config "$n"
		node_config_etcd "$n"
	done
	for n in 1 2 3; do agent_start "$n"; done
	wait_healthy 120
	idle_cost
	for i in $(seq 1 "$ROUNDS"); do watch_round "$i"; done
	writer_start 20
	for i in $(seq 1 "$ROUNDS"); do member_round "$i"; done
	bg_stop "$WRITER_PID"
	WRITER_PID=
	for n in 1 2 3; do pid_alive "${AGENT_PID[$n]:-}" && agent_stop "$n"; done
	rm -rf "$T"/node[0-9] "$T"/node[0-9].log
done

echo
echo "==== etcd bench: 3 etcd members on loopback, 3 agents, $ROUNDS rounds, $(nproc) cores"
for SET in $SETTINGS; do
	IFS=/ read -r a b c <<<"$SET"
	echo "ttl=$a loop_wait=$b retry_timeout=$c"
	printf '  (a) idle etcd requests/s per agent (%s s): mean %s   [%s]\n' "$IDLE" \
		"$(results idle_rate | awk '{ s += $1 } END { printf "%.2f", NR ? s / NR : 0 }')" \
		"$(results idle_line | tr '\n' ' ' | sed 's/ $//')"
	printf '      watch streams on etcd (all members): %s (not in the request counter)\n' "$(results watch_streams)"
	printf '  (b) leader key DELETE -> first "taking the key": %s\n' "$(results watch_latency | stats ' ms')"
	printf '      DELETE -> watch delivered it (agent log):    %s\n' "$(results watch_delivery | stats ' ms')"
	printf '      kill -> DELETE (lease expiry):               %s\n' "$(results expiry_after_kill | stats ' ms')"
	printf '      rounds without a measurement:                %s\n' "$(results watch_missing | wc -l)"
	printf '  (c) max ack gap, etcd member in use killed (15 s, writer every 20 ms): %s\n' \
		"$(results member_gap | awk '{ printf "%.2f\n", $1 / 1000 }' | stats ' s')"
	printf '      rounds with a leader change: %s of %s\n' "$(results member_failover | wc -l)" "$ROUNDS"
	printf '      rounds where that member was etcd'"'"'s raft leader: %s (their max gaps: %s ms)\n' \
		"$(results member_gap_raft_leader | wc -l)" "$(results member_gap_raft_leader | tr '\n' ' ' | sed 's/ $//')"
	printf '      rounds where the primary'"'"'s keeper hit the lease deadline (Postgres restarted): %s\n' \
		"$(results member_deadline_hit | wc -l)"
	printf '  old primary failed to rejoin: %s times\n' "$(results rejoin_failure | wc -l)"
done
