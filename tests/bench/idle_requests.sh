#!/bin/bash
# tests/bench/idle_requests.sh - etcd requests per idle agent per second,
# one build against another (issue 16: at most 0.6 at the default timing).
# Figures, not assertions; not run in CI.
#
#   tests/bench/idle_requests.sh [--before BUILD] [--after BUILD] [--rounds N]
#                                [--window SECONDS] [--settings TTL/LW/RT] [--keep]
#
# For each build (--before, e.g. a build of main; --after, default
# BATON_BUILD), three agents build a fresh cluster (tests/lib/cluster.sh)
# and idle; after 20 s of settling, N windows (default 5) of --window
# seconds (default 30, one period of the new full read) each: every agent's
# baton_etcd_requests_total (each unary request of the loop's and the
# keeper's clients: ranges, txns, puts, keepalives) at the start and the
# end of the window, divided by the seconds. The watch streams opened are
# counted apart where the build has baton_etcd_requests_by_kind_total.
# Prints, per build, the median, min and max over agents x windows (n), the
# primary's and the replicas' medians, and the kinds of the last window.
# Runs as root.
set -uo pipefail

BEFORE=""
AFTER=${BATON_BUILD:-/var/tmp/baton-ci/build}
ROUNDS=5
WINDOW=30
SETTINGS="5/1/2"
ONE=""
OUT=""
. "$(dirname "$0")/bench_lib.sh"
while [ $# -gt 0 ]; do
	case $1 in
	--before) BEFORE=$2; shift ;;
	--after) AFTER=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--window) WINDOW=$2; shift ;;
	--settings) SETTINGS=$2; shift ;;
	--one) ONE=$2; OUT=$3; shift 2 ;; # internal: one build, labelled, results appended to OUT
	--keep) export KEEP=1 ;;
	-h | --help) bench_usage ;;
	*) bench_bad_usage "unknown option $1" ;;
	esac
	shift
done
bench_positive_int --rounds "$ROUNDS"
bench_positive_int --window "$WINDOW" seconds
[[ "$SETTINGS" =~ ^([0-9.]+)/([0-9.]+)/([0-9.]+)$ ]] || { echo "--settings is TTL/LOOP_WAIT/RETRY_TIMEOUT" >&2; exit 2; }
export TTL=${BASH_REMATCH[1]} LOOP_WAIT=${BASH_REMATCH[2]} RETRY_TIMEOUT=${BASH_REMATCH[3]}

# stats: median / min / max of the numbers on stdin.
stats() { bench_stats median %.3f ""; }

if [ -z "$ONE" ]; then
	# Each build in a run of its own (its own test dir, ports, cleanup).
	RESULTS=$(mktemp /tmp/bench-idle-results.XXXXXX)
	trap 'rm -f "$RESULTS"' EXIT
	chmod 644 "$RESULTS"
	args=(--rounds "$ROUNDS" --window "$WINDOW" --settings "$SETTINGS")
	if [ -n "$BEFORE" ]; then
		BATON_BUILD=$BEFORE "$0" "${args[@]}" --one before "$RESULTS" || exit 1
	fi
	BATON_BUILD=$AFTER "$0" "${args[@]}" --one after "$RESULTS" || exit 1
	echo
	echo "== idle_requests: etcd requests per idle agent per second (ttl $TTL, loop_wait $LOOP_WAIT, retry_timeout $RETRY_TIMEOUT), $ROUNDS windows of $WINDOW s x 3 agents"
	for label in before after; do
		grep -q "^$label " "$RESULTS" || continue
		printf '%-6s all       %s\n' "$label" "$(awk -v l="$label" '$1 == l { print $3 + $4 }' "$RESULTS" | stats)"
		printf '%-6s primary   %s\n' "$label" "$(awk -v l="$label" '$1 == l && $2 == "primary" { print $3 + $4 }' "$RESULTS" | stats)"
		printf '%-6s replicas  %s\n' "$label" "$(awk -v l="$label" '$1 == l && $2 == "replica" { print $3 + $4 }' "$RESULTS" | stats)"
	done
	exit 0
fi

. "$(dirname "$0")/../lib/cluster.sh"
cluster_init "bench_idle_$ONE"

# counters N: "total watch kinds..." from one GET /metrics of nodeN.
counters() {
	rest_call "$1" GET /metrics
	[ "$REST_CODE" = 200 ] || return 1
	awk '{ n = $1; sub(/\{.*/, "", n) }
		n == "baton_etcd_requests_total" { t = $NF }
		n == "baton_etcd_requests_by_kind_total" { k = $1; sub(/.*kind="/, "", k); sub(/".*/, "", k); if (k == "watch") w = $NF; kinds = kinds " " k "=" $NF }
		END { if (t == "") exit 1; print t, w + 0, kinds }' <<<"$REST_BODY"
}

label=$ONE
log "== $label: $BATON_BUILD (ttl $TTL, loop_wait $LOOP_WAIT, retry_timeout $RETRY_TIMEOUT)"
declare -A c0=()
cluster_start 3
wait_healthy 120
sleep 20
for r in $(seq 1 "$ROUNDS"); do
	t0=$(now_ms)
	for n in 1 2 3; do c0[$n]=$(counters "$n") || fail "no /metrics from node$n"; done
	sleep "$WINDOW"
	t1=$(now_ms)
	secs=$(awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.3f", ms / 1000 }')
	for n in 1 2 3; do
		c1=$(counters "$n") || fail "no /metrics from node$n"
		role=replica
		[ "$(leader_name)" = "node$n" ] && role=primary
		read -r rate wrate <<<"$(awk -v a="${c0[$n]}" -v b="$c1" -v s="$secs" 'BEGIN { split(a, x, " "); split(b, y, " ");
			printf "%.3f %.3f", (y[1] - x[1]) / s, (y[2] - x[2]) / s }')"
		echo "$label $role $rate $wrate" >>"$OUT"
		log "$label window $r: node$n ($role) $rate req/s (+ $wrate watch streams/s) over $secs s"
	done
done
for n in 1 2 3; do log "$label node$n counters at the end: $(counters "$n")"; done
