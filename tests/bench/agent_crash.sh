#!/bin/bash
# tests/bench/agent_crash.sh - agent crash: SIGKILL of the primary's agent
# alone (its postmaster is left to the parent-death signal and the fence
# process), measured to the first write acknowledged by the new primary.
# Figures, not assertions; not run in CI.
#
#   tests/bench/agent_crash.sh [--rounds N] [--settings "TTL/LW/RT ..."] [--keep]
#
# For each timing setting (default "3/1/1 5/1/2", ttl/loop_wait/
# retry_timeout) a fresh 3-node cluster is built on loopback (etcd, three
# agents, Postgres 15 - tests/lib/cluster.sh); a client (tests/tools/writer)
# inserts a row every 20 ms through a multi-host connection string with
# target_session_attrs=read-write, and a poller (tests/tools/poller) asks
# every node for pg_is_in_recovery() every 50 ms and counts the samples in
# which two nodes answer false (split brain). Then N rounds (default 7): at
# a random moment of the agents' loop, kill -9 the primary's agent only, and
# take
#   to first write on the new primary = first ack by another server - kill;
#   write unavailability              = that ack - last ack by the old one;
# and whether the old node's fence revoked the leader lease (its log line)
# or the lease ran out; and, from the agents' logs, where the time went:
# the fence's agent death -> lease revoked (and the revoke request alone),
# and the new primary's DELETE seen, key taken and promoted (ms after the
# kill); plus the load average after each round. After each round the old node's agent is restarted
# and the cluster waits for two streaming replicas again. Prints median /
# min / max / n per setting and the split-brain sample count. Runs as root;
# BATON_BUILD names the build (default /var/tmp/baton-ci/build).
set -uo pipefail

ROUNDS=7
SETTINGS="3/1/1 5/1/2"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_lib.sh"
bench_parse "--rounds=ROUNDS --settings=SETTINGS" "$@"
bench_positive_int --rounds "$ROUNDS"

. "$here/../lib/cluster.sh"
bench_init bench_agent_crash

# stats: median / min / max of the numbers on stdin (ms).
stats() { bench_stats median %d " ms"; }

# phase_ms NODE PATTERN: ms from the kill (T0) to the first line of NODE's
# agent log after LINES0[NODE] that holds PATTERN (log stamps are local
# time to the millisecond); nothing when there is none.
phase_ms() {
	local stamp
	stamp=$(tail -n +$((LINES0[$1] + 1)) "$(agent_log "$1")" | grep -m1 -F "$2" | cut -c1-23)
	[ -n "$stamp" ] || return 0
	echo $(($(date -d "$stamp" +%s%3N) - T0))
}
declare -a LINES0

round() {
	local i=$1 first last how lines0
	wait_healthy 180
	OLD=$PRIMARY
	writes_flowing
	lines0=$(wc -l <"$(agent_log "$OLD")")
	for n in 1 2 3; do LINES0[$n]=$(wc -l <"$(agent_log "$n")"); done
	random_pause
	T0=$(now_ms)
	kill -KILL "${AGENT_PID[$OLD]}"
	agent_wait_exit "$OLD" 10 || fail "agent survived SIGKILL"
	wait_for $((TTL * 4 + 30)) "a new primary" new_leader
	wait_for 60 "a write acknowledged by node$NEW" acked_by_new
	acks_around "${PG_PORT[$OLD]}" "$T0" || fail "cannot find the acks around the fault (last '$ACK_LAST', first '$ACK_FIRST')"
	last=$ACK_LAST first=$ACK_FIRST
	# the revoke line comes from the fence's revoker, which may log a moment later
	how=expired
	poll_until 5 eval 'tail -n +$((lines0 + 1)) "$(agent_log "$OLD")" | grep -q "revoked leader lease"' && how=revoked
	printf '%s first %s\n%s gap %s\n%s how %s\n' "$SET" $((first - T0)) "$SET" $((first - last)) "$SET" "$how" >>"$RESULTS"
	# where the time went, from the agents' logs (ms after the kill)
	local revoke watch acquire promote
	revoke=$(tail -n +$((lines0 + 1)) "$(agent_log "$OLD")" | grep -m1 -o "revoked leader lease .* (took [0-9]* ms, the request [0-9]* ms" |
		sed 's/.*(took \([0-9]*\) ms, the request \([0-9]*\) ms/\1 \2/')
	watch=$(phase_ms "$NEW" "leader key deleted or expired")
	acquire=$(phase_ms "$NEW" "acquired the leader key")
	promote=$(phase_ms "$NEW" "promoted: Postgres is primary")
	[ -n "$revoke" ] && printf '%s revoke_total %s\n%s revoke_request %s\n' "$SET" "${revoke% *}" "$SET" "${revoke#* }" >>"$RESULTS"
	[ -n "$watch" ] && printf '%s watch %s\n' "$SET" "$watch" >>"$RESULTS"
	[ -n "$acquire" ] && printf '%s acquire %s\n' "$SET" "$acquire" >>"$RESULTS"
	[ -n "$promote" ] && printf '%s promote %s\n' "$SET" "$promote" >>"$RESULTS"
	log "round $i: node$OLD -> node$NEW, first write on the new primary $((first - T0)) ms after the kill, unavailability $((first - last)) ms, lease $how (fence: death -> revoked ${revoke% *} ms, request ${revoke#* } ms; node$NEW: DELETE seen ${watch:-?} ms, key taken ${acquire:-?} ms, promoted ${promote:-?} ms after the kill); load $(cut -d' ' -f1 /proc/loadavg)"
	cut -d' ' -f1 /proc/loadavg | sed "s|^|$SET load |" >>"$RESULTS"
	agent_start "$OLD"
	poll_until 120 cluster_healthy || fail "node$OLD did not rejoin"
}

