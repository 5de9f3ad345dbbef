#!/bin/bash
# 47_pgbouncer_switchover: planned switchovers behind PgBouncer (Debian's
# pgbouncer 1.18), which the agents pause and resume (`poolers`).
# needs packages: pgbouncer
#
# Layout: 3 nodes; HAProxy routes to whichever node answers GET /primary
# (checks every 200 ms); one PgBouncer (transaction pooling, started by the
# test in the foreground as user baton) sends its server connections to
# HAProxy over TLS (verify-full against the test CA). Every node's file
# names the PgBouncer's admin console in `poolers` and HAProxy's address in
# `pooler_target`. A writer inserts a row every 20 ms through PgBouncer.
#  1. `batonctl switchover` to a named candidate: the leader moves, the
#     writer sees 0 failed attempts (its statements wait in the paused
#     pooler), every acknowledged row is on the new primary, the old agent
#     logged the pause and the resume, and PgBouncer is not paused
#     afterwards (RESUME on its console answers "pooler is not
#     paused/suspended"). Meanwhile HAProxy goes on counting the old
#     primary up until well after the candidate is up (the test stops its
#     check, `disable health`, and starts it again 1.5 s after HAProxy saw
#     the candidate up), as a check that passed just before the stop did
#     under the sanitizers on a busy machine: one read-write answer
#     through HAProxy then says nothing about the pooler's next
#     connection, which round robin sends to the old primary, restarting
#     as a replica ("cannot execute INSERT in a read-only transaction" for
#     every statement until its check marks it down). The agent resumes
#     once several new connections in a row answer read-write.
#  2. PAUSE waits for a running transaction: a client holds one open through
#     PgBouncer; the old primary's agent pauses (and waits), the test stops
#     the candidate's agent (SIGSTOP) and commits; the old primary stops, its
#     candidate never confirms the shutdown checkpoint, the switchover is
#     aborted and the old primary starts again as primary. The poolers are
#     resumed once it takes writes: again 0 failed attempts, the committed
#     row and every acknowledged one present, PgBouncer not paused, the
#     leader unchanged.
#  2b. the same switchover with pooler_target unreachable (a TLS root
#     certificate libpq cannot read): the old primary logs libpq's error
#     once at WARN, resumes after pooler_resume_timeout (8 s here: the
#     error must last 1 s after the candidate's promotion, which took 3 s
#     from the pause under the sanitizers on a busy machine) and its
#     timeout WARN says what it observed.
#  3. the old primary's agent is SIGKILLed while its PAUSE waits (a held
#     transaction again): its Postgres dies with it, the candidate takes
#     over, and 5 s later its sweep resumes the pooler nobody else would
#     (the WARN says so); PgBouncer is not paused and writes go on.
# The client-visible stall (longest gap between consecutive acks) of each
# case is printed; tests/bench/pooler_switchover.sh measures it over rounds.
. "$(dirname "$0")/../lib/cluster.sh"
. "$(dirname "$0")/../lib/pgbouncer.sh"
cluster_init pgbouncer_switchover
pgbouncer_have || skip "pgbouncer is not installed ($PGBOUNCER_BIN; Debian package pgbouncer)"

pgbouncer_pick_ports
etcd_start
for n in 1 2 3; do
	node_config "$n"
	pgbouncer_node_config "$n"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
# Checks every second: at 200 ms a TLS handshake slowed by a busy machine
# (or the sanitizer build) marks the primary down (fall 1) and cuts the
# pooler's server connection, an error that has nothing to do with the
# switchover.
HAPROXY_ADMIN=1 HAPROXY_INTER=1s haproxy_start /primary
# HAProxy counts every server up until its first check: the pooler's first
# server connection must not go to a replica.
replicas_down() {
	local n
	for n in 1 2 3; do
		[ "$n" = "$PRIMARY" ] || grep -q "Server postgres/node$n is DOWN" "$T/haproxy.out" || return 1
	done
}
wait_for 20 "HAProxy counts only node$PRIMARY up" replicas_down
pgbouncer_start

PGB_CLIENT=$(pgbouncer_client)
# pgb_not_paused: RESUME on the console must be refused as "not paused"
# (were it paused, RESUME would succeed and the check fail).
pgb_assert_not_paused() {
	local out
	out=$(pgbouncer_admin RESUME)
	assert_eq "ERROR:  pooler is not paused/suspended" "$out" "$1: PgBouncer is not paused"
}
pgb_assert_not_paused "before the switchovers"

