# tests/bench/compare_lib.sh - the scenarios, figures, table and plots of
# tests/bench/compare.sh (sourced after tests/lib/cluster.sh and
# tests/bench/patroni.sh).
#
# The same round functions drive both tools: TOOL (patroni or baton) picks
# how a node is configured, started and switched over; everything else (the
# faults, the writer's and poller's output, the figures) is shared. Each
# round appends "TOOL FIGURE VALUE" lines to RESULTS (gaps in ms, memory in
# KiB, CPU in % of one core, counts as counts). The writer's and poller's
# output of the running cluster is $T/writer.out and $T/poller.out (the
# harness's names, so its acks helpers read them); phase_end moves them to
# $OUT under the phase's name.

PHASE=
HEALTH_WAIT=240

# ---------------------------------------------------------------- tools

tool_config() {
	if [ "$TOOL" = patroni ]; then patroni_config "$1"; else node_config "$1"; fi
}
tool_start() {
	if [ "$TOOL" = patroni ]; then patroni_start "$1"; else agent_start "$1"; fi
}
tool_log() {
	if [ "$TOOL" = patroni ]; then patroni_log "$1"; else agent_log "$1"; fi
}
# tool_switchover OLD NEW: asks for a planned switchover to nodeNEW.
tool_switchover() {
	local out
	if [ "$TOOL" = patroni ]; then
		patroni_switchover "$1" "$2" || fail "patronictl switchover node$1 -> node$2 failed (see $T/patronictl.log)"
	else
		out=$(ctl switchover --candidate "node$2" --force </dev/null 2>&1) || fail "batonctl switchover to node$2 failed: $out"
	fi
}

# ---------------------------------------------------------------- phases

# phase_start SETTING: bootstraps a fresh 3-node cluster of TOOL with
# SETTING's timing under its own scope, then starts the writer and poller.
phase_start() {
	local setting=$1 n
	PHASE=$TOOL-$setting
	IFS=/ read -r TTL LOOP_WAIT RETRY_TIMEOUT <<<"${SETTING[$TOOL.$setting]}"
	SETTING_NAME=$setting
	SCOPE=cmp-$setting
	if [ "$TOOL" = patroni ]; then NAMESPACE=$PATRONI_NAMESPACE; else NAMESPACE=/baton; fi
	log "=== $TOOL, $setting: ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT (keys under $NAMESPACE/$SCOPE)"
	rm -rf "$T"/node[0-9]* "$T"/node*.pgpass "$T"/node*.conf "$T"/patroni-node*.yml
	for n in 1 2 3; do tool_config "$n"; done
	for n in 1 2 3; do tool_start "$n"; done
	wait_healthy "$HEALTH_WAIT"
	writer_start 50
	poller_start
	wait_for 30 "writes acknowledged" eval '[ "$(acks_count)" -ge 10 ]'
}

# phase_end: stops the writer, poller and the cluster; keeps the client
# output in OUT; removes the data dirs.
phase_end() {
	local n
	[ -z "${WRITER_PID:-}" ] || bg_stop "$WRITER_PID"
	[ -z "${POLLER_PID:-}" ] || bg_stop "$POLLER_PID"
	WRITER_PID= POLLER_PID=
	for n in 1 2 3; do
		pid_alive "${AGENT_PID[$n]:-}" && agent_stop "$n"
	done
	kill_leftover_postmasters
	cp "$T/writer.out" "$OUT/writer-$PHASE.out" 2>/dev/null
	cp "$T/poller.out" "$OUT/poller-$PHASE.out" 2>/dev/null
	for n in 1 2 3; do cp "$(tool_log "$n")" "$OUT/$PHASE-node$n.log" 2>/dev/null; done
	rm -f "$T/writer.out" "$T/poller.out" "$T"/agent-node*.log "$T"/patroni-node*.log
	rm -rf "$T"/node[0-9]*
	log "=== $PHASE done"
}