for SET in $SETTINGS; do
	IFS=/ read -r TTL LOOP_WAIT RETRY_TIMEOUT <<<"$SET"
	log "=== setting ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT"
	SCOPE=crash$(tr -dc 0-9 <<<"$SET")
	etcd_start
	for n in 1 2 3; do node_config "$n"; done
	for n in 1 2 3; do agent_start "$n"; done
	wait_healthy 120
	writer_start 20
	poller_start
	for i in $(seq 1 "$ROUNDS"); do round "$i"; done
	bg_stop "$POLLER_PID"
	POLLER_PID=
	printf '%s samples %s\n%s split %s\n' "$SET" "$(awk '$1 == "samples" { print $2 }' "$T/poller.out")" \
		"$SET" "$(awk '$1 == "split_brain_samples" { print $2 }' "$T/poller.out")" >>"$RESULTS"
	cluster_reset
done

echo
echo "==== agent crash (kill -9 of the primary's agent only; writer every 20 ms, poller every 50 ms)"
for SET in $SETTINGS; do
	IFS=/ read -r a b c <<<"$SET"
	echo "ttl=$a loop_wait=$b retry_timeout=$c"
	printf '  kill -> first write on the new primary: %s\n' "$(awk -v s="$SET" '$1 == s && $2 == "first" { print $3 }' "$RESULTS" | stats)"
	printf '  write unavailability (last old ack -> first new ack): %s\n' "$(awk -v s="$SET" '$1 == s && $2 == "gap" { print $3 }' "$RESULTS" | stats)"
	for ph in "revoke_total fence: agent death -> lease revoked" "revoke_request fence: the revoke request itself" \
		"watch new primary: kill -> leader key DELETE seen" "acquire new primary: kill -> key taken" \
		"promote new primary: kill -> promoted"; do
		printf '  %s: %s\n' "${ph#* }" "$(awk -v s="$SET" -v k="${ph%% *}" '$1 == s && $2 == k { print $3 }' "$RESULTS" | stats)"
	done
	printf '  load average (1 min) at the end of each round: %s\n' "$(awk -v s="$SET" '$1 == s && $2 == "load" { printf "%s ", $3 }' "$RESULTS")"
	printf '  lease revoked by the fence in %s of %s rounds\n' "$(awk -v s="$SET" '$1 == s && $2 == "how" && $3 == "revoked"' "$RESULTS" | wc -l)" \
		"$(awk -v s="$SET" '$1 == s && $2 == "how"' "$RESULTS" | wc -l)"
	printf '  split-brain samples: %s of %s\n' "$(awk -v s="$SET" '$1 == s && $2 == "split" { print $3 }' "$RESULTS")" \
		"$(awk -v s="$SET" '$1 == s && $2 == "samples" { print $3 }' "$RESULTS")"
done
