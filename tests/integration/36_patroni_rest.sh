#!/bin/bash
# 36_patroni_rest: Patroni's REST endpoints and status codes (issue 13) on a
# real 3-node cluster (REST over TLS with credentials, the harness default).
# node3 carries the tag failover_priority = 2, the others 1.
#  1. every Patroni health path answers Patroni's code on the primary and on
#     each replica, for GET, HEAD and OPTIONS; tag_KEY=VALUE, lag and
#     replication_state filters on /replica;
#  2. GET /patroni: state, role, server_version, xlog as Patroni shapes it per
#     role, timeline, replication (the primary's walsenders), replication_state,
#     postmaster_start_time, dcs_last_seen, patroni.{version,scope,name};
#  3. PUT /config replaces the dynamic config (synchronous_mode on): one
#     replica then answers /sync and /synchronous 200, the other /async;
#     without credentials it is refused (401) and changes nothing;
#  4. DELETE /switchover cancels a scheduled switchover (401 without
#     credentials, 404 when none is pending);
#  5. HAProxy with Patroni's style of config: one listener with a bare
#     `option httpchk` (HAProxy sends OPTIONS /), one with
#     `option httpchk OPTIONS /master`, both `http-check expect status 200`
#     and `check-ssl verify none`: only the primary is up in both, and writes
#     through either port reach the primary;
#  6. POST /reinitialize on a replica: 202, and the replica streams again;
#  7. GET /metrics on the primary and both replicas: every Patroni series
#     with Patroni's type and the scope and name labels, valued as Postgres
#     says (role series, WAL positions in bytes against pg_current_wal_lsn /
#     pg_last_wal_receive_lsn / pg_last_wal_replay_lsn, the replay timestamp,
#     timeline, server version, postmaster start, sync standby, dcs_last_seen,
#     pause), and every baton_* sample labelled with scope and name too.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init patroni_rest

etcd_start
for n in 1 2 3; do node_config "$n"; done
printf 'tags = { failover_priority = 2; };\n' >>"$T/node3.conf"
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
P=$PRIMARY
R=()
for n in 1 2 3; do [ "$n" = "$P" ] || R+=("$n"); done

# code N METHOD PATH: the HTTP code of a health request (no credentials).
code() {
	local n=$1 m=$2 path=$3 args=(-s -o /dev/null -m 3 -w '%{http_code}')
	if [ "$m" = HEAD ]; then args+=(-I); else args+=(-X "$m"); fi
	rest_curl "$n" "${args[@]}" "$(rest_url "$n")$path" 2>/dev/null || true
}

# expect N PATH WANT: PATH answers WANT on nodeN for GET, HEAD and OPTIONS.
expect() {
	local n=$1 path=$2 want=$3 m got bad=""
	for m in GET HEAD OPTIONS; do
		got=$(code "$n" "$m" "$path")
		[ "$got" = "$want" ] || bad+=" $m=$got"
	done
	[ -z "$bad" ] || fail "node$n $path: expected $want on GET/HEAD/OPTIONS, got$bad"
}

# The replicas stream and have a known lag before the checks below.
replica_ready() { [ "$(code "$1" GET /readiness)" = 200 ]; }
for r in "${R[@]}"; do wait_for 30 "node$r ready" replica_ready "$r"; done

# 1. Codes per role (asynchronous cluster: no synchronous standby yet).
#                      path                              primary replica
while read -r path on_p on_r; do
	expect "$P" "$path" "$on_p"
	for r in "${R[@]}"; do expect "$r" "$path" "$on_r"; done
done <<'EOF'
/                                      200 503
/primary                               200 503
/leader                                200 503
/master                                200 503
/read-write                            200 503
/standby-leader                        503 503
/replica                               503 200
/replica?lag=16MB                      503 200
/replica?replication_state=streaming   503 200
/replica?replication_state=bogus       503 503
/read-only                             200 200
/read-only?lag=16MB                    200 200
/synchronous                           503 503
/sync                                  503 503
/asynchronous                          503 200
/async                                 503 200
/read-only-sync                        200 503
/quorum                                503 503
/health                                200 200
/liveness                              200 200
/readiness                             200 200
/patroni                               200 200
EOF
pass "every Patroni health path answers Patroni's code on the primary and both replicas (GET, HEAD, OPTIONS)"
expect "$P" "/replica?lag=bogus" 400
expect "$P" /nope 404

