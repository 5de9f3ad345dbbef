#!/bin/bash
# 44_haproxy_patroni_example: Patroni's own example haproxy.cfg, with its
# directives and timings unchanged and only the addresses and ports made the
# test's, in front of a baton cluster (issue 13: "HAProxy with a faithful copy
# of Patroni's example config, unchanged but for ports: writes reach the
# primary before and after a switchover").
#
# Patroni's example checks the REST API over plain HTTP with a bare
# `option httpchk` (HAProxy sends OPTIONS /) and `http-check expect status
# 200`, every 3 s, 3 failures down and 2 successes up. So the nodes here
# serve their REST API without TLS (REST_TLS=0), as a Patroni cluster that
# used that config did; a TLS API needs `check-ssl` added (36 checks that).
#  1. only the primary is UP in HAProxy's stats (its CSV at the stats port);
#  2. a writer through HAProxy's port: its writes are acknowledged by the
#     primary;
#  3. `batonctl switchover --candidate`: the writes through HAProxy are
#     acknowledged by the new primary afterwards, never by the old one once
#     the new one took one, and HAProxy marks the old primary DOWN. The
#     write gap is printed (Patroni's 3 s interval dominates it), not
#     asserted.
REST_TLS=0
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init haproxy_patroni_example

command -v "$HAPROXY_BIN" >/dev/null 2>&1 || fail "haproxy is not installed ($HAPROXY_BIN)"
etcd_start
for n in 1 2 3; do node_config "$n"; done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
old=$PRIMARY
R=()
for n in 1 2 3; do [ "$n" = "$old" ] || R+=("$n"); done
new=${R[0]}

# Patroni's example (patroni/haproxy.cfg), directive for directive; only the
# bind addresses (loopback, the test's free ports) and the servers' ports
# differ. HAProxy 2.6 warns that `log global` has no global log target: it
# is kept, as in the example.
pick_port HAP_PORT
pick_port HAP_STATS
cat >"$T/haproxy.cfg" <<EOF
global
    maxconn 100

defaults
    log global
    mode tcp
    retries 2
    timeout client 30m
    timeout connect 4s
    timeout server 30m
    timeout check 5s

listen stats
    mode http
    bind 127.0.0.1:$HAP_STATS
    stats enable
    stats uri /

listen batman
    bind 127.0.0.1:$HAP_PORT
    option httpchk
    http-check expect status 200
    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
    server postgresql_127.0.0.1_${PG_PORT[1]} 127.0.0.1:${PG_PORT[1]} maxconn 100 check port ${API_PORT[1]}
    server postgresql_127.0.0.1_${PG_PORT[2]} 127.0.0.1:${PG_PORT[2]} maxconn 100 check port ${API_PORT[2]}
    server postgresql_127.0.0.1_${PG_PORT[3]} 127.0.0.1:${PG_PORT[3]} maxconn 100 check port ${API_PORT[3]}
EOF
"$HAPROXY_BIN" -c -f "$T/haproxy.cfg" >"$T/haproxy.check" 2>&1 || { cat "$T/haproxy.check"; fail "haproxy rejects Patroni's example config"; }
"$HAPROXY_BIN" -db -f "$T/haproxy.cfg" >"$T/haproxy.out" 2>&1 &
HAPROXY_PID=$!
BG_PIDS+=("$HAPROXY_PID")

# status N: node N's state in HAProxy's stats CSV (UP, DOWN, "UP 1/2", ...).
status() {
	curl -s -m 2 "http://127.0.0.1:$HAP_STATS/;csv" 2>/dev/null |
		awk -F, -v s="postgresql_127.0.0.1_${PG_PORT[$1]}" '$1 == "batman" && $2 == s { print $18 }'
}
only_up() {
	local n want=$1
	for n in 1 2 3; do
		if [ "$n" = "$want" ]; then
			[ "$(status "$n")" = UP ] || return 1
		else
			[[ "$(status "$n")" == DOWN* ]] || return 1
		fi
	done
}
# 1. Patroni's timings: a replica is DOWN after 3 failed checks 3 s apart.
wait_for 30 "HAProxy has node$old UP and both replicas DOWN" only_up "$old"

# 2. Writes through HAProxy reach the primary.
writer_start_to "host=127.0.0.1 port=$HAP_PORT user=postgres dbname=postgres connect_timeout=2" 50
acked_by() { [ -n "$(first_ack_on "${PG_PORT[$1]}" "$2")" ]; }
wait_for 30 "writes through HAProxy acknowledged by the primary node$old" acked_by "$old" 0
sleep 1

# 3. A switchover: the writes follow the new primary.
t0=$(now_ms)
out=$(ctl switchover --candidate "node$new" --force 2>&1) || fail "batonctl switchover failed: $out"
log "batonctl switchover --candidate node$new: $out"
wait_for 60 "writes through HAProxy acknowledged by the new primary node$new" acked_by "$new" "$t0"
wait_for 30 "HAProxy has node$new UP and the others DOWN" only_up "$new"
sleep 1
bg_stop "$WRITER_PID"
first_new=$(first_ack_on "${PG_PORT[$new]}" "$t0")
late_old=$(awk -v p="${PG_PORT[$old]}" -v t="$first_new" '$1 == "ack" && $4 == p && $3 > t' "$T/writer.out" | wc -l)
assert_eq 0 "$late_old" "writes acknowledged by the old primary node$old after the new one took one"
before=$(awk -v p="${PG_PORT[$old]}" -v t="$t0" '$1 == "ack" && $4 == p && $3 < t' "$T/writer.out" | wc -l)
after=$(awk -v p="${PG_PORT[$new]}" -v t="$t0" '$1 == "ack" && $4 == p && $3 > t' "$T/writer.out" | wc -l)
[ "$before" -gt 0 ] || fail "no write acknowledged by node$old before the switchover"
[ "$after" -gt 0 ] || fail "no write acknowledged by node$new after the switchover"
pass "writes through Patroni's example config: $before acknowledged by node$old before, $after by node$new after"
log "write gap through HAProxy across the switchover: $((first_new - $(last_ack_on "${PG_PORT[$old]}" "$first_new"))) ms" \
	"(HAProxy's checks every 3 s and rise 2 dominate it)"
bg_stop "$HAPROXY_PID"
