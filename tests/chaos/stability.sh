#!/bin/bash
# tests/chaos/stability.sh - no failover when nothing failed, under load.
#
#   tests/chaos/stability.sh [--minutes M] [--settings default|ttl3|ttl2|both] [--keep]
#                            [--clients N] [--scale S]
#
# Fast failover is worthless if the cluster fails over when nothing failed.
# For each timing setting (default: ttl/loop_wait/retry_timeout 5/1/2;
# ttl3: 3/1/1; ttl2: 2/1/0.5, etcd's smallest lease, run only when asked;
# both, the default, runs default and ttl3 one after the other, each on a
# fresh cluster) this builds one etcd and three agents on loopback with the
# integration harness (tests/lib/cluster.sh), initialises pgbench on the
# primary (--scale, default 10) and then, for M minutes (default 10; a
# decimal such as 0.5 is allowed), saturates the machine:
#   - pgbench with --clients (default 8) clients against the primary's port,
#     as user baton, for the whole period;
#   - one CPU spinner per core (nproc), at the agents' own nice level, so
#     they really compete with the agents for the CPU;
#   - two fsync hogs (tests/tools/fsync_hog: append + fdatasync in a loop,
#     one with 256 KiB blocks for throughput, one with 4 KiB for the fsync
#     rate) in the test dir, the same file system as etcd's data dir (this
#     is checked).
# Measured all along: a sampler (every 200 ms) reads the leader key from
# etcd (holder, create revision, how long etcd took to answer) and every
# agent's /metrics (baton_seconds_since_lease_renewal,
# baton_lease_renewal_worst_seconds, baton_lease_renewal_failures_total,
# baton_leader_changes_total); the poller (tests/tools/poller) asks every
# node pg_is_in_recovery() every 50 ms; etcd's /metrics before and after
# give the WAL fsync and backend commit p99 under load.
#
# Asserted per setting: 0 changes of the leader key's holder (sampler and
# every agent's counter), the key never absent nor re-created, 0 demotions
# (no "-> demote" decision, no fencing SIGQUIT by keeper or fence process), no
# node other than the primary ever answering as primary, 0 split-brain
# samples; and that the load ran (pgbench committed transactions, every hog
# alive to the end, the sampler sampled). A failed setting prints the
# evidence (agent log lines, samples). Prints a summary table per setting
# and one for all settings at the end; exits non-zero if any setting failed.
#
# "worst keepalive" is the slowest keepalive round trip the keeper measured
# (baton_lease_renewal_worst_seconds, since the agent started); "worst gap"
# is the longest time between the send times of two successful keepalives
# the keeper saw (baton_lease_renewal_worst_gap_seconds, exact, since the
# agent started); "budget" is the time a leader may go without a renewal
# before it must demote (ttl - min(ttl/4, 1 s)).
#
# Runs as root; BATON_BUILD names the build (default
# /var/tmp/baton-ci/build, made by tests/run.sh; it must hold
# tests/tools/fsync_hog). KEEP=1 or --keep keeps the test dirs. Takes about
# M + 1.5 minutes per setting.
set -uo pipefail

MINUTES=10
SETTINGS=both
CLIENTS=8
SCALE=10
ONE=
OUT=
KEEP_DIRS=${KEEP:-0}
while [ $# -gt 0 ]; do
	case $1 in
	--minutes) MINUTES=${2:-}; shift ;;
	--settings) SETTINGS=${2:-}; shift ;;
	--keep) KEEP_DIRS=1 ;;
	--clients) CLIENTS=${2:-}; shift ;;
	--scale) SCALE=${2:-}; shift ;;
	# internal: run one setting in this process, summary to FILE
	--one) ONE=${2:-}; shift ;;
	--out) OUT=${2:-}; shift ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "stability.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[[ "$MINUTES" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "stability.sh: --minutes needs a number, got '$MINUTES'" >&2; exit 2; }