record() { printf '%s %s %s\n' "$TOOL" "$1" "$2" >>"$RESULTS"; }

# ---------------------------------------------------------------- helpers

# random_pause: sleeps a random part of the ttl, so that each fault lands
# at another moment of the agents' loop and of their lease keepalives
# (baton renews every ttl/2.5 s, not every loop). Over loop_wait only, the
# fault came a near-constant time after the previous round's takeover,
# which fixed its phase against the keepalives: node loss read 5.3 s
# (n=15, 4.7-5.7) on one machine and 4.5 s on another for the same build.
random_pause() {
	sleep "$(awk -v r="$RANDOM" -v t="${TTL:-$LOOP_WAIT}" 'BEGIN { printf "%.3f", r / 32768 * t }')"
}

# writes_flowing_on N: waits (bounded) for 5 more acks by nodeN.
writes_flowing_on() {
	local n=$1 c0
	c0=$(acks_on "${PG_PORT[$n]}")
	wait_for 30 "writes flowing on node$n" eval '[ "$(acks_on "${PG_PORT[$n]}")" -ge $((c0 + 5)) ]'
}
acks_on() { awk -v p="$1" '$1 == "ack" && $4 == p { c++ } END { print c + 0 }' "$T/writer.out"; }

# another_primary OLD: the leader key names a node other than OLD and that
# node answers as a primary; sets NEW.
another_primary() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$1" ] || return 1
	[ "$(in_recovery "${BASH_REMATCH[1]}")" = f ] || return 1
	NEW=${BASH_REMATCH[1]}
}

# first_ack_after MS [NOT_PORT]: unix ms of the first ack after MS (by a
# port other than NOT_PORT when given).
first_ack_after() {
	awk -v t="$1" -v np="${2:-}" '$1 == "ack" && $3 > t && (np == "" || $4 != np) { print $3; exit }' "$T/writer.out"
}

# split_samples FROM_MS TO_MS: poller samples in the window in which more
# than one node answered as a primary.
split_samples() {
	awk -v a="$1" -v b="$2" '$1 == "sample" && $2 >= a && $2 <= b {
		p = 0
		for (i = 3; i <= NF; i++) if ($i ~ /=P$/) p++
		if (p > 1) c++
	} END { print c + 0 }' "$T/poller.out"
}

# first_primary_sample NODE AFTER_MS: unix ms of the first poller sample
# after AFTER_MS in which nodeNODE answered as a primary.
first_primary_sample() {
	awk -v k="node$1=P" -v t="$2" '$1 == "sample" && $2 > t { for (i = 3; i <= NF; i++) if ($i == k) { print $2; exit } }' "$T/poller.out"
}

# lost_acks FROM_MS: the number of acknowledged writes (acked at or after
# FROM_MS, before the question) whose row the current primary does not
# have; their ack lines are appended to $OUT/lost-acks.txt. Needs PRIMARY
# (wait_healthy).
lost_acks() {
	local from=$1 min asked
	min=$(awk -v t="$from" '$1 == "ack" && $3 >= t { print $2; exit }' "$T/writer.out")
	[ -n "$min" ] || { echo 0; return 0; }
	# only acks printed before the query starts: a later one may commit
	# after the query's snapshot
	asked=$(now_ms)
	run_sql "$PRIMARY" "SELECT id FROM baton_writes WHERE id >= $min" >"$T/ids" ||
		fail "cannot read the written rows from node$PRIMARY"
	awk -v t="$from" -v u="$asked" 'NR == FNR { have[$1] = 1; next } $1 == "ack" && $3 >= t && $3 < u && !($2 in have)' \
		"$T/ids" "$T/writer.out" >"$T/lost"
	if [ -s "$T/lost" ]; then
		{ echo "# $PHASE: acked, missing on node$PRIMARY (checked $(date +%T.%3N))"; cat "$T/lost"; } >>"$OUT/lost-acks.txt"
	fi
	wc -l <"$T/lost"
}