# Tag filters: node3 has failover_priority 2, the others 1.
for r in "${R[@]}"; do
	if [ "$r" = 3 ]; then w2=200 w1=503; else w2=503 w1=200; fi
	expect "$r" "/replica?tag_failover_priority=2" "$w2"
	expect "$r" "/replica?tag_failover_priority=1" "$w1"
	expect "$r" "/replica?tag_failover_priority=$([ "$r" = 3 ] && echo 2 || echo 1)&tag_nofailover=false" 200
	expect "$r" "/replica?tag_nofailover=true" 503
	expect "$r" "/replica?tag_noloadbalance=true" 503
	expect "$r" "/async?tag_failover_priority=2" "$w2"
done
expect "$P" "/replica?tag_failover_priority=$([ "$P" = 3 ] && echo 2 || echo 1)" 503
expect "$P" "/read-only?tag_nofailover=true" 200
pass "tag_KEY=VALUE filters select replicas by their tags"

# 2. GET /patroni.
rest_call "$P" GET /patroni
assert_eq 200 "$REST_CODE" "GET /patroni on the primary"
doc=$REST_BODY
jqv() { jq -r "$1" <<<"$doc"; }
assert_eq running "$(jqv .state)" "/patroni state on the primary"
assert_eq primary "$(jqv .role)" "/patroni role on the primary"
[[ "$(jqv .server_version)" =~ ^15[0-9]{4}$ ]] || fail "/patroni server_version: $(jqv .server_version)"
[[ "$(jqv .xlog.location)" =~ ^[0-9]+$ ]] || fail "/patroni xlog.location: $(jqv .xlog)"
assert_eq null "$(jqv .xlog.replayed_location)" "no replayed_location on the primary"
assert_eq "$(timeline "$P")" "$(jqv .timeline)" "/patroni timeline"
assert_eq "$SCOPE node$P" "$(jqv '.patroni.scope + " " + .patroni.name')" "/patroni patroni.scope and name"
[ -n "$(jqv '.patroni.version // empty')" ] || fail "/patroni without patroni.version: $doc"
[[ "$(jqv .postmaster_start_time)" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}\ [0-9:.]+[+-][0-9]{2}:[0-9]{2}$ ]] ||
	fail "/patroni postmaster_start_time: $(jqv .postmaster_start_time)"
seen=$(jqv .dcs_last_seen)
now=$(date +%s)
[[ "$seen" =~ ^[0-9]+$ ]] && [ $((now - seen)) -le 10 ] && [ $((now - seen)) -ge 0 ] ||
	fail "/patroni dcs_last_seen $seen, now $now"
want=$(for r in "${R[@]}"; do echo "node$r replicator streaming async 0"; done)
assert_eq "$want" "$(jqv '.replication | sort_by(.application_name) | .[] | "\(.application_name) \(.usename) \(.state) \(.sync_state) \(.sync_priority)"')" \
	"/patroni replication lists the walsenders"
assert_eq "127.0.0.1 127.0.0.1" "$(jqv '[.replication[].client_addr] | join(" ")')" "/patroni replication client_addr"
r=${R[0]}
rest_call "$r" GET /patroni
assert_eq 200 "$REST_CODE" "GET /patroni on replica node$r"
doc=$REST_BODY
assert_eq "running replica streaming" "$(jqv '"\(.state) \(.role) \(.replication_state)"')" "/patroni state, role, replication_state on a replica"
[[ "$(jqv .xlog.received_location)" =~ ^[0-9]+$ && "$(jqv .xlog.replayed_location)" =~ ^[0-9]+$ ]] ||
	fail "/patroni xlog on a replica: $(jqv .xlog)"
assert_eq false "$(jqv .xlog.paused)" "/patroni xlog.paused on a replica"
# pg_last_xact_replay_timestamp(): null until the replica replayed a commit
[[ "$(jqv .xlog.replayed_timestamp)" =~ ^(null|20[0-9]{2}-[0-9]{2}-[0-9]{2}\ [0-9:.]+[+-][0-9]{2}:[0-9]{2})$ ]] ||
	fail "/patroni xlog.replayed_timestamp on a replica: $(jqv .xlog.replayed_timestamp)"
