#!/bin/bash
# tests/ops/run.sh - the operations fuzzer: a seeded, replayable sequence of
# what operators do, against a real three-node cluster with a writer running.
#
#   tests/ops/run.sh [--steps N] [--seed S] [--sync on|off] [--actions a,b,...]
#
# Faults are covered by tests/chaos; this covers the other way a cluster gets
# hurt: an operator doing ordinary things in an ordinary order. Each step is
# one action, chosen and parametrised by a small generator seeded with S (its
# own, so nothing else that draws random numbers shifts the sequence):
#
#   edit_reload      edit-config of a reload-only parameter (work_mem, ...)
#   edit_restart     edit-config of a restart-only parameter, up or down (the
#                    hot-standby ones among them: max_connections,
#                    max_worker_processes, max_locks_per_transaction, ...),
#                    then `restart --pending` at once or a little later
#   restart_pending  `restart --pending` alone
#   rolling_restart  `restart` of every member (replicas first)
#   restart_member   `restart MEMBER` of one member
#   switchover       with a candidate, or without one
#   sched_switchover a switchover scheduled a few seconds ahead
#   failover         a manual failover to a named replica
#   reinit           reinit of a replica
#   pause            pause, a short while, resume
#   sighup           a changed tag in one node's file, then SIGHUP
#   stop_start       one member's agent stopped (SIGTERM) and started again
#
# After every step, within bounds:
#   - exactly one primary, the one the leader key names, and every other
#     node streaming from it;
#   - a marker row written on the primary is *replayed* on every replica;
#   - every node runs with the configured parameters (SHOW);
#   - /primary and /replica answer 200 on exactly the nodes they should;
#   - (synchronous mode) every acknowledged write so far is on the primary.
# A failing step prints the seed, the sequence up to it, and the command that
# replays it; the cluster's logs are dumped by the harness. The summary shows
# steps per action, failures and the longest convergence.
#
# Environment as for tests/lib/cluster.sh (BATON_BUILD, KEEP=1).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/cluster.sh"

steps=12 seed= sync=on only_actions=
while [ $# -gt 0 ]; do
	case $1 in
	--steps) steps=$2; shift ;;
	--seed) seed=$2; shift ;;
	--sync) sync=$2; shift ;;
	--actions) only_actions=$2; shift ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "ops/run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[[ "$steps" =~ ^[0-9]+$ ]] && [ "$steps" -ge 1 ] && [ "$steps" -le 10000 ] ||
	{ echo "ops/run.sh: --steps must be 1..10000 (got '$steps')" >&2; exit 2; }
[ -n "$seed" ] || seed=$(( $(date +%s%N) % 1000000 ))
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "ops/run.sh: --seed must be a number (got '$seed')" >&2; exit 2; }
case $sync in on | off) ;; *) echo "ops/run.sh: --sync on|off (got '$sync')" >&2; exit 2 ;; esac

ALL_ACTIONS=(edit_reload edit_restart restart_pending rolling_restart restart_member switchover
	sched_switchover failover reinit pause sighup stop_start)
ACTIONS=("${ALL_ACTIONS[@]}")
if [ -n "$only_actions" ]; then
	IFS=, read -r -a ACTIONS <<<"$only_actions"
	for a in "${ACTIONS[@]}"; do
		[[ " ${ALL_ACTIONS[*]} " == *" $a "* ]] || { echo "ops/run.sh: unknown action '$a'" >&2; exit 2; }
	done
fi

# The generator: a 31-bit LCG of our own, so the sequence depends on the
# seed alone (bash's $RANDOM is also drawn by the harness, e.g. for ports).
RNG=$seed
rnd() { # rnd N: prints 0..N-1
	RNG=$(( (RNG * 1103515245 + 12345) % 2147483648 ))
	echo $(( (RNG >> 8) % $1 ))
}
# pick VAR N: VAR = 0..N-1, without a subshell (which would lose RNG).
pick() {
	RNG=$(( (RNG * 1103515245 + 12345) % 2147483648 ))
	printf -v "$1" '%s' $(( (RNG >> 8) % $2 ))
}

cluster_init "ops"
log "ops fuzzer: seed $seed, $steps steps, synchronous mode $sync"
log "replay with: tests/ops/run.sh --seed $seed --steps $steps --sync $sync${only_actions:+ --actions $only_actions}"

