#!/bin/bash
# tests/run.sh - the one test command: installs what is missing, builds, and
# runs every test. Run as root on Debian 12 (CI runs it through .ci/run).
#
#   tests/run.sh [--unit-only | --integration-only] [--no-asan] [--keep] [--only PATTERN]
#                [--fuzz-seconds N] [--chaos-rounds N] [--stability-minutes M] [--ops-steps N]
#                [--lanes N]
#
# Steps:
#  1. install missing Debian packages (tests/lib/packages.sh), create user baton;
#  2. copy the source tree to a work area baton owns ($BATON_CI_DIR, default
#     /var/tmp/baton-ci; a CI clone under /root is not readable by baton);
#  3. as baton: autoreconf, configure, make, make check  (build/)
#     and the same with -fsanitize=address,undefined          (build-asan/);
#     then the REST API fuzz target (tests/fuzz/run.sh, clang libFuzzer) for
#     --fuzz-seconds (default 10, 0 skips it; with the unit tests only) and
#     the etcd-parser and config-loader targets (tests/fuzz/run_etcd.sh) for
#     half that each, at least 10 s;
#  4. as root: every tests/integration/*.sh against build/ and, unless
#     --no-asan, against build-asan/ too (each scenario runs its agents as
#     baton through the harness tests/lib/cluster.sh), but for the packaging
#     and deployment checks in ASAN_SKIP, which run against build/ only.
#     They run --lanes at a time (default 2, BATON_IT_LANES): most of their
#     time is spent waiting on leases and Postgres, so two lanes on two
#     cores halve the wall time; each lane has its own port range, and a
#     scenario's output is printed whole when it ends (also kept in
#     $WORK/it-logs/TAG-NAME.out).
#     34_systemd_live (the Debian package under a booted systemd) and
#     35_container_image (the image built and run with podman) need more
#     packages (IT_PACKAGES, installed only when they are selected) and
#     more time (IT_TIMEOUT); they cache their Debian roots and podman's
#     store under /var/tmp (see their headers and tests/lib/debian_root.sh).
#     When they are selected, their slow preparation (one minbase
#     debootstrap, the nspawn root, the Debian package, podman's base image
#     and one image build) starts in the background right after the plain
#     build (nice, idle I/O class; log $WORK/it-logs/prepare.out); they wait
#     for it and redo any step that did not finish.
#  5. as root, against build/ only: the fault-injection suite
#     (tests/chaos/run.sh: 3 etcd members and 3 nodes in network namespaces,
#     --chaos-rounds rounds, default 9 = each fault once, synchronous mode,
#     a random seed it prints) and the stability test under saturating load
#     (tests/chaos/stability.sh for --stability-minutes, default 1, at
#     --stability-settings, default ttl3: 3/1/1, the tighter of the two the
#     README measures; "both" adds 5/1/2). 0 skips either; --only PATTERN
#     selects them by the names "chaos" and "stability" too.
#  6. as root, against build/ only: the operations fuzzer (tests/ops/run.sh:
#     --ops-steps operator actions, default 10, on a 3-node cluster in
#     synchronous mode with a writer, a random seed it prints); 0 skips it,
#     --only selects it by the name "ops".
# Prints "N passed, N failed" (unit test programs, scenarios, builds) and
# exits non-zero on any failure. --keep keeps the scenarios' test dirs.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib/packages.sh"

do_unit=1 do_it=1 do_asan=1 keep=0 only= fuzz_secs=${BATON_FUZZ_SECONDS:-10}
chaos_rounds=${BATON_CHAOS_ROUNDS:-9} stability_minutes=${BATON_STABILITY_MINUTES:-1}
stability_settings=${BATON_STABILITY_SETTINGS:-ttl3}
ops_steps=${BATON_OPS_STEPS:-10} IT_LANES=${BATON_IT_LANES:-2}
while [ $# -gt 0 ]; do
	case $1 in
	--unit-only) do_it=0 ;;
	--integration-only) do_unit=0 ;;
	--no-asan) do_asan=0 ;;
	--keep) keep=1 ;;
	--only) only=$2; shift ;;
	--fuzz-seconds) fuzz_secs=$2; shift ;;
	--chaos-rounds) chaos_rounds=$2; shift ;;
	--stability-minutes) stability_minutes=$2; shift ;;
	--stability-settings) stability_settings=$2; shift ;;
	--ops-steps) ops_steps=$2; shift ;;
	--lanes) IT_LANES=$2; shift ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