assert_eq null "$(jqv .xlog.location)" "no xlog.location on a replica"
assert_eq null "$(jqv .replication)" "no replication list on a replica"

# 3. PUT /config: the whole config replaced; refused without credentials.
rest_call "$P" GET /config
assert_eq 200 "$REST_CODE" "GET /config"
newcfg=$(jq -c '.synchronous_mode = true' <<<"$REST_BODY")
before=$(config_json)
REST_AUTH= rest_call "$P" PUT /config "$newcfg"
assert_eq 401 "$REST_CODE" "PUT /config without credentials"
assert_eq "$before" "$(config_json)" "a refused PUT /config changes nothing"
rest_call "$P" PUT /config '{"ttl":1}'
assert_eq 400 "$REST_CODE" "PUT /config with an invalid config"
assert_eq "$before" "$(config_json)" "an invalid PUT /config changes nothing"
rest_call "$P" PUT /config "$newcfg"
assert_eq 200 "$REST_CODE" "PUT /config"
assert_eq true "$(config_json | jq -r .synchronous_mode)" "PUT /config wrote synchronous_mode"
one_sync() {
	local r s=0 a=0
	for r in "${R[@]}"; do
		[ "$(code "$r" GET /sync)" = 200 ] && s=$((s + 1))
		[ "$(code "$r" GET /async)" = 200 ] && a=$((a + 1))
	done
	[ "$s" = 1 ] && [ "$a" = 1 ]
}
wait_for 30 "one replica answers /sync 200, the other /async 200" one_sync
for r in "${R[@]}"; do
	if [ "$(code "$r" GET /sync)" = 200 ]; then S=$r; else A=$r; fi
done
expect "$S" /synchronous 200
expect "$S" /read-only-sync 200
expect "$S" /asynchronous 503
expect "$S" /quorum 503
expect "$A" /synchronous 503
expect "$A" /read-only-sync 503
expect "$A" /asynchronous 200
expect "$P" /sync 503
expect "$P" /read-only-sync 200
pass "synchronous mode: node$S is the synchronous standby, node$A asynchronous"

# 4. DELETE /switchover cancels a scheduled one.
at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
rest_call "$P" POST /switchover "{\"leader\":\"node$P\",\"scheduled_at\":\"$at\"}"
assert_eq 202 "$REST_CODE" "POST /switchover scheduled at $at"
[ -n "$(switchover_json)" ] || fail "no switchover key after a scheduled switchover"
REST_AUTH= rest_call "$P" DELETE /switchover
assert_eq 401 "$REST_CODE" "DELETE /switchover without credentials"
[ -n "$(switchover_json)" ] || fail "a refused DELETE /switchover removed the switchover key"
rest_call "$P" DELETE /switchover
assert_eq 200 "$REST_CODE" "DELETE /switchover"
switchover_gone || fail "the switchover key is still there: $(switchover_json)"
rest_call "$P" DELETE /switchover
assert_eq 404 "$REST_CODE" "DELETE /switchover with none pending"
assert_eq "node$P" "$(leader_name)" "the leader did not change"