SECONDS_RUN=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 + 0.5 }')
[ "$SECONDS_RUN" -ge 10 ] || { echo "stability.sh: --minutes $MINUTES is under 10 seconds" >&2; exit 2; }
[[ "$CLIENTS" =~ ^[1-9][0-9]*$ ]] || { echo "stability.sh: --clients needs a positive number, got '$CLIENTS'" >&2; exit 2; }
[[ "$SCALE" =~ ^[1-9][0-9]*$ ]] || { echo "stability.sh: --scale needs a positive number, got '$SCALE'" >&2; exit 2; }
case $SETTINGS in
default) LIST=(default) ;;
ttl3) LIST=(ttl3) ;;
ttl2) LIST=(ttl2) ;;
both) LIST=(default ttl3) ;;
*) echo "stability.sh: --settings must be default, ttl3, ttl2 or both, got '$SETTINGS'" >&2; exit 2 ;;
esac

# The columns of the summary tables: key in the summary file, heading.
COLS=(setting timing seconds tps leader_changes demotions renewal_failures worst_keepalive_s worst_gap_s
	budget_s etcd_wal_fsync_p99_ms etcd_read_worst_ms split_brain result)

# print_table FILE...: one row per summary file (key=value lines).
print_table() {
	awk -v cols="${COLS[*]}" '
		BEGIN { n = split(cols, c, " ") }
		FNR == 1 { r++ }
		{ i = index($0, "="); if (i) v[r, substr($0, 1, i - 1)] = substr($0, i + 1) }
		END {
			for (j = 1; j <= n; j++) printf "%-*s", (j == 1 ? 9 : length(c[j]) + 2), c[j]
			printf "\n"
			for (k = 1; k <= r; k++) {
				for (j = 1; j <= n; j++) {
					x = v[k, c[j]]; if (x == "") x = "?"
					printf "%-*s", (j == 1 ? 9 : length(c[j]) + 2), x
				}
				printf "\n"
			}
		}' "$@"
}

# ================================================================ parent
# Each setting runs in a child process of its own (the harness keeps one
# cluster per process and cleans it up in its EXIT trap).
if [ -z "$ONE" ]; then
	[ "$(id -u)" = 0 ] || { echo "stability.sh: run as root (the agents run as user baton)" >&2; exit 2; }
	SUMDIR=$(mktemp -d /tmp/baton-stability.XXXXXX)
	CHILD=
	trap '[ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; rm -rf "$SUMDIR"; exit 130' INT TERM
	rc=0
	files=()
	for s in "${LIST[@]}"; do
		echo "######## setting $s: $MINUTES min of load ($(date +%T))"
		KEEP=$KEEP_DIRS bash "$0" --one "$s" --out "$SUMDIR/$s" --minutes "$MINUTES" \
			--clients "$CLIENTS" --scale "$SCALE" &
		CHILD=$!
		wait "$CHILD"
		r=$?
		CHILD=
		if [ "$r" != 0 ]; then
			rc=1
			echo "######## setting $s FAILED (exit $r)"
		fi
		[ -s "$SUMDIR/$s" ] || printf 'setting=%s\nresult=FAILED (no summary: exit %s)\n' "$s" "$r" >"$SUMDIR/$s"
		files+=("$SUMDIR/$s")
	done
	echo
	echo "######## stability summary ($MINUTES min of load per setting)"
	print_table "${files[@]}"
	rm -rf "$SUMDIR"
	exit "$rc"
fi

# ================================================================ one setting
case $ONE in
default) TTL=5 LOOP_WAIT=1 RETRY_TIMEOUT=2 ;;
ttl3) TTL=3 LOOP_WAIT=1 RETRY_TIMEOUT=1 ;;
ttl2) TTL=2 LOOP_WAIT=1 RETRY_TIMEOUT=0.5 ;;
*) echo "stability.sh: unknown setting '$ONE'" >&2; exit 2 ;;
esac
[ -n "$OUT" ] || { echo "stability.sh: --one needs --out FILE" >&2; exit 2; }
SETTING=$ONE
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init "stability_$SETTING"

PGBENCH=$PG_BIN/pgbench
[ -x "$PGBENCH" ] || fail "$PGBENCH is missing (Debian ships it in postgresql-15, which tests/lib/packages.sh installs)"
FSYNC_HOG=$BATON_BUILD/tests/tools/fsync_hog
[ -x "$FSYNC_HOG" ] || fail "$FSYNC_HOG is missing (rebuild: it is a noinst program of tests/local.mk)"
command -v perl >/dev/null || fail "perl is missing (the sampler is a perl script)"
NCPU=$(nproc)
BUDGET=$(awk -v t="$TTL" 'BEGIN { m = t / 4; if (m > 1) m = 1; printf "%.2f", t - m }')