# rejoin N: restarts nodeN's agent and waits for the cluster to be whole. A
# node that cannot rejoin is counted (rejoin_failure), its log kept, and it
# is cloned anew so the figures go on.
rejoin() {
	local n=$1 keep
	tool_start "$n"
	poll_until "$HEALTH_WAIT" cluster_healthy && { log "node$n rejoined; primary is node$PRIMARY"; return 0; }
	cluster_state
	keep="$OUT/rejoin-failure-$PHASE-node$n-$(date +%H%M%S)"
	mkdir -p "$keep"
	cp "$(tool_log "$n")" "$keep/" 2>/dev/null
	record rejoin_failure "$n"
	log "REJOIN FAILED: $TOOL node$n did not come back as a streaming replica within $HEALTH_WAIT s (log in $keep); cloning it anew"
	agent_stop "$n"
	kill_leftover_postmasters
	rm -rf "$(data_dir "$n")"
	tool_start "$n"
	wait_healthy "$HEALTH_WAIT"
}

# after_round T0 SCENARIO: the checks every round ends with: acknowledged
# writes lost and split-brain samples since T0 (recorded as SCENARIO.lost
# and SCENARIO.split).
after_round() {
	local t0=$1 sc=$2 lost split
	lost=$(lost_acks "$((t0 - 2000))")
	split=$(split_samples "$t0" "$(now_ms)")
	record "$sc.lost" "$lost"
	record "$sc.split" "$split"
	[ "$lost" = 0 ] || log "$lost acknowledged writes are missing on node$PRIMARY"
	[ "$split" = 0 ] || log "$split poller samples saw two writable primaries"
}

# ---------------------------------------------------------------- rounds

# round_node_loss I: agent (with baton's fence process) and postmaster of
# the primary SIGKILLed at once.
round_node_loss() {
	local i=$1 old pm t0 t1 first gap promo
	wait_healthy "$HEALTH_WAIT"
	old=$PRIMARY
	writes_flowing_on "$old"
	random_pause
	pm=$(postmaster_pid "$old") || fail "no postmaster for node$old"
	t0=$(now_ms)
	# the whole node: baton's fence first (alive, it would revoke the lease)
	kill -KILL $(fence_pid "$old") "${AGENT_PID[$old]}" "$pm"
	agent_wait_exit "$old" 10 || fail "$TOOL node$old survived SIGKILL"
	wait_for $((TTL * 3 + LOOP_WAIT * 3 + 60)) "a new primary" another_primary "$old"
	wait_for 60 "a write acknowledged by node$NEW" eval '[ -n "$(first_ack_after "$t0" "${PG_PORT[$old]}")" ]'
	first=$(first_ack_after "$t0" "${PG_PORT[$old]}")
	gap=$(acks_max_gap "$t0" "$first")
	promo=$(first_primary_sample "$NEW" "$t0")
	record "node_loss.$SETTING_NAME" "$gap"
	log "$TOOL $SETTING_NAME node loss $i: node$old -> node$NEW, write unavailability $gap ms" \
		"(poller saw node$NEW primary $((${promo:-$t0} - t0)) ms after the kill)"
	if [ "$SETTING_NAME" = defaults ] && [ "$i" = 1 ]; then
		t1=$((first + 3000))
		sleep 3
		timeline_save "$old" "$NEW" "$t0" "$first" "${promo:-}" "$t1"
	fi
	rejoin "$old"
	after_round "$t0" "node_loss.$SETTING_NAME"
}

