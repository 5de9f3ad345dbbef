#!/bin/bash
# tests/compat/patroni_side_by_side.sh - baton's REST API against the real
# Patroni's (issue 13), side by side, on one etcd.
# needs packages: patroni python3-psycopg2
#
# A 3-node Patroni 3.0.2 cluster (Debian's `patroni`, scope A under
# /patroni; nodes 4-6) and a 3-node baton cluster (scope B under /baton;
# nodes 1-3) run on the same etcd, both in synchronous mode with
# synchronous_node_count 1, so each has a primary, a synchronous standby and
# an asynchronous replica. Both REST APIs serve https with the test's
# certificate and require the same basic-auth credentials for writes.
# After one switchover in each cluster (so /history is not empty), the same
# requests (tests/compat/requests.txt) go to the node of the same role on
# each side: health paths with GET, HEAD and OPTIONS (with filters), the
# JSON views, and the write verbs with input that changes nothing. For each
# request the status codes are compared, and for GET the body: plain text
# or JSON, and then the set of JSON field paths with their JSON types (array
# indices folded to []), never the values.
#
# Every difference is a line
#     code ROLE METHOD PATH patroni=CODE baton=CODE
#     body ROLE METHOD PATH patroni=KIND baton=KIND        (KIND: text, json, empty)
#     field ROLE METHOD PATH only-patroni|only-baton .PATH:TYPE
# (tests/compat/compare.py finds them) and must match an entry of
# tests/compat/allowed_differences.txt, which
# gives each accepted difference its reason (the README's "Patroni
# compatibility" section refers to that file, the one list). An entry is a
# pattern: `*` matches any text, everything else literally. The test fails
# on any difference no entry matches, and on an entry that matches no
# difference any more (so the list stays true). All differences seen are
# written to $T/differences.txt (kept with KEEP=1).
#
# Runs as root (the harness switches to the baton user); BATON_BUILD as in
# tests/lib/cluster.sh. Exits 77 (SKIP) when Patroni is not installed.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../lib/cluster.sh"
. "$here/../bench/patroni.sh"

ALLOWED=${ALLOWED:-$here/allowed_differences.txt}
REQUESTS=${REQUESTS:-$here/requests.txt}

cluster_init patroni_compat
PATRONI_VERSION=$(patroni_check) || skip "$PATRONI_VERSION"
log "comparing with $PATRONI_VERSION"
[ -r "$ALLOWED" ] || fail "cannot read $ALLOWED"
[ -r "$REQUESTS" ] || fail "cannot read $REQUESTS"

BATON_SCOPE=B
PATRONI_SCOPE=A
BATON_NODES=(1 2 3)
PATRONI_NODES=(4 5 6)

etcd_start
rest_make_certs

# Baton, scope B: synchronous mode from the bootstrap config on.
SCOPE=$BATON_SCOPE
for n in "${BATON_NODES[@]}"; do
	node_config "$n"
	sed -i 's/^    maximum_lag_on_failover = \(.*\);$/&\n    synchronous_mode = true;\n    synchronous_node_count = 1;/' "$T/node$n.conf"
	grep -q 'synchronous_mode = true' "$T/node$n.conf" || fail "cannot set synchronous_mode in node$n.conf"
done
# Patroni, scope A: the same REST certificate and credentials, synchronous mode.
SCOPE=$PATRONI_SCOPE
for n in "${PATRONI_NODES[@]}"; do
	patroni_config "$n"
	f=$(patroni_conf "$n")
	{
		sed -n '1,/^restapi:/p' "$f"
		printf "  certfile: '%s'\n  keyfile: '%s'\n" "$REST_TLS_DIR/server.pem" "$REST_TLS_DIR/server-key.pem"
		# the CA Patroni verifies its peers' REST APIs with
		printf "  cafile: '%s'\n" "$REST_TLS_DIR/ca.pem"
		printf "  authentication:\n    username: '%s'\n    password: '%s'\n" "$REST_USER" "$REST_PASSWORD"
		sed -n '/^restapi:/,$p' "$f" | sed 1d |
			sed "s/^    maximum_lag_on_failover: .*/&\n    synchronous_mode: true\n    synchronous_node_count: 1/"
	} >"$f.new"
	mv "$f.new" "$f"
	chown "$BATON_USER:" "$f"
	chmod 600 "$f"
	grep -q 'synchronous_mode: true' "$f" || fail "cannot set synchronous_mode in $f"
done
SCOPE=$BATON_SCOPE

for n in "${BATON_NODES[@]}"; do agent_start "$n"; done
for n in "${PATRONI_NODES[@]}"; do patroni_start "$n"; done