# The writer waits up to 30 s per statement: a paused pooler holds it.
bg_start writer "$BATON_BUILD/tests/tools/writer" --interval 20 --timeout 30000 "$PGB_CLIENT"
WRITER_PID=$BG_PID
acked_by() { [ -n "$(first_ack_on "${PG_PORT[$1]}" "$2")" ]; }
old=$PRIMARY
wait_for 30 "writes through PgBouncer acknowledged by node$old" acked_by "$old" 0

leader_is_not() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$1" ] || return 1
	NEW=${BASH_REMATCH[1]}
}
errors() { grep -c '^err ' "$T/writer.out" || true; }
# max_gap FROM_MS: the longest gap between consecutive acks after FROM_MS.
max_gap() { awk -v t="$1" '$1 == "ack" && $3 >= t { if (p && $3 - p > g) g = $3 - p; p = $3 } END { print g + 0 }' "$T/writer.out"; }
# all_acked_on N: every id the writer acknowledged so far is a row on nodeN.
all_acked_on() {
	local n=$1 want have
	awk '$1 == "ack" { print $2 }' "$T/writer.out" | LC_ALL=C sort >"$T/acked.ids"
	want=$(wc -l <"$T/acked.ids")
	run_sql "$n" "SELECT id FROM baton_writes ORDER BY id" | LC_ALL=C sort >"$T/rows.ids"
	have=$(LC_ALL=C comm -23 "$T/acked.ids" "$T/rows.ids" | wc -l)
	assert_eq 0 "$have" "$2: all $want acknowledged rows are on node$n"
}
acks_after_on() { [ "$(awk -v p="${PG_PORT[$1]}" -v t="$2" '$1 == "ack" && $3 > t && $4 == p' "$T/writer.out" | wc -l)" -ge "$3" ]; }

# ---- 1. a planned switchover, HAProxy counting the old primary up after
# the candidate is up
cand=$((old % 3 + 1))
hap_lines=$(wc -l <"$T/haproxy.out")
hap_up() { tail -n +"$((hap_lines + 1))" "$T/haproxy.out" | grep -q "Server postgres/node$1 is UP"; }
log "HAProxy stops checking node$old (counted up): $(haproxy_cmd "disable health postgres/node$old" | tr -s '\n' ' ')"
t0=$(now_ms)
out=$(ctl switchover --candidate "node$cand" --wait 0 2>&1) || fail "batonctl switchover failed: $out"
log "batonctl switchover --candidate node$cand --wait 0: $out"
wait_for 30 "HAProxy counts node$cand up (and node$old still)" hap_up "$cand"
sleep 1.5
log "HAProxy checks node$old again: $(haproxy_cmd "enable health postgres/node$old" | tr -s '\n' ' ')"
wait_for 30 "the leader key leaves node$old" leader_is_not "$old"
assert_eq "node$cand" "$(leader_name)" "the leader is the candidate"
wait_for 30 "writes through PgBouncer acknowledged by node$cand" acked_by "$cand" "$t0"
wait_for 10 "writes keep going on node$cand" acks_after_on "$cand" "$t0" 25
assert_eq 0 "$(errors)" "switchover: failed client attempts through PgBouncer"
grep -q "paused pooler 127.0.0.1:$PGB_PORT in [0-9]* ms" "$(agent_log "$old")" ||
	fail "node$old did not log the pause of the pooler"
pass "node$old paused the pooler: $(grep -o "paused pooler 127.0.0.1:$PGB_PORT in [0-9]* ms" "$(agent_log "$old")" | tail -n1)"
grep -q "resumed pooler 127.0.0.1:$PGB_PORT after [0-9]* ms paused: node$cand takes writes" "$(agent_log "$old")" ||
	fail "node$old did not log the resume once node$cand took writes"
