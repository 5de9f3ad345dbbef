#!/bin/bash
# 17_agent_freeze: SIGSTOP on the primary's agent alone (a frozen agent: its
# keeper thread and loop are frozen too, and no parent-death signal fires).
# The agent's fence process must stop the old primary's Postgres before its
# lease can expire - the last renewal was sent before the freeze, so the
# lease cannot expire before freeze + ttl; the fence fires at last renewal
# sent + ttl - margin - while a client writes and a poller asks every node
# every 50 ms: no sample may see two primaries. A replica takes over. After
# 2.5 x ttl the agent is thawed (SIGCONT): it finds it lost the key, reports
# what its fence did, and rejoins as a replica; one primary.
#
# The frozen agent keeps its fence's socket open, so the fence never takes
# the agent-crash path: it must not revoke the leader lease (no revoke line
# in the log, before or after the thaw); the lease runs out as before.
#
# Before the freeze, the primary's fence process is SIGKILLed once: the
# keeper must notice and start a new one, and it is that new fence which
# then does the work. The machine has no /dev/watchdog: the default
# watchdog.mode "automatic" must say so once and go on without it.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init agent_freeze

FROZEN=
# A failure while the agent is stopped must not leave it stopped for the
# cleanup's SIGTERM (it would wait 20 s, then SIGKILL).
trap 'rc=$?; [ -z "$FROZEN" ] || kill -CONT "$FROZEN" 2>/dev/null; (exit $rc); cluster_cleanup' EXIT

fence_of() { ps -o pid=,comm= --ppid "$1" | awk '$2 == "baton-fence" { print $1 }'; }

cluster_start 3
wait_healthy 90
old=$PRIMARY
old_port=${PG_PORT[$old]}
apid=${AGENT_PID[$old]}
pm=$(postmaster_pid "$old") || fail "no postmaster PID for node$old"
log "old primary node$old: agent $apid, postmaster $pm, port $old_port"

grep -q "watchdog: /dev/watchdog: cannot open: No such file or directory; going on without it" "$(agent_log "$old")" ||
	fail "node$old's log does not say it goes on without /dev/watchdog"
pass "watchdog.mode automatic without a device: said once, going on without it"

# The fence process dies: the keeper starts a new one.
f1=$(fence_of "$apid")
[ -n "$f1" ] || fail "no baton-fence process under agent $apid"
kill -KILL "$f1"
new_fence() {
	local f
	f=$(fence_of "$apid")
	[ -n "$f" ] && [ "$f" != "$f1" ] && grep -q "the fence process $f1 killed by signal 9" "$(agent_log "$old")"
}
wait_for 10 "a new fence process after SIGKILL of fence $f1" new_fence
f2=$(fence_of "$apid")
log "fence $f1 killed, fence $f2 started in its place"
# Signals a terminal or systemd may send to the whole group do not end it.
kill -TERM "$f2"
kill -INT "$f2"
kill -HUP "$f2"
sleep 0.5
pid_alive "$f2" || fail "fence process $f2 died of SIGTERM/SIGINT/SIGHUP"
pid_alive "$pm" || fail "postmaster $pm died of signals to the fence process"
pass "fence $f2 survives SIGTERM, SIGINT and SIGHUP; Postgres still runs"

poller_start
writer_start 50
wait_for 20 "the writer's first acks" eval '[ "$(acks_count)" -ge 20 ]'
grep -q "^ack .* $old_port\$" "$T/writer.out" || fail "writer acks do not come from the primary's port $old_port"

t0=$(now_ms)
kill -STOP "$apid"
FROZEN=$apid
log "froze agent $apid of node$old (SIGSTOP)"

gone_at=
for _ in $(seq 1 $((TTL * 20 + 100))); do
	if ! pid_alive "$pm"; then
		gone_at=$(now_ms)
		break
	fi
	sleep 0.05
done
[ -n "$gone_at" ] || fail "postmaster $pm of the frozen node$old still runs $((TTL + 5)) s after the freeze"
stop_ms=$((gone_at - t0))
log "postmaster $pm gone $stop_ms ms after the freeze (ttl $TTL s)"
pid_alive "$f2" || fail "the fence process exited after fencing"
# Its last acknowledged write and its last "primary" sample both come before
# the lease could expire (freeze + ttl, since the last renewal was sent
# before the freeze).
assert_lt "$stop_ms" $((TTL * 1000)) "postmaster gone before freeze + ttl (ms after the freeze)"
grep -q "baton fence process: lease deadline passed and the agent did not renew: SIGQUIT to postmaster $pm" \
	"$(agent_log "$old")" || fail "node$old's log has no line from its fence process"
