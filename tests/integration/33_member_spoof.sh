#!/bin/bash
# 33_member_spoof: someone who can write etcd forges member keys; no
# password, no slot and no far-future switchover may follow (issue 10's
# last findings F1, F4, F5, F6, F7).
# A fake Postgres listener on loopback (python3) answers SSLRequest with
# "N" and every startup packet with a cleartext password request, and
# records what arrives; a fake REST API on plain http answers /status with
# the leader's name and the fake address, and records each request.
#  1. the leader's member key rewritten (again and again, as the leader
#     restores it each loop) with its Postgres host:port at the fake
#     listener, while a replica reloads (primary_conninfo is rewritten) and
#     the other is reinitialised (pg_basebackup): no startup packet and no
#     password reach the listener, the replica's primary_conninfo never names
#     the fake port, both agents log a WARN naming the member, the published
#     and the confirmed address; the reinitialised node streams again from
#     the real leader once the forging stops;
#  2. the same with the api_url at the fake plain-http REST API: refused
#     without asking it (this node runs TLS), WARN says so;
#  3. fake member keys (one pointing at a real node's REST API, one at the
#     fake one, one at a closed port, one whose name holds U+202E): no node
#     creates a slot for any of them, the real members' slots are there;
#     `batonctl list` shows the U+202E escaped, never the raw bytes;
#  4. a switchover key scheduled 8 days ahead, written with etcdctl: the
#     leader refuses and clears it with a WARN naming the key; one 6 days
#     ahead is kept.
#  5. a switchover with no candidate, with a fake member key whose api_url
#     is a real node's REST API: the leader hands over to a real node.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init member_spoof

command -v python3 >/dev/null || skip "python3 is needed for the fake Postgres listener"
pick_port FAKE_PG
pick_port FAKE_API
pick_port CLOSED_PORT
cat >"$T/fake.py" <<'EOF'
# A fake Postgres server and a fake REST API; records what arrives.
import json, socket, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

pg_port, api_port, rec, name, until = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], time.time() + float(sys.argv[5])
lock = threading.Lock()

def note(line):
    with lock, open(rec, "a") as f:
        f.write(line + "\n")

def read_n(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b

def serve_pg(c):
    c.settimeout(5)
    try:
        note("pg connect")
        while True:
            ln, code = struct.unpack("!ii", read_n(c, 8))
            body = read_n(c, ln - 8)
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                note("pg sslrequest" if code == 80877103 else "pg gssrequest")
                c.sendall(b"N")
                continue
            parts = body.split(b"\0")
            note("pg startup " + " ".join(p.decode("utf-8", "replace") for p in parts if p))
            c.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            t = read_n(c, 1)
            ln = struct.unpack("!i", read_n(c, 4))[0]
            note("pg password message type %s: %r" % (t, read_n(c, ln - 4)))
            return
    except Exception as e:
        note("pg closed: %s" % e)
    finally:
        c.close()

def pg_main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", pg_port))
    s.listen(16)
    s.settimeout(0.5)
    while time.time() < until:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve_pg, args=(c,), daemon=True).start()