etcd_start
for n in 1 2 3; do
	node_config "$n"
	[ "$sync" = on ] && sed -i 's/^    maximum_lag_on_failover = .*/&\n    synchronous_mode = true;/' "$T/node$n.conf"
done
for n in 1 2 3; do agent_start "$n"; done
wait_healthy 120
writer_start 50
wait_for 30 "the writer's first acks" eval '[ "$(acks_count)" -ge 10 ]'
run_sql "$PRIMARY" "CREATE TABLE IF NOT EXISTS ops_marker (step int PRIMARY KEY, at timestamptz DEFAULT now())" >/dev/null ||
	fail "cannot create the marker table"

# The parameters the fuzzer changes, with the values it picks from, and what
# every node must run with (WANT[name]; "" = the server's default, unchecked).
RELOAD_PARAMS=(work_mem log_min_duration_statement checkpoint_completion_target)
declare -A RELOAD_VALUES=([work_mem]="4MB 8MB 16MB" [log_min_duration_statement]="-1 250 1000"
	[checkpoint_completion_target]="0.5 0.8 0.9")
RESTART_PARAMS=(max_connections max_worker_processes max_locks_per_transaction max_prepared_transactions
	max_wal_senders)
declare -A RESTART_VALUES=([max_connections]="100 150 60" [max_worker_processes]="8 12 6"
	[max_locks_per_transaction]="64 128" [max_prepared_transactions]="0 10" [max_wal_senders]="10 12")
declare -A WANT=()

declare -A N_DONE=() N_FAIL=()
SEQ=()
longest_ms=0 longest_step=
step=0

# ---------------------------------------------------------------- checks

# members_json: batonctl list --format json ("" on failure).
members_json() { ctl list --format json 2>/dev/null; }

replica_nodes() {
	local n out=""
	for n in 1 2 3; do [ "$n" != "$PRIMARY" ] && out+="$n "; done
	echo "${out% }"
}

# replayed N STEP: the marker row of STEP is visible on nodeN (replayed).
replayed() { [ "$(run_sql "$1" "SELECT count(*) FROM ops_marker WHERE step = $2")" = 1 ]; }

# marker_written: the cluster is healthy and its primary took this step's
# marker row (ON CONFLICT: an earlier try may have committed unseen).
marker_written() {
	cluster_healthy || return 1
	run_sql "$PRIMARY" "INSERT INTO ops_marker (step) VALUES ($step) ON CONFLICT DO NOTHING" >/dev/null
}

# settings_ok: every node runs with every parameter in WANT.
SETTINGS_BAD=
settings_ok() {
	local n p v
	for n in 1 2 3; do
		for p in "${!WANT[@]}"; do
			[ -n "${WANT[$p]}" ] || continue
			v=$(run_sql "$n" "SELECT setting FROM pg_settings WHERE name = '$p'") || { SETTINGS_BAD="node$n: no answer"; return 1; }
			if [ "$v" != "${WANT[$p]}" ]; then
				SETTINGS_BAD="node$n: $p = $v, want ${WANT[$p]}"
				return 1
			fi
		done
	done
}

# health_ok: /primary answers 200 on the primary only, /replica on the
# replicas only.
HEALTH_BAD=
health_ok() {
	local n wp wr
	for n in 1 2 3; do
		wp=503 wr=200
		[ "$n" = "$PRIMARY" ] && wp=200 wr=503
		rest_call "$n" GET /primary
		[ "$REST_CODE" = "$wp" ] || { HEALTH_BAD="node$n /primary $REST_CODE, want $wp"; return 1; }
		rest_call "$n" GET /replica
		[ "$REST_CODE" = "$wr" ] || { HEALTH_BAD="node$n /replica $REST_CODE, want $wr"; return 1; }
	done
}

# no_lost_acks: every write the writer saw acknowledged is on the primary.
no_lost_acks() {
	awk '$1 == "ack" { print $2 }' "$T/writer.out" | LC_ALL=C sort >"$T/acked"
	run_sql "$PRIMARY" "SELECT id FROM baton_writes ORDER BY id" | LC_ALL=C sort >"$T/present" || return 1
	LOST=$(LC_ALL=C comm -23 "$T/acked" "$T/present" | wc -l)
	[ "$LOST" = 0 ]
}