# summary KEY VALUE: one line of the summary file the parent prints.
summary() { printf '%s=%s\n' "$1" "$2" >>"$OUT"; }
: >"$OUT"
summary setting "$SETTING"
summary timing "$TTL/$LOOP_WAIT/$RETRY_TIMEOUT"
summary budget_s "$BUDGET"
summary result FAILED # replaced at the end when every check passed

cluster_start 3
wait_healthy 90
P=$PRIMARY
P_NAME=node$P
TL0=$(timeline "$P")
log "primary $P_NAME (pg ${PG_PORT[$P]}), timeline $TL0; timing ttl $TTL / loop_wait $LOOP_WAIT / retry_timeout $RETRY_TIMEOUT"

# The fsync hogs write next to etcd's data dir: same file system.
HOGDIR=$T/fsync-hog
mkdir -p "$HOGDIR"
dev_etcd=$(stat -c %d "$T/etcd") || fail "no etcd data dir at $T/etcd"
dev_hog=$(stat -c %d "$HOGDIR")
assert_eq "$dev_etcd" "$dev_hog" "the fsync hogs' dir and etcd's data dir are on the same device"
log "disk under test: $(df --output=source,fstype "$T/etcd" | tail -n1 | tr -s ' ')"

# ---------------------------------------------------------------- pgbench init
t0=$(now_ms)
# (HOME: with Postgres TLS, libpq reads ~/.postgresql/, which root's HOME
# would make unreadable)
timeout 600 setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
	env HOME="$BATON_HOME" PGPASSFILE="$PGPASSFILE" "$PGBENCH" -h 127.0.0.1 -p "${PG_PORT[$P]}" -U postgres -i -q -s "$SCALE" postgres \
	>"$T/pgbench-init.out" 2>&1 || { tail -n 20 "$T/pgbench-init.out"; fail "pgbench -i -s $SCALE failed on $P_NAME (within 600 s)"; }
log "pgbench initialised (scale $SCALE) in $(($(now_ms) - t0)) ms"
wait_healthy 120
assert_eq "$P" "$PRIMARY" "the primary is unchanged after pgbench -i"

# ---------------------------------------------------------------- sampler
cat >"$T/sampler.pl" <<'PERL'
# Every INTERVAL ms: the leader key from etcd's JSON gateway and each
# agent's /metrics, one line per sample:
#   s <unix_ms> etcd_ms=<n> leader=<name|-|?> crev=<n> lease=<hex> nodeN=<since>,<worst>,<fail>,<changes>,<is_leader> ...
# (a field is "?" when the request failed within 1 s). Stops on SIGTERM.
use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64;
use Time::HiRes qw(time sleep);

my ($etcd, $key, $interval_ms, @apis) = @ARGV;
delete @ENV{qw(http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY)};
$| = 1;
my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
# The agents serve https with the test's CA (tests/lib/cluster.sh); verify it.
my $http = HTTP::Tiny->new(timeout => 1, keep_alive => 1, verify_SSL => 1,
	($ENV{SAMPLER_CA} ? (SSL_options => { SSL_ca_file => $ENV{SAMPLER_CA} }) : ()));
my $body = encode_json({ key => encode_base64($key, '') });
my $next = time;
while (!$stop) {
	my $t0 = time;
	my $line = sprintf "s %d", $t0 * 1000;
	my $r = $http->post("http://$etcd/v3/kv/range",
		{ content => $body, headers => { 'Content-Type' => 'application/json' } });
	my $t1 = time;
	my $j = $r->{success} ? eval { decode_json($r->{content}) } : undef;
	if ($j) {
		$line .= sprintf " etcd_ms=%d", ($t1 - $t0) * 1000;
		my $kv = $j->{kvs} ? $j->{kvs}[0] : undef;
		if ($kv) {
			$line .= sprintf " leader=%s crev=%s lease=%x", decode_base64($kv->{value}),
				$kv->{create_revision}, $kv->{lease} // 0;
		} else {
			$line .= " leader=- crev=- lease=-";
		}
	} else {
		$line .= sprintf " etcd_ms=%d leader=? crev=? lease=?", ($t1 - $t0) * 1000;
	}
	for my $a (@apis) {
		my ($name, $url) = split /=/, $a, 2;
		my $m = $http->get("$url/metrics");
		if (!$m->{success}) {
			$line .= " $name=?";
			next;
		}
		my %v;
		for (split /\n/, $m->{content}) {
			# a sample: NAME{scope="...",name="..."} VALUE (labels since issue 13)
			$v{$1} = $2 if /^(baton_[a-z_]+)(?:\{.*\})? (\S+)$/;
		}
		$line .= sprintf " %s=%s,%s,%s,%s,%s", $name,
			map { $v{$_} // '?' } qw(baton_seconds_since_lease_renewal baton_lease_renewal_worst_seconds
			  baton_lease_renewal_failures_total baton_leader_changes_total baton_is_leader);
	}
	print "$line\n";
	$next += $interval_ms / 1000;
	my $now = time;
	$next = $now if $next < $now - $interval_ms / 1000;
	sleep($next - $now) if $next > $now && !$stop;
}
PERL

