#!/bin/bash
# tests/bench/fleet_load.sh - a fleet of idle agents on one etcd: the
# request pattern of N agents (default 1000) replayed against a 3-member
# etcd on loopback, the old pattern (a full read every loop, keepalive every
# min(loop_wait, ttl/4)) against the new one (the watch drives reads: a full
# read every 30 s, keepalive every ttl - margin - retry_timeout). Figures,
# not assertions; not run in CI.
#
#   tests/bench/fleet_load.sh [--agents N] [--seconds S] [--rounds N] [--keep]
#
# The generator is tests/bench/fleet_load.c, built here with cc and libcurl.
# For each round and pattern: a fresh key prefix, N agents set up (a lease
# each, their keys on it), then S seconds (default 60) of the pattern; the
# figures are the generator's (requests/s sent, keepalive latency p50/p99/
# max as the agents would see it, failed requests) and etcd's CPU: the three
# members' utime + stime from /proc over the S seconds, in % of one core.
# Prints each round, then per pattern the median, min and max over rounds.
# Runs as root (the harness starts etcd as root here: no agents).
set -uo pipefail

AGENTS=1000
SECONDS_RUN=60
ROUNDS=3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_lib.sh"
bench_parse "--agents=AGENTS --seconds=SECONDS_RUN --rounds=ROUNDS" "$@"
bench_positive_int --agents "$AGENTS"
bench_positive_int --seconds "$SECONDS_RUN"
bench_positive_int --rounds "$ROUNDS"

. "$here/../lib/cluster.sh"
bench_init fleet_load
cc -O2 -Wall -Wextra -o "$T/fleet_load" "$here/fleet_load.c" -lcurl || fail "cannot build fleet_load.c"
# 3 connections per agent, plus etcd's own: the descriptor limit must allow them.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((3 * AGENTS + 256)) ] ||
	fail "the open-file limit $(ulimit -n) is too low for $AGENTS agents (3 connections each)"
etcd_members_start 3

# cpu_ticks: user + system clock ticks of the three etcd members so far.
cpu_ticks() {
	local i s=0 v
	for i in 1 2 3; do
		v=$(awk '{ print $14 + $15 }' "/proc/${ETCD_M_PID[$i]}/stat") || return 1
		s=$((s + v))
	done
	echo "$s"
}
HZ=$(getconf CLK_TCK)

# stats UNIT: median / min / max of the numbers on stdin, UNIT appended.
stats() { bench_stats median %s "$1"; }

for r in $(seq 1 "$ROUNDS"); do
	for p in old new; do
		c0=$(cpu_ticks) || fail "cannot read etcd's CPU time"
		t0=$(now_ms)
		line=$("$T/fleet_load" --endpoints "$(etcd_member_urls)" --agents "$AGENTS" --seconds "$SECONDS_RUN" \
			--pattern "$p" --prefix "/fleet-$r-$p" 2>>"$T/fleet_load.err") || fail "fleet_load failed (see $T/fleet_load.err)"
		c1=$(cpu_ticks) || fail "cannot read etcd's CPU time"
		t1=$(now_ms)
		# The CPU of the whole run (set-up included) over its wall time.
		cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v ms=$((t1 - t0)) 'BEGIN { printf "%.1f", 100 * (b - a) / hz / (ms / 1000) }')
		log "round $r, $p: $line etcd_cpu=${cpu}%"
		echo "$p $line etcd_cpu=$cpu" >>"$RESULTS"
		sleep 6 # the leases of this run expire (ttl 5) before the next
	done
done

echo
echo "== fleet_load: $AGENTS idle agents, 3-member etcd on loopback, $SECONDS_RUN s per run, $ROUNDS rounds"
for p in old new; do
	for f in per_agent requests_per_s keepalive_p50_ms keepalive_p99_ms keepalive_max_ms failed expired etcd_cpu; do
		printf '%-4s %-18s %s\n' "$p" "$f" "$(awk -v p="$p" -v f="$f" '$1 == p { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$RESULTS" | stats "")"
	done
done