# 5. HAProxy with Patroni's style of config (ports and timings only differ
# from Patroni's example).
command -v "$HAPROXY_BIN" >/dev/null 2>&1 || fail "haproxy is not installed ($HAPROXY_BIN)"
pick_port HAP_BARE
pick_port HAP_MASTER
{
	printf 'global\n    maxconn 100\n\n'
	printf 'defaults\n    mode tcp\n    retries 2\n    timeout client 30m\n    timeout connect 4s\n'
	printf '    timeout server 30m\n    timeout check 2s\n\n'
	for l in "bare $HAP_BARE" "master $HAP_MASTER OPTIONS /master"; do
		read -r name port chk <<<"$l"
		printf 'listen %s\n    bind 127.0.0.1:%s\n    option httpchk%s\n' "$name" "$port" "${chk:+ $chk}"
		printf '    http-check expect status 200\n'
		printf '    default-server inter 300ms fall 2 rise 1 on-marked-down shutdown-sessions\n'
		for n in 1 2 3; do
			printf '    server node%s 127.0.0.1:%s maxconn 100 check port %s check-ssl verify none\n' \
				"$n" "${PG_PORT[$n]}" "${API_PORT[$n]}"
		done
		printf '\n'
	done
} >"$T/haproxy.cfg"
"$HAPROXY_BIN" -c -q -f "$T/haproxy.cfg" >"$T/haproxy.check" 2>&1 || { cat "$T/haproxy.check"; fail "haproxy rejects the config"; }
"$HAPROXY_BIN" -db -f "$T/haproxy.cfg" >"$T/haproxy.out" 2>&1 &
HAPROXY_PID=$!
BG_PIDS+=("$HAPROXY_PID")
down_logged() {
	local l r
	for l in bare master; do
		for r in "${R[@]}"; do grep -q "$l/node$r is DOWN" "$T/haproxy.out" || return 1; done
	done
}
wait_for 15 "HAProxy marks both replicas DOWN in both listeners" down_logged
grep -q "/node$P is DOWN" "$T/haproxy.out" && fail "HAProxy marked the primary node$P DOWN: $(cat "$T/haproxy.out")"
# via PORT: the Postgres port that answers through HAProxy's PORT, and a write.
via() {
	# from $T: the caller's cwd (a CI clone under /root) may be unreadable to baton
	cd "$T" && setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
		env HOME="$BATON_HOME" PGPASSFILE="$PGPASSFILE" PGCONNECT_TIMEOUT=3 PGOPTIONS="-c client_min_messages=warning" \
		"$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres \
		-c "CREATE TABLE IF NOT EXISTS t36 (port int)" \
		-c "INSERT INTO t36 SELECT inet_server_port() RETURNING port" 2>&1
}
for l in "bare $HAP_BARE" "master $HAP_MASTER"; do
	read -r name port <<<"$l"
	for i in 1 2 3 4 5 6; do
		assert_eq "${PG_PORT[$P]}" "$(via "$port")" "write $i through HAProxy's $name listener acknowledged by the primary"
	done
done
assert_eq 12 "$(run_sql "$P" "SELECT count(*) FROM t36 WHERE port = ${PG_PORT[$P]}")" "the 12 writes are on the primary"
bg_stop "$HAPROXY_PID"

# 6. POST /reinitialize on a replica: accepted, its data directory is cloned
# afresh (a marker file left in the old one is gone), and it streams again.
r=$A
as_baton touch "$(data_dir "$r")/baton-it-36-marker" || fail "cannot leave a marker in node$r's data directory"
rest_call "$r" POST /reinitialize
assert_eq 202 "$REST_CODE" "POST /reinitialize on replica node$r"
recloned() { [ ! -e "$(data_dir "$r")/baton-it-36-marker" ] && [ "$(in_recovery "$r")" = t ]; }
wait_for 60 "node$r re-cloned (the marker is gone) and in recovery" recloned
wait_healthy 120
assert_eq "node$P" "$(leader_name)" "the leader did not change during the reinit"
wait_for 30 "node$r ready again" replica_ready "$r"
rest_call "$P" POST /reinitialize
assert_eq 409 "$REST_CODE" "POST /reinitialize on the leader"

# 7. GET /metrics: Patroni's series, valued against the live cluster
# (synchronous mode since part 3: node$S is the synchronous standby).
# metrics N: nodeN's /metrics answer into M[N].
declare -A M
metrics() {
	rest_call "$1" GET /metrics
	[ "$REST_CODE" = 200 ] || fail "GET /metrics on node$1: $REST_CODE $REST_BODY"
	M[$1]=$REST_BODY
}
# mval N NAME: the value of NAME{scope="$SCOPE",name="nodeN"} in M[N] ("" if absent).
mval() {
	awk -v p="$2{scope=\"$SCOPE\",name=\"node$1\"} " 'index($0, p) == 1 { print substr($0, length(p) + 1); exit }' <<<"${M[$1]}"
}
# bytes N LSN_EXPR: an LSN expression on nodeN in bytes.
bytes() { run_sql "$1" "SELECT ($2 - '0/0'::pg_lsn)::bigint"; }
patroni_series="patroni_version:gauge patroni_postgres_running:gauge patroni_postmaster_start_time:gauge
	patroni_master:gauge patroni_primary:gauge patroni_xlog_location:counter patroni_standby_leader:gauge
	patroni_replica:gauge patroni_sync_standby:gauge patroni_quorum_standby:gauge
	patroni_xlog_received_location:counter patroni_xlog_replayed_location:counter
	patroni_xlog_replayed_timestamp:gauge patroni_xlog_paused:gauge patroni_postgres_streaming:gauge
	patroni_postgres_in_archive_recovery:gauge patroni_postgres_server_version:gauge patroni_cluster_unlocked:gauge
	patroni_failsafe_mode_is_active:gauge patroni_postgres_timeline:counter patroni_dcs_last_seen:gauge
	patroni_pending_restart:gauge patroni_is_paused:gauge patroni_postgres_state:gauge"