# metric FILE NAME: a baton metric's value in a saved /metrics answer (its
# samples carry scope and name labels: NAME{...} VALUE).
metric() { awk -v k="$2" '{ n = $1; sub(/\{.*/, "", n) } n == k { print $NF; exit }' "$1"; }
scrape_agents() {
	local tag=$1 n
	for n in $(seq 1 "$N_NODES"); do
		rest_curl "$n" -s -m 3 "$(rest_url "$n")/metrics" >"$T/metrics-node$n.$tag" ||
			fail "node$n's /metrics does not answer ($tag)"
	done
}
scrape_etcd() { curl -s --noproxy '*' -m 5 "http://127.0.0.1:$ETCD_PORT/metrics" >"$T/etcd-metrics.$1" || true; }

# etcd_hist_q NAME Q: from etcd's histogram NAME, the bucket holding
# quantile Q of the observations made between the "start" and "end"
# scrapes, as "<=UPPER_MS" (">LAST_MS" for the overflow bucket); "-"
# without observations or metrics.
etcd_hist_q() {
	awk -v name="$1_bucket" -v q="$2" '
		index($1, name "{le=\"") == 1 {
			le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
			if (FILENAME ~ /start$/) a[le] = $2; else { b[le] = $2; if (!(le in seen)) { seen[le] = 1; order[++n] = le } }
		}
		END {
			tot = b["+Inf"] - a["+Inf"]
			if (n == 0 || tot <= 0) { print "-"; exit }
			for (i = 1; i <= n; i++) {
				le = order[i]
				if (b[le] - a[le] >= q * tot) {
					if (le == "+Inf") print ">" prev * 1000; else print "<=" le * 1000
					exit
				}
				prev = le
			}
		}' "$T/etcd-metrics.start" "$T/etcd-metrics.end"
}

# ---------------------------------------------------------------- load
declare -A LOG_OFF=()
for n in $(seq 1 "$N_NODES"); do LOG_OFF[$n]=$(stat -c %s "$(agent_log "$n")"); done
ETCD_LOG_OFF=$(stat -c %s "$T/etcd.log" 2>/dev/null || echo 0)
scrape_agents start
scrape_etcd start
CREV0=$(etcdctl_ get -w json "$NAMESPACE/$SCOPE/leader" | jq -r '.kvs[0].create_revision')

apis=()
for n in $(seq 1 "$N_NODES"); do apis+=("node$n=$(rest_url "$n")"); done
SAMPLER_CA=${REST_TLS_DIR:+$REST_TLS_DIR/ca.pem} bg_start sampler perl "$T/sampler.pl" "127.0.0.1:$ETCD_PORT" "$NAMESPACE/$SCOPE/leader" 200 "${apis[@]}"
SAMPLER_PID=$BG_PID
poller_start

HOG_PIDS=()
for i in $(seq 1 "$NCPU"); do
	bg_start "spin$i" sh -c 'while :; do :; done'
	HOG_PIDS+=("$BG_PID")
done
bg_start fsync-hog-256k "$FSYNC_HOG" --block 256 --file-mb 64 "$HOGDIR"
HOG_PIDS+=("$BG_PID")
bg_start fsync-hog-4k "$FSYNC_HOG" --block 4 --file-mb 16 "$HOGDIR"
HOG_PIDS+=("$BG_PID")
bg_start pgbench setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
	env HOME="$BATON_HOME" "$PGBENCH" -h 127.0.0.1 -p "${PG_PORT[$P]}" -U postgres -n -c "$CLIENTS" -j 2 -T "$SECONDS_RUN" -P 10 postgres