# side_nodes SIDE: the node numbers of a side (baton or patroni).
side_nodes() { if [ "$1" = baton ]; then echo "${BATON_NODES[*]}"; else echo "${PATRONI_NODES[*]}"; fi; }

# side_roles SIDE: sets ROLE_primary, ROLE_sync, ROLE_async to the nodes that
# answer /primary, /sync and /async 200 (one each), or returns 1.
side_roles() {
	local n p= s= a= np=0 ns=0 na=0
	for n in $(side_nodes "$1"); do
		[ "$(rest_code "$n" /primary)" = 200 ] && p=$n np=$((np + 1))
		[ "$(rest_code "$n" /sync)" = 200 ] && s=$n ns=$((ns + 1))
		[ "$(rest_code "$n" /async)" = 200 ] && a=$n na=$((na + 1))
	done
	[ "$np$ns$na" = 111 ] || return 1
	ROLE_primary=$p ROLE_sync=$s ROLE_async=$a
}

# history_len N: entries in nodeN's GET /history (0 when unreadable).
history_len() {
	rest_call "$1" GET /history
	[ "$REST_CODE" = 200 ] && jq -e 'type == "array"' <<<"$REST_BODY" >/dev/null 2>&1 || { echo 0; return; }
	jq length <<<"$REST_BODY"
}

# switched SIDE OLD NEW: NEW is the primary, OLD a replica again, the roles
# are settled and the history has an entry.
switched() {
	side_roles "$1" || return 1
	[ "$ROLE_primary" = "$3" ] && [ "$ROLE_primary" != "$2" ] && [ "$(history_len "$3")" -ge 1 ]
}

declare -A PRIMARY_OF SYNC_OF ASYNC_OF OLD_OF NEW_OF
for side in baton patroni; do
	wait_for 120 "$side: a primary, a synchronous standby and an asynchronous replica" side_roles "$side"
	OLD_OF[$side]=$ROLE_primary NEW_OF[$side]=$ROLE_sync
done
# One switchover in each (baton's answers at once, Patroni's when done).
for side in baton patroni; do
	old=${OLD_OF[$side]} new=${NEW_OF[$side]}
	# Patroni answers when the switchover is done (so a long timeout), and
	# refuses (412) until it has seen the candidate's state: a bounded retry.
	switch_asked() {
		REST_TIMEOUT=60 rest_call "$old" POST /switchover "{\"leader\":\"node$old\",\"candidate\":\"node$new\"}"
		case $REST_CODE in 200 | 202) return 0 ;; 412) return 1 ;; esac
		fail "$side: POST /switchover node$old -> node$new answered $REST_CODE: $REST_BODY"
	}
	poll_until 30 switch_asked || fail "$side: POST /switchover node$old -> node$new answered $REST_CODE: $REST_BODY"
	log "$side: switchover node$old -> node$new answered $REST_CODE"
done
for side in baton patroni; do
	old=${OLD_OF[$side]} new=${NEW_OF[$side]}
	wait_for 90 "$side: node$new leads after the switchover, roles settled, /history not empty" switched "$side" "$old" "$new"
done
for side in baton patroni; do
	wait_for 60 "$side: roles settled" side_roles "$side"
	PRIMARY_OF[$side]=$ROLE_primary SYNC_OF[$side]=$ROLE_sync ASYNC_OF[$side]=$ROLE_async
	log "$side: primary node$ROLE_primary, sync standby node$ROLE_sync, async replica node$ROLE_async"
done

# One committed write on each primary, replayed by both replicas (so a
# replica's xlog.replayed_timestamp is a time, not null, on both sides).
replayed() {
	local n=$1
	rest_call "$n" GET /patroni
	[ "$REST_CODE" = 200 ] && jq -e '.xlog.replayed_timestamp | type == "string"' <<<"$REST_BODY" >/dev/null 2>&1
}
for side in baton patroni; do
	run_sql "${PRIMARY_OF[$side]}" "CREATE TABLE IF NOT EXISTS compat_write (at timestamptz); INSERT INTO compat_write VALUES (now())" >/dev/null ||
		fail "$side: cannot write on the primary node${PRIMARY_OF[$side]}"
	for n in "${SYNC_OF[$side]}" "${ASYNC_OF[$side]}"; do
		wait_for 30 "$side: node$n replayed the write (xlog.replayed_timestamp)" replayed "$n"
	done
done

# node_of SIDE ROLE
node_of() {
	case $2 in
	primary) echo "${PRIMARY_OF[$1]}" ;;
	sync) echo "${SYNC_OF[$1]}" ;;
	async) echo "${ASYNC_OF[$1]}" ;;
	esac
}