# Fresh WAL everywhere: the positions below must be this write's, not older ones.
t_write=$(date +%s)
run_sql "$P" "CREATE TABLE IF NOT EXISTS t36m (at timestamptz); INSERT INTO t36m VALUES (now())" >/dev/null ||
	fail "cannot write on the primary node$P"
replayed() { [ "$(bytes "$1" "pg_last_wal_replay_lsn()")" -ge "$want_lsn" ]; }
want_lsn=$(bytes "$P" "pg_current_wal_lsn()")
for r in "${R[@]}"; do wait_for 20 "node$r replayed the write" replayed "$r"; done
# in_bounds N NAME LSN_EXPR: LSN_EXPR read before and after the scrape
# brackets the metric (the loop publishes every loop_wait; retried until a
# snapshot newer than the write is served).
in_bounds() {
	local lo hi v
	lo=$(bytes "$1" "$3") && metrics "$1" && v=$(mval "$1" "$2") && hi=$(bytes "$1" "$3") || return 1
	[[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge "$want_lsn" ] && [ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ]
}
wait_for 15 "node$P's patroni_xlog_location within pg_current_wal_lsn read before and after" \
	in_bounds "$P" patroni_xlog_location "pg_current_wal_lsn()"
for r in "${R[@]}"; do
	wait_for 15 "node$r's patroni_xlog_replayed_location within pg_last_wal_replay_lsn read before and after" \
		in_bounds "$r" patroni_xlog_replayed_location "pg_last_wal_replay_lsn()"
	wait_for 15 "node$r's patroni_xlog_received_location within pg_last_wal_receive_lsn read before and after" \
		in_bounds "$r" patroni_xlog_received_location "pg_last_wal_receive_lsn()"
done
pass "patroni_xlog_location (primary) and received/replayed locations (replicas) equal Postgres' LSNs in bytes"
# Patroni's form of baton's version: "0.1.0" -> "000100".
version=$(as_baton "$BATON_BUILD/batonctl" --version 2>/dev/null | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 |
	awk -F. '{ printf "%02d%02d%02d", $1, $2, $3 }')
[ -n "$version" ] || fail "batonctl --version prints no version"
for n in "$P" "${R[@]}"; do
	metrics "$n"
	now=$(date +%s)
	for s in $patroni_series; do
		name=${s%%:*} type=${s##*:}
		grep -qx "# TYPE $name $type" <<<"${M[$n]}" || fail "node$n /metrics: no \"# TYPE $name $type\""
		grep -q "^# HELP $name " <<<"${M[$n]}" || fail "node$n /metrics: no HELP for $name"
		[[ "$(mval "$n" "$name")" =~ ^-?[0-9]+(\.[0-9]+)?$ ]] ||
			fail "node$n /metrics: no numeric $name{scope=\"$SCOPE\",name=\"node$n\"}: $(grep "^$name" <<<"${M[$n]}")"
	done
	unlabelled=$(grep -v '^#' <<<"${M[$n]}" | grep -Ev "^(patroni|baton)_[a-z_]+\\{scope=\"$SCOPE\",name=\"node$n\"[,}]" || true)
	[ -z "$unlabelled" ] || fail "node$n /metrics: samples without scope and name first: $unlabelled"
	assert_eq "$version" "$(mval "$n" patroni_version)" "node$n patroni_version (baton's version, padded)"
	if [ "$n" = "$P" ]; then role="1 1 0 0 0 0"; else role="0 0 1 0 0 1"; fi
	assert_eq "$role" "$(for x in patroni_primary patroni_master patroni_replica patroni_standby_leader patroni_quorum_standby patroni_postgres_streaming; do mval "$n" "$x"; done | xargs)" \
		"node$n patroni_primary, _master, _replica, _standby_leader, _quorum_standby, _postgres_streaming"
	if [ "$n" = "$S" ]; then want=1; else want=0; fi
	assert_eq "$want" "$(mval "$n" patroni_sync_standby)" "node$n patroni_sync_standby"
	assert_eq "1 0 0 0 0 0 0 5" "$(for x in patroni_postgres_running patroni_cluster_unlocked patroni_failsafe_mode_is_active patroni_pending_restart patroni_is_paused patroni_xlog_paused patroni_postgres_in_archive_recovery patroni_postgres_state; do mval "$n" "$x"; done | xargs)" \
		"node$n running, unlocked, failsafe, pending_restart, paused, xlog_paused, archive recovery, state"
	assert_eq "$(timeline "$n")" "$(mval "$n" patroni_postgres_timeline)" "node$n patroni_postgres_timeline"
	v=$(mval "$n" patroni_postgres_server_version)
	assert_eq "$(run_sql "$n" "SHOW server_version_num")" "$v" "node$n patroni_postgres_server_version"
	[ "$v" -ge 150000 ] || fail "node$n patroni_postgres_server_version $v < 150000"
	assert_eq "$(run_sql "$n" "SELECT floor(extract(epoch FROM pg_postmaster_start_time()))")" \
		"$(mval "$n" patroni_postmaster_start_time | cut -d. -f1)" "node$n patroni_postmaster_start_time (seconds)"
	seen=$(mval "$n" patroni_dcs_last_seen)
	[[ "$seen" =~ ^[0-9]+$ ]] && [ $((now - seen)) -le 10 ] && [ "$seen" -le "$now" ] ||
		fail "node$n patroni_dcs_last_seen $seen, now $now"
	if [ "$n" = "$P" ]; then
		assert_eq "0 0 0" "$(for x in patroni_xlog_received_location patroni_xlog_replayed_location patroni_xlog_replayed_timestamp; do mval "$n" "$x"; done | xargs)" \
			"node$n (primary) received/replayed locations and replayed timestamp are 0"
	else
		assert_eq 0 "$(mval "$n" patroni_xlog_location)" "node$n (replica) patroni_xlog_location"
		# the write's commit time, or a later commit's: between the write
		# and what Postgres says now
		ts=$(mval "$n" patroni_xlog_replayed_timestamp)
		cur=$(run_sql "$n" "SELECT ceil(extract(epoch FROM pg_last_xact_replay_timestamp()))")
		[[ "$ts" =~ ^[0-9]+\.[0-9]+$ ]] && [ "${ts%%.*}" -ge $((t_write - 1)) ] && [ "${ts%%.*}" -le "$cur" ] ||
			fail "node$n patroni_xlog_replayed_timestamp $ts: not between the write ($t_write) and pg_last_xact_replay_timestamp ($cur)"
		pass "node$n patroni_xlog_replayed_timestamp $ts: the write's commit (written at $t_write; Postgres says $cur)"
	fi
done
pass "every Patroni series on every node, labelled with scope and name, valued as Postgres and etcd say"

# Maintenance mode shows as patroni_is_paused (and baton_paused) on every node.
ctl pause >/dev/null || fail "batonctl pause"
all_paused() {
	local n
	for n in "$P" "${R[@]}"; do
		metrics "$n"
		[ "$(mval "$n" patroni_is_paused) $(mval "$n" baton_paused)" = "1 1" ] || return 1
	done
}
wait_for 15 "patroni_is_paused 1 on every node" all_paused
ctl resume >/dev/null || fail "batonctl resume"
none_paused() {
	local n
	for n in "$P" "${R[@]}"; do
		metrics "$n"
		[ "$(mval "$n" patroni_is_paused)" = 0 ] || return 1
	done
}
wait_for 15 "patroni_is_paused 0 again on every node" none_paused