PGBENCH_PID=$BG_PID
nice_of() { awk '{ sub(/^.*\) /, ""); print $17 }' "/proc/$1/stat" 2>/dev/null; }
log "load started for ${SECONDS_RUN}s: pgbench -c $CLIENTS (pid $PGBENCH_PID), $NCPU spinners, 2 fsync hogs;" \
	"nice: agent $(nice_of "${AGENT_PID[$P]}"), spinner $(nice_of "${HOG_PIDS[0]}")"
T_LOAD0=$(now_ms)

# Check every 5 s that the cluster and the load are all still there.
LOADAVG=()
PGBENCH_EARLY=
deadline=$((T_LOAD0 + SECONDS_RUN * 1000))
while [ "$(now_ms)" -lt "$deadline" ]; do
	sleep 5
	for n in $(seq 1 "$N_NODES"); do
		pid_alive "${AGENT_PID[$n]}" || fail "agent node$n exited during the load (see $(agent_log "$n"))"
	done
	pid_alive "$ETCD_PID" || fail "etcd exited during the load (see $T/etcd.log)"
	for pid in "${HOG_PIDS[@]}"; do
		pid_alive "$pid" || fail "load process $pid stopped early (see $T/*.err)"
	done
	pid_alive "$SAMPLER_PID" || fail "the sampler stopped (see $T/sampler.err)"
	# pgbench ends early when its server goes away (a demotion): keep
	# the rest of the load running and collect the evidence below.
	if [ -z "$PGBENCH_EARLY" ] && ! pid_alive "$PGBENCH_PID" && [ "$(now_ms)" -lt $((deadline - 15000)) ]; then
		PGBENCH_EARLY=$(((deadline - $(now_ms)) / 1000))
		log "pgbench ended ${PGBENCH_EARLY} s early: $(tail -n 1 "$T/pgbench.err")"
	fi
	LOADAVG+=("$(cut -d' ' -f1 /proc/loadavg)")
	elapsed=$((($(now_ms) - T_LOAD0) / 1000))
	[ $((elapsed % 60)) -lt 5 ] && log "load running: ${elapsed}s of ${SECONDS_RUN}s, leader $(leader_name), load average ${LOADAVG[-1]}"
done
T_LOAD1=$(now_ms)
for pid in "${HOG_PIDS[@]}"; do bg_stop "$pid"; done
poll_until 60 bg_gone "$PGBENCH_PID" || fail "pgbench still runs 60 s after its -T $SECONDS_RUN ended"
wait "$PGBENCH_PID"
PGBENCH_RC=$?
bg_stop "$SAMPLER_PID"
bg_stop "$POLLER_PID"
scrape_agents end
scrape_etcd end
log "load stopped after $(((T_LOAD1 - T_LOAD0) / 1000)) s"

# ---------------------------------------------------------------- evidence
failures=()
bad() { failures+=("$*"); }