case $IT_LANES in
'' | *[!0-9]* | 0) echo "run.sh: --lanes wants a number of lanes >= 1 (got '$IT_LANES')" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
	echo "run.sh: run as root (it installs packages and runs Postgres as user baton)" >&2
	exit 2
fi

USER_=baton
WORK=${BATON_CI_DIR:-/var/tmp/baton-ci}
ASAN_FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined"
# Also plain only: the Patroni side by side (38) and migration (42), whose
# baton code (REST answers, reading Patroni's keys) runs under the
# sanitizers in 36 and the unit tests, vip-manager (37) and Patroni's own
# example haproxy.cfg (44).
ASAN_SKIP="18_k8s_manifests 19_install 31_vip_callback 32_systemd_unit 35_container_image 34_systemd_live"
ASAN_SKIP+=" 37_vip_manager 38_patroni_compat 42_patroni_migration 44_haproxy_patroni_example"
# ttl 2 (49) runs plain only: its 0.5 s keepalive leaves the sanitizers'
# slowdown no room; the lease, fence and revoker code it drives runs under
# them in 05, 17 and check_fence.
ASAN_SKIP+=" 49_ttl2"
# 48 counts requests over 20 s and 15 s windows: a budget, not a sanitizer
# check; the watch and publish code it drives runs under ASan in 16, 53 and
# check_dcs.
ASAN_SKIP+=" 48_idle_requests"
# 45, the two 3-node sites (about 2 min): its standby leader, cascade,
# remote probe and site switchover run under ASan in 50, 51, 52 and 54.
ASAN_SKIP+=" 45_standby_cluster"
# 28, parameter lowering (about 2 min): the parameter, restart --pending and
# reinit code it drives runs under ASan in 10, 22 and 30, and the server-log
# diagnosis of a failed start in check_pg.
ASAN_SKIP+=" 28_param_lowering"
# 16, compaction under the watches (about 1 min): the watch's compacted and
# reconnect paths run under ASan in check_etcd (a real etcd) and 53.
ASAN_SKIP+=" 16_watch_compaction"
# Scenarios that need more than the default 300 s, and what they need beyond
# tests/lib/packages.sh (installed only when such a scenario is selected).
declare -A IT_TIMEOUT=([34_systemd_live]=600 [35_container_image]=900 [38_patroni_compat]=480
	[42_patroni_migration]=480)
declare -A IT_PACKAGES=([34_systemd_live]="debhelper dpkg-dev lintian debootstrap systemd-container"
	[35_container_image]="podman runc debootstrap" [37_vip_manager]="vip-manager"
	[38_patroni_compat]="patroni python3-psycopg2" [42_patroni_migration]="patroni python3-psycopg2"
	[43_pgbackrest]="pgbackrest" [46_bootstrap_backup]="pgbackrest" [47_pgbouncer_switchover]="pgbouncer")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
passed=0 failed=0 skipped=0
failures=()
t_start=$(date +%s)

ok() { passed=$((passed + 1)); echo "=== PASS $1"; }
ko() { failed=$((failed + 1)); failures+=("$1"); echo "=== FAIL $1"; }
section() { echo; echo "######## $* ($(($(date +%s) - t_start)) s)"; }

finish() {
	section "summary"
	local f out
	# What each failure said, where CI shows it (the end of its output):
	# the scenario's own lines and its FAIL, not the daemons' logs.
	for f in "${failures[@]}"; do
		out=$(sed -n 's/.*output in \([^ )]*\)).*/\1/p' <<<"$f")
		[ -n "$out" ] && [ -f "$out" ] || continue
		echo "---- $f, its last steps:"
		grep -E '^[0-9:.]+ \[[A-Za-z0-9_-]+\] |^(FAIL|PASS)' "$out" | tail -n 25
	done
	for f in "${failures[@]}"; do echo "failed: $f"; done
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
	[ "$failed" = 0 ]
	exit $?
}

section "packages and user"
extra_pkgs=()
if [ "$do_it" = 1 ]; then
	for sc in "${!IT_PACKAGES[@]}"; do
		[ -z "$only" ] || [[ "$sc" == *$only* ]] || continue
		# shellcheck disable=SC2206
		extra_pkgs+=(${IT_PACKAGES[$sc]})
	done
fi
pkg_ensure "${extra_pkgs[@]}" || { ko "package installation"; finish; }
user_ensure "$USER_" || { ko "user creation"; finish; }
# Integration scenarios run as root and switch to baton; the agents' files
# and binaries must be readable by baton: keep everything in $WORK.
mkdir -p "$WORK"
chown "$USER_:" "$WORK"
chmod 755 "$WORK"

