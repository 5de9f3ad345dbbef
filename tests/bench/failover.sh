#!/bin/bash
# tests/bench/failover.sh - write unavailability on failover, and the agent's
# idle footprint. Figures, not assertions; not run in CI.
#
#   tests/bench/failover.sh [--rounds N] [--idle SECONDS] [--settings "TTL/LW/RT ..."]
#
# For each timing setting (default: "5/1/2 3/1/1", i.e. ttl/loop_wait/
# retry_timeout) a fresh 3-node cluster is built on loopback (etcd, three
# agents, Postgres 15 - see tests/lib/cluster.sh) and a client (tests/tools/
# writer) inserts a row every 20 ms through a multi-host connection string
# with target_session_attrs=read-write. Then N rounds (default 5) of each:
#   node loss  - SIGKILL of the primary's agent, its fence process and its
#                postmaster together;
#   graceful   - SIGTERM of the primary's agent;
# each started at a random moment of the agents' loop (after sleeping a random
# fraction of loop_wait). Write unavailability of a round = first write
# acknowledged by another server after the fault - last write acknowledged by
# the old primary. After each round the old node is restarted and the cluster
# waits for two streaming replicas again. Finally, with the writer stopped,
# each agent's resident memory (VmRSS, VmHWM) and CPU time (utime+stime) over
# --idle seconds (default 60). Runs as root; BATON_BUILD names the build
# (default /var/tmp/baton-ci/build, made by tests/run.sh).
set -uo pipefail

ROUNDS=5
IDLE=60
SETTINGS="5/1/2 3/1/1"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_lib.sh"
bench_parse "--rounds=ROUNDS --idle=IDLE --settings=SETTINGS" "$@"
bench_positive_int --rounds "$ROUNDS"
bench_whole_int --idle "$IDLE" seconds

. "$here/../lib/cluster.sh"
bench_init bench

# stats: min / median / max of the numbers on stdin (ms), in seconds.
stats() { bench_stats min %.2f " s" 1000; }

# round KIND: one fault of KIND (node_loss or graceful); appends the gap.
# slow_round_lines SINCE_MS: every agent's log lines from SINCE_MS on.
slow_round_lines() {
	local since
	since=$(date -d "@$(($1 / 1000))" +%T).$(printf '%03d' $(($1 % 1000)))
	for n in 1 2 3; do
		awk -v s="$since" '$2 >= s' "$(agent_log "$n")" | head -n 60
	done
}

round() {
	local kind=$1 i=$2 pm gap
	wait_healthy 180
	OLD=$PRIMARY
	writes_flowing
	random_pause
	pm=$(postmaster_pid "$OLD") || fail "no postmaster for node$OLD"
	T0=$(now_ms)
	if [ "$kind" = node_loss ]; then
		# the whole node: its fence first (alive, it would revoke the lease)
		kill -KILL $(fence_pid "$OLD") "${AGENT_PID[$OLD]}" "$pm"
		agent_wait_exit "$OLD" 10 || fail "agent survived SIGKILL"
	else
		agent_signal "$OLD" TERM
	fi
	wait_for $((TTL * 4 + 30)) "a new primary" new_leader
	t_leader=$(($(now_ms) - T0))
	wait_for 60 "a write acknowledged by node$NEW" acked_by_new
	[ "$kind" = graceful ] && { agent_wait_exit "$OLD" 30 || fail "node$OLD did not stop after SIGTERM"; }
	acks_around "${PG_PORT[$OLD]}" "$T0" || fail "cannot find the acks around the fault (last '$ACK_LAST', first '$ACK_FIRST')"
	gap=$((ACK_FIRST - ACK_LAST))
	printf '%s %s %s\n' "$SET" "$kind" "$gap" >>"$RESULTS"
	log "round $i $kind: node$OLD -> node$NEW, write unavailability $gap ms (fault to a writable leader: $t_leader ms)"
	# A round past twice the ttl: what every agent said meanwhile, so that
	# a slow round can be explained from this output alone.
	if [ "$gap" -gt $((TTL * 2000)) ]; then
		log "round $i is slow; the agents' log lines since the fault:"
		slow_round_lines "$T0"
	fi
	rejoin "$OLD"
}

for SET in $SETTINGS; do
	IFS=/ read -r TTL LOOP_WAIT RETRY_TIMEOUT <<<"$SET"
	log "=== setting ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT"
	SCOPE=bench$(tr -dc 0-9 <<<"$SET")
	etcd_start
	for n in 1 2 3; do node_config "$n"; done
	for n in 1 2 3; do agent_start "$n"; done
	wait_healthy 120
	writer_start 20
	for i in $(seq 1 "$ROUNDS"); do round node_loss "$i"; done
	for i in $(seq 1 "$ROUNDS"); do round graceful "$i"; done
	wait_healthy 180
	if [ "$SET" = "${SETTINGS##* }" ]; then
		bg_stop "$WRITER_PID"
		WRITER_PID=
		break
	fi
	cluster_reset
done

# Idle footprint of the last cluster's agents.
tck=$(getconf CLK_TCK)
# utime + stime (fields 14 and 15 of /proc/PID/stat; the name in () may hold spaces)
cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
for n in 1 2 3; do
	pid_alive "${AGENT_PID[$n]:-}" || fail "agent node$n is not running before the idle measurement"
done
declare -A c0=()
for n in 1 2 3; do c0[$n]=$(cpu_ticks "${AGENT_PID[$n]}"); done
log "measuring the idle agents for $IDLE s"
sleep "$IDLE"
IDLE_LINES=()
for n in 1 2 3; do
	pid=${AGENT_PID[$n]}
	c1=$(cpu_ticks "$pid")
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
	role=replica
	[ "$(leader_name)" = "node$n" ] && role=primary
	IDLE_LINES+=("$(printf 'node%s (%s): RSS %.1f MB (peak %.1f MB), CPU %.2f s in %s s idle (%.2f%%)' \
		"$n" "$role" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" \
		"$(awk -v d=$((c1 - c0[$n])) -v t="$tck" 'BEGIN { print d / t }')" "$IDLE" \
		"$(awk -v d=$((c1 - c0[$n])) -v t="$tck" -v s="$IDLE" 'BEGIN { print s ? 100 * d / t / s : 0 }')")")
done

echo
echo "==== write unavailability (writer every 20 ms, multi-host, target_session_attrs=read-write)"
for SET in $SETTINGS; do
	IFS=/ read -r a b c <<<"$SET"
	echo "ttl=$a loop_wait=$b retry_timeout=$c"
	printf '  node loss (agent+postmaster SIGKILL): %s\n' "$(awk -v s="$SET" '$1 == s && $2 == "node_loss" { print $3 }' "$RESULTS" | stats)"
	printf '  graceful handover (agent SIGTERM):    %s\n' "$(awk -v s="$SET" '$1 == s && $2 == "graceful" { print $3 }' "$RESULTS" | stats)"
	printf '  old primary failed to rejoin:         %s times\n' "$(awk -v s="$SET" '$1 == s && $2 == "rejoin_failure"' "$RESULTS" | wc -l)"
done
echo "==== idle agents (ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT, $(nproc) cores)"
printf '  %s\n' "${IDLE_LINES[@]}"