# Leader key: holder changes, absence, re-creation (sampler, 200 ms).
read -r SAMPLES UNREAD ABSENT HOLDER_CHANGES CREV_CHANGES ETCD_WORST < <(awk -v crev0="$CREV0" -v who="$P_NAME" '
	$1 == "s" {
		n++
		for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		if (f["etcd_ms"] > w) w = f["etcd_ms"]
		if (f["leader"] == "?") { u++; next }
		if (f["leader"] == "-") { a++; next }
		if (f["leader"] != (prev == "" ? who : prev)) h++
		prev = f["leader"]
		if (f["crev"] != crev0) { if (f["crev"] != lastc) c++; lastc = f["crev"] }
	}
	END { printf "%d %d %d %d %d %d\n", n, u, a, h, c, w }' "$T/sampler.out")
log "sampler: $SAMPLES samples, $UNREAD without an etcd answer, worst etcd read ${ETCD_WORST} ms"
[ "$SAMPLES" -ge $((SECONDS_RUN * 2)) ] || bad "the sampler took only $SAMPLES samples in ${SECONDS_RUN}s (under 2/s): the measurement did not happen"
[ "$ABSENT" = 0 ] || bad "the leader key was absent in $ABSENT samples"
[ "$CREV_CHANGES" = 0 ] || bad "the leader key was re-created $CREV_CHANGES times (create revision left $CREV0)"
evidence_leader() {
	awk '$1 == "s" { split($4, kv, "="); l = kv[2]; if (l != "?" && p != "" && l != p) print "  sample: " $0; if (l != "?") p = l }' \
		"$T/sampler.out" | head -n 10
}

# Every agent's own count of leader changes, during the load.
AGENT_CHANGES=0
for n in $(seq 1 "$N_NODES"); do
	c0=$(metric "$T/metrics-node$n.start" baton_leader_changes_total)
	c1=$(metric "$T/metrics-node$n.end" baton_leader_changes_total)
	[ -n "$c0" ] && [ -n "$c1" ] || fail "node$n's /metrics lacks baton_leader_changes_total"
	AGENT_CHANGES=$((AGENT_CHANGES > c1 - c0 ? AGENT_CHANGES : c1 - c0))
done
# A new leader term counts even when the same node wins it again.
LEADER_CHANGES=$((HOLDER_CHANGES > AGENT_CHANGES ? HOLDER_CHANGES : AGENT_CHANGES))
LEADER_CHANGES=$((CREV_CHANGES > LEADER_CHANGES ? CREV_CHANGES : LEADER_CHANGES))
[ "$HOLDER_CHANGES" = 0 ] && [ "$AGENT_CHANGES" = 0 ] ||
	bad "leader changes: $HOLDER_CHANGES seen in etcd by the sampler, up to $AGENT_CHANGES counted by an agent"

# Demotions and other lease trouble in the agents' logs since the load began.
DEMOTIONS=0 DECISIONS=0 FENCES=0 LOST=0 KA_FAILED=0 KA_SLOW=0
: >"$T/evidence.log"
for n in $(seq 1 "$N_NODES"); do
	tail -c +$((LOG_OFF[$n] + 1)) "$(agent_log "$n")" >"$T/agent-node$n.load.log"
	# A demotion is the loop's decision (its line ends "-> demote" before
	# the source location) or fencing by the keeper thread or the fence
	# process (their lines all say SIGQUIT; the keeper's report of the
	# fence's act and the SIGKILL after it are not counted again), often
	# both for one event: count the larger of the two per node.
	dd=$(grep -c -E -- ' -> demote( \[[^]]*\])?$' "$T/agent-node$n.load.log")
	df=$(grep 'SIGQUIT' "$T/agent-node$n.load.log" | grep -v -c -E 'the fence process sent SIGQUIT|did not exit after SIGQUIT')
	d=$((dd > df ? dd : df))
	DECISIONS=$((DECISIONS + dd)) FENCES=$((FENCES + df))
	l=$(grep -c -E 'is gone in etcd' "$T/agent-node$n.load.log")
	f=$(grep -c 'lease keepalive failed' "$T/agent-node$n.load.log")
	s=$(grep -c 'slow lease keepalive' "$T/agent-node$n.load.log")
	DEMOTIONS=$((DEMOTIONS + d)) LOST=$((LOST + l)) KA_FAILED=$((KA_FAILED + f)) KA_SLOW=$((KA_SLOW + s))
	grep -E -- ' -> demote( \[[^]]*\])?$|SIGQUIT|is gone in etcd|lease keepalive failed|slow lease keepalive|acquired the leader key|stopping Postgres|promoted' \
		"$T/agent-node$n.load.log" | sed "s/^/  node$n: /" >>"$T/evidence.log"
done
[ "$DEMOTIONS" = 0 ] || bad "$DEMOTIONS demotions (decisions to demote or keeper fencing) in the agents' logs"
[ "$LOST" = 0 ] || bad "a lease expired in etcd $LOST times"

# Renewals.
RENEWAL_FAILURES=0 WORST_KA=0 WORST_KA_P=0 WORST_KA_START=0
for n in $(seq 1 "$N_NODES"); do
	f0=$(metric "$T/metrics-node$n.start" baton_lease_renewal_failures_total)
	f1=$(metric "$T/metrics-node$n.end" baton_lease_renewal_failures_total)
	[ -n "$f0" ] && [ -n "$f1" ] || fail "node$n's /metrics lacks baton_lease_renewal_failures_total"
	RENEWAL_FAILURES=$((RENEWAL_FAILURES + f1 - f0))
	w=$(metric "$T/metrics-node$n.end" baton_lease_renewal_worst_seconds)
	w0=$(metric "$T/metrics-node$n.start" baton_lease_renewal_worst_seconds)
	[ -n "$w" ] || fail "node$n's /metrics lacks baton_lease_renewal_worst_seconds"
	WORST_KA=$(awk -v a="$WORST_KA" -v b="$w" 'BEGIN { print (b > a ? b : a) }')
	WORST_KA_START=$(awk -v a="$WORST_KA_START" -v b="$w0" 'BEGIN { print (b > a ? b : a) }')
	[ "$n" = "$P" ] && WORST_KA_P=$w
done
# Worst gap between two renewals, per node, as the keeper measured it.
GAPS=()
for n in $(seq 1 "$N_NODES"); do
	g=$(metric "$T/metrics-node$n.end" baton_lease_renewal_worst_gap_seconds)
	[ -n "$g" ] || fail "node$n's /metrics lacks baton_lease_renewal_worst_gap_seconds"
	GAPS+=("$(awk -v g="$g" 'BEGIN { printf "%.3f", g }')")
done
WORST_GAP=$(printf '%s\n' "${GAPS[@]}" | sort -g | tail -n1)
WORST_GAP_P=${GAPS[$((P - 1))]}

# The poller: nobody but the primary answers as primary.
POLL_SAMPLES=$(awk '$1 == "samples" { print $2 }' "$T/poller.out")
SPLIT=$(awk '$1 == "split_brain_samples" { print $2 }' "$T/poller.out")
read -r OTHER_P P_SILENT P_REPLICA < <(awk -v who="$P_NAME" '$1 == "sample" {
		for (i = 3; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == who) { if (kv[2] == "-") s++; else if (kv[2] == "R") r++ }
			else if (kv[2] == "P") o++
		}
	} END { printf "%d %d %d\n", o, s, r }' "$T/poller.out")
