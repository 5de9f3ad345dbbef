#!/bin/bash
# tests/fuzz/run.sh - builds the REST API fuzz targets with clang's libFuzzer
# and runs them for a bounded time in all.
#
#   tests/fuzz/run.sh [SECONDS]        (default 60)
#
# Two targets share the time (the first gets the odd second):
#   fuzz_api   api_handle() on one request split into fields (method, path,
#              query, Authorization, body): the API's logic;
#   fuzz_http  raw bytes of one connection through the real libmicrohttpd
#              parser and api_http.c's glue (headers, framing, chunked bodies,
#              pipelining) into the same handler.
# Each is built together with the sources of libagent, libpg and libetcd (as
# listed in their local.mk) with -fsanitize=fuzzer,address,undefined (UB is
# fatal), in $FUZZ_BUILD (default: a fresh temporary directory, removed
# afterwards unless a run failed), and run with the seeds of
# tests/fuzz/corpus/{api,http} and the dictionaries tests/fuzz/{api,http}.dict;
# new inputs go to the work directory, never into the source tree. Prints
# libFuzzer's final figures per target.
# Exit: 0 no crash, 1 a crash/leak/sanitizer report (the input is kept in the
# work directory, whose path is printed), 2 cannot build (e.g. clang or
# libclang-rt-14-dev missing: apt-get install -y clang libclang-rt-14-dev).
set -uo pipefail

secs=${1:-60}
case $secs in
-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
'' | *[!0-9]*) echo "fuzz/run.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)

CC=${FUZZ_CC:-}
if [ -z "$CC" ]; then
	for c in clang clang-14 clang-15 clang-16; do
		if command -v "$c" >/dev/null 2>&1; then CC=$c; break; fi
	done
fi
if [ -z "$CC" ]; then
	echo "fuzz/run.sh: clang not found (apt-get install -y clang libclang-rt-14-dev)" >&2
	exit 2
fi

work=${FUZZ_BUILD:-}
own_work=0
if [ -z "$work" ]; then
	work=$(mktemp -d /tmp/baton-fuzz.XXXXXX) || exit 2
	own_work=1
fi
mkdir -p "$work/obj" "$work/corpus-api" "$work/corpus-http" || exit 2

# The .c files of one automake variable in a local.mk (continuation lines
# too, and later `VAR += ...` lines).
sources_of() {
	awk -v var="$1" '
		$1 == var && ($2 == "=" || $2 == "+=") { on = 1 }
		on { for (i = 1; i <= NF; i++) if ($i ~ /\.c$/) print $i; if ($NF != "\\") on = 0 }
	' "$2"
}

srcs=$( (sources_of agent_libagent_a_SOURCES "$src/agent/local.mk"
	sources_of pg_libpg_a_SOURCES "$src/pg/local.mk"
	sources_of etcd_libetcd_a_SOURCES "$src/etcd/local.mk") | sort -u)
if [ -z "$srcs" ]; then
	echo "fuzz/run.sh: found no sources in the local.mk files" >&2
	exit 2
fi

pkgs="libcurl jansson libpq libconfig libmicrohttpd gnutls"
pkg_cflags=$(pkg-config --cflags $pkgs) || exit 2
pkg_libs=$(pkg-config --libs $pkgs) || exit 2
# -D_GNU_SOURCE: what configure's AC_USE_SYSTEM_EXTENSIONS gives the real build.
# shellcheck disable=SC2206
cflags=(-g -O1 -fno-omit-frame-pointer -std=gnu11 -pthread -D_GNU_SOURCE -DBATON_VERSION='"fuzz"' "-I$src"
	-fsanitize=address,undefined -fno-sanitize-recover=all $pkg_cflags)
# shellcheck disable=SC2206
libs=($pkg_libs -lpthread -lm)

echo "fuzz: building with $CC in $work"
objs=()
for f in $srcs; do
	o="$work/obj/$(echo "$f" | tr / _).o"
	if ! "$CC" "${cflags[@]}" -fsanitize=fuzzer-no-link -c "$src/$f" -o "$o" 2>"$o.err"; then
		echo "fuzz/run.sh: cannot compile $f:" >&2
		cat "$o.err" >&2
		exit 2
	fi
	objs+=("$o")
done
for t in api http; do
	if ! "$CC" "${cflags[@]}" -fsanitize=fuzzer "$here/fuzz_$t.c" "${objs[@]}" "${libs[@]}" -o "$work/fuzz_$t" \
		2>"$work/link-$t.err"; then
		echo "fuzz/run.sh: cannot link fuzz_$t (is libclang-rt-14-dev installed?):" >&2
		cat "$work/link-$t.err" >&2
		exit 2
	fi
done

export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=0
# run_target NAME SECONDS
run_target() {
	local t=$1 s=$2 rc f
	[ "$s" -gt 0 ] || return 0
	echo "fuzz: running fuzz_$t for $s s"
	"$work/fuzz_$t" -max_total_time="$s" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
		-dict="$here/$t.dict" -artifact_prefix="$work/$t-" -print_final_stats=1 \
		"$work/corpus-$t" "$here/corpus/$t" >"$work/fuzz-$t.log" 2>&1
	rc=$?
	grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)' \
		"$work/fuzz-$t.log" | sed "s/^/fuzz_$t: /"
	echo "fuzz_$t: corpus now $(find "$work/corpus-$t" -type f | wc -l) inputs (+ $(find "$here/corpus/$t" -type f | wc -l) seeds)"
	if [ "$rc" != 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$work/fuzz-$t.log"; then
		echo "fuzz_$t: FAILED (exit $rc); log and crashing input in $work:" >&2
		grep -E -A30 'ERROR: |runtime error:' "$work/fuzz-$t.log" | head -n 60 >&2
		for f in "$work/$t-"crash-* "$work/$t-"leak-* "$work/$t-"timeout-* "$work/$t-"oom-*; do
			[ -e "$f" ] && echo "input: $f" >&2
		done
		failed=1
	fi
}
run_target api $((secs - secs / 2))
run_target http $((secs / 2))
[ "$failed" = 0 ] || exit 1
echo "fuzz: 0 crashes"
[ "$own_work" = 1 ] && rm -rf "$work"
exit 0