section "copy the source to $WORK/src"
src_copy "$repo" "$WORK/src" "$USER_" || { ko "source copy"; finish; }
rm -rf "$WORK/build" "$WORK/build-asan"

# unit_tests NAME BUILD: make check in BUILD, one result per test program.
unit_tests() {
	local name=$1 build=$2 trs t res rc n=0 bad=0
	as_user "$USER_" env ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS" \
		make -C "$build" -j2 check >"$WORK/$name-check.out" 2>&1
	rc=$?
	for trs in $(find "$build/tests" -maxdepth 1 -name '*.trs' | sort); do
		n=$((n + 1))
		t=$(basename "$trs" .trs)
		res=$(sed -n 's/^:test-result: //p' "$trs" | head -n1)
		if [ "$res" = PASS ] || [ "$res" = SKIP ]; then
			ok "$name unit $t"
		else
			bad=1
			ko "$name unit $t (${res:-no result})"
			echo "----- tail of $build/tests/$t.log"
			tail -n 60 "$build/tests/$t.log"
		fi
	done
	if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
		ko "$name make check (exit $rc, $n test programs ran)"
		tail -n 60 "$WORK/$name-check.out"
	fi
	if [ "$rc" != 0 ] && [ -f "$build/test-suite.log" ]; then
		echo "----- tail of $build/test-suite.log"
		tail -n 40 "$build/test-suite.log"
	fi
}

# build NAME BUILD [FLAGS]: 0 if the build (binaries and test tools) worked.
build() {
	local name=$1 build=$2 flags=${3:-}
	section "build $name"
	if build_tree "$WORK/src" "$build" "$USER_" "$flags" >"$WORK/$name-build.out" 2>&1; then
		ok "$name build"
		return 0
	fi
	ko "$name build"
	tail -n 60 "$WORK/$name-build.out"
	return 1
}

# The slow preparation of 34_systemd_live and 35_container_image (the
# minbase debootstrap, the nspawn root, the package, podman's base image and
# one image build: tests/lib/debian_root.sh), when they are selected and
# this machine has their tools: in the background from now on, at low
# priority, so that it overlaps the other tests. It never fails the run: a
# scenario waits for its step (a lock, bounded wait) and redoes it if the
# step did not finish, reporting the real error.
prep_pid=
prep_stop() {
	[ -n "$prep_pid" ] || return 0
	if kill -0 "$prep_pid" 2>/dev/null; then
		echo "(stopping the background preparation, process group $prep_pid)"
		kill -TERM -- "-$prep_pid" 2>/dev/null
		wait "$prep_pid" 2>/dev/null
	fi
	grep '^prepare:' "$WORK/it-logs/prepare.out" 2>/dev/null
	prep_pid=
}
trap prep_stop EXIT
prep_start() {
	[ "$do_it" = 1 ] || return 0
	local prep_what=()
	sel() { [ -f "$repo/tests/integration/$1.sh" ] && { [ -z "$only" ] || [[ "$1" == *$only* ]]; }; }
	if sel 34_systemd_live && command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null &&
		command -v dpkg-buildpackage >/dev/null; then
		prep_what+=(nspawn)
	fi
	if sel 35_container_image && command -v debootstrap >/dev/null && command -v podman >/dev/null; then
		prep_what+=(podman)
	fi
	if [ "${#prep_what[@]}" -gt 0 ]; then
		mkdir -p "$WORK/it-logs"
		rm -rf "$WORK/prep"
		# Its own session (process group $prep_pid): stopped as a whole at exit.
		setsid nice -n 10 ionice -c3 bash -c '. "$1/tests/lib/debian_root.sh"; shift; debian_prepare "$@"' \
			prepare "$WORK/src" "$WORK/src" "$WORK" "$USER_" "${prep_what[@]}" \
			</dev/null >"$WORK/it-logs/prepare.out" 2>&1 &
		prep_pid=$!
		export BATON_PREP_DIR=$WORK/prep BATON_PREP_PGID=$prep_pid
		echo "(background preparation of ${prep_what[*]}: pid $prep_pid, log $WORK/it-logs/prepare.out)"
	fi
}

builds=()
if build normal "$WORK/build"; then
	builds+=("$WORK/build")
	prep_start
	if [ "$do_unit" = 1 ]; then
		section "unit tests (normal build)"
		unit_tests normal "$WORK/build"
		# The tree as .clang-format writes it (tests/format.sh; clang-format
		# is on every machine of this kind, and apt installs it elsewhere).
		if command -v clang-format >/dev/null 2>&1; then
			if "$WORK/src/tests/format.sh" --check >"$WORK/format.out" 2>&1; then
				ok "format (tests/format.sh --check)"
			else
				tail -n 5 "$WORK/format.out"
				ko "format: run tests/format.sh (see $WORK/format.out)"
			fi
		fi
	fi
