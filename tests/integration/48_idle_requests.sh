#!/bin/bash
# 48_idle_requests: an idle agent costs etcd at most 0.6 requests/s (issue
# 16). The watch on the cluster's prefix drives the agents' view of the
# cluster: a full read only at start-up, after a lost watch and every
# VIEW_CHECK_INTERVAL (30 s); keepalives every ttl - margin - retry_timeout
# (2 s at 5/1/2). Three agents, idle; each one's etcd requests of every kind
# (baton_etcd_requests_by_kind_total, watch streams included) over 60 s
# (two periods of the full read; a window that long keeps the count's
# rounding, one keepalive or read more or less, and a publication when
# Postgres writes a WAL record, within the budget's margin) must stay at
# or under 0.6/s. Then the cached view must still follow etcd at once:
# `batonctl pause` (a write of the config key) shows as paused in every
# agent's GET /status within 2 s, well before the next periodic full read.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init idle_requests

WINDOW=60
BUDGET=0.6

# kinds N: nodeN's etcd requests by kind so far, "kind=count ..." on one
# line, from one GET /metrics (fails without the counter).
kinds() {
	rest_call "$1" GET /metrics
	[ "$REST_CODE" = 200 ] || return 1
	awk '$1 ~ /^baton_etcd_requests_by_kind_total\{/ { k = $1; sub(/.*kind="/, "", k); sub(/".*/, "", k); printf "%s=%s ", k, $NF; f = 1 }
		END { exit !f }' <<<"$REST_BODY"
}
# kinds_delta A B: B - A, "total N kind N kind N ..." (the kinds that changed).
kinds_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); v[kv[1]] = kv[2] }
		n = split(b, y, " "); for (i = 1; i <= n; i++) { split(y[i], kv, "="); d = kv[2] - v[kv[1]]; t += d; if (d) o = o " " kv[1] " " d }
		print "total " t o }'
}

# measure LABEL: every node's rate over WINDOW seconds, asserted <= BUDGET.
measure() {
	local n t0 t1 secs rate d total ka
	declare -A k0=()
	t0=$(now_ms)
	for n in 1 2 3; do
		k0[$n]=$(kinds "$n") || fail "no baton_etcd_requests_by_kind_total in node$n's /metrics"
	done
	sleep "$WINDOW"
	t1=$(now_ms)
	secs=$(awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.3f", ms / 1000 }')
	for n in 1 2 3; do
		d=$(kinds_delta "${k0[$n]}" "$(kinds "$n")") || fail "no /metrics from node$n"
		total=$(awk '{ print $2 }' <<<"$d")
		ka=$(awk '{ for (i = 3; i < NF; i += 2) if ($i == "keepalive") print $(i + 1) }' <<<"$d")
		rate=$(awk -v t="$total" -v s="$secs" 'BEGIN { printf "%.3f", t / s }')
		log "$1: node$n sent $total etcd requests in $secs s = $rate req/s (${d#total * })"
		# The lease is kept alive all along: the counter counts.
		[ "${ka:-0}" -ge $((WINDOW / 4)) ] || fail "$1: node$n sent only ${ka:-0} keepalives in $secs s"
		awk -v r="$rate" -v b="$BUDGET" 'BEGIN { exit !(r <= b) }' ||
			fail "$1: node$n sent $rate etcd requests/s while idle, more than $BUDGET"
	done
	pass "$1: every idle agent sent at most $BUDGET etcd requests/s over $secs s"
}

cluster_start 3
wait_healthy 90
# Past start-up (bootstrap, clones, their checkpoints and first publications).
sleep 15
measure "idle"

paused_everywhere() {
	local n
	for n in 1 2 3; do
		rest_call "$n" GET /status
		[ "$REST_CODE" = 200 ] && grep -q '"paused": *true' <<<"$REST_BODY" || return 1
	done
}
t0=$(now_ms)
out=$(ctl pause) || fail "batonctl pause failed: $out"
wait_for 2 "every agent's view to show the pause" paused_everywhere
log "every agent saw the pause $(($(now_ms) - t0)) ms after batonctl pause"
pass "the watch-driven view follows a change of the config key at once"
out=$(ctl resume) || fail "batonctl resume failed: $out"