# round_pg_crash I: the primary's postmaster SIGKILLed, its agent alive.
round_pg_crash() {
	local i=$1 old pm t0 first gap who
	wait_healthy "$HEALTH_WAIT"
	old=$PRIMARY
	writes_flowing_on "$old"
	random_pause
	pm=$(postmaster_pid "$old") || fail "no postmaster for node$old"
	t0=$(now_ms)
	kill -KILL "$pm"
	wait_for $((TTL * 3 + LOOP_WAIT * 3 + 60)) "a write acknowledged after the crash" \
		eval '[ -n "$(first_ack_after "$((t0 + 20))")" ]'
	first=$(first_ack_after "$((t0 + 20))")
	gap=$(acks_max_gap "$t0" "$first")
	who=$(awk -v t="$first" '$1 == "ack" && $3 == t { print $4; exit }' "$T/writer.out")
	[ "$who" = "${PG_PORT[$old]}" ] && who="node$old (restarted in place)" || who="another node (failover)"
	record pg_crash "$gap"
	log "$TOOL Postgres crash $i on node$old: write unavailability $gap ms, writes resumed on $who"
	pid_alive "${AGENT_PID[$old]:-}" || { log "$TOOL node$old's agent exited after the crash; restarting it"; tool_start "$old"; }
	wait_healthy "$HEALTH_WAIT"
	after_round "$t0" pg_crash
}

# round_agent_kill I: the primary's agent alone SIGKILLed. Observed until
# another node is a writable primary, plus 5 s.
round_agent_kill() {
	local i=$1 old t0 t1 gap split still
	wait_healthy "$HEALTH_WAIT"
	old=$PRIMARY
	writes_flowing_on "$old"
	random_pause
	t0=$(now_ms)
	kill -KILL "${AGENT_PID[$old]}"
	agent_wait_exit "$old" 10 || fail "$TOOL node$old survived SIGKILL"
	wait_for $((TTL * 3 + LOOP_WAIT * 3 + 60)) "another node is a writable primary" another_primary "$old"
	sleep 5
	t1=$(now_ms)
	gap=$(acks_max_gap "$t0" "$t1")
	split=$(split_samples "$t0" "$t1")
	still=no
	[ "$(in_recovery "$old")" = f ] && still=yes
	record agent_kill.gap "$gap"
	record agent_kill.split_window "$split"
	log "$TOOL agent SIGKILL $i on node$old: node$NEW took over; $split samples with two writable primaries," \
		"longest write gap $gap ms; old node still a writable primary 5 s after: $still"
	rejoin "$old"
	after_round "$t0" agent_kill
}

# round_switchover I: planned switchover to the next node.
round_switchover() {
	local i=$1 old cand t0 first last
	wait_healthy "$HEALTH_WAIT"
	old=$PRIMARY
	cand=$((old % 3 + 1))
	writes_flowing_on "$old"
	random_pause
	t0=$(now_ms)
	tool_switchover "$old" "$cand"
	is_primary() { [ "$(leader_name)" = "node$1" ] && [ "$(in_recovery "$1")" = f ]; }
	wait_for 90 "node$cand is the primary" is_primary "$cand"
	wait_for 60 "a write acknowledged by node$cand" eval '[ -n "$(first_ack_on "${PG_PORT[$cand]}" "$t0")" ]'
	first=$(first_ack_on "${PG_PORT[$cand]}" "$t0")
	last=$(last_ack_on "${PG_PORT[$old]}" "$first")
	[[ "$last" =~ ^[0-9]+$ && "$first" =~ ^[0-9]+$ ]] || fail "cannot find the acks around the switchover (last '$last', first '$first')"
	record switchover "$((first - last))"
	log "$TOOL switchover $i: node$old -> node$cand, write unavailability $((first - last)) ms, request -> first ack $((first - t0)) ms"
	wait_healthy "$HEALTH_WAIT"
	after_round "$t0" switchover
}

# ---------------------------------------------------------------- idle footprint