class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        note("api request " + self.path)
        body = json.dumps({"name": name, "role": "primary", "state": "running", "pg_running": True,
                           "is_leader": True, "timeline": 1, "lsn": 1, "pg_host": "127.0.0.1",
                           "pg_port": pg_port}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

api = ThreadingHTTPServer(("127.0.0.1", api_port), Api)
api.timeout = 0.5
threading.Thread(target=pg_main, daemon=True).start()
note("ready")
while time.time() < until:
    api.handle_request()
EOF
REC=$T/fake.rec

cluster_start 3
wait_healthy 90
p=$PRIMARY
r=() && for n in 1 2 3; do [ "$n" = "$p" ] || r+=("$n"); done
r1=${r[0]} r2=${r[1]}
log "primary node$p, replicas node$r1 and node$r2"
fake_ready() { grep -q '^ready' "$REC" 2>/dev/null; }

real=$(member_json "node$p")
[ -n "$real" ] || fail "no member key for node$p"
real_api=$(jq -r .api_url <<<"$real")
MKEY=$NAMESPACE/$SCOPE/members/node$p

# forge_for SECONDS JQ: rewrites node$p's member key with JQ applied, every
# ~0.1 s (the leader restores it each loop), in the background; bounded.
FORGER=
forge_for() {
	local secs=$1 forged
	forged=$(jq -c "$2" <<<"$real") || fail "jq $2"
	(
		end=$(($(date +%s) + secs))
		while [ "$(date +%s)" -lt "$end" ]; do
			etcdctl_ put "$MKEY" "$forged" >/dev/null 2>&1
			sleep 0.1
		done
	) &
	FORGER=$!
	BG_PIDS+=("$FORGER")
	log "forging $MKEY for ${secs}s: $forged"
}

# The replica's primary_conninfo, sampled while the forging lasts.
conninfo_of() { cat "$(data_dir "$1")/baton.recovery.conf" 2>/dev/null; }
never_fake=1
sample_conninfo() {
	local n
	for n in "$r1"; do
		if conninfo_of "$n" | grep -q "port=$FAKE_PG"; then never_fake=0; fi
	done
}

# ---- 1. Postgres host:port forged, api_url the real one
bg_start fake python3 "$T/fake.py" "$FAKE_PG" "$FAKE_API" "$REC" "node$p" 600
wait_for 10 "the fake listener is up" fake_ready
warn1="member node$p publishes Postgres at 127.0.0.1:$FAKE_PG, but its REST API $real_api answers as member node$p with Postgres at 127.0.0.1:${PG_PORT[$p]}; not connecting to its Postgres with any credential"
warned() { grep -qF -- "$2" "$(agent_log "$1")"; }
# cloned_real: node$r2's reinit ran pg_basebackup against node$p's real port.
cloned_real() { grep -a "starting pg_basebackup" "$(agent_log "$r2")" | grep -q "port=${PG_PORT[$p]} "; }
forge_for 50 ".host = \"127.0.0.1\" | .port = $FAKE_PG | .conn_url = \"postgres://127.0.0.1:$FAKE_PG/postgres\""
rest_call "$r2" POST /reinit
assert_eq 202 "$REST_CODE" "POST /reinit on node$r2 while the key is forged"
deadline=$(($(date +%s) + 45)) # a reinit under load (two lanes) took over 20 s to reach its clone
while [ "$(date +%s)" -lt "$deadline" ]; do
	rest_call "$r1" POST /reload
	sample_conninfo
	# (the slot check may warn first, with its own "what next")
	if warned "$r1" "$warn1" && warned "$r2" "$warn1" &&
		grep -F -- "$warn1" "$(agent_log "$r1")" | grep -q "keeps streaming from its current upstream" &&
		{ grep -F -- "$warn1" "$(agent_log "$r2")" | grep -q "keeps waiting and asks again" || cloned_real; }; then
		break
	fi
	sleep 1
done
warned "$r1" "$warn1" || fail "node$r1 (reload) did not warn about the forged address: $(grep -F "node$p" "$(agent_log "$r1")" | tail -5)"
grep -F -- "$warn1" "$(agent_log "$r1")" | grep -q "keeps streaming from its current upstream" ||
	fail "node$r1's WARN does not say it keeps its upstream: $(grep -F -- "$warn1" "$(agent_log "$r1")" | head -1)"
pass "node$r1 warned naming the member, both addresses and what it does next"
warned "$r2" "$warn1" || fail "node$r2 (reinit) did not warn about the forged address"
if grep -F -- "$warn1" "$(agent_log "$r2")" | grep -q "keeps waiting and asks again"; then
	pass "node$r2 (reinit: pg_basebackup) warned and kept waiting"
elif cloned_real; then
	# The watch-driven view can take the reinit's fresh read in a moment
	# when node$p has just re-published its real key (it rewrites its own
	# member key as soon as the watch shows it altered): cloning from the
	# real, confirmed address is the safe outcome too; the fake server's
	# record below still must show no credential.
	pass "node$r2 (reinit: pg_basebackup) cloned from node$p's real address ${PG_PORT[$p]}, never the forged one"
else
	fail "node$r2's WARN does not say it keeps waiting: $(grep -F -- "$warn1" "$(agent_log "$r2")" | head -1)"
fi
# The forging lasts 50 s at most: once both nodes said what they do, 5 s
# more of samples, then it stops.
for _ in $(seq 1 10); do pid_alive "$FORGER" || break; sample_conninfo; sleep 0.5; done
pid_alive "$FORGER" && kill "$FORGER" 2>/dev/null
wait "$FORGER" 2>/dev/null
sample_conninfo
assert_eq 1 "$never_fake" "node$r1's primary_conninfo never named the forged port $FAKE_PG"
SHOWN=$(run_sql "$r1" "SHOW primary_conninfo")
grep -q "port=${PG_PORT[$p]}" <<<"$SHOWN" || fail "node$r1's primary_conninfo is not the real leader's: $SHOWN"
if [ "$PG_TLS" = 1 ]; then
	# Defence in depth: the members speak TLS, and the agent's conninfo makes
	# libpq verify the server before any password; aimed at the fake
	# listener directly, it sends no startup packet, let alone a password.
	grep -q "sslmode=verify-full" <<<"$SHOWN" && grep -q "channel_binding=require" <<<"$SHOWN" ||
		fail "node$r1's primary_conninfo lacks verify-full/channel_binding: $SHOWN"
	assert_eq "2" "$(run_sql "$p" "SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE s.ssl")" \
		"both replicas stream over TLS"
	ci=$(sed "s/port=${PG_PORT[$p]}/port=$FAKE_PG/" <<<"$SHOWN")
	as_baton env -u PGPASSFILE "$PG_BIN/psql" -X -At -d "$ci dbname=postgres" -c "SELECT 1" >"$T/psql-fake.out" 2>&1 &&
		fail "psql with the agent's conninfo connected to the fake listener"
	log "psql with the agent's conninfo, aimed at the fake listener: $(tr '\n' ' ' <"$T/psql-fake.out")"
	grep -q '^pg sslrequest' "$REC" || fail "libpq did not even ask the fake listener for TLS: $(cat "$REC")"
	assert_eq "" "$(grep -E '^pg (startup|password)' "$REC")" "libpq (verify-full) sent the fake listener no startup packet and no password"
	: >"$REC.seen" && grep -v '^pg ' "$REC" >"$REC.seen"; cp "$REC.seen" "$REC"
fi
assert_eq "" "$(grep '^pg ' "$REC")" "nothing (no startup packet, no password) reached the fake Postgres"
wait_healthy 90
assert_eq "node$p" "$(leader_name)" "leader unchanged"
pass "once the forging stopped, node$r2 was cloned from the real leader and streams"

# ---- 2. api_url forged too, at a plain-http REST API that answers "yes"
warn2="member node$p publishes Postgres at 127.0.0.1:$FAKE_PG and a REST API at http://127.0.0.1:$FAKE_API, which is not https while this node runs TLS"
forge_for 12 ".host = \"127.0.0.1\" | .port = $FAKE_PG | .api_url = \"http://127.0.0.1:$FAKE_API\""
deadline=$(($(date +%s) + 10))
while [ "$(date +%s)" -lt "$deadline" ] && ! warned "$r1" "$warn2"; do
	rest_call "$r1" POST /reload
	sample_conninfo
	sleep 1
done
warned "$r1" "$warn2" || fail "node$r1 did not refuse the plain-http api_url"
pass "node$r1 refused to confirm through a plain-http REST API"
while pid_alive "$FORGER"; do sample_conninfo; sleep 0.5; done
assert_eq 1 "$never_fake" "node$r1's primary_conninfo never named the forged port"
assert_eq "" "$(grep '^pg ' "$REC")" "nothing reached the fake Postgres"
assert_eq "" "$(grep '^api request' "$REC")" "the fake plain-http REST API was never asked (TLS here)"
wait_healthy 60

# ---- 3. fake members: no slots; a bidi name is escaped by batonctl list
ghost() { # NAME API_URL
	local j
	j=$(jq -cn --arg n "$1" --arg u "$2" --argjson port "$FAKE_PG" \
		'{name:$n, role:"replica", state:"running", host:"127.0.0.1", port:$port, api_url:$u, timeline:1, lsn:0}')
	etcdctl_ put "$NAMESPACE/$SCOPE/members/$1" "$j" >/dev/null || fail "cannot write members/$1"
}
BIDI=$(printf 'evil\xe2\x80\xaeghost')
ghost ghost1 "$(rest_url "$r1")"
ghost ghost2 "http://127.0.0.1:$FAKE_API"
ghost ghost3 "https://127.0.0.1:$CLOSED_PORT"
ghost "$BIDI" "$(rest_url "$r2")"
log "wrote 4 fake member keys"
# One unconfirmed member is asked per loop, refusals are retried later:
# after 12 loops every ghost was asked (and refused) at least twice.
sleep $((LOOP_WAIT * 12 + 2))
for n in 1 2 3; do
	assert_eq 0 "$(run_sql "$n" "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '%ghost%'")" \
		"node$n created no slot for a fake member"
	assert_eq 2 "$(run_sql "$n" "SELECT count(*) FROM pg_replication_slots WHERE slot_name ~ '^node[0-9]$'")" \
		"node$n keeps its slots for the two real members"
done
grep -q "member ghost1 publishes Postgres at 127.0.0.1:$FAKE_PG, but its REST API $(rest_url "$r1") answers as member node$r1" \
	"$(agent_log "$p")" || fail "the leader did not warn about ghost1"
grep -q "member ghost1 .*not connecting to its Postgres with any credential: creates no replication slot for it" \
	"$(agent_log "$p")" || fail "the leader's WARN about ghost1 does not say it creates no slot"
pass "fake members: refused with a WARN, no slot anywhere"
assert_eq "" "$(grep '^pg ' "$REC")" "nothing reached the fake Postgres"

out=$(ctl list 2>&1) || fail "batonctl list failed: $out"
grep -qF 'evil\xe2\x80\xaeghost' <<<"$out" || fail "batonctl list does not show the bidi name escaped: $out"
if printf '%s' "$out" | grep -q "$(printf '\xe2\x80\xae')"; then fail "batonctl list printed a raw U+202E"; fi
pass "batonctl list escapes U+202E in a member name"
for g in ghost1 ghost2 ghost3 "$BIDI"; do etcdctl_ del "$NAMESPACE/$SCOPE/members/$g" >/dev/null; done

# ---- 4. a switchover key beyond the 7-day horizon, written into etcd
far=$(($(date +%s) + 8 * 86400))
switchover_put "{\"from\":\"node$p\",\"scheduled_at\":$far}"
wait_for 15 "the leader clears the far-future switchover key" switchover_gone
warned "$p" "switchover key $NAMESPACE/$SCOPE/switchover refused: scheduled time $(date -u -d "@$far" +%Y-%m-%dT%H:%M:%SZ) is more than 7 days ahead" ||
	fail "the leader did not warn naming the key and the time: $(grep -i switchover "$(agent_log "$p")" | tail -3)"
pass "a switchover key 8 days ahead: refused with a WARN and cleared"
near=$(($(date +%s) + 6 * 86400))
switchover_put "{\"from\":\"node$p\",\"scheduled_at\":$near}"
sleep $((LOOP_WAIT * 4 + 1))
[ -n "$(switchover_json)" ] || fail "a switchover key 6 days ahead was cleared"
pass "a switchover key 6 days ahead is kept"
etcdctl_ del "$NAMESPACE/$SCOPE/switchover" >/dev/null
# A scheduled failover, which REST and batonctl refuse, written into etcd.
switchover_put "{\"kind\":\"failover\",\"to\":\"node$r1\",\"scheduled_at\":$near}"
wait_for 15 "the leader clears the scheduled failover key" switchover_gone
warned "$p" "switchover key $NAMESPACE/$SCOPE/switchover refused: a failover cannot be scheduled" ||
	fail "the leader did not warn about the scheduled failover: $(grep -i switchover "$(agent_log "$p")" | tail -3)"
pass "a scheduled failover written into etcd: refused with a WARN and cleared"
assert_eq "node$p" "$(leader_name)" "leader unchanged"

# ---- 5. a switchover without a candidate never picks a fake member whose
# api_url is a real node's REST API (it answers as that node; its name
# "aaevil" would win the tie-break)
ghost aaevil "$(rest_url "$r1")"
switchover_put "{\"from\":\"node$p\"}"
wait_for 60 "the switchover to finish" switchover_gone
wait_healthy 60
new=$(leader_name)
[ "$new" = "node$r1" ] || [ "$new" = "node$r2" ] || fail "after the switchover the leader is '$new'"
if grep -q "switchover to aaevil" "$(agent_log "$p")"; then fail "the leader chose the fake member aaevil"; fi
pass "a switchover without a candidate went to $new, not to the fake member aaevil"
etcdctl_ del "$NAMESPACE/$SCOPE/members/aaevil" >/dev/null
pass "33_member_spoof"