pass "the fence process of the frozen agent stopped postmaster $pm"
no_revoke() {
	! grep -q "revoked leader lease\|revoking leader lease\|to revoke leader lease" "$(agent_log "$old")"
}
no_revoke || fail "the fence of the frozen node$old revoked (or tried to revoke) the leader lease"

new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$old" ] || return 1
	NEW=${BASH_REMATCH[1]}
	[ "$(in_recovery "$NEW")" = f ]
}
wait_for $((TTL + 30)) "a replica takes over" new_leader
log "node$NEW became primary $(($(now_ms) - t0)) ms after the freeze"
acked_elsewhere() { awk -v p="$old_port" -v t="$t0" '$1 == "ack" && $3 > t && $4 != p { f = 1 } END { exit !f }' "$T/writer.out"; }
wait_for 30 "a write acknowledged by another server" acked_elsewhere

last_old=$(awk -v p="$old_port" '$1 == "ack" && $4 == p { l = $3 } END { print l }' "$T/writer.out")
first_new=$(awk -v p="$old_port" -v t="$t0" '$1 == "ack" && $3 > t && $4 != p { print $3; exit }' "$T/writer.out")
log "last ack by node$old $((last_old - t0)) ms after the freeze; first ack elsewhere $((first_new - t0)) ms after it"
log "write unavailability: $((first_new - last_old)) ms"
assert_lt "$((last_old - t0))" $((TTL * 1000)) "last write acknowledged by the frozen node$old (ms after the freeze)"
[ "$last_old" -lt "$first_new" ] || fail "node$old acknowledged a write after another node did"
# The poller's view: node$old's last "P" sample before any other node's first.
last_p=$(awk -v n="node$old=P" -v t="$t0" '$1 == "sample" && $2 > t { for (i = 3; i <= NF; i++) if ($i == n) l = $2 } END { print l }' "$T/poller.out")
first_p=$(awk -v n="node$old" -v t="$t0" '$1 == "sample" && $2 > t { for (i = 3; i <= NF; i++) if ($i ~ /=P$/ && $i !~ "^" n "=") { print $2; exit } }' "$T/poller.out")
[ -n "$last_p" ] && [ -n "$first_p" ] || fail "poller samples missing (last P of node$old '$last_p', first P elsewhere '$first_p')"
log "poller: node$old last answered primary $((last_p - t0)) ms after the freeze, another node first $((first_p - t0)) ms after it"
[ "$last_p" -lt "$first_p" ] || fail "node$old still answered as primary when another node did"
pass "node$old stopped taking writes before node$NEW started"

# Stay frozen for 2.5 x ttl in all, then thaw.
left=$((t0 + TTL * 2500 - $(now_ms)))
[ "$left" -le 0 ] || sleep "$(awk -v ms="$left" 'BEGIN { printf "%.3f", ms / 1000 }')"
kill -CONT "$apid"
FROZEN=
log "thawed agent $apid after $(($(now_ms) - t0)) ms"
reported() { grep -q "the fence process sent SIGQUIT to postmaster $pm" "$(agent_log "$old")"; }
wait_for 10 "node$old's agent reports what its fence process did" reported
line=$(grep "the fence process sent SIGQUIT to postmaster $pm" "$(agent_log "$old")" | tail -n 1)
grep -q "its loop had not passed for .* (frozen or starved?)" <<<"$line" ||
	fail "node$old's fence line does not tell a frozen agent: $line"
pass "node$old's agent says its loop had not passed since the freeze"
rejoined() {
	[ "$(in_recovery "$old")" = t ] || return 1
	[ "$(run_sql "$old" "SELECT status || ':' || sender_port FROM pg_stat_wal_receiver")" = "streaming:${PG_PORT[$NEW]}" ]
}
wait_for 90 "node$old streaming from node$NEW" rejoined
wait_healthy 60
assert_eq "$NEW" "$PRIMARY" "the new primary kept the lead"
assert_eq "$NEW" "$(primaries)" "exactly one node answers as primary"
pass "node$old rejoined as a replica of node$NEW"
no_revoke || fail "node$old's fence revoked (or tried to revoke) the leader lease after the thaw"
pass "the fence of the frozen agent never revoked the leader lease"

n0=$(acks_count)
wait_for 10 "more acks after the rejoin" eval '[ "$(acks_count)" -gt "$n0" ]'
bg_stop "$WRITER_PID"
bg_stop "$POLLER_PID"
samples=$(awk '$1 == "samples" { print $2 }' "$T/poller.out")
split=$(awk '$1 == "split_brain_samples" { print $2 }' "$T/poller.out")
[ -n "$samples" ] && [ "$samples" -gt 50 ] || fail "poller took too few samples ($samples)"
assert_eq 0 "$split" "no sample with two primaries (of $samples)"