pass "node$old resumed it: $(grep -o "resumed pooler .* takes writes" "$(agent_log "$old")" | tail -n1)"
pgb_assert_not_paused "after the switchover"
gap1=$(max_gap "$t0")
log "switchover: longest client-visible stall $gap1 ms"
# A pooler whose first server connection after the resume failed (HAProxy
# sent it to the stopped old primary) holds its clients for
# server_login_retry (15 s) before it tries again: longer than any pause.
[ "$gap1" -lt 15000 ] || fail "switchover: the writer stalled $gap1 ms (a failed server login in PgBouncer?)"
wait_healthy 60
all_acked_on "$cand" "after the switchover"
wait_for 15 "the switchover key is cleared" switchover_gone

# ---- 2. a switchover that fails while the pooler is paused
old=$cand
cand=$((old % 3 + 1))
mkfifo "$T/tx.fifo"
chown "$BATON_USER:" "$T/tx.fifo"
bg_start holder psql -X -q -v ON_ERROR_STOP=1 "$PGB_CLIENT" -f "$T/tx.fifo"
HOLDER_PID=$BG_PID
exec 7>"$T/tx.fifo"
echo "BEGIN; INSERT INTO baton_writes (id, node) VALUES (-47, 'held'); SELECT 'open' AS tx;" >&7
held() { grep -q open "$T/holder.out"; }
wait_for 30 "a transaction held open through PgBouncer" held
t0=$(now_ms)
lines=$(wc -l <"$(agent_log "$old")")
pgb_lines=$(($(wc -l <"$T/pgbouncer.log") + 1))
out=$(ctl switchover --candidate "node$cand" --wait 0 2>&1) || fail "batonctl switchover failed: $out"
log "batonctl switchover --candidate node$cand --wait 0: $out"
pausing() { tail -n +"$lines" "$(agent_log "$old")" | grep -q "switchover to node$cand: checkpoint"; }
wait_for 20 "node$old takes the switchover up" pausing
# pause_sent: PgBouncer logged a PAUSE since line pgb_lines of its log.
pause_sent() { tail -n +"$pgb_lines" "$T/pgbouncer.log" | grep -q "PAUSE command issued"; }
wait_for 20 "node$old sends PAUSE" pause_sent
sleep 0.5
tail -n +"$lines" "$(agent_log "$old")" | grep -q "paused pooler" &&
	fail "PAUSE completed while a transaction was still open"
pass "PAUSE waits while a transaction holds a server connection"
agent_signal "$cand" STOP
echo "COMMIT;" >&7
exec 7>&-
wait_for 10 "the held transaction committed" bg_gone "$HOLDER_PID"
wait "$HOLDER_PID" || fail "the held transaction failed: $(cat "$T/holder.err")"
aborted() { tail -n +"$lines" "$(agent_log "$old")" | grep -q "switchover aborted"; }
wait_for 20 "node$old aborts the switchover" aborted
agent_signal "$cand" CONT
resumed() { tail -n +"$lines" "$(agent_log "$old")" | grep -q "resumed pooler 127.0.0.1:$PGB_PORT after [0-9]* ms paused: our Postgres takes writes"; }
wait_for 30 "node$old resumes the pooler once it takes writes again" resumed
assert_eq "node$old" "$(leader_name)" "the failed switchover left node$old leader"
wait_for 10 "writes keep going on node$old" acks_after_on "$old" "$(now_ms)" 25
assert_eq 0 "$(errors)" "failed switchover: failed client attempts through PgBouncer"
pgb_assert_not_paused "after the failed switchover"
gap2=$(max_gap "$t0")
log "failed switchover: longest client-visible stall $gap2 ms"
assert_eq "held" "$(run_sql "$old" "SELECT node FROM baton_writes WHERE id = -47")" "the held transaction's row"
wait_healthy 60
all_acked_on "$old" "after the failed switchover"

# ---- 2b. pooler_target cannot be reached (libpq cannot read a TLS file,
# as with the demo's HOME=/root): the old primary says libpq's error once,
# at WARN, and resumes after pooler_resume_timeout saying what it saw
reloads() { grep -c "SIGHUP: reloaded" "$(agent_log "$1")" || true; }
reloaded_since() { [ "$(reloads "$1")" -gt "$2" ]; }
reload_all() {
	local n r
	for n in 1 2 3; do
		r=$(reloads "$n")
		agent_signal "$n" HUP
		wait_for 10 "node$n reloads its file" reloaded_since "$n" "$r"
	done
}
for n in 1 2 3; do
	cp -p "$T/node$n.conf" "$T/node$n.conf.good"
	sed -i -e "s|^pooler_target = \"\(.*\)\";|pooler_target = \"\1 sslmode=verify-full sslrootcert=$T/no-such-ca.pem\";|" \
		-e "s|^pooler_resume_timeout = .*|pooler_resume_timeout = 8;|" "$T/node$n.conf"
