#!/bin/bash
# tests/fuzz/run_etcd.sh - builds the etcd-parser and config-loader fuzz
# targets with clang's libFuzzer and runs each for a bounded time.
#
#   tests/fuzz/run_etcd.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60, all)
#
# Targets (each tests/fuzz/<name>.c, seeds in tests/fuzz/corpus/<name minus
# the fuzz_ prefix>/):
#   fuzz_etcd_range  RangeResponse and MemberListResponse (etcd_codec.c)
#   fuzz_etcd_txn    TxnResponse against the branch's operations (etcd_kv.c)
#   fuzz_etcd_lease  keepalive and grant answers (etcd_lease.c)
#   fuzz_etcd_watch  watch stream framing and line parsing (etcd_http.c,
#                    etcd_watch.c)
#   fuzz_config      the node config loader (agent/config.c)
# A target that includes a library .c file (to reach its static parser) is
# linked with the other library files only. Everything is compiled with
# -fsanitize=fuzzer,address,undefined (UB fatal) in $FUZZ_BUILD (default: a
# fresh temporary directory, removed afterwards unless a run failed); new
# inputs go there, never into the source tree. Prints libFuzzer's figures
# (execs/s, units) per target.
# Exit: 0 no crash in any target, 1 a crash/leak/sanitizer report (the input
# is kept in the work directory, whose path is printed), 2 cannot build
# (clang or libclang-rt-14-dev missing: apt-get install -y clang
# libclang-rt-14-dev).
set -uo pipefail

secs=${1:-60}
case $secs in
-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
'' | *[!0-9]*) echo "fuzz/run_etcd.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac
shift $(($# > 0 ? 1 : 0))
all_targets="fuzz_etcd_range fuzz_etcd_txn fuzz_etcd_lease fuzz_etcd_watch fuzz_config"
targets=${*:-$all_targets}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)

CC=${FUZZ_CC:-}
if [ -z "$CC" ]; then
	for c in clang clang-14 clang-15 clang-16; do
		if command -v "$c" >/dev/null 2>&1; then CC=$c; break; fi
	done
fi
if [ -z "$CC" ]; then
	echo "fuzz/run_etcd.sh: clang not found (apt-get install -y clang libclang-rt-14-dev)" >&2
	exit 2
fi

work=${FUZZ_BUILD:-}
own_work=0
if [ -z "$work" ]; then
	work=$(mktemp -d /tmp/baton-fuzz-etcd.XXXXXX) || exit 2
	own_work=1
fi
mkdir -p "$work" || exit 2

etcd_srcs="etcd/etcd_client.c etcd/etcd_codec.c etcd/etcd_http.c etcd/etcd_kv.c etcd/etcd_lease.c etcd/etcd_watch.c"
cflags="-D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -std=gnu11 -pthread -fsanitize=address,undefined -fno-sanitize-recover=all -I$src"

# sources_for TARGET: the library files linked next to the target's own .c
sources_for() {
	local skip=""
	case $1 in
	fuzz_etcd_txn) skip="etcd/etcd_kv.c" ;;
	fuzz_etcd_lease) skip="etcd/etcd_lease.c" ;;
	fuzz_etcd_watch) skip="etcd/etcd_http.c etcd/etcd_watch.c" ;;
	fuzz_config) echo "agent/config.c agent/config_load.c agent/config_file.c agent/config_print.c agent/config_reload.c agent/parse.c agent/clock.c agent/log.c agent/watchdog.c pg/pg_code_params.c pg/pg_ctl.c pg/pg_replica.c pg/pg_data.c pg/pg_spawn.c pg/pg_err.c pg/pg_query.c"; return ;;
	esac
	for f in $etcd_srcs; do
		case " $skip " in *" $f "*) ;; *) echo "$f" ;; esac
	done
}

pkgs_for() {
	case $1 in
	fuzz_config) echo "libconfig libpq" ;;
	*) echo "libcurl jansson" ;;
	esac
}

