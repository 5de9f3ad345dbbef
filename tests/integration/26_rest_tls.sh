#!/bin/bash
# 26_rest_tls: the REST API end to end over TLS, on the client side (issue 10).
#  1. With restapi.certfile every member key publishes https://connect_address.
#  2. The primary's node is killed: the failover's peer /status checks go over
#     verified https and succeed (the candidate logs "answered over https
#     (certificate verified)" for the surviving peer, never "unreachable").
#  3. batonctl with the right CA restarts a replica over https with the
#     credentials; with a wrong CA it fails with a verification error and the
#     replica's Postgres is not restarted.
#  4. A member key with api_url file:///etc/passwd or dict://127.0.0.1:PORT:
#     batonctl refuses the scheme; nothing is read, a listener on PORT sees no
#     connection.
#  5. A member key with api_url http://127.0.0.1:PORT (a recording listener):
#     the POST arrives without an Authorization header, and batonctl says the
#     credentials were not sent over plain http.
#  6. Control characters in a member key's fields and in a key's name never
#     appear raw in batonctl output (table, plain, JSON - which stays valid)
#     or in the agents' logs.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init rest_tls
[ "$REST_TLS" = 1 ] || fail "this scenario needs REST_TLS=1 (the harness default)"

cluster_start 3
wait_healthy 90
P=$PRIMARY

# ---------------------------------------------------------------- 1. https api_url
for n in 1 2 3; do
	assert_eq "https://127.0.0.1:${API_PORT[$n]}" "$(member_json "node$n" | jq -r .api_url)" \
		"node$n's member key publishes its https REST API"
done

# ---------------------------------------------------------------- 2. failover checks over TLS
pm=$(postmaster_pid "$P") || fail "no postmaster PID for node$P"
mark=$(now_ms)
for n in 1 2 3; do wc -l <"$(agent_log "$n")" >"$T/loglines.$n"; done
kill -KILL $(fence_pid "$P") "${AGENT_PID[$P]}" "$pm" 2>/dev/null
agent_wait_exit "$P" 10 || fail "agent of node$P survived SIGKILL"
log "killed the agent and the postmaster of node$P (the primary)"
new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$P" ] || return 1
	NEW=${BASH_REMATCH[1]}
	[ "$(in_recovery "$NEW")" = f ]
}
wait_for $((TTL + 40)) "a new primary" new_leader
log "node$NEW leads $(($(now_ms) - mark)) ms after the kill"
OTHER=
for n in 1 2 3; do [ "$n" = "$P" ] || [ "$n" = "$NEW" ] || OTHER=$n; done
new_lines() { tail -n +"$(($(cat "$T/loglines.$1") + 1))" "$(agent_log "$1")"; }
ok_line=$(new_lines "$NEW" | grep -m1 "candidate check: node$OTHER answered over https (certificate verified)")
[ -n "$ok_line" ] || { new_lines "$NEW" | grep 'candidate check' | head; fail "node$NEW logged no verified https /status answer from node$OTHER during the failover"; }
pass "node$NEW asked node$OTHER over verified https: ${ok_line#*candidate check: }"
if new_lines "$NEW" | grep -q "candidate check: node$OTHER unreachable"; then
	fail "node$NEW could not reach node$OTHER: $(new_lines "$NEW" | grep -m1 "candidate check: node$OTHER unreachable")"
fi
pass "no /status check of the live peer node$OTHER failed"
agent_start "$P"
wait_healthy 90
assert_eq "$NEW" "$PRIMARY" "node$NEW keeps the lead after node$P rejoins"

