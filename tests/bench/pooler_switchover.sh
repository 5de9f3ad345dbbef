#!/bin/bash
# tests/bench/pooler_switchover.sh - what clients see of a planned
# switchover with and without PgBouncer paused by the agents.
# Figures, not assertions; not run in CI.
#
#   tests/bench/pooler_switchover.sh [--rounds N] [--keep]
#
# A 3-node cluster on loopback (tests/lib/cluster.sh; ttl/loop_wait/
# retry_timeout from TTL, LOOP_WAIT, RETRY_TIMEOUT, default 5/1/2), HAProxy
# routing to the node that answers GET /primary (checks every 200 ms, or
# HAPROXY_INTER), and one PgBouncer (transaction pooling) whose server
# connections go through HAProxy; every node's file names it in `poolers`
# and HAProxy in `pooler_target` (tests/lib/pgbouncer.sh). Three writers
# insert a row every 20 ms, each into its own table, at the same time:
#   pooled     through PgBouncer (statement timeout 30 s: it waits in the
#              paused pooler);
#   haproxy    straight through HAProxy, no pooler (timeout 2 s);
#   multihost  a multi-host connection string with
#              target_session_attrs=read-write, no pooler (timeout 2 s).
# N rounds (default 7) of `batonctl switchover --candidate X`, the
# candidates taking turns, each requested at a random moment of the loop.
# Per round and writer, over the window from the request until 3 s after
# the pooled writer's first ack on the new primary:
#   failed attempts = "err" lines of the writer;
#   longest stall   = the longest gap between two consecutive acks.
# Prints median / min / max / n of each. Runs as root; BATON_BUILD names the
# build (default /var/tmp/baton-ci/build). Needs the Debian package pgbouncer.
set -uo pipefail

ROUNDS=7
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_lib.sh"
bench_parse "--rounds=ROUNDS" "$@"
bench_positive_int --rounds "$ROUNDS"

. "$here/../lib/cluster.sh"
. "$here/../lib/pgbouncer.sh"
bench_init bench_pooler_switchover
pgbouncer_have || skip "pgbouncer is not installed ($PGBOUNCER_BIN; Debian package pgbouncer)"

# figures: median / min / max / n of the numbers on stdin, UNIT appended.
figures() { bench_stats median %s "$1"; }

pgbouncer_pick_ports
etcd_start
for n in 1 2 3; do
	node_config "$n"
	pgbouncer_node_config "$n"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 120
haproxy_start /primary
pgbouncer_start

WRITERS="pooled haproxy multihost"
declare -A WPID
start_writer() {
	local name=$1 conninfo=$2 timeout=$3
	bg_start "w-$name" "$BATON_BUILD/tests/tools/writer" --interval 20 --timeout "$timeout" --table "bench_$name" \
		"$conninfo"
	WPID[$name]=$BG_PID
}
start_writer pooled "$(pgbouncer_client)" 30000
start_writer haproxy "host=127.0.0.1 port=$HAPROXY_PORT user=postgres dbname=postgres connect_timeout=2" 2000
start_writer multihost "$(conninfo_all)" 2000

# w_acks NAME: acks so far; w_first NAME PORT AFTER: first ack by PORT after AFTER.
w_acks() { grep -c '^ack ' "$T/w-$1.out" 2>/dev/null || true; }
w_first() { awk -v p="$2" -v t="$3" '$1 == "ack" && $3 > t && $4 == p { print $3; exit }' "$T/w-$1.out"; }
# w_window NAME FROM TO: "ERRORS LONGEST_GAP_MS" over [FROM, TO] (the gap
# counts from the last ack before FROM).
w_window() {
	awk -v a="$2" -v b="$3" '
		$1 == "ack" && $3 < a { p = $3 }
		$1 == "ack" && $3 >= a && $3 <= b { if (p && $3 - p > g) g = $3 - p; p = $3 }
		$1 == "err" && $2 >= a && $2 <= b { e++ }
		END { print e + 0, g + 0 }' "$T/w-$1.out"
}
all_on_new() {
	local w
	for w in $WRITERS; do [ -n "$(w_first "$w" "${PG_PORT[$CAND]}" "$T0")" ] || return 1; done
}

round() {
	local i=$1 w n0 first end line
	wait_healthy 120
	OLD=$PRIMARY
	CAND=$((OLD % 3 + 1))
	n0=$(w_acks pooled)
	wait_for 30 "writes flowing through PgBouncer" eval '[ "$(w_acks pooled)" -ge $((n0 + 10)) ]'
	random_pause
	T0=$(now_ms)
	out=$(ctl switchover --candidate "node$CAND" </dev/null 2>&1) || fail "batonctl switchover failed: $out"
	wait_for 60 "node$CAND is the primary" cand_primary
	wait_for 60 "every writer acknowledged by node$CAND" all_on_new
	first=$(w_first pooled "${PG_PORT[$CAND]}" "$T0")
	sleep 3
	end=$((first + 3000))
	line="$i"
	for w in $WRITERS; do line+=" $(w_window "$w" "$T0" "$end")"; done
	echo "$line" >>"$RESULTS"
	log "round $i: node$OLD -> node$CAND: errors/stall ms pooled $(w_window pooled "$T0" "$end"), haproxy $(w_window haproxy "$T0" "$end"), multihost $(w_window multihost "$T0" "$end")"
	wait_for 30 "the switchover key is cleared" switchover_gone
}

for i in $(seq 1 "$ROUNDS"); do round "$i"; done
for w in $WRITERS; do bg_stop "${WPID[$w]}"; done

echo
echo "==== planned switchover seen by clients (writers every 20 ms), with and without PgBouncer"
echo "ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT, $ROUNDS rounds, HAProxy checks every $HAPROXY_INTER, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
col=2
for w in $WRITERS; do
	printf '  %-10s failed attempts: %s\n' "$w" "$(awk -v c="$col" '{ print $c }' "$RESULTS" | figures "")"
	printf '  %-10s longest stall:   %s\n' "$w" "$(awk -v c="$((col + 1))" '{ print $c }' "$RESULTS" | figures " ms")"
	col=$((col + 2))
done
echo "  (rounds: round, then errors and stall ms per writer: $WRITERS)"
cat "$RESULTS"
