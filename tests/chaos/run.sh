#!/bin/bash
# tests/chaos/run.sh - fault injection against a real cluster: 3 etcd
# members and 3 baton nodes (agent + Postgres 15), each in its own network
# namespace (tests/chaos/lib.sh), under a steady write load.
#
#   tests/chaos/run.sh [--rounds N] [--seed S] [--sync on|off|strict]
#                      [--faults a,b,...] [--ttl S] [--loop-wait S]
#                      [--retry-timeout S] [--recovery-bound S] [--keep]
#
# Run as root (it creates namespaces and runs the agents as user baton),
# with BATON_BUILD pointing at a build readable by baton (default
# /var/tmp/baton-ci/build). Defaults: 9 rounds (each fault once), a random
# seed (printed; pass it back with --seed to replay the same faults in the
# same order and with the same timings), synchronous mode on,
# ttl/loop_wait/retry_timeout 5/1/2, recovery bound 60 s. --sync off runs
# asynchronous replication (lost acks are then a figure, not a failure);
# strict is synchronous_mode_strict. --keep keeps the test dir (logs, every
# client's output) and prints its path.

# Load: an application writer (tests/tools/writer through a multi-host
# read-write conninfo, one INSERT every 50 ms) and one probe writer per node
# (that node only, every 100 ms) record every acknowledged write with the
# server and its timeline; a poller (tests/tools/poller) asks every node
# pg_is_in_recovery() every 50 ms. All of them run in the hub namespace.
#
# Faults (one per round, against the current primary where it applies): the
# list is shuffled with the seed and taken round-robin, so every N rounds
# (N = number of faults) run each fault once, each at a random moment:
#   node_loss         SIGKILL of the primary's agent and postmaster at once;
#                     the agent is started again after the failover
#   agent_kill        SIGKILL of the primary's agent alone; started again
#   postmaster_kill   SIGKILL of the primary's postmaster alone
#   agent_stop        SIGSTOP of the primary's agent for ttl + 1..3 s, SIGCONT
#   etcd_restart      every etcd member stopped (SIGTERM, SIGKILL after 2 s),
#                     restarted 1..ttl+2 s later
#   etcd_leader_kill  SIGKILL of the member that is etcd's raft leader,
#                     restarted 2..4 s later
#   partition_etcd    the primary cut off from the etcd members (iptables DROP
#                     both ways inside its namespace) until another node is
#                     primary, then 1..3 s more, then healed
#   partition_all     the same, cut off from the etcd members and the replicas
#                     (clients still reach it: the most tempting split brain)
#   isolate           the primary's only link taken down (nobody reaches it,
#                     clients included) until another node is primary, then
#                     1..3 s more, then up again
#
# Checks after each round:
#   (1) no acknowledged write is missing from the final primary (sync mode;
#       without it the count is reported, not failed);
#   (2) never two nodes answering as primary in one poller sample, and no
#       write acknowledged by an old primary (a server and timeline) after
#       the new one acknowledged its first;
#   (3) one primary with every replica streaming (and, in sync mode, a
#       synchronous standby named in the sync key) within the recovery bound
#       after the fault ends,
#       and the application's writes resume;
#   (4) no data directory re-cloned (pg_basebackup after the initial clones;
#       none of these faults makes one unavoidable: pg_rewind covers every
#       diverged old primary); pg_rewind runs are counted and reported.
# One line per round, a summary table at the end; exit 1 on any violation,
# 2 on bad usage or when the agent rejects the synchronous mode settings.

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