step_failed() {
	N_FAIL[$1]=$((${N_FAIL[$1]:-0} + 1))
	log "STEP $step ($1) FAILED: $2"
	log "sequence so far (seed $seed):"
	local s
	for s in "${SEQ[@]}"; do log "  $s"; done
	log "replay with: tests/ops/run.sh --seed $seed --steps $step --sync $sync${only_actions:+ --actions $only_actions}"
	cluster_state
	fail "ops fuzzer: step $step ($1): $2"
}

# check_step ACTION: the invariants after a step; records the convergence time.
check_step() {
	local a=$1 t0 ms n p
	t0=$(now_ms)
	# A restart the step asked for may still be under way: the marker is
	# written once the cluster is healthy and its primary takes the write.
	poll_until 120 marker_written || step_failed "$a" "no single primary taking the marker row within 120 s"
	p=$(primaries)
	[ "$p" = "$PRIMARY" ] || step_failed "$a" "primaries answering: '$p', leader key: $LEADER"
	for n in $(replica_nodes); do
		poll_until 60 replayed "$n" "$step" || step_failed "$a" "marker row $step not replayed on node$n within 60 s"
	done
	poll_until 120 settings_ok || step_failed "$a" "settings did not converge within 120 s: $SETTINGS_BAD"
	poll_until 30 health_ok || step_failed "$a" "health endpoints disagree with the roles: $HEALTH_BAD"
	if [ "$sync" = on ]; then
		no_lost_acks || step_failed "$a" "$LOST acknowledged writes missing on the primary node$PRIMARY"
	fi
	ms=$(($(now_ms) - t0))
	if [ "$ms" -gt "$longest_ms" ]; then
		longest_ms=$ms longest_step="$step ($a)"
	fi
	N_DONE[$a]=$((${N_DONE[$a]:-0} + 1))
	log "step $step ($a): converged in $ms ms, primary node$PRIMARY"
}

# ---------------------------------------------------------------- actions

ctl_ok() {
	local out
	out=$(ctl "$@" 2>&1) || step_failed "$ACTION" "batonctl $* failed: $out"
	log "batonctl $*: $(head -c 300 <<<"$out" | tr '\n' ' ')"
}

act_edit_reload() {
	local i j vals
	pick i ${#RELOAD_PARAMS[@]}
	local p=${RELOAD_PARAMS[$i]}
	read -r -a vals <<<"${RELOAD_VALUES[$p]}"
	pick j ${#vals[@]}
	SEQ+=("$step edit_reload $p=${vals[$j]}")
	ctl_ok edit-config --pg "$p=${vals[$j]}" --force
	# pg_settings shows work_mem in kB; compare what the server reports.
	case $p in
	work_mem) WANT[$p]=$(( ${vals[$j]%MB} * 1024 )) ;;
	*) WANT[$p]=${vals[$j]} ;;
	esac
}