# ---------------------------------------------------------------- 3. batonctl: right and wrong CA
R=$OTHER
ctlc() { as_baton "$BATON_BUILD/batonctl" -c "$@"; }
sed "s|$REST_TLS_DIR/ca.pem|$REST_TLS_DIR/other-ca.pem|" "$T/node1.conf" >"$T/wrong-ca.conf"
grep -q other-ca.pem "$T/wrong-ca.conf" || fail "could not render the wrong-CA config"
chown "$BATON_USER:" "$T/wrong-ca.conf"
chmod 600 "$T/wrong-ca.conf"
pm_before=$(postmaster_pid "$R") || fail "no postmaster for node$R"
out=$(ctlc "$T/wrong-ca.conf" restart "node$R" --force 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "batonctl with a wrong CA: exit $rc, expected 1: $out"
grep -Eqi "certificate|SSL" <<<"$out" || fail "batonctl with a wrong CA does not name the verification failure: $out"
grep -q "$REST_PASSWORD" <<<"$out" && fail "batonctl printed the REST password"
pass "batonctl with a wrong CA fails: $(head -n1 <<<"$out")"
sleep $((LOOP_WAIT * 3))
assert_eq "$pm_before" "$(postmaster_pid "$R")" "node$R's Postgres was not restarted (nothing was sent)"

out=$(ctlc "$T/node1.conf" restart "node$R" --force 2>&1) || fail "batonctl restart over https failed: $out"
pass "batonctl with the right CA: $out"
restarted() { local p; p=$(postmaster_pid "$R") && [ "$p" != "$pm_before" ]; }
wait_for 30 "node$R's Postgres restarted by the request" restarted
wait_healthy 60

# ---------------------------------------------------------------- test listeners
# listener NAME PORT: records every connection (its bytes, repr'd, one line
# per connection) in $T/NAME.conns and answers 401 with a JSON error.
cat >"$T/listener.py" <<'PY'
import socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(8)
open(out, "a").close()
while True:
    c, _ = s.accept()
    c.settimeout(2)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
        body = b'{"error":"credentials needed"}'
        c.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nConnection: close\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    except OSError:
        pass
    c.close()
    with open(out, "a") as f:
        f.write(repr(data) + "\n")
PY
declare -A LISTENER_PID=()
listener() {
	bg_start "$1" python3 "$T/listener.py" "$2" "$T/$1.conns"
	LISTENER_PID[$1]=$BG_PID
	wait_for 10 "listener $1 on port $2" eval "[ -n \"\$(ss -ltnH '( sport = :$2 )')\" ]"
}
conns() { wc -l <"$T/$1.conns"; }

# fake_member NAME API_URL [STATE]: a member key (no lease) copied from
# node$R's with another name, api_url and state; tagged nofailover so that it
# never counts as a candidate.
fake_member() {
	local js
	js=$(member_json "node$R" | jq -c --arg n "$1" --arg u "$2" --arg s "${3:-running}" \
		'.name = $n | .api_url = $u | .state = $s | .tags.nofailover = true') ||
		fail "cannot build a fake member key"
	etcdctl_ put "$NAMESPACE/$SCOPE/members/$1" "$js" >/dev/null || fail "cannot write members/$1"
}
drop_member() { etcdctl_ del "$NAMESPACE/$SCOPE/members/$1" >/dev/null; }

# ---------------------------------------------------------------- 4. refused schemes
pick_port DICT_PORT
listener dict "$DICT_PORT"
fake_member evilfile "file:///etc/passwd"
fake_member evildict "dict://127.0.0.1:$DICT_PORT"
out=$(ctl restart evilfile --force 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "restart of a file:// member: exit $rc: $out"
grep -q "scheme 'file'" <<<"$out" || fail "batonctl does not name the refused scheme 'file': $out"
grep -q "root:" <<<"$out" && fail "batonctl printed /etc/passwd: $out"
pass "file:// refused: $out"
out=$(ctl restart evildict --force 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "restart of a dict:// member: exit $rc: $out"
grep -q "scheme 'dict'" <<<"$out" || fail "batonctl does not name the refused scheme 'dict': $out"
pass "dict:// refused: $out"
sleep $((LOOP_WAIT * 2)) # the agents read the fake members too (peer checks): nothing may reach the port
assert_eq 0 "$(conns dict)" "no connection reached the dict:// port"
drop_member evilfile
drop_member evildict
bg_stop "${LISTENER_PID[dict]}"

# ---------------------------------------------------------------- 5. no password over http
pick_port HTTP_PORT
listener plain "$HTTP_PORT"
fake_member evilhttp "http://127.0.0.1:$HTTP_PORT"
out=$(ctl restart evilhttp --force 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "restart of an http member answering 401: exit $rc: $out"
grep -q "HTTP 401" <<<"$out" && grep -q "credentials were not sent" <<<"$out" ||
	fail "batonctl does not say it withheld the credentials over http: $out"
pass "over http: $out"
wait_for 10 "the listener recorded the POST" eval '[ "$(conns plain)" -ge 1 ]'
grep -q "POST /restart HTTP/1.1" "$T/plain.conns" || fail "the listener got no POST /restart: $(cat "$T/plain.conns")"
grep -qi "authorization" "$T/plain.conns" && fail "an Authorization header reached the http listener: $(cat "$T/plain.conns")"
b64=$(printf '%s:%s' "$REST_USER" "$REST_PASSWORD" | base64 -w0)
grep -q -e "$REST_PASSWORD" -e "$b64" "$T/plain.conns" && fail "the REST password reached the http listener"
pass "the http listener got $(conns plain) request(s), none with credentials"
drop_member evilhttp
bg_stop "${LISTENER_PID[plain]}"

# ---------------------------------------------------------------- 6. control characters
esc=$'\x1b'
bel=$'\x07'
fake_member "evil${esc}[2Jname" "https://127.0.0.1:1" "run${esc}]0;owned${bel}ning"
etcdctl_ put "$NAMESPACE/$SCOPE/members/bad${esc}[31mkey" "not json${esc}[0m" >/dev/null || fail "cannot write the bad key"
out=$(ctl list 2>&1) || fail "batonctl list failed: $out"
grep -q "$esc\|$bel" <<<"$out" && fail "batonctl list printed a raw control character: $(od -c <<<"$out" | head)"
grep -qF 'evil\x1b[2Jname' <<<"$out" || fail "batonctl list does not show the escaped member name: $out"
grep -qF 'run\x1b]0;owned\x07ning' <<<"$out" || fail "batonctl list does not show the escaped state: $out"
pass "batonctl list escapes control characters: $(grep -F 'evil\x1b' <<<"$out" | head -n1)"
js=$(ctl list --format json 2>/dev/null) || fail "batonctl list --format json failed"
grep -q "$esc\|$bel" <<<"$js" && fail "batonctl list --format json printed a raw control character"
got=$(jq -r --arg n "evil${esc}[2Jname" '.[] | select(.name == $n) | .state' <<<"$js") ||
	fail "batonctl list --format json is not valid JSON: $js"
[ "$got" = "run${esc}]0;owned${bel}ning" ] || fail "JSON output: the state does not round-trip: $(printf %q "$got")"
pass "batonctl list --format json: valid JSON, control characters escaped as JSON, the state round-trips"
out=$(ctl topology 2>&1) || fail "batonctl topology failed: $out"
grep -q "$esc\|$bel" <<<"$out" && fail "batonctl topology printed a raw control character"
out=$(ctl restart "evil${esc}[2Jname" --force 2>&1)
grep -q "$esc\|$bel" <<<"$out" && fail "batonctl restart printed a raw control character: $(od -c <<<"$out" | head)"
pass "batonctl's error lines escape them too: $out"
# the agents warn about the unreadable key, escaped
warned() { grep -qF 'members/bad\x1b[31mkey' "$(agent_log "$NEW")"; }
wait_for 20 "node$NEW warns about the unreadable key, escaped" warned
for n in 1 2 3; do
	if grep -q "$esc\|$bel" "$(agent_log "$n")"; then
		fail "node$n's log holds a raw control character: $(grep -a -m1 "$esc\|$bel" "$(agent_log "$n")" | od -c | head -n 4)"
	fi
done
pass "no raw control character in any agent log ($(grep -cF '\x1b' "$(agent_log "$NEW")") escaped on node$NEW)"
drop_member "evil${esc}[2Jname"
drop_member "bad${esc}[31mkey"
wait_healthy 60