# utime + stime in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# name in () may hold spaces)
cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# measure_idle: writer and poller stopped, each agent's Rss/Pss (KiB) and
# CPU (% of one core) over IDLE seconds.
measure_idle() {
	local n pid c1 tck
	declare -A c0=()
	bg_stop "$WRITER_PID"
	bg_stop "$POLLER_PID"
	WRITER_PID= POLLER_PID=
	wait_healthy "$HEALTH_WAIT"
	sleep 5
	tck=$(getconf CLK_TCK)
	for n in 1 2 3; do
		pid_alive "${AGENT_PID[$n]:-}" || fail "$TOOL node$n is not running before the idle measurement"
		c0[$n]=$(cpu_ticks "${AGENT_PID[$n]}")
	done
	log "measuring the idle $TOOL agents for $IDLE s"
	sleep "$IDLE"
	for n in 1 2 3; do
		pid=${AGENT_PID[$n]}
		c1=$(cpu_ticks "$pid")
		record rss "$(awk '/^Rss:/ { print $2 }' "/proc/$pid/smaps_rollup")"
		record pss "$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")"
		record cpu "$(awk -v d=$((c1 - c0[$n])) -v t="$tck" -v s="$IDLE" 'BEGIN { printf "%.3f", 100 * d / t / s }')"
		log "$TOOL node$n (pid $pid, $(cat "/proc/$pid/comm")): $(grep -E '^(Rss|Pss):' "/proc/$pid/smaps_rollup" | tr -s ' \n' ' '), CPU $((c1 - c0[$n])) ticks in $IDLE s"
	done
}

# ---------------------------------------------------------------- table

# stats TOOL FIGURE SCALE FORMAT: "median (min-max)" of the figure's values
# divided by SCALE, or "-" when there are none; the median alone goes to
# the global MED.
MED=
stats() {
	local line
	line=$(awk -v tool="$1" -v fig="$2" '$1 == tool && $2 == fig { print $3 }' "$RESULTS" | sort -g |
		awk -v s="$3" -v f="$4" '{ v[NR] = $1 / s } END {
			if (NR == 0) { print "- -"; exit }
			med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = sprintf(f, med)
			if (NR > 1) r = r sprintf(" (" f "-" f ")", v[1], v[NR])
			printf "%s %s\n", med, r }')
	MED=${line%% *}
	STATS=${line#* }
}

# ratio A B: A / B with two significant decimals, or a word when B is 0.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-") { print "-"; exit }
		if (b == 0) { print (a == 0 ? "- (both 0)" : "- (baton 0)"); exit }
		printf "%.2f x\n", a / b }'
}

row() {
	local label=$1 fig=$2 scale=$3 fmt=$4 unit=$5 p b pm bm
	stats patroni "$fig" "$scale" "$fmt"
	p=$STATS pm=$MED
	stats baton "$fig" "$scale" "$fmt"
	b=$STATS bm=$MED
	[ "$p" = - ] || p+=" $unit"
	[ "$b" = - ] || b+=" $unit"
	printf '| %s | %s | %s | %s |\n' "$label" "$p" "$b" "$(ratio "$pm" "$bm")"
}

count_of() { awk -v tool="$1" -v fig="$2" '$1 == tool && $2 == fig { c++ } END { print c + 0 }' "$RESULTS"; }
sum_of() { awk -v tool="$1" -v re="$2" '$1 == tool && $2 ~ re { s += $3 } END { print s + 0 }' "$RESULTS"; }