done
reload_all
cand=$((old % 3 + 1))
lines=$(wc -l <"$(agent_log "$old")")
t0=$(now_ms)
out=$(ctl switchover --candidate "node$cand" 2>&1) || fail "batonctl switchover failed: $out"
wait_for 30 "the leader key leaves node$old" leader_is_not "$old"
resumed4() { tail -n +"$lines" "$(agent_log "$old")" | grep -q "resumed pooler 127.0.0.1:$PGB_PORT after [0-9]* ms paused: pooler_resume_timeout passed"; }
wait_for 30 "node$old resumes the pooler after pooler_resume_timeout" resumed4
assert_eq 1 "$(tail -n +"$lines" "$(agent_log "$old")" | grep -cE "WARN +node[0-9]+: pooler_target does not answer: .*no-such-ca.pem")" \
	"the unreachable pooler_target: one WARN with libpq's error"
# (grep reads the whole tail: with -q, a long log's tail may die of SIGPIPE,
# which pipefail counts as a failure)
tail -n +"$lines" "$(agent_log "$old")" | grep "pooler_resume_timeout (8.0s) passed since the pause: resuming the poolers anyway (last seen: pooler_target does not answer: .*no-such-ca.pem" >/dev/null ||
	fail "node$old's timeout WARN does not say what it observed"
pass "node$old says why: $(tail -n +"$lines" "$(agent_log "$old")" | grep -o "pooler_resume_timeout (8.0s) passed.*" | head -n1 | cut -c1-200)"
pgb_assert_not_paused "after the switchover with an unreachable pooler_target"
for n in 1 2 3; do mv "$T/node$n.conf.good" "$T/node$n.conf"; done
reload_all
old=$cand
wait_healthy 60
wait_for 15 "the switchover key is cleared" switchover_gone

errors2=$(errors)

# ---- 3. the pausing agent dies mid-switchover: the next leader's sweep
# resumes the pooler (nobody else would)
cand=$((old % 3 + 1))
mkfifo "$T/tx2.fifo"
chown "$BATON_USER:" "$T/tx2.fifo"
bg_start holder2 psql -X -q -v ON_ERROR_STOP=1 "$PGB_CLIENT" -f "$T/tx2.fifo"
HOLDER2_PID=$BG_PID
exec 8>"$T/tx2.fifo"
echo "BEGIN; SELECT 'open' AS tx;" >&8
held2() { grep -q open "$T/holder2.out"; }
wait_for 30 "a transaction held open through PgBouncer" held2
lines=$(wc -l <"$(agent_log "$old")")
pgb_lines=$(($(wc -l <"$T/pgbouncer.log") + 1))
out=$(ctl switchover --candidate "node$cand" --wait 0 2>&1) || fail "batonctl switchover failed: $out"
wait_for 20 "node$old sends PAUSE" pause_sent
agent_kill "$old"
log "killed node$old's agent while its PAUSE waited for the open transaction"
echo "COMMIT;" >&8
exec 8>&-
wait_for 10 "the held transaction ended" bg_gone "$HOLDER2_PID"
wait_for 60 "a new leader" leader_is_not "$old"
swept() { grep -q "pooler 127.0.0.1:$PGB_PORT was paused (left so by an agent that stopped mid-switchover?): resumed, the new leader's sweep" "$(agent_log "$NEW")"; }
wait_for 30 "node$NEW's sweep resumes the pooler" swept
pass "node$NEW resumed the pooler the dead agent left paused"
pgb_assert_not_paused "after the pausing agent died"
t3=$(now_ms)
wait_for 20 "writes through PgBouncer acknowledged by node$NEW" acked_by "$NEW" "$t3"

bg_stop "$WRITER_PID"
log "writer: $(acks_count) acks, $(errors) errors ($errors2 before case 3, whose failover may cost some); stalls: switchover $gap1 ms, failed switchover $gap2 ms"