# expand SIDE TEXT: @LEADER@ and @SYNC@ become the side's member names.
expand() {
	local t=$2
	t=${t//@LEADER@/node$(node_of "$1" primary)}
	t=${t//@SYNC@/node$(node_of "$1" sync)}
	echo "$t"
}

MANIFEST=$T/manifest.tsv
DIFFS=$T/differences.txt
mkdir -p "$T/bodies"
# The requests: ROLES METHOD PATH BODY AUTH (BODY "-" for none; AUTH auth or
# noauth); ROLES a comma list of primary, sync, async or "all". One entry
# per role.
declare -a R_ROLE=() R_METHOD=() R_PATH=() R_BODY=() R_AUTH=()
while read -r roles method path body auth; do
	[ -n "$roles" ] && [[ "$roles" != \#* ]] || continue
	[ -n "$auth" ] || fail "$REQUESTS: a line without AUTH: $roles $method $path $body"
	[ "$roles" = all ] && roles=primary,sync,async
	for role in ${roles//,/ }; do
		R_ROLE+=("$role") R_METHOD+=("$method") R_PATH+=("$path") R_BODY+=("$body") R_AUTH+=("$auth")
	done
done <"$REQUESTS"
n_req=${#R_ROLE[@]}

# ask SIDE ROLE: every request for ROLE to that node of SIDE, in one curl
# (--next between requests: one TLS connection); bodies to
# $T/bodies/I.SIDE, the codes into CODE_SIDE[I] (000: no answer).
declare -a CODE_patroni=() CODE_baton=()
ask() {
	local side=$1 role=$2 n i args=() idx=() codes c k=0 url
	n=$(node_of "$side" "$role")
	url=$(rest_url "$n")
	for i in "${!R_ROLE[@]}"; do
		[ "${R_ROLE[$i]}" = "$role" ] || continue
		[ "${#idx[@]}" = 0 ] || args+=(--next)
		idx+=("$i")
		args+=(-s --noproxy '*' --cacert "$REST_TLS_DIR/ca.pem" -m 5 -o "$T/bodies/$i.$side" -w '%{http_code}\n')
		if [ "${R_METHOD[$i]}" = HEAD ]; then args+=(-I); else args+=(-X "${R_METHOD[$i]}"); fi
		if [ "${R_BODY[$i]}" != - ]; then
			args+=(-H 'Content-Type: application/json' --data-binary "$(expand "$side" "${R_BODY[$i]}")")
		elif [[ "${R_METHOD[$i]}" =~ ^(POST|PUT|PATCH|DELETE)$ ]]; then
			args+=(-H 'Content-Type: application/json')
		fi
		[ "${R_AUTH[$i]}" = noauth ] || args+=(-u "$REST_USER:$REST_PASSWORD")
		args+=("$url$(expand "$side" "${R_PATH[$i]}")")
	done
	[ "${#idx[@]}" -gt 0 ] || return 0
	codes=$(curl "${args[@]}" 2>/dev/null)
	while read -r c; do
		[ "$k" -lt "${#idx[@]}" ] || break
		printf -v "CODE_${side}[${idx[$k]}]" '%s' "$c"
		k=$((k + 1))
	done <<<"$codes"
}

t0=$(now_ms)
for side in patroni baton; do
	for role in primary sync async; do ask "$side" "$role"; done
done
for i in "${!R_ROLE[@]}"; do
	for side in patroni baton; do [ -f "$T/bodies/$i.$side" ] || : >"$T/bodies/$i.$side"; done
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${R_ROLE[$i]}" "${R_METHOD[$i]}" "${R_PATH[$i]}" \
		"${CODE_patroni[$i]:-000}" "$T/bodies/$i.patroni" "${CODE_baton[$i]:-000}" "$T/bodies/$i.baton"
done >"$MANIFEST"
log "$n_req requests sent to each side in $(($(now_ms) - t0)) ms"
# The writes above were refused or changed nothing: both leaders stayed.
for side in baton patroni; do
	side_roles "$side" || fail "$side: the roles changed during the comparison"
	assert_eq "${PRIMARY_OF[$side]}" "$ROLE_primary" "$side: the primary did not change during the comparison"
done

python3 "$here/compare.py" "$MANIFEST" "$ALLOWED" "$DIFFS" >"$T/compare.out" 2>&1
rc=$?
cat "$T/compare.out"
[ "$rc" = 0 ] || fail "baton's REST API differs from Patroni $PATRONI_VERSION beyond $(basename "$ALLOWED") (all differences: $DIFFS)"
pass "baton's REST API answers as Patroni's does, but for the differences listed in $(basename "$ALLOWED") ($n_req requests per side: $(tail -n1 "$T/compare.out"))"