fi
if [ "$do_asan" = 1 ]; then
	if build asan "$WORK/build-asan" "$ASAN_FLAGS"; then
		builds+=("$WORK/build-asan")
		if [ "$do_unit" = 1 ]; then
			section "unit tests (sanitizer build)"
			unit_tests asan "$WORK/build-asan"
		fi
	fi
fi

if [ "$do_unit" = 1 ] && [ "$fuzz_secs" != 0 ]; then
	section "fuzz the REST API ($fuzz_secs s)"
	# As baton: the fuzzer needs no privilege. $WORK/fuzz keeps its log and any crashing input.
	rm -rf "$WORK/fuzz"
	if as_user "$USER_" env FUZZ_BUILD="$WORK/fuzz" bash "$WORK/src/tests/fuzz/run.sh" "$fuzz_secs"; then
		ok "fuzz REST API"
	else
		ko "fuzz REST API (see $WORK/fuzz)"
	fi
	# The etcd response parsers and the config loader: half the time each.
	per=$((fuzz_secs / 2))
	[ "$per" -ge 10 ] || per=10
	section "fuzz the etcd parsers and the config loader ($per s each)"
	rm -rf "$WORK/fuzz-etcd"
	if as_user "$USER_" env FUZZ_BUILD="$WORK/fuzz-etcd" bash "$WORK/src/tests/fuzz/run_etcd.sh" "$per"; then
		ok "fuzz etcd parsers and config loader"
	else
		ko "fuzz etcd parsers and config loader (see $WORK/fuzz-etcd)"
	fi
fi

# run_scenario TAG BUILD NAME: one integration scenario, its output in
# $WORK/it-logs/TAG-NAME.out; prints "RESULT TAG NAME CODE" last (pass,
# skip, or fail with the exit code). Runs in a lane (see run_lanes).
run_scenario() {
	local tag=$1 b=$2 name=$3 out limit rc
	out="$WORK/it-logs/$tag-$name.out"
	limit=${IT_TIMEOUT[$name]:-300}
	{
		echo
		echo "######## integration $name ($tag build, lane $LANE, started at $(($(date +%s) - t_start)) s)"
		# From a dir baton may enter (a CI clone under /root is not one):
		# the agents, Postgres and Patroni's tools inherit it.
		(cd "$WORK" && BATON_BUILD="$b" KEEP="$keep" timeout --kill-after=20 "$limit" \
			bash "$repo/tests/integration/$name.sh") 2>&1
		rc=$?
		[ "$rc" = 124 ] && echo "(killed after $limit s)"
		echo "RESULT $tag $name $rc"
	} >"$out" 2>&1
}

