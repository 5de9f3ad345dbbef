# tests/bench/bench_lib.sh - what the benchmarks share (sourced). Each bench
# sources it first, parses its command line with bench_parse and checks the
# numbers with bench_positive_int, then sources tests/lib/cluster.sh (which
# reads KEEP, TTL and the like when it is sourced) and calls bench_init. The
# helpers below that use the harness (random_pause and on) run only after
# that. They read the caller's OLD (the old primary's number), CAND (a
# switchover's candidate) and T0 (unix ms of the fault or request), and set
# NEW.

# bench_usage: prints the calling script's header comment (from its second
# line to the first line that is not a comment: its usage text) and exits 0.
bench_usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
	exit 0
}

# bench_bad_usage MESSAGE: MESSAGE on stderr, prefixed with the script's
# name, and exit 2 (a wrong command line).
bench_bad_usage() {
	echo "${0##*/}: $*" >&2
	exit 2
}

# bench_parse SPEC ARGS...: parses the command line ARGS. SPEC lists the
# script's options that take a value as OPTION=VARIABLE words, e.g.
# "--rounds=ROUNDS --idle=IDLE": each sets VARIABLE (a global) to the next
# argument. Every bench also takes --keep (export KEEP=1: the harness then
# keeps the test dir) and -h/--help (bench_usage). Anything else, or an
# option without its value, exits 2 with a message.
bench_parse() {
	local bp_spec=" $1 " bp_var
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--keep) export KEEP=1 ;;
		-h | --help) bench_usage ;;
		*)
			[[ "$1" == --* && "$bp_spec" == *" $1="* ]] || bench_bad_usage "unknown option $1"
			[ $# -ge 2 ] || bench_bad_usage "$1 needs a value"
			bp_var=${bp_spec#*" $1="}
			printf -v "${bp_var%% *}" '%s' "$2"
			shift
			;;
		esac
		shift
	done
}

# bench_positive_int OPTION VALUE [UNIT]: VALUE is a whole number above 0,
# or the script exits 2 saying "OPTION needs a positive number [of UNIT]".
bench_positive_int() {
	[[ "$2" =~ ^[1-9][0-9]*$ ]] || bench_bad_usage "$1 needs a positive number${3:+ of $3}, not '$2'"
}

# bench_whole_int OPTION VALUE [UNIT]: VALUE is a whole number (0 allowed),
# or the script exits 2.
bench_whole_int() {
	[[ "$2" =~ ^[0-9]+$ ]] || bench_bad_usage "$1 needs a whole number${3:+ of $3}, not '$2'"
}

# bench_init NAME: the harness's cluster_init NAME (test dir $T, cleanup
# trap) and an empty results file RESULTS=$T/results, one figure a line.
bench_init() {
	cluster_init "$1"
	RESULTS="$T/results"
	: >"$RESULTS"
}

# bench_stats ORDER FORMAT UNIT [SCALE]: a summary of the numbers on stdin,
# one a line: "min A  median B  max C  (n=N)" (ORDER min) or "median B  min
# A  max C  (n=N)" (ORDER median), each value divided by SCALE (default 1:
# the value as read) and printed with the printf FORMAT (%s, %d, %.2f ...)
# followed by UNIT (" ms", " s" or ""). The median of an even count is the
# mean of the middle two. "no data" when stdin holds no number.
bench_stats() {
	sort -n | awk -v order="$1" -v fmt="$2" -v unit="$3" -v scale="${4:-1}" '
		function f(x) { return sprintf(fmt, scale == 1 ? x : x / scale) unit }
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "no data"; exit }
			med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			if (order == "median")
				printf "median %s  min %s  max %s  (n=%d)", f(med), f(v[1]), f(v[NR]), NR
			else
				printf "min %s  median %s  max %s  (n=%d)", f(v[1]), f(med), f(v[NR]), NR
		}'
}

# bench_median: the median of the numbers on stdin, as read (nothing when
# there are none).
bench_median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR) print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# random_pause: sleeps a random part of the ttl, so that each fault lands
# at another moment of the agents' loop and of their lease keepalives
# (baton renews every ttl/2.5 s, not every loop). Over loop_wait only, the
# fault came a near-constant time after the previous round's takeover,
# which fixed its phase against the keepalives: node loss read 5.3 s
# (n=15, 4.7-5.7) on one machine and 4.5 s on another for the same build.
random_pause() {
	sleep "$(awk -v r="$RANDOM" -v t="${TTL:-$LOOP_WAIT}" 'BEGIN { printf "%.3f", r / 32768 * t }')"
}

