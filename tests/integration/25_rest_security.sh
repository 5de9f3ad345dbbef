#!/bin/bash
# 25_rest_security: the REST API as an attacker meets it (issue 10), against
# a real two-node cluster. node1 serves HTTPS (a CA made with openssl for
# this run) with basic-auth credentials; node2 serves plain HTTP with the
# same credentials set, which can never authorise a write there.
#
# Each attack is sent with curl (or raw bytes through bash's /dev/tcp) and
# must get its refusal: every write endpoint without credentials (401 on
# node1, 403 naming restapi.certfile on node2) and nothing changed in etcd
# or Postgres; basic auth over plain HTTP (403 naming restapi.certfile); a
# text/plain write with valid credentials (415); a foreign Host (421) and a
# foreign Origin (403); HTTP/1.1 without Host and conflicting
# Content-Length (400). The right credentials over TLS do write, and each
# write is logged with the client's address and user. Then 300 idle and 50
# slow-header connections from loopback (tests/tools/restload) must leave
# /health answering 200 within a second, the slow ones closed by the header
# deadline. Last, node2 comes back with restapi.verify_client = "required":
# no client certificate, or one the CA did not sign, gets nothing; the CA's
# client certificate reads and writes.
# This scenario makes its own CA and credentials: the harness's TLS is off.
REST_TLS=0
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init rest_security

command -v openssl >/dev/null || fail "openssl is not installed (apt-get install openssl)"
[ -x "$BATON_BUILD/tests/tools/restload" ] || fail "$BATON_BUILD/tests/tools/restload is missing"

API_USER=admin
API_PASS=rest-secret-$$
PKI=$T/pki