[ -n "$POLL_SAMPLES" ] && [ "$POLL_SAMPLES" -gt 0 ] || bad "the poller took no samples (see $T/poller.err)"
[ "${SPLIT:-x}" = 0 ] || bad "split-brain samples: ${SPLIT:-none reported}"
[ "$OTHER_P" = 0 ] || bad "a node other than $P_NAME answered as primary in $OTHER_P samples"
[ "$P_REPLICA" = 0 ] || bad "$P_NAME answered as a replica in $P_REPLICA samples"

# The cluster after the load: healthy, same primary, same timeline.
if poll_until 120 cluster_healthy; then
	[ "$PRIMARY" = "$P" ] || bad "the primary is node$PRIMARY after the load, node$P before"
	TL1=$(timeline "$PRIMARY")
	[ "$TL1" = "$TL0" ] || bad "the timeline moved from $TL0 to $TL1"
else
	cluster_state
	bad "the cluster is not healthy (one primary, two streaming replicas) within 120 s after the load"
fi

# pgbench: the load really ran.
TPS=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$T/pgbench.out")
XACTS=$(awk '/^number of transactions actually processed:/ { print $NF; exit }' "$T/pgbench.out")
PGB_FAILED=$(awk '/^number of failed transactions:/ { print $5; exit }' "$T/pgbench.out")
ABORTED=$(grep -c 'aborted' "$T/pgbench.err")
[ -n "$TPS" ] && [ "${XACTS:-0}" -gt 0 ] || bad "pgbench committed nothing (exit $PGBENCH_RC; see $T/pgbench.err)"
[ -z "$PGBENCH_EARLY" ] || bad "pgbench ended ${PGBENCH_EARLY} s before the end of the load (see $T/pgbench.err)"
[ "$PGBENCH_RC" = 0 ] || bad "pgbench exited with status $PGBENCH_RC ($ABORTED lines about aborted clients; see $T/pgbench.err)"

# etcd under load, and the hogs' own view of the disk.
WAL_P99=$(etcd_hist_q etcd_disk_wal_fsync_duration_seconds 0.99)
WAL_MAX=$(etcd_hist_q etcd_disk_wal_fsync_duration_seconds 1)
COMMIT_P99=$(etcd_hist_q etcd_disk_backend_commit_duration_seconds 0.99)
ETCD_SLOW=$(tail -c +$((ETCD_LOG_OFF + 1)) "$T/etcd.log" 2>/dev/null | grep -c -E 'took too long|slow fdatasync|failed to send out heartbeat')
hog() { awk -v k="$2" '$1 == k { print $2; exit }' "$T/fsync-hog-$1.out"; }
LOADAVG_MEAN=$(printf '%s\n' "${LOADAVG[@]}" | awk '{ s += $1; n++ } END { if (n) printf "%.1f", s / n }')