act_edit_restart() {
	local i j d vals
	pick i ${#RESTART_PARAMS[@]}
	local p=${RESTART_PARAMS[$i]}
	read -r -a vals <<<"${RESTART_VALUES[$p]}"
	pick j ${#vals[@]}
	pick d 4
	SEQ+=("$step edit_restart $p=${vals[$j]} then restart --pending after ${d} s")
	ctl_ok edit-config --pg "$p=${vals[$j]}" --force
	[ "$d" = 0 ] || sleep "$d"
	ctl_ok restart --pending --force
	WANT[$p]=${vals[$j]}
}

act_restart_pending() {
	SEQ+=("$step restart_pending")
	ctl_ok restart --pending --force
}

act_rolling_restart() {
	SEQ+=("$step rolling_restart")
	ctl_ok restart --force
}

act_restart_member() {
	local m
	pick m 3
	SEQ+=("$step restart_member node$((m + 1))")
	ctl_ok restart "node$((m + 1))" --force
}

act_switchover() {
	local c reps
	read -r -a reps <<<"$(replica_nodes)"
	pick c 3
	if [ "$c" = 2 ]; then
		SEQ+=("$step switchover without candidate (leader node$PRIMARY)")
		ctl_ok switchover --leader "node$PRIMARY" --wait 60 --force
	else
		SEQ+=("$step switchover to node${reps[$c]} (leader node$PRIMARY)")
		ctl_ok switchover --leader "node$PRIMARY" --candidate "node${reps[$c]}" --wait 60 --force
	fi
}

act_sched_switchover() {
	local c reps at
	read -r -a reps <<<"$(replica_nodes)"
	pick c 2
	at=$(date -u -d "+4 seconds" +%Y-%m-%dT%H:%M:%SZ)
	SEQ+=("$step sched_switchover to node${reps[$c]} at +4 s")
	ctl_ok switchover --candidate "node${reps[$c]}" --scheduled "$at" --wait 0 --force
	local want=node${reps[$c]}
	wait_for 60 "the scheduled switchover to $want" eval '[ "$(leader_name)" = "$want" ] && switchover_gone'
}

act_failover() {
	local c reps
	read -r -a reps <<<"$(replica_nodes)"
	pick c 2
	SEQ+=("$step failover to node${reps[$c]}")
	ctl_ok failover --candidate "node${reps[$c]}" --wait 60 --force
}

act_reinit() {
	local c reps
	read -r -a reps <<<"$(replica_nodes)"
	pick c 2
	local n=${reps[$c]} before
	SEQ+=("$step reinit node$n")
	before=$(postmaster_pid "$n") || before=none
	ctl_ok reinit "node$n" --force
	# reinit answers once queued: wait for a new postmaster on a fresh clone.
	wait_for 90 "node$n running a new postmaster after reinit" \
		eval '[ "$(postmaster_pid $n || echo none)" != "$before" ] && [ "$(postmaster_pid $n || echo none)" != none ]'
}

act_pause() {
	local d
	pick d 4
	SEQ+=("$step pause for $((d + 1)) s")
	ctl_ok pause
	sleep $((d + 1))
	ctl_ok resume
}

act_sighup() {
	local m v
	pick m 3
	pick v 3
	local n=$((m + 1)) prio=$((v + 1))
	SEQ+=("$step sighup node$n with failover_priority $prio")
	if grep -q '^tags = ' "$T/node$n.conf"; then
		sed -i "s/^tags = .*/tags = { failover_priority = $prio; };/" "$T/node$n.conf"
	else
		printf 'tags = { failover_priority = %s; };\n' "$prio" >>"$T/node$n.conf"
	fi
	agent_signal "$n" HUP
	wait_for 30 "node$n publishing failover_priority $prio" \
		eval '[ "$(member_json node$n | jq -r ".tags.failover_priority // empty" 2>/dev/null)" = "$prio" ]'
}

act_stop_start() {
	local m
	pick m 3
	local n=$((m + 1))
	SEQ+=("$step stop_start node$n")
	agent_stop "$n"
	[ "$AGENT_RC" = 0 ] || step_failed stop_start "agent node$n exited with $AGENT_RC on SIGTERM"
	sleep 1
	agent_start "$n"
}

# ---------------------------------------------------------------- the run

t_run=$(now_ms)
for step in $(seq 1 "$steps"); do
	pick i ${#ACTIONS[@]}
	ACTION=${ACTIONS[$i]}
	cluster_healthy || poll_until 60 cluster_healthy || step_failed "$ACTION" "cluster unhealthy before the step"
	log "---- step $step/$steps: $ACTION (primary node$PRIMARY)"
	"act_$ACTION"
	check_step "$ACTION"
done

bg_stop "$WRITER_PID"
no_lost_acks || fail "$LOST acknowledged writes missing at the end"
acks=$(wc -l <"$T/acked")

echo
echo "ops fuzzer summary: seed $seed, $steps steps in $(( ($(now_ms) - t_run) / 1000 )) s, synchronous mode $sync"
printf '  %-18s %6s %6s\n' action steps failed
for a in "${ALL_ACTIONS[@]}"; do
	[ -n "${N_DONE[$a]:-}${N_FAIL[$a]:-}" ] || continue
	printf '  %-18s %6s %6s\n' "$a" "${N_DONE[$a]:-0}" "${N_FAIL[$a]:-0}"
done
echo "  longest convergence: $longest_ms ms (step $longest_step)"
echo "  acknowledged writes: $acks, lost: $LOST"
pass "ops fuzzer: $steps steps, seed $seed, no failure"