# ---- a CA, the nodes' server certificate, a client certificate, a rogue one
mkdir -p "$PKI"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
(
	cd "$PKI" &&
		openssl req -x509 "${ec[@]}" -subj /CN=it-rest-ca -days 2 -keyout ca.key -out ca.pem &&
		openssl req "${ec[@]}" -subj /CN=localhost -keyout server.key -out server.csr &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext &&
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
			-extfile server.ext -out server.pem &&
		openssl req "${ec[@]}" -subj /CN=operator -keyout client.key -out client.csr &&
		printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
			-extfile client.ext -out client.pem &&
		openssl req -x509 "${ec[@]}" -subj /CN=rogue -days 2 -keyout rogue.key -out rogue.pem
) >"$T/openssl.log" 2>&1 || fail "openssl could not make the test PKI (see $T/openssl.log)"
chown -R "$BATON_USER:" "$PKI"
chmod 600 "$PKI"/*.key

# restapi_set N TEXT: adds settings at the head of nodeN's restapi group.
restapi_set() {
	local f=$T/node$1.conf
	grep -q '^restapi = {' "$f" || fail "node$1.conf has no restapi group"
	sed -i "s|^restapi = {|restapi = { $2|" "$f"
}

CREDS="authentication = { username = \"$API_USER\"; password = \"$API_PASS\"; };"
TLS="certfile = \"$PKI/server.pem\"; keyfile = \"$PKI/server.key\"; cafile = \"$PKI/ca.pem\";"

etcd_start
node_config 1
node_config 2
restapi_set 1 "$TLS $CREDS"
# node2 knows the CA, to verify node1's REST API before it follows node1.
restapi_set 2 "$CREDS cafile = \"$PKI/ca.pem\";"
chmod 600 "$T/node1.conf" "$T/node2.conf"
# node1 leads: a node serving TLS (node1) confirms a member's Postgres
# address only through an https REST API (agent/member_verify.h), so it
# would not follow node2, and it creates no replication slot for node2,
# whose plain-http api_url proves nothing: node2 runs as a replica that
# cannot stream (its slot is missing), which this scenario does not need.
agent_start 1
node1_leads() { [ "$(leader_name)" = node1 ]; }
wait_for 60 "node1 holds the leader key" node1_leads
agent_start 2
wait_healthy 90 2
grep -q "WARN .*the REST API runs without TLS (restapi.certfile unset): before sending a password to a member's Postgres, this node confirms the member's address through the member's REST API, and over plain http that answer proves little" \
	"$(agent_log 2)" || fail "node2 (plain http) did not warn at start that its address confirmations prove little"
[ "$(grep -c "the REST API runs without TLS" "$(agent_log 2)")" = 1 ] || fail "node2 said it more than once"
grep -q "the REST API runs without TLS" "$(agent_log 1)" && fail "node1 (TLS) warned about running without TLS"
pass "node2 (plain http) warned once at start that confirming addresses over http proves little"
node2_replica() { [ "$(in_recovery 2)" = t ]; }
wait_for 60 "node2 runs as a replica" node2_replica
wait_for 20 "node1 refuses node2's plain-http api_url with a WARN" grep -q \
	"member node2 publishes Postgres at 127.0.0.1:${PG_PORT[2]} and a REST API at http://127.0.0.1:${API_PORT[2]}, which is not https while this node runs TLS: its address cannot be confirmed; not connecting to its Postgres with any credential: creates no replication slot for it" \
	"$(agent_log 1)"

base() { if [ "$1" = 1 ]; then echo "https://127.0.0.1:${API_PORT[1]}"; else echo "http://127.0.0.1:${API_PORT[$1]}"; fi; }

# req N METHOD PATH [CURL ARGS...]: sets CODE (000: no answer) and BODY.
CODE=
BODY=
req() {
	local n=$1 m=$2 path=$3 out
	shift 3
	rm -f "$T/body"
	out=$(curl -s --noproxy '*' -m 5 -X "$m" -o "$T/body" -w '%{http_code}' --cacert "$PKI/ca.pem" \
		"$@" "$(base "$n")$path" 2>/dev/null) || true
	CODE=${out:-000}
	BODY=$(cat "$T/body" 2>/dev/null)
}
JSON=(-H 'Content-Type: application/json')
AUTH=(-u "$API_USER:$API_PASS")

# expect CODE SUBSTRING WHAT: the last answer.
expect() {
	[ "$CODE" = "$1" ] || fail "$3: expected HTTP $1, got $CODE ($BODY)"
	[ -z "$2" ] || grep -qF -- "$2" <<<"$BODY" || fail "$3: the answer lacks '$2': $BODY"
	pass "$3: $CODE ${BODY:0:140}"
}

# raw N BYTES: sends raw bytes to nodeN (plain HTTP) and prints the status line.
raw() {
	local port=${API_PORT[$1]} line
	exec 7<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to port $port"
	printf '%b' "$2" >&7
	line=$(timeout 5 head -n 1 <&7 | tr -d '\r') || true
	exec 7>&- 7<&-
	echo "$line"
}

# What must not change: the config key (value and revision), the leader,
# no switchover key, each node's postmaster and its role.
state() {
	local n
	etcdctl_ get -w json "$NAMESPACE/$SCOPE/config" | jq -c '[.kvs[0].value, .kvs[0].mod_revision]'
	echo "leader=$(leader_name) switchover=$(switchover_json)"
	for n in 1 2; do echo "node$n postmaster=$(postmaster_pid "$n") in_recovery=$(in_recovery "$n")"; done
}
before=$(state)
log "state before the attacks: $(tr '\n' ' ' <<<"$before")"

# ---- 1. every write endpoint without credentials
PAYLOAD='{"postgresql":{"parameters":{"archive_cleanup_command":"touch /tmp/baton-pwned-'$$'"}}}'
writes=("PATCH /config $PAYLOAD" "POST /restart {}" "POST /switchover {}" 'POST /failover {"candidate":"node2"}'
	"POST /reinit {}" "POST /reload {}")
for w in "${writes[@]}"; do
	read -r m path body <<<"$w"
	req 1 "$m" "$path" "${JSON[@]}" --data-binary "$body"
	expect 401 "restapi.authentication" "node1 (HTTPS): unauthenticated $m $path"
	req 2 "$m" "$path" "${JSON[@]}" --data-binary "$body"
	expect 403 "restapi.certfile" "node2 (HTTP): unauthenticated $m $path"
	# basic auth over plain HTTP never authorises a write
	req 2 "$m" "$path" "${JSON[@]}" "${AUTH[@]}" --data-binary "$body"
	expect 403 "restapi.certfile" "node2 (HTTP): $m $path with the right credentials in clear"
done
req 1 POST /restart "${JSON[@]}" -u "$API_USER:wrong" --data-binary '{}'
expect 401 "" "node1: wrong password"

# ---- 2. CSRF and DNS rebinding, with valid credentials
req 1 POST /reload -H 'Content-Type: text/plain' "${AUTH[@]}" --data-binary '{}'
expect 415 "application/json" "node1: text/plain POST with valid credentials"
req 1 POST /reload "${AUTH[@]}" --data-binary '{}'
expect 415 "application/json" "node1: form-encoded POST with valid credentials"
req 1 POST /restart "${JSON[@]}" "${AUTH[@]}" -H 'Origin: https://attacker.example' --data-binary '{}'
expect 403 "Origin" "node1: write with a foreign Origin"
req 1 PATCH /config "${JSON[@]}" "${AUTH[@]}" -H 'Origin: null' --data-binary '{"loop_wait":2}'
expect 403 "Origin" "node1: write with Origin null"
req 1 GET /cluster -H 'Host: attacker.example'
expect 421 "restapi.allowed_hosts" "node1: read with a foreign Host (DNS rebinding)"
req 1 POST /reload "${JSON[@]}" "${AUTH[@]}" -H "Host: attacker.example:${API_PORT[1]}" --data-binary '{}'
expect 421 "attacker.example" "node1: write with a foreign Host"
req 2 GET /health -H 'Host: rebind.attacker.example'
expect 421 "" "node2: health check with a foreign Host"

# ---- 3. HTTP hygiene on the wire
line=$(raw 2 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n')
assert_eq "HTTP/1.1 400 Bad Request" "$line" "node2: HTTP/1.1 without Host"
# (headers only: the server answers before any body, and a body it never
# reads could turn its close into a reset that discards the answer)
line=$(raw 2 "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 30\r\nConnection: close\r\n\r\n")
assert_eq "HTTP/1.1 400 Bad Request" "$line" "node2: conflicting Content-Length"
line=$(raw 2 "POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
assert_eq "HTTP/1.1 400 Bad Request" "$line" "node2: Content-Length with Transfer-Encoding"
line=$(raw 2 'GET /health HTTP/1.0\r\n\r\n')
[[ "$line" =~ ^HTTP/1\.[01]\ 200 ]] || fail "node2: HTTP/1.0 without Host: expected 200, got '$line'"
pass "node2: HTTP/1.0 without Host is fine ($line)"

# ---- nothing changed
sleep 2 # two loops: a queued restart or reinit would have started by now
after=$(state)
[ "$before" = "$after" ] || fail "the refused requests changed something: before [$before] after [$after]"
pass "nothing changed: $(tr '\n' ' ' <<<"$after")"
[ ! -e "/tmp/baton-pwned-$$" ] || fail "the archive_cleanup_command of the attack ran"
grep -q 'archive_cleanup_command' <<<"$(config_json)" && fail "the config key holds the attack's parameter"
pass "the attack's archive_cleanup_command is nowhere"

# ---- reads stay open
req 1 GET /health
expect 200 "" "node1: /health without credentials"
req 2 GET /cluster
expect 200 '"members"' "node2: /cluster without credentials"

# ---- the right credentials over TLS write, and every write is logged
req 1 POST /reload "${JSON[@]}" "${AUTH[@]}" -H "Origin: https://127.0.0.1:${API_PORT[1]}" --data-binary '{}'
expect 202 '"reload"' "node1: POST /reload with credentials over TLS (same Origin)"
req 1 PATCH /config "${JSON[@]}" "${AUTH[@]}" --data-binary '{"maximum_lag_on_failover":2097152}'
expect 200 '2097152' "node1: PATCH /config with credentials over TLS"
l1=$(agent_log 1)
l2=$(agent_log 2)
wait_for 5 "the accepted write in node1's log" \
	grep -q "REST API: PATCH /config from 127.0.0.1 (user $API_USER): authorized, answered 200" "$l1"
grep -q "REST API: POST /restart from 127.0.0.1 (user anonymous): refused, 401" "$l1" ||
	fail "node1's log lacks the refused unauthenticated restart"
grep -q "REST API: POST /restart from 127.0.0.1 (user $API_USER): refused, 403 .*Origin" "$l1" ||
	fail "node1's log lacks the refused foreign-Origin restart"
grep -q "REST API: POST /reinit from 127.0.0.1 (user $API_USER): refused, 403 .*restapi.certfile" "$l2" ||
	fail "node2's log lacks the refused clear-text reinit"
pass "each write is logged once with address and user ($(grep -c 'REST API: [A-Z]* /[a-z]* from ' "$l1") lines on node1)"
grep -q "WARN .*REST API: writes are refused: this node serves plain HTTP" "$l2" ||
	fail "node2 did not warn at start that it refuses every write"
pass "node2 warned at start: $(grep -o 'writes are refused: [^;]*' "$l2" | head -1)"
grep -q "REST API: writes are refused:" "$l1" && fail "node1 (TLS + credentials) warned that it refuses writes"

# ---- a flood of refused writes does not flood the log: at most 100 lines
# per 10 s one by one, the rest counted in one line when the next comes.
before=$(grep -c 'REST API: POST /switchover from .*: refused, 401' "$l1")
urls=()
for i in $(seq 1 300); do urls+=(-o /dev/null "$(base 1)/switchover"); done
curl -s --noproxy '*' -m 60 --cacert "$PKI/ca.pem" -X POST "${JSON[@]}" --data-binary '{}' "${urls[@]}" >/dev/null 2>&1
after=$(grep -c 'REST API: POST /switchover from .*: refused, 401' "$l1")
[ $((after - before)) -le 100 ] || fail "300 refused writes made $((after - before)) log lines on node1"
[ $((after - before)) -ge 1 ] || fail "the refused writes were not logged at all"
sleep 10.5
req 1 POST /switchover "${JSON[@]}" --data-binary '{}'
expect 401 '' "node1: one more unauthenticated POST /switchover after the window"
wait_for 5 "node1 counts the refused writes it did not log one by one" \
	grep -Eq "REST API: [0-9]+ more refused writes in the last 10 s not logged one by one \(the last from 127.0.0.1\)" "$l1"
pass "300 refused writes: $((after - before)) lines, then: $(grep -Eo '[0-9]+ more refused writes in the last 10 s' "$l1" | tail -1)"

# ---- 4. slow clients: 300 idle + 50 trickling headers against node2 (plain HTTP)
out=$("$BATON_BUILD/tests/tools/restload" --url "$(base 2)/health" --idle 300 --slow 50 --warmup 2 \
	--duration 8 --interval 200 --trickle 500 --max-latency 1000 2>&1)
rc=$?
grep -E '^(held|probes|latency)' <<<"$out" | sed 's/^/restload: /'
[ "$rc" = 0 ] || fail "/health did not answer 200 within 1 s under 300 idle + 50 slow connections: $(grep -v '^probe .* 200 ' <<<"$out" | head -5)"
slow_re=$(sed -n 's/.* reconnects idle=[0-9]* slow=\([0-9]*\).*/\1/p' <<<"$out")
[ "${slow_re:-0}" -ge 50 ] || fail "the header deadline closed only ${slow_re:-0} slow connections in 10 s (want >= 50)"
pass "under 300 idle + 50 slow connections every /health answered 200 within 1 s; the deadline closed $slow_re slow ones"