summary seconds "$(((T_LOAD1 - T_LOAD0) / 1000))"
summary tps "${TPS:-0}"
summary leader_changes "$LEADER_CHANGES"
summary demotions "$DEMOTIONS"
summary renewal_failures "$RENEWAL_FAILURES"
summary worst_keepalive_s "$(printf '%.3f' "$WORST_KA")"
summary worst_gap_s "$WORST_GAP"
summary etcd_wal_fsync_p99_ms "$WAL_P99"
summary etcd_read_worst_ms "$ETCD_WORST"
summary split_brain "${SPLIT:-?}"

cat <<EOF

======== stability, setting $SETTING (ttl $TTL / loop_wait $LOOP_WAIT / retry_timeout $RETRY_TIMEOUT), $(((T_LOAD1 - T_LOAD0) / 1000)) s of load
load: pgbench -c $CLIENTS -j 2 (scale $SCALE) on $P_NAME; $NCPU CPU spinners; 2 fsync hogs; mean load average $LOADAVG_MEAN on $NCPU cores
pgbench:                 ${TPS:-?} tps, ${XACTS:-?} transactions, ${PGB_FAILED:-0} failed, exit $PGBENCH_RC
leader changes:          $LEADER_CHANGES (new terms: etcd holder changes $HOLDER_CHANGES in $SAMPLES samples; agents' counters up to $AGENT_CHANGES; key absent $ABSENT, re-created $CREV_CHANGES)
demotions:               $DEMOTIONS (loop decisions $DECISIONS, keeper fencing $FENCES; leases expired in etcd: $LOST)
renewal failures:        $RENEWAL_FAILURES (agents' counters; "keepalive failed" log lines $KA_FAILED, "slow keepalive" lines $KA_SLOW)
worst keepalive:         $(printf '%.3f' "$WORST_KA") s on any node, $(printf '%.3f' "$WORST_KA_P") s on the primary (before the load: $(printf '%.3f' "$WORST_KA_START") s)
worst gap since renewal: $WORST_GAP s on any node, $WORST_GAP_P s on the primary (per node: ${GAPS[*]}); budget before demotion $BUDGET s
poller:                  $POLL_SAMPLES samples, split-brain $SPLIT, other primaries $OTHER_P, $P_NAME unanswered (500 ms) $P_SILENT
etcd:                    WAL fsync p99 ${WAL_P99} ms (slowest ${WAL_MAX} ms), backend commit p99 ${COMMIT_P99} ms, read of the leader key worst ${ETCD_WORST} ms, $ETCD_SLOW slow-operation warnings in etcd.log
fsync hog 256 KiB:       $(hog 256k fsyncs) fsyncs, $(hog 256k mib) MiB, fdatasync p99 $(hog 256k fsync_p99_ms) ms, max $(hog 256k fsync_max_ms) ms
fsync hog 4 KiB:         $(hog 4k fsyncs) fsyncs, fdatasync p99 $(hog 4k fsync_p99_ms) ms, max $(hog 4k fsync_max_ms) ms
EOF

if [ "${#failures[@]}" -gt 0 ]; then
	echo
	for f in "${failures[@]}"; do echo "FAIL: $f"; done
	echo "---- agent log lines about the lease and roles during the load"
	head -n 60 "$T/evidence.log"
	echo "---- leader key changes seen by the sampler"
	evidence_leader
	echo "---- etcd warnings during the load"
	tail -c +$((ETCD_LOG_OFF + 1)) "$T/etcd.log" 2>/dev/null | grep -E 'took too long|slow fdatasync|failed to send out heartbeat' | head -n 10
	fail "setting $SETTING: ${#failures[@]} checks failed under load"
fi
sed -i 's/^result=.*/result=ok/' "$OUT"
pass "setting $SETTING: no leader change, no demotion, no split brain in $(((T_LOAD1 - T_LOAD0) / 1000)) s of load"