# writes_flowing [N]: waits (30 s at most, else fail) for N more writes
# (default 10) acknowledged to the writer, so that it has settled on the
# current primary.
writes_flowing() {
	wait_for 30 "writes flowing" acks_at_least $(($(acks_count) + ${1:-10}))
}
acks_at_least() { [ "$(acks_count)" -ge "$1" ]; }

# cluster_reset: tears the cluster down completely (writer, poller, agents,
# etcd, data) for the next setting.
cluster_reset() {
	local n
	[ -n "${WRITER_PID:-}" ] && bg_stop "$WRITER_PID"
	[ -n "${POLLER_PID:-}" ] && bg_stop "$POLLER_PID"
	WRITER_PID= POLLER_PID=
	for n in $(seq 1 "$N_NODES"); do
		pid_alive "${AGENT_PID[$n]:-}" && agent_stop "$n"
	done
	etcd_stop TERM
	rm -rf "$T"/node[0-9]* "$T/etcd" "$T"/node*.pgpass
}

# rejoin N: restarts nodeN's agent and waits (90 s) for it to stream again.
# A node that cannot rejoin is a bug worth reporting, not a reason to lose
# the figures: it is counted ("SET rejoin_failure N" in RESULTS), its logs
# are kept, and it is re-cloned from scratch.
rejoin() {
	local n=$1 keep
	agent_start "$n"
	poll_until 90 cluster_healthy && return 0
	cluster_state
	keep="$T/rejoin-failure-$(date +%H%M%S)-node$n"
	mkdir -p "$keep"
	cp "$(agent_log "$n")" "$T/node$n.log" "$keep/" 2>/dev/null
	printf '%s rejoin_failure %s\n' "$SET" "$n" >>"$RESULTS"
	log "REJOIN FAILED: node$n did not come back as a streaming replica within 90 s (logs copied to $keep); re-cloning it"
	KEEP=1
	agent_stop "$n"
	rm -rf "$(data_dir "$n")"
	agent_start "$n"
	wait_healthy 180
}

# new_leader: another node than OLD holds the leader key and is primary
# (sets NEW).
new_leader() {
	local l
	l=$(leader_name)
	[[ "$l" =~ ^node([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" != "$OLD" ] || return 1
	NEW=${BASH_REMATCH[1]}
	[ "$(in_recovery "$NEW")" = f ]
}

# cand_primary: the switchover candidate CAND holds the leader key and is
# primary.
cand_primary() {
	[ "$(leader_name)" = "node$CAND" ] && [ "$(in_recovery "$CAND")" = f ]
}

# first_ack_since SINCE_MS OLD_PORT [NEW_PORT]: unix ms of the writer's
# first ack at or after SINCE_MS by NEW_PORT or, without it, by any server
# but OLD_PORT; nothing when there is none yet. (Times stay strings: awk
# would print such large numbers as 1.8e+12.)
first_ack_since() {
	awk -v t="$1" -v o="$2" -v p="${3:-}" \
		'$1 == "ack" && $3 >= t && (p == "" ? $4 != o : $4 == p) { print $3; exit }' "$T/writer.out"
}

# acked_by_new: the writer has an ack since T0 from another server than OLD's.
acked_by_new() { [ -n "$(first_ack_since "$T0" "${PG_PORT[$OLD]}")" ]; }

# acks_around OLD_PORT SINCE_MS [NEW_PORT]: the writer's acks around a
# change of primary: sets ACK_LAST (the last ack by OLD_PORT) and ACK_FIRST
# (first_ack_since SINCE_MS OLD_PORT [NEW_PORT]); the write unavailability
# is ACK_FIRST - ACK_LAST. Returns 1 when either is missing.
acks_around() {
	ACK_LAST=$(awk -v p="$1" '$1 == "ack" && $4 == p { l = $3 } END { print l }' "$T/writer.out")
	ACK_FIRST=$(first_ack_since "$2" "$1" "${3:-}")
	[[ "$ACK_LAST" =~ ^[0-9]+$ && "$ACK_FIRST" =~ ^[0-9]+$ ]]
}
