#!/bin/bash
# tests/bench/switchover.sh - write unavailability of a planned switchover.
# Figures, not assertions; not run in CI.
#
#   tests/bench/switchover.sh [--rounds N] [--keep]
#
# A 3-node cluster on loopback (etcd, three agents, Postgres 15 - see
# tests/lib/cluster.sh; ttl/loop_wait/retry_timeout from TTL, LOOP_WAIT,
# RETRY_TIMEOUT, default 5/1/2) and a client (tests/tools/writer) inserting a
# row every 20 ms through a multi-host connection string with
# target_session_attrs=read-write. N rounds (default 7) of a planned
# switchover to a named candidate, the candidates taking turns (node1 -> node2
# -> node3 -> node1 ...), each requested at a random moment of the agents'
# loop. Requested with `batonctl switchover --candidate X --force`, or, while
# batonctl lacks that command, by writing the switchover key with etcdctl
# (the agents act on that key either way; the output says which).
# Per round:
#   write unavailability = first write acknowledged by the new primary
#                          - last write acknowledged by the old one;
#   request -> first ack = first write acknowledged by the new primary
#                          - the moment the switchover was requested.
# After each round the old primary must stream from the new one before the
# next round starts. Prints min / median / max beside Patroni's figure for
# the same measurement (shared/FACTS.md). Runs as root; BATON_BUILD names the
# build (default /var/tmp/baton-ci/build, made by tests/run.sh).
set -uo pipefail

ROUNDS=7
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_lib.sh"
bench_parse "--rounds=ROUNDS" "$@"
bench_positive_int --rounds "$ROUNDS"

. "$here/../lib/cluster.sh"
bench_init bench_switchover

# stats: min / median / max of the numbers on stdin (ms), in seconds.
stats() { bench_stats min %.3f " s" 1000; }

if ctl_has switchover; then
	PATH_USED=batonctl
else
	PATH_USED=etcdctl
	log "FALLBACK: batonctl has no switchover command; writing the switchover key with etcdctl"
fi

request_switchover() {
	local from=$1 to=$2 out
	if [ "$PATH_USED" = batonctl ]; then
		out=$(ctl switchover --candidate "node$to" --force </dev/null 2>&1) || fail "batonctl switchover failed: $out"
	else
		etcdctl_ put "$NAMESPACE/$SCOPE/switchover" \
			"{\"from\":\"node$from\",\"to\":\"node$to\",\"kind\":\"switchover\"}" >/dev/null ||
			fail "cannot write the switchover key"
	fi
}

acked_by_cand() { [ -n "$(first_ack_on "${PG_PORT[$CAND]}" "$T0")" ]; }

round() {
	local i=$1 first last
	wait_healthy 120
	OLD=$PRIMARY
	CAND=$((OLD % 3 + 1))
	writes_flowing
	random_pause
	T0=$(now_ms)
	request_switchover "$OLD" "$CAND"
	wait_for 60 "node$CAND is the primary" cand_primary
	wait_for 60 "a write acknowledged by node$CAND" acked_by_cand
	first=$(first_ack_on "${PG_PORT[$CAND]}" "$T0")
	last=$(last_ack_on "${PG_PORT[$OLD]}" "$first")
	[[ "$last" =~ ^[0-9]+$ && "$first" =~ ^[0-9]+$ ]] || fail "cannot find the acks around the switchover (last '$last', first '$first')"
	printf '%s %s\n' "$((first - last))" "$((first - T0))" >>"$RESULTS"
	log "round $i: node$OLD -> node$CAND, write unavailability $((first - last)) ms, request -> first ack $((first - T0)) ms"
	wait_for 30 "the switchover key is cleared" switchover_gone
	wait_healthy 90
	[ "$PRIMARY" = "$CAND" ] || fail "round $i: node$PRIMARY leads, expected node$CAND"
}

cluster_start 3
wait_healthy 120
writer_start 20
for i in $(seq 1 "$ROUNDS"); do round "$i"; done
bg_stop "$WRITER_PID"
errs=$(grep -c '^err ' "$T/writer.out" || true)

facts="$here/../../../shared/FACTS.md"
patroni=$(grep -m1 -i 'planned switchover' "$facts" 2>/dev/null | sed -E 's/^[[:space:]]*-[[:space:]]*//; s/;[[:space:]]*$//')
[ -n "$patroni" ] || patroni="planned switchover (last ack on old -> first ack on new): 1.30-1.35 s (shared/FACTS.md not found; figure as recorded there)"
med=$(awk '{ print $1 }' "$RESULTS" | bench_median)

echo
echo "==== planned switchover (writer every 20 ms, multi-host, target_session_attrs=read-write)"
echo "ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT, $ROUNDS rounds, requested via $PATH_USED, $(nproc) cores"
printf '  write unavailability (last ack old -> first ack new): %s\n' "$(awk '{ print $1 }' "$RESULTS" | stats)"
printf '  request -> first ack by the new primary:             %s\n' "$(awk '{ print $2 }' "$RESULTS" | stats)"
printf '  writer errors over the run:                          %s\n' "$errs"
printf '  target (median <= 0.5 s):                            %s\n' "$(awk -v m="$med" 'BEGIN { print (m <= 500 ? "met" : "NOT met") }')"
printf '  Patroni 3.0.2 (FACTS.md, writer every 50 ms, n=5):   %s\n' "$patroni"
