#!/bin/sh
# check-man.sh - a `make check` test: the manual pages cover what the
# programs and the config table have, so they cannot silently go stale.
#
#  1. baton.conf.5: every option path of agent/config.c's table (its
#     `.path = "..."` lines) has a ".TP" entry ".B KEY" in the OPTIONS
#     section, and that section has no such entry the table lacks;
#  2. batonctl.1: every command that `batonctl --help` lists has a
#     ".SS COMMAND" subsection, every long option `batonctl COMMAND --help`
#     prints appears in that subsection, and no subsection names a command
#     batonctl does not have; every key `edit-config --set` accepts (the
#     config_keys[] of agent/ops.c) is named in the page and in the help;
#  3. baton.8: every long option `baton --help` prints appears.
#
# Run from the build directory (automake's harness sets $srcdir). Prints one
# line per problem; exit 0 when there is none, 1 otherwise.
set -u
srcdir=${srcdir:-.}
doc=$srcdir/doc
bad=0
problem() { echo "check-man: $*"; bad=1; }

# The text of a page with roff escapes for '-' and fonts removed.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(dq/"/g' "$1"; }

# ---- 1. config keys
keys=$(grep -o '\.path = "[^"]*"' "$srcdir/agent/config.c" | sed 's/^\.path = "//; s/"$//')
n=$(printf '%s\n' "$keys" | grep -c '^[a-z_][a-z_.-]*$')
m=$(grep -o '\.path *=' "$srcdir/agent/config.c" | wc -l)
# a table that changed shape must not make this test pass vacuously
[ "$n" -ge 30 ] && [ "$n" = "$m" ] ||
	problem "agent/config.c: found $n option paths in $m '.path =' assignments; update this script"
# the ".B KEY" line right after each ".TP" of the OPTIONS section
documented=$(plain "$doc/baton.conf.5" |
	awk '/^\.SH/ { in_opts = ($2 == "OPTIONS") } in_opts && tp && /^\.B / { print $2 } { tp = ($1 == ".TP") }')
for k in $keys; do
	printf '%s\n' "$documented" | grep -qxF "$k" || problem "baton.conf.5 does not document the key $k"
done
for k in $documented; do
	printf '%s\n' "$keys" | grep -qxF "$k" || problem "baton.conf.5 documents $k, which agent/config.c does not have"
done

# ---- 2. batonctl commands and their options
out=$(./batonctl --help) || problem "batonctl --help failed"
cmds=$(printf '%s\n' "$out" | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }')
[ -n "$cmds" ] || problem "batonctl --help lists no commands"
page=$(plain "$doc/batonctl.1")
for c in $cmds; do
	section=$(printf '%s\n' "$page" | awk -v c="$c" '/^\.S[HS]/ { on = ($1 == ".SS" && $2 == c); next } on')
	if [ -z "$section" ]; then
		problem "batonctl.1 has no '.SS $c' subsection"
		continue
	fi
	help=$(./batonctl "$c" --help) || problem "batonctl $c --help failed"
	[ "$(./batonctl help "$c")" = "$help" ] || problem "batonctl help $c differs from batonctl $c --help"
	for o in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		# --help and the common --config are documented once, under OPTIONS
		[ "$o" = --help ] || [ "$o" = --config ] && continue
		printf '%s\n' "$section" | grep -qF -- "$o" || problem "batonctl.1, section $c: option $o missing"
	done
done
printf '%s\n' "$page" | grep -q -- '--config' || problem "batonctl.1: option --config missing"
# the keys `edit-config --set` accepts: agent/ops.c's config_keys[] (its
# "postgresql" entry is what --pg changes)
setkeys=$(awk '/config_keys\[\] = \{/ { on = 1 } on { print } on && /\};/ { exit }' "$srcdir/agent/ops.c" |
	grep -o '"[a-z_]*"' | tr -d '"' | grep -vx postgresql)
[ "$(echo $setkeys | wc -w)" -ge 5 ] || problem "agent/ops.c: cannot find config_keys[]; update this script"
section=$(printf '%s\n' "$page" | awk '/^\.S[HS]/ { on = ($1 == ".SS" && $2 == "edit-config"); next } on')
help=$(./batonctl edit-config --help)
for k in $setkeys; do
	printf '%s\n' "$section" | grep -qw -- "$k" || problem "batonctl.1, section edit-config: --set key $k missing"
	printf '%s\n' "$help" | grep -qw -- "$k" || problem "batonctl edit-config --help: --set key $k missing"
done
for c in $(printf '%s\n' "$page" | awk '$1 == ".SS" { print $2 }'); do
	printf '%s\n' "$cmds" | grep -qxF "$c" || problem "batonctl.1 documents a command '$c' batonctl does not have"
done

# ---- 3. baton's options
out=$(./baton --help) || problem "baton --help failed"
page=$(plain "$doc/baton.8")
for o in $(printf '%s\n' "$out" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
	printf '%s\n' "$page" | grep -qF -- "$o" || problem "baton.8: option $o missing"
done

[ "$bad" = 0 ] && echo "check-man: the manual pages cover $n config keys, $(echo $cmds | wc -w) batonctl commands and baton's options"
exit "$bad"