print_table() {
	local pd pa bd ba
	pd=${SETTING[patroni.defaults]} pa=${SETTING[patroni.aggressive]}
	bd=${SETTING[baton.defaults]} ba=${SETTING[baton.aggressive]}
	echo
	echo "Patroni ($PATRONI_VERSION) beside baton ($(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'))," \
		"3 nodes + 1 etcd on loopback, $(nproc) cores, $RUNS run(s) per scenario, started $STARTED."
	echo "Timing ttl/loop_wait/retry_timeout: defaults Patroni $pd, baton $bd; aggressive Patroni $pa, baton $ba."
	echo "Writer: one INSERT per 50 ms, multi-host, target_session_attrs=read-write. Ratio = Patroni / baton (medians)."
	echo
	echo "| scenario | Patroni median (min-max) | baton median (min-max) | ratio |"
	echo "|---|---|---|---|"
	row "node loss at defaults ($pd vs $bd): write unavailability" node_loss.defaults 1000 %.2f s
	row "node loss, most aggressive ($pa vs $ba): write unavailability" node_loss.aggressive 1000 %.2f s
	row "planned switchover: last ack on old -> first ack on new" switchover 1000 %.2f s
	row "Postgres crash, agent alive: write unavailability" pg_crash 1000 %.2f s
	row "agent SIGKILL alone: poller samples with two writable primaries" agent_kill.split_window 1 %.0f samples
	row "agent SIGKILL alone: longest write gap" agent_kill.gap 1000 %.2f s
	row "agent SIGKILL alone: acknowledged writes lost" agent_kill.lost 1 %.0f writes
	row "agent resident memory (Rss), per agent" rss 1024 %.1f MiB
	row "agent proportional memory (Pss), per agent" pss 1024 %.1f MiB
	row "agent CPU while idle ($IDLE s), per agent" cpu 1 %.2f "% of a core"
	echo
	echo "Other rounds (node loss, crash, switchover): acknowledged writes lost: Patroni" \
		"$(sum_of patroni '^(node_loss|pg_crash|switchover).*\.lost$'), baton $(sum_of baton '^(node_loss|pg_crash|switchover).*\.lost$');" \
		"samples with two writable primaries: Patroni $(sum_of patroni '^(node_loss|pg_crash|switchover).*\.split$')," \
		"baton $(sum_of baton '^(node_loss|pg_crash|switchover).*\.split$');" \
		"old nodes that failed to rejoin (cloned anew): Patroni $(count_of patroni rejoin_failure), baton $(count_of baton rejoin_failure)."
}

# ---------------------------------------------------------------- timelines

# timeline_save OLD NEW T0 FIRST PROMO T1: the acks (x = s since the
# fault, y = node number, 0 for a failed write) of one node loss, and its
# marks, to $OUT/timeline-TOOL.{dat,marks}.
timeline_save() {
	local old=$1 new=$2 t0=$3 first=$4 promo=$5 t1=$6 n ports=""
	for n in 1 2 3; do ports+="${PG_PORT[$n]}:$n,"; done
	awk -v t0="$t0" -v a="$((t0 - 2000))" -v b="$t1" -v ports="$ports" '
		BEGIN { k = split(ports, pp, ","); for (i = 1; i <= k; i++) if (pp[i] != "") { split(pp[i], q, ":"); node[q[1]] = q[2] } }
		$1 == "ack" && $3 >= a && $3 <= b { printf "%.3f %d\n", ($3 - t0) / 1000, node[$4] }
		$1 == "err" && $2 >= a && $2 <= b { printf "%.3f 0\n", ($2 - t0) / 1000 }' "$T/writer.out" >"$OUT/timeline-$TOOL.dat"
	{
		echo "tool=$TOOL"
		echo "setting=${SETTING[$TOOL.$SETTING_NAME]}"
		echo "old=$old"
		echo "new=$new"
		echo "first=$(awk -v a="$first" -v b="$t0" 'BEGIN { printf "%.3f", (a - b) / 1000 }')"
		[ -z "$promo" ] || echo "promo=$(awk -v a="$promo" -v b="$t0" 'BEGIN { printf "%.3f", (a - b) / 1000 }')"
	} >"$OUT/timeline-$TOOL.marks"
	log "timeline of this failover saved to $OUT/timeline-$TOOL.dat"
}