# run_lanes: the integration scenarios of $WORK/it-logs/queue ("TAG BUILD
# NAME" lines), $IT_LANES at a time. The scenarios mostly wait (on leases,
# on Postgres), so two lanes on two cores halve the wall time; each lane
# draws its ports from its own range (BATON_PORT_LO/SPAN, tests/lib/cluster.sh),
# so two scenarios never race for a port. A lane takes the next line under
# a lock and, once the scenario ends, prints its whole output at once (the
# log stays readable) and appends its result to $WORK/it-logs/results.
run_lanes() {
	local q=$WORK/it-logs/queue lanes=$IT_LANES k span pids=()
	: >"$WORK/it-logs/next"
	: >"$WORK/it-logs/results"
	span=$((12000 / lanes))
	for ((k = 0; k < lanes; k++)); do
		(
			export LANE=$k BATON_PORT_LO=$((20000 + k * span)) BATON_PORT_SPAN=$span
			while :; do
				line=$({
					flock 9
					i=$(wc -l <"$WORK/it-logs/next")
					echo x >>"$WORK/it-logs/next"
					sed -n "$((i + 1))p" "$q"
				} 9>"$WORK/it-logs/queue.lock")
				[ -n "$line" ] || break
				read -r tag b name <<<"$line"
				run_scenario "$tag" "$b" "$name"
				{
					flock 9
					cat "$WORK/it-logs/$tag-$name.out"
					tail -n 1 "$WORK/it-logs/$tag-$name.out" >>"$WORK/it-logs/results"
				} 9>"$WORK/it-logs/print.lock"
			done
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
}

if [ "$do_it" = 1 ]; then
	mkdir -p "$WORK/it-logs"
	: >"$WORK/it-logs/queue"
	for b in "${builds[@]}"; do
		tag=normal
		[ "$b" = "$WORK/build-asan" ] && tag=asan
		for s in "$repo"/tests/integration/*.sh; do
			name=$(basename "$s" .sh)
			[ -z "$only" ] || [[ "$name" == *$only* ]] || continue
			# Packaging and deployment checks (manifests, make install and
			# distcheck, the VIP script, the unit under systemd) run once:
			# the agent code they drive runs under the sanitizers elsewhere.
			if [ "$tag" = asan ] && [[ " $ASAN_SKIP " == *" $name "* ]]; then
				echo "(integration $name: plain build only)"
				continue
			fi
			echo "$tag $b $name" >>"$WORK/it-logs/queue"
		done
	done
	section "integration scenarios: $(wc -l <"$WORK/it-logs/queue") runs in $IT_LANES lanes"
	run_lanes
	while read -r word tag name rc; do
		[ "$word" = RESULT ] || continue
		if [ "$rc" = 0 ]; then
			ok "$tag integration $name"
		elif [ "$rc" = 77 ]; then
			# The scenario said why (a "SKIP:" line): this machine
			# cannot do what it needs, e.g. boot systemd-nspawn.
			skipped=$((skipped + 1))
			echo "=== SKIP $tag integration $name"
		else
			ko "$tag integration $name (exit $rc; output in $WORK/it-logs/$tag-$name.out)"
		fi
	done <"$WORK/it-logs/results"
	# A scenario that printed no result line (its lane died) is a failure.
	while read -r tag b name; do
		grep -q "^RESULT $tag $name " "$WORK/it-logs/results" || ko "$tag integration $name (no result)"
	done <"$WORK/it-logs/queue"

	# Chaos and stability: long, timing-driven runs, against the plain build.
	if [ -x "$WORK/build/baton" ]; then
		if [ "$chaos_rounds" != 0 ] && { [ -z "$only" ] || [[ chaos == *$only* ]]; }; then
			section "chaos: $chaos_rounds rounds of faults (normal build)"
			keep_opt=()
			[ "$keep" = 1 ] && keep_opt=(--keep)
			BATON_BUILD="$WORK/build" timeout --kill-after=30 $((chaos_rounds * 120 + 300)) \
				bash "$repo/tests/chaos/run.sh" --rounds "$chaos_rounds" "${keep_opt[@]}" 2>&1 |
				tee "$WORK/it-logs/chaos.out"
			rc=${PIPESTATUS[0]}
			if [ "$rc" = 0 ]; then ok "chaos ($chaos_rounds rounds)"; else ko "chaos (exit $rc; the seed is in $WORK/it-logs/chaos.out)"; fi
		fi
		if [ "$stability_minutes" != 0 ] && { [ -z "$only" ] || [[ stability == *$only* ]]; }; then
			section "stability under load: $stability_minutes min per setting, settings $stability_settings (normal build)"
			keep_opt=()
			[ "$keep" = 1 ] && keep_opt=(--keep)
			BATON_BUILD="$WORK/build" timeout --kill-after=30 \
				"$(awk -v m="$stability_minutes" 'BEGIN { printf "%d", m * 2 * 60 + 600 }')" \
				bash "$repo/tests/chaos/stability.sh" --minutes "$stability_minutes" --settings "$stability_settings" \
				"${keep_opt[@]}" 2>&1 | tee "$WORK/it-logs/stability.out"
			rc=${PIPESTATUS[0]}
			if [ "$rc" = 0 ]; then ok "stability ($stability_minutes min per setting)"; else ko "stability (exit $rc)"; fi
		fi
		if [ "$ops_steps" != 0 ] && { [ -z "$only" ] || [[ ops == *$only* ]]; }; then
			section "operations fuzzer: $ops_steps steps (normal build)"
			BATON_BUILD="$WORK/build" KEEP="$keep" timeout --kill-after=30 $((ops_steps * 240 + 300)) \
				bash "$repo/tests/ops/run.sh" --steps "$ops_steps" 2>&1 | tee "$WORK/it-logs/ops.out"
			rc=${PIPESTATUS[0]}
			if [ "$rc" = 0 ]; then ok "ops fuzzer ($ops_steps steps)"; else ko "ops fuzzer (exit $rc; the seed and sequence are in $WORK/it-logs/ops.out)"; fi
		fi
	fi
fi
finish