build() {
	local t=$1 pk objs=() f o
	pk=$(pkgs_for "$t")
	mkdir -p "$work/$t/obj" "$work/$t/corpus"
	for f in $(sources_for "$t"); do
		o="$work/$t/obj/$(echo "$f" | tr / _).o"
		# shellcheck disable=SC2046,SC2086
		if ! "$CC" $cflags $(pkg-config --cflags $pk) -fsanitize=fuzzer-no-link -c "$src/$f" -o "$o" 2>"$o.err"; then
			echo "fuzz/run_etcd.sh: cannot compile $f:" >&2
			cat "$o.err" >&2
			return 2
		fi
		objs+=("$o")
	done
	# shellcheck disable=SC2046,SC2086
	if ! "$CC" $cflags $(pkg-config --cflags $pk) -fsanitize=fuzzer "$here/$t.c" "${objs[@]}" \
		$(pkg-config --libs $pk) -lpthread -lm -o "$work/$t/$t" 2>"$work/$t/link.err"; then
		echo "fuzz/run_etcd.sh: cannot build $t (is libclang-rt-14-dev installed?):" >&2
		cat "$work/$t/link.err" >&2
		return 2
	fi
}

export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=0
for t in $targets; do
	case " $all_targets " in *" $t "*) ;; *) echo "fuzz/run_etcd.sh: unknown target $t" >&2; exit 2 ;; esac
	seeds="$here/corpus/${t#fuzz_}"
	if [ ! -d "$seeds" ]; then
		echo "fuzz/run_etcd.sh: no seed corpus $seeds" >&2
		exit 2
	fi
	echo "fuzz: building $t with $CC in $work/$t"
	build "$t" || exit 2
	echo "fuzz: running $t for $secs s"
	lsan=""
	if [ "$t" = fuzz_config ]; then
		# libconfig 1.5 itself (not config.c) leaks on a syntax error: the
		# string buffer of an unfinished literal and tokens its lexer
		# allocated that the parser drops. Only those two are suppressed: a
		# config_destroy missing in config.c would still show as leaked
		# settings.
		# Suppressions match function names, which need a symbolizer
		# (Debian's llvm-14, installed by tests/lib/packages.sh). Without
		# one the frames have no names: fall back to the library, which
		# hides more, and say so.
		printf 'leak:strbuf_append\nleak:libconfig_yylex\n' >"$work/$t/lsan.supp"
		if [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
			export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
		elif ! command -v llvm-symbolizer >/dev/null; then
			echo "fuzz: no llvm-symbolizer: suppressing every leak inside libconfig.so" >&2
			echo 'leak:libconfig.so' >>"$work/$t/lsan.supp"
		fi
		lsan="suppressions=$work/$t/lsan.supp"
	fi
	LSAN_OPTIONS=$lsan "$work/$t/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
		-artifact_prefix="$work/$t/" -print_final_stats=1 \
		"$work/$t/corpus" "$seeds" >"$work/$t/fuzz.log" 2>&1
	rc=$?
	grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)' \
		"$work/$t/fuzz.log" | sed "s/^/fuzz: $t: /"
	echo "fuzz: $t: corpus now $(find "$work/$t/corpus" -type f | wc -l) inputs (+ $(find "$seeds" -type f | wc -l) seeds)"
	if [ "$rc" != 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$work/$t/fuzz.log"; then
		echo "fuzz: $t FAILED (exit $rc); log and crashing input in $work/$t:" >&2
		grep -E -A30 'ERROR: |runtime error:|deadly signal' "$work/$t/fuzz.log" | head -n 60 >&2
		ls "$work/$t"/crash-* "$work/$t"/leak-* "$work/$t"/timeout-* "$work/$t"/oom-* 2>/dev/null >&2
		failed=1
	else
		echo "fuzz: $t: 0 crashes"
	fi
done
if [ "$failed" != 0 ]; then
	exit 1
fi
[ "$own_work" = 1 ] && rm -rf "$work"
exit 0
