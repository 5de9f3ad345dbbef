#!/bin/bash
# tests/bench/rest.sh - how the REST API answers its health probe while
# idle and slow-header clients hold connections open (issue 10), and whether
# the lease renewals notice. Figures, not assertions; not run in CI (the
# correctness check under a smaller load is in
# tests/integration/25_rest_security.sh).
#
#   tests/bench/rest.sh [--idle N] [--slow N] [--seconds S] [--keep]
#
# A single-node cluster on loopback (etcd, one agent, Postgres 15 - see
# tests/lib/cluster.sh; ttl/loop_wait/retry_timeout from TTL, LOOP_WAIT,
# RETRY_TIMEOUT, default 5/1/2). First S seconds (default 30) of /health
# probes every 100 ms without load, then S seconds with --idle (default
# 1000) idle and --slow (default 100) slow-header connections held open
# from loopback by tests/tools/restload (a slow connection sends one more
# header byte every second, never finishing; a closed one is reopened at
# once). Prints per phase the probes' p50 / p99 / max latency and how many
# failed (not 200, or over 1 s), the connections the server closed, and
# baton_lease_renewal_worst_gap_seconds from /metrics before and after the
# load (the longest time between two successful keepalives). Runs as root;
# BATON_BUILD names the build (default /var/tmp/baton-ci/build, made by
# tests/run.sh).
set -uo pipefail

IDLE=1000 SLOW=100 SECS=30

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_lib.sh"
bench_parse "--idle=IDLE --slow=SLOW --seconds=SECS" "$@"
bench_whole_int --idle "$IDLE"
bench_whole_int --slow "$SLOW"
bench_positive_int --seconds "$SECS"

# Plain HTTP: the figures are those of the server's request path and its
# slow-client defences; TLS adds its handshake to each probe on top.
REST_TLS=${REST_TLS:-0}
. "$here/../lib/cluster.sh"
cluster_init bench_rest
LOAD=$BATON_BUILD/tests/tools/restload
[ -x "$LOAD" ] || fail "$LOAD is missing (build with tests/run.sh)"

cluster_start 1
wait_healthy 90

url="http://127.0.0.1:${API_PORT[1]}"
worst_gap() {
	curl -s --noproxy '*' -m 5 "$url/metrics" | awk '{ n = $1; sub(/\{.*/, "", n) } n == "baton_lease_renewal_worst_gap_seconds" { print $NF }'
}

# phase NAME IDLE SLOW: one restload run; prints its figures.
phase() {
	local name=$1 idle=$2 slow=$3 out
	out=$(as_baton "$LOAD" --url "$url/health" --idle "$idle" --slow "$slow" --warmup 3 --duration "$SECS" \
		--interval 100 --trickle 1000 --max-latency 1000 2>&1)
	printf '%s\n' "$out" >"$T/restload-$name.out"
	printf '%-9s %s\n' "$name" "$(grep '^latency' <<<"$out")"
	printf '%-9s %s\n' "" "$(grep '^probes' <<<"$out")"
	printf '%-9s %s\n' "" "$(grep '^held' <<<"$out")"
}

gap0=$(worst_gap)
echo "---- /health under load ($SECS s per phase, a probe every 100 ms over a fresh connection)"
phase "no load" 0 0
gap1=$(worst_gap)
phase "load" "$IDLE" "$SLOW"
gap2=$(worst_gap)
echo "---- lease renewals (baton_lease_renewal_worst_gap_seconds; ttl $TTL, loop_wait $LOOP_WAIT)"
echo "at start ${gap0:-?} s, after the quiet phase ${gap1:-?} s, after the load phase ${gap2:-?} s"
echo "---- load: $IDLE idle + $SLOW slow-header connections from 127.0.0.1"
log "agent's own view: $(grep -o 'REST API: [0-9]* worker threads.*' "$(agent_log 1)" | head -1)"