# ---- 5. node2 with restapi.verify_client = "required"
agent_stop 2
node_config 2
restapi_set 2 "$TLS verify_client = \"required\";"
agent_start 2
cert_ok() { req 2 GET /health --cert "$PKI/client.pem" --key "$PKI/client.key" && [ "$CODE" = 200 ]; }
base() { echo "https://127.0.0.1:${API_PORT[$1]}"; } # both nodes serve HTTPS now
wait_for 60 "node2's HTTPS API answers a client with a certificate" cert_ok
req 2 GET /health
[ "$CODE" = 000 ] || [ "$CODE" = 403 ] || fail "verify_client required: a client without a certificate got $CODE ($BODY)"
pass "verify_client required: no client certificate, no answer ($CODE)"
req 2 POST /reload "${JSON[@]}" --cert "$PKI/rogue.pem" --key "$PKI/rogue.key" --data-binary '{}'
[ "$CODE" = 000 ] || [ "$CODE" = 403 ] || fail "verify_client required: a rogue certificate got $CODE ($BODY)"
pass "verify_client required: a certificate the CA did not sign gets nothing ($CODE)"
req 2 POST /reload "${JSON[@]}" --cert "$PKI/client.pem" --key "$PKI/client.key" --data-binary '{}'
expect 202 '"reload"' "verify_client required: the CA's client certificate writes"
wait_for 5 "the certificate's subject in node2's log" \
	grep -q "REST API: POST /reload from 127.0.0.1 (user CN=operator): authorized, answered 202" "$(agent_log 2)"
# TLS 1.1 is not offered
req 2 GET /health --cert "$PKI/client.pem" --key "$PKI/client.key" --tlsv1.0 --tls-max 1.1
assert_eq 000 "$CODE" "node2: a TLS 1.1 client gets no answer"
