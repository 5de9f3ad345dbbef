#!/bin/sh
# format.sh - clang-format with the project's .clang-format, over the C files
# given or, without any, every C file of agent/, etcd/, pg/ and tests/.
#
#   tests/format.sh [--check] [FILE...]
#
# Without --check it rewrites the files in place. With --check it changes
# nothing: it prints each file that differs from its formatted self with the
# number of lines that would change, then a total, and exits 1 when any
# differs (0 when none, 2 when clang-format is missing or fails). `make
# format` and `make format-check` run it from the build directory
# (FILES="a.c b.c" narrows them).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
	echo "format.sh: $CLANG_FORMAT not found (apt-get install clang-format)" >&2
	exit 2
fi
if [ $# -eq 0 ]; then
	# the tracked files when this is a git checkout, else every file below
	if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		set -- $(cd "$top" && git ls-files -- 'agent/*.[ch]' 'etcd/*.[ch]' 'pg/*.[ch]' 'tests/*.[ch]' |
			sed "s|^|$top/|")
	else
		set -- $(find "$top/agent" "$top/etcd" "$top/pg" "$top/tests" -name '*.[ch]' | sort)
	fi
fi
style="--style=file:$top/.clang-format"
n_files=0 n_lines=0
for f in "$@"; do
	if [ ! -f "$f" ]; then
		echo "format.sh: $f: no such file" >&2
		exit 2
	fi
	if [ $check = 0 ]; then
		"$CLANG_FORMAT" "$style" -i "$f" || exit 2
		continue
	fi
	out=$("$CLANG_FORMAT" "$style" "$f") || exit 2
	d=$(printf '%s\n' "$out" | diff "$f" - | grep -c '^>')
	if [ "$d" -gt 0 ]; then
		echo "$f: $d lines would change"
		n_files=$((n_files + 1))
		n_lines=$((n_lines + d))
	fi
done
[ $check = 1 ] || exit 0
echo "format.sh: $n_files of $# files would change ($n_lines lines)"
[ $n_files = 0 ]