ALL_FAULTS=(node_loss agent_kill postmaster_kill agent_stop etcd_restart etcd_leader_kill partition_etcd partition_all isolate)
ROUNDS=9
SEED=
SYNC_MODE=on
RECOVERY_BOUND=60
FAULTS=("${ALL_FAULTS[@]}")

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
need_int() { [[ "$2" =~ ^[0-9]+$ ]] || { echo "run.sh: $1 needs a whole number, got '$2'" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) need_int "$1" "${2:-}"; ROUNDS=$2; shift ;;
	--seed) need_int "$1" "${2:-}"; SEED=$2; shift ;;
	--sync)
		case ${2:-} in on | off | strict) SYNC_MODE=$2 ;; *) echo "run.sh: --sync takes on, off or strict" >&2; exit 2 ;; esac
		shift ;;
	--faults)
		IFS=, read -r -a FAULTS <<<"${2:-}"
		for f in "${FAULTS[@]}"; do
			[[ " ${ALL_FAULTS[*]} " == *" $f "* ]] || { echo "run.sh: unknown fault '$f' (known: ${ALL_FAULTS[*]})" >&2; exit 2; }
		done
		[ "${#FAULTS[@]}" -gt 0 ] || { echo "run.sh: --faults needs at least one fault" >&2; exit 2; }
		shift ;;
	--ttl) need_int "$1" "${2:-}"; TTL=$2; shift ;;
	--loop-wait) need_int "$1" "${2:-}"; LOOP_WAIT=$2; shift ;;
	--retry-timeout) need_int "$1" "${2:-}"; RETRY_TIMEOUT=$2; shift ;;
	--recovery-bound) need_int "$1" "${2:-}"; RECOVERY_BOUND=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[ "$ROUNDS" -ge 1 ] || { echo "run.sh: --rounds must be at least 1" >&2; exit 2; }
[ -n "$SEED" ] || SEED=$(($(date +%s%N) / 1000 % 1000000))