# plot_timelines: one PNG per tool with a saved timeline, on a common x
# range so the two can be read side by side.
plot_timelines() {
	local tool xmax=0 f x
	for tool in patroni baton; do
		f=$OUT/timeline-$tool.dat
		[ -s "$f" ] || continue
		x=$(awk 'END { print $1 }' "$f")
		xmax=$(awk -v a="$xmax" -v b="$x" 'BEGIN { print (b > a ? b : a) }')
	done
	for tool in patroni baton; do
		[ -s "$OUT/timeline-$tool.dat" ] || continue
		plot_one "$tool" "$(awk -v x="$xmax" 'BEGIN { printf "%d", x + 1.5 }')"
	done
}

plot_one() {
	local tool=$1 xmax=$2 setting old new first promo=-1 name png gp
	setting=$(sed -n 's/^setting=//p' "$OUT/timeline-$tool.marks")
	old=$(sed -n 's/^old=//p' "$OUT/timeline-$tool.marks")
	new=$(sed -n 's/^new=//p' "$OUT/timeline-$tool.marks")
	first=$(sed -n 's/^first=//p' "$OUT/timeline-$tool.marks")
	promo=$(sed -n 's/^promo=//p' "$OUT/timeline-$tool.marks")
	if [ "$tool" = patroni ]; then name="Patroni 3.0.2"; else name=baton; fi
	png=$IMG_DIR/failover-timeline-$tool.png
	gp=$OUT/timeline-$tool.gp
	{
		echo "set terminal pngcairo size 1000,400 font 'DejaVu Sans,10'"
		echo "set output '$png'"
		echo "set title \"$name, ttl/loop\\\\_wait/retry\\\\_timeout $setting: node$old (primary) loses its agent and postmaster (SIGKILL)\""
		echo "set xlabel 'seconds since the fault'"
		echo "set xrange [-2:$xmax]"
		echo "set yrange [-0.6:3.6]"
		echo "set ytics ('failed write' 0, 'node1' 1, 'node2' 2, 'node3' 3)"
		echo "set grid xtics"
		echo "set key below horizontal"
		echo "set arrow from 0, graph 0 to 0, graph 1 nohead lc rgb '#cc0000' lw 2"
		echo "set label 'fault' at 0.1, 3.45 tc rgb '#cc0000'"
		[ -z "$promo" ] || {
			echo "set arrow from $promo, graph 0 to $promo, graph 1 nohead lc rgb '#888888' dt 2"
			echo "set label 'node$new writable' at $promo, -0.45 right offset -0.3,0 tc rgb '#555555'"
		}
		echo "set arrow from $first, graph 0 to $first, graph 1 nohead lc rgb '#008800' lw 2"
		# the label goes on the side of the line with more room
		if awk -v f="$first" -v x="$xmax" 'BEGIN { exit !(f < x / 2) }'; then
			echo "set label sprintf('first ack on node$new: %.2f s', $first) at $first, 3.25 left offset 0.5,0 tc rgb '#008800'"
		else
			echo "set label sprintf('first ack on node$new: %.2f s', $first) at $first, 3.25 right offset -0.5,0 tc rgb '#008800'"
		fi
		echo "plot '$OUT/timeline-$tool.dat' using 1:(\$2 == 1 ? 1 : 1/0) with points pt 7 ps 0.5 lc rgb '#1f77b4' title 'ack by node1', \\"
		echo "  '' using 1:(\$2 == 2 ? 2 : 1/0) with points pt 7 ps 0.5 lc rgb '#ff7f0e' title 'ack by node2', \\"
		echo "  '' using 1:(\$2 == 3 ? 3 : 1/0) with points pt 7 ps 0.5 lc rgb '#2ca02c' title 'ack by node3', \\"
		echo "  '' using 1:(\$2 == 0 ? 0 : 1/0) with points pt 2 ps 0.6 lc rgb '#d62728' title 'write error'"
	} >"$gp"
	gnuplot "$gp" 2>"$OUT/timeline-$tool.gnuplot.err" || { log "gnuplot failed for $tool: $(head -n3 "$OUT/timeline-$tool.gnuplot.err")"; return 0; }
	log "drew $png"
}