# ---------------------------------------------------------------- schedule
# Drawn before anything else uses $RANDOM, so a seed always gives the same
# faults, order and timings.
RANDOM=$SEED
declare -a SCHED_FAULT=() SCHED_JITTER=() SCHED_HOLD=()
order=()
for r in $(seq 1 "$ROUNDS"); do
	if [ $(((r - 1) % ${#FAULTS[@]})) = 0 ]; then
		order=("${FAULTS[@]}")
		for ((i = ${#order[@]} - 1; i > 0; i--)); do
			j=$((RANDOM % (i + 1)))
			tmp=${order[$i]} order[$i]=${order[$j]} order[$j]=$tmp
		done
	fi
	SCHED_FAULT[$r]=${order[$(((r - 1) % ${#FAULTS[@]}))]}
	SCHED_JITTER[$r]=$((RANDOM % 1000)) # ms: a random moment of the agents' loop
	SCHED_HOLD[$r]=$((RANDOM % 1000))   # 0..1 of the fault's variable duration
done

# ---------------------------------------------------------------- helpers

ms_to_s() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }

# hold_ms MIN_MS SPAN_MS ROUND: MIN + SPAN * the round's hold fraction.
hold_ms() { echo $(($1 + $2 * SCHED_HOLD[$3] / 1000)); }
sleep_ms() { sleep "$(ms_to_s "$1")"; }

# new_primary_besides P: another node holds the key and answers as primary.
NEW_PRIMARY=
new_primary_besides() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$1" ] || return 1
	[ "$(in_recovery "${BASH_REMATCH[1]}")" = f ] || return 1
	NEW_PRIMARY=${BASH_REMATCH[1]}
}

# sync_ready: the primary has a synchronous standby, and the sync key names
# it. Postgres waits for a standby one loop before the agent records it in
# the sync key (the safe order); while the key names nobody no replica may
# be promoted (as with Patroni), so a fault in that second would test
# nothing but that rule and hold the cluster without a primary.
sync_ready() {
	local names n sync
	[ "$SYNC_MODE" != off ] || return 0
	[ -n "$PRIMARY" ] || return 1
	names=$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/sync" 2>/dev/null |
		jq -r --arg l "node$PRIMARY" 'select(.leader == $l) | .sync_standby[]?' 2>/dev/null) || return 1
	[ -n "$names" ] || return 1
	sync=$(run_sql "$PRIMARY" "SELECT string_agg(application_name, ' ') FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')") || return 1
	for n in $names; do
		[[ " $sync " == *" $n "* ]] && return 0
	done
	return 1
}

ready() { cluster_healthy && sync_ready; }

app_acks_after() { awk -v t="$1" '$1 == "ack" && $3 > t { f = 1; exit } END { exit !f }' "$T/w_app.out"; }

# max_gap FILE FROM_MS TO_MS: largest gap between acks in [FROM, TO],
# counting from the last ack before FROM.
max_gap() {
	awk -v a="$2" -v b="$3" '$1 == "ack" {
		t = $3 + 0
		if (t < a) { prev = t; next }
		if (t > b) { exit }
		if (prev != "" && t - prev > g) g = t - prev
		prev = t
	} END { if (prev != "" && b - prev > g) g = b - prev; printf "%d\n", g }' "$1"
}

# count_log PATTERN: occurrences in all agent logs.
count_log() { cat "$T"/agent-node*.log 2>/dev/null | grep -c -- "$1" || true; }

# split_samples FROM_MS TO_MS: poller samples with two or more primaries.
split_samples() {
	awk -v a="$1" -v b="$2" '$1 == "sample" && $2 >= a && $2 <= b {
		p = 0
		for (i = 3; i <= NF; i++) if ($i ~ /=P$/) p++
		if (p > 1) { n++; print > "/dev/stderr" }
	} END { printf "%d\n", n }' "$T/poller.out" 2>>"$T/split_brain.txt"
}

# lost_acks TO_MS: acknowledged writes (acked before TO_MS, by any writer)
# missing from the current primary; writes the list to $T/lost.txt and
# prints the count. Returns 1 when the primary could not be read.
lost_acks() {
	local to=$1 w table total=0 c exists
	: >"$T/lost.txt"
	for w in "${WRITERS[@]}"; do
		if [ "$w" = app ]; then table=chaos_app; else table=chaos_w$w; fi
		exists=$(run_sql "$PRIMARY" "SELECT to_regclass('$table') IS NOT NULL") || return 1
		if [ "$exists" = t ]; then
			run_sql "$PRIMARY" "SELECT id FROM $table" >"$T/present.$w" || return 1
		else
			: >"$T/present.$w"
		fi
		c=$(awk -v to="$to" -v w="$w" 'FNR == NR { have[$1] = 1; next }
			$1 == "ack" && $3 <= to && !($2 in have) { n++; print "writer " w ": " $0 >> "'"$T/lost.txt"'" }
			END { printf "%d\n", n }' "$T/present.$w" "$T/w_$w.out")
		total=$((total + c))
	done
	echo "$total"
}

# ack_order_violations: "no write acknowledged by an old primary after the
# new one accepted its first". Every writer's acks in time order; a writing
# epoch is a (server, timeline) pair, numbered by its first ack; an ack from
# any epoch but the latest one is a violation. Lists them in
# $T/ack_order.txt; prints the count.
ack_order_violations() {
	local w files=()
	for w in "${WRITERS[@]}"; do files+=("$T/w_$w.out"); done
	awk '$1 == "ack" && NF >= 6 && $6 ~ /^[0-9]+$/' "${files[@]}" | sort -s -n -k3,3 |
		awk -v out="$T/ack_order.txt" 'BEGIN { printf "" > out }
		{
			key = $5 " timeline " $6
			if (!(key in idx)) { idx[key] = ++epochs; first[key] = $3; name[epochs] = key }
			if (idx[key] != epochs) {
				n++
				printf "ack by %s at %s after %s acknowledged its first write (at %s): %s\n", key, $3, name[epochs], first[name[epochs]], $0 >> out
			}
		} END { printf "%d\n", n }'
}

# ---------------------------------------------------------------- faults
# Each sets FAULT_NODE (the node or member hit) and T_HEAL (ms when the
# fault was over); a fault it could not carry out is a violation (FAULT_ERR).

FAULT_NODE= T_HEAL= FAULT_ERR=

wait_takeover() {
	local p=$1 bound=$((TTL + 30))
	if ! poll_until "$bound" new_primary_besides "$p"; then
		FAULT_ERR="(3) no other node became primary within ${bound}s of the fault on node$p"
		return 1
	fi
	log "node$NEW_PRIMARY took over from node$p"
}

fault_node_loss() {
	local p=$1 pm
	FAULT_NODE=node$p
	pm=$(postmaster_pid "$p") || { FAULT_ERR="no postmaster found for primary node$p"; return 1; }
	kill -KILL $(fence_pid "$p") "${AGENT_PID[$p]}" "$pm"
	agent_wait_exit "$p" 10 || { FAULT_ERR="agent node$p survived SIGKILL"; return 1; }
	log "SIGKILL agent and postmaster ($pm) of node$p"
	wait_takeover "$p"
	T_HEAL=$(now_ms)
	agent_start "$p"
}

fault_agent_kill() {
	local p=$1
	FAULT_NODE=node$p
	agent_kill "$p"
	log "SIGKILL agent of node$p"
	wait_takeover "$p"
	T_HEAL=$(now_ms)
	agent_start "$p"
}

fault_postmaster_kill() {
	local p=$1 pm
	FAULT_NODE=node$p
	pm=$(postmaster_pid "$p") || { FAULT_ERR="no postmaster found for primary node$p"; return 1; }
	kill -KILL "$pm"
	log "SIGKILL postmaster $pm of node$p"
	T_HEAL=$(now_ms)
}

fault_agent_stop() {
	local p=$1 r=$2 ms
	FAULT_NODE=node$p
	ms=$(hold_ms $((TTL * 1000 + 1000)) 2000 "$r")
	kill -STOP "${AGENT_PID[$p]}"
	log "SIGSTOP agent of node$p for $ms ms"
	sleep_ms "$ms"
	kill -CONT "${AGENT_PID[$p]}"
	log "SIGCONT agent of node$p"
	T_HEAL=$(now_ms)
}

fault_etcd_restart() {
	local r=$2 ms i
	FAULT_NODE=etcd
	ms=$(hold_ms 1000 $((TTL * 1000 + 1000)) "$r")
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do kill -TERM "${ETCD_M_PID[$i]}" 2>/dev/null; done
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do etcd_member_stop "$i" 2; done
	log "stopped every etcd member; restarting them in $ms ms"
	sleep_ms "$ms"
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do etcd_member_restart "$i"; done
	for i in $(seq 1 "$ETCD_N_MEMBERS"); do
		poll_until 30 etcd_member_healthy "$i" || { FAULT_ERR="etcd member m$i not healthy 30 s after its restart"; return 1; }
	done
	T_HEAL=$(now_ms)
}

fault_etcd_leader_kill() {
	local r=$2 ms m=
	poll_until 10 eval 'm=$(etcd_raft_leader); [ -n "$m" ]' || { FAULT_ERR="no etcd raft leader found"; return 1; }
	FAULT_NODE=m$m
	ms=$(hold_ms 2000 2000 "$r")
	kill -KILL "${ETCD_M_PID[$m]}"
	etcd_member_stop "$m"
	log "SIGKILL etcd member m$m (raft leader); restarting it in $ms ms"
	sleep_ms "$ms"
	etcd_member_restart "$m"
	poll_until 30 etcd_member_healthy "$m" || { FAULT_ERR="etcd member m$m not healthy 30 s after its restart"; return 1; }
	T_HEAL=$(now_ms)
}

fault_partition() {
	local p=$1 r=$2 what=$3 ms
	FAULT_NODE=node$p
	partition "$p" "$what"
	wait_takeover "$p" || { heal "$p"; T_HEAL=$(now_ms); return 1; }
	ms=$(hold_ms 1000 2000 "$r")
	sleep_ms "$ms"
	heal "$p"
	T_HEAL=$(now_ms)
}
fault_partition_etcd() { fault_partition "$1" "$2" etcd; }
fault_partition_all() { fault_partition "$1" "$2" all; }

fault_isolate() {
	local p=$1 r=$2 ms
	FAULT_NODE=node$p
	link_down "$p"
	wait_takeover "$p" || { link_up "$p"; T_HEAL=$(now_ms); return 1; }
	ms=$(hold_ms 1000 2000 "$r")
	sleep_ms "$ms"
	link_up "$p"
	T_HEAL=$(now_ms)
}

# ---------------------------------------------------------------- results

VIOLATIONS=()
violation() {
	VIOLATIONS+=("round $1 ($2): $3")
	log "VIOLATION round $1 ($2): $3"
}
declare -A R_UNAVAIL=() R_RECOVER=() F_ROUNDS=() F_LOST=() F_SPLIT=() F_ORDER=() F_CLONES=() F_REWINDS=()
TOTAL_LOST=0 TOTAL_SPLIT=0 TOTAL_ORDER=0 TOTAL_CLONES=0 TOTAL_REWINDS=0 ROUNDS_DONE=0

vals() { tr ' ' '\n' <<<"$1" | grep -v '^$'; }
# min_med_max "V1 V2 ...": "min/median/max" ("-" when empty: a round that
# never recovered has no figure).
min_med_max() {
	[ -n "${1// /}" ] || { echo -; return; }
	echo "$(vals "$1" | sort -n | head -n1)/$(vals "$1" | median)/$(vals "$1" | sort -n | tail -n1)"
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

summary() {
	local f vals
	echo
	echo "==== chaos summary: seed $SEED, $ROUNDS_DONE of $ROUNDS rounds, sync $SYNC_MODE, ttl/loop_wait/retry_timeout $TTL/$LOOP_WAIT/$RETRY_TIMEOUT"
	printf '%-17s %6s %23s %23s %5s %6s %6s %7s %8s\n' fault rounds 'unavail s min/med/max' 'recover s min/med/max' lost split order reclone rewinds
	for f in "${FAULTS[@]}"; do
		[ -n "${F_ROUNDS[$f]:-}" ] || continue
		printf '%-17s %6s %23s %23s %5s %6s %6s %7s %8s\n' "$f" "${F_ROUNDS[$f]}" \
			"$(min_med_max "${R_UNAVAIL[$f]:-}")" "$(min_med_max "${R_RECOVER[$f]:-}")" \
			"${F_LOST[$f]:-0}" "${F_SPLIT[$f]:-0}" "${F_ORDER[$f]:-0}" "${F_CLONES[$f]:-0}" "${F_REWINDS[$f]:-0}"
	done
	echo "acknowledged writes: $(cat "$T"/w_*.out 2>/dev/null | grep -c '^ack ') (application writer: $(grep -c '^ack ' "$T/w_app.out" 2>/dev/null))"
	echo "acknowledged writes lost: $TOTAL_LOST$([ "$SYNC_MODE" = off ] && echo ' (asynchronous mode: reported, not a failure)')"
	echo "split-brain moments: $TOTAL_SPLIT poller samples with two primaries, $TOTAL_ORDER acks out of timeline order"
	echo "re-clones: $TOTAL_CLONES (none unavoidable for these faults), pg_rewind runs: $TOTAL_REWINDS"
	if [ "${#VIOLATIONS[@]}" -gt 0 ]; then
		echo "VIOLATIONS (${#VIOLATIONS[@]}):"
		printf '  %s\n' "${VIOLATIONS[@]}"
		[ ! -s "$T/lost.txt" ] || { echo "lost acks (first 10):"; head -n 10 "$T/lost.txt"; }
		[ ! -s "$T/split_brain.txt" ] || { echo "split-brain samples (first 10):"; head -n 10 "$T/split_brain.txt"; }
		[ ! -s "$T/ack_order.txt" ] || { echo "acks out of order (first 10):"; head -n 10 "$T/ack_order.txt"; }
	else
		echo "no violation"
	fi
}

# ---------------------------------------------------------------- set-up

chaos_init
log "seed $SEED, $ROUNDS rounds: ${SCHED_FAULT[*]}"
log "sync mode $SYNC_MODE, ttl $TTL, loop_wait $LOOP_WAIT, retry_timeout $RETRY_TIMEOUT, recovery bound ${RECOVERY_BOUND}s"
net_setup 3 3
etcd_members_start 3
for n in 1 2 3; do node_config "$n"; done
if ! out=$(config_check 1); then
	echo "$out"
	if [ "$SYNC_MODE" != off ]; then
		echo "run.sh: this baton rejects the synchronous mode settings (see above); run with --sync off until it supports them" >&2
		TEST_FAILED=1
		CHAOS_EXIT_CODE=2
		exit 2
	fi
	fail "baton rejects the rendered config $T/node1.conf"
fi
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 90
if [ "$SYNC_MODE" != off ]; then
	poll_until 30 sync_ready ||
		fail "synchronous mode is on but node$PRIMARY has no synchronous standby named in the sync key after 30 s (SHOW synchronous_standby_names: '$(run_sql "$PRIMARY" 'SHOW synchronous_standby_names')', sync key: '$(etcdctl_ get --print-value-only "$NAMESPACE/$SCOPE/sync" 2>/dev/null)')"
	log "synchronous standby in place: $(run_sql "$PRIMARY" "SELECT string_agg(application_name || ':' || sync_state, ' ') FROM pg_stat_replication")"
fi
poller_start
writers_start
wait_for 30 "the application writer's first ack" app_acks_after 0
CLONES0=$(count_log 'pg_basebackup started')
REWINDS0=$(count_log 'pg_rewind started')
T_START=$(now_ms)

printf '%-5s %-17s %-5s %9s %5s %6s %6s %8s %9s %s\n' round fault node unavail_s lost split order fault_s recover_s note

# ---------------------------------------------------------------- rounds

for r in $(seq 1 "$ROUNDS"); do
	f=${SCHED_FAULT[$r]}
	if ! poll_until "$RECOVERY_BOUND" ready; then
		cluster_state
		violation "$r" "$f" "(3) cluster not ready (one primary, replicas streaming, sync standby) before the round"
		break
	fi
	p=$PRIMARY
	t_round=$(now_ms)
	sleep_ms "${SCHED_JITTER[$r]}"
	FAULT_NODE= FAULT_ERR= T_HEAL=
	t_fault=$(now_ms)
	"fault_$f" "$p" "$r"
	[ -n "$T_HEAL" ] || T_HEAL=$(now_ms)
	note=
	if [ -n "$FAULT_ERR" ]; then
		violation "$r" "$f" "$FAULT_ERR"
		note="fault: $FAULT_ERR"
	fi
	if ! poll_until "$RECOVERY_BOUND" ready; then
		cluster_state
		violation "$r" "$f" "(3) no single primary with every replica streaming$([ "$SYNC_MODE" = off ] || echo ' and a synchronous standby') within ${RECOVERY_BOUND}s after the fault ended"
		ROUNDS_DONE=$r
		F_ROUNDS[$f]=$((${F_ROUNDS[$f]:-0} + 1))
		break
	fi
	t_ok=$(now_ms)
	if ! poll_until 20 app_acks_after "$t_ok"; then
		violation "$r" "$f" "(3) the application's writes did not resume within 20 s of recovery"
	fi
	t_check=$(now_ms)

	unavail=$(ms_to_s "$(max_gap "$T/w_app.out" "$t_fault" "$t_check")")
	recover=$(ms_to_s $((t_ok - T_HEAL)))
	held=$(ms_to_s $((T_HEAL - t_fault)))
	if lost_total=$(lost_acks "$t_check"); then
		lost=$((lost_total - TOTAL_LOST))
		TOTAL_LOST=$lost_total
	else
		lost=?
		violation "$r" "$f" "(1) could not read the written tables on node$PRIMARY"
	fi
	split=$(split_samples "$t_round" "$t_check")
	order_total=$(ack_order_violations)
	order=$((order_total - TOTAL_ORDER))
	TOTAL_ORDER=$order_total
	clones=$(($(count_log 'pg_basebackup started') - CLONES0 - TOTAL_CLONES))
	rewinds=$(($(count_log 'pg_rewind started') - REWINDS0 - TOTAL_REWINDS))
	TOTAL_SPLIT=$((TOTAL_SPLIT + split))
	TOTAL_CLONES=$((TOTAL_CLONES + clones))
	TOTAL_REWINDS=$((TOTAL_REWINDS + rewinds))

	[ "$lost" = 0 ] || [ "$lost" = '?' ] || [ "$SYNC_MODE" = off ] || violation "$r" "$f" "(1) $lost acknowledged writes missing from node$PRIMARY"
	[ "$split" = 0 ] || violation "$r" "$f" "(2) $split poller samples with two primaries"
	[ "$order" = 0 ] || violation "$r" "$f" "(2) $order writes acknowledged by an old primary after the new one's first"
	[ "$clones" = 0 ] || violation "$r" "$f" "(4) $clones data directories re-cloned"

	F_ROUNDS[$f]=$((${F_ROUNDS[$f]:-0} + 1))
	R_UNAVAIL[$f]="${R_UNAVAIL[$f]:-} $unavail"
	R_RECOVER[$f]="${R_RECOVER[$f]:-} $recover"
	F_LOST[$f]=$((${F_LOST[$f]:-0} + ${lost/\?/0}))
	F_SPLIT[$f]=$((${F_SPLIT[$f]:-0} + split))
	F_ORDER[$f]=$((${F_ORDER[$f]:-0} + order))
	F_CLONES[$f]=$((${F_CLONES[$f]:-0} + clones))
	F_REWINDS[$f]=$((${F_REWINDS[$f]:-0} + rewinds))
	ROUNDS_DONE=$r
	printf '%-5s %-17s %-5s %9s %5s %6s %6s %8s %9s %s\n' "$r" "$f" "${FAULT_NODE:-?}" "$unavail" "$lost" "$split" \
		"$order" "$held" "$recover" "primary now node$PRIMARY${note:+; $note}"
done

log "rounds took $(ms_to_s $(($(now_ms) - T_START))) s"
summary
[ "${#VIOLATIONS[@]}" = 0 ] || fail "${#VIOLATIONS[@]} violations (see above)"
pass "chaos: $ROUNDS_DONE rounds, no violation"
