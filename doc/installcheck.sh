#!/bin/sh
# installcheck.sh - checks an installed baton: `make installcheck` (which
# `make distcheck` runs on its own installation) and
# tests/integration/19_install.sh (on a DESTDIR staging tree) call it.
#
#   DESTDIR=... bindir=... mandir=... sysconfdir=... docdir=... unitdir=... \
#   version=... sh installcheck.sh
#
# unitdir is empty when configure was told --with-systemdsystemunitdir=no.
# Checks: both programs run (--version prints the package version, --help
# and every `batonctl help COMMAND` exit 0); the three manual pages exist and
# render without a groff warning; the systemd unit names the configured
# paths and has the settings baton relies on; `systemd-analyze verify`
# accepts it (with the installed manual pages on MANPATH, so that its
# Documentation= entries resolve). Tools that are not installed (groff,
# systemd-analyze) are reported as SKIP lines, not failures. Exit 0 when
# every check passed, 1 otherwise.
set -u
: "${DESTDIR=}" "${bindir:?}" "${mandir:?}" "${sysconfdir:?}" "${docdir:?}" "${unitdir=}" "${version:?}"
bad=0
ok() { echo "installcheck: ok: $*"; }
ko() { echo "installcheck: FAILED: $*"; bad=1; }
skip() { echo "installcheck: SKIP: $*"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-installcheck.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# ---- the programs
b=$DESTDIR$bindir
for p in baton batonctl; do
	out=$("$b/$p" --version 2>&1)
	[ "$out" = "$p $version" ] && ok "$p --version: $out" || ko "$b/$p --version printed '$out', expected '$p $version'"
	"$b/$p" --help >"$tmp/help" 2>&1 && grep -q "^Usage: $p" "$tmp/help" && ok "$p --help" ||
		ko "$b/$p --help failed or printed no usage"
done
cmds=$("$b/batonctl" --help | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }')
n=0
for c in $cmds; do
	"$b/batonctl" help "$c" >"$tmp/h1" 2>&1 && "$b/batonctl" "$c" --help >"$tmp/h2" 2>&1 &&
		cmp -s "$tmp/h1" "$tmp/h2" && grep -q "^Usage: batonctl \[-c FILE\] $c" "$tmp/h1" ||
		ko "batonctl help $c / batonctl $c --help failed or differ"
	n=$((n + 1))
done
[ "$n" -ge 10 ] && ok "batonctl help and --help for $n commands" || ko "batonctl --help lists only $n commands"

# ---- the manual pages
for page in man8/baton.8 man1/batonctl.1 man5/baton.conf.5; do
	f=$DESTDIR$mandir/$page
	if [ ! -s "$f" ]; then
		ko "$f is missing"
	elif ! command -v groff >/dev/null 2>&1; then
		skip "groff is not installed (Debian package groff-base): $page not rendered"
	else
		warn=$(groff -man -Tutf8 -ww -z "$f" 2>&1)
		text=$(groff -man -Tutf8 -P-cbou "$f" 2>/dev/null)
		if [ -n "$warn" ]; then
			ko "$page: groff warns: $warn"
		elif ! printf '%s\n' "$text" | grep -q '^NAME' || ! printf '%s\n' "$text" | grep -q '^SEE ALSO'; then
			ko "$page renders without NAME or SEE ALSO"
		else
			ok "$page renders cleanly ($(printf '%s\n' "$text" | wc -l) lines)"
		fi
	fi
done

# ---- the examples
for f in examples/node1.conf examples/node2.conf examples/node3.conf \
	examples/callbacks/role_change.sh examples/callbacks/log_event.sh examples/callbacks/vip.sh README.md; do
	[ -s "$DESTDIR$docdir/$f" ] || ko "$DESTDIR$docdir/$f is missing"
done
[ -x "$DESTDIR$docdir/examples/callbacks/role_change.sh" ] && [ -x "$DESTDIR$docdir/examples/callbacks/vip.sh" ] || ko "the example callbacks are not executable"
ok "examples and README under $docdir"

# ---- the systemd unit
if [ -z "$unitdir" ]; then
	skip "configured without a systemd unit (--with-systemdsystemunitdir=no)"
	exit "$bad"
fi
u=$DESTDIR$unitdir/baton@.service
if [ ! -s "$u" ]; then
	ko "$u is missing"
	exit 1
fi
if grep -n '@[a-z_]*@' "$u"; then
	ko "$u has unrendered placeholders"
fi
for line in "Type=notify" "NotifyAccess=main" "User=postgres" "Group=postgres" \
	"ExecStart=$bindir/baton -c $sysconfdir/baton/%i.conf" 'ExecReload=/bin/kill -HUP $MAINPID' \
	"KillMode=mixed" "Restart=on-failure" "RestartPreventExitStatus=2" "NoNewPrivileges=yes" \
	"ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "ProtectKernelTunables=yes" \
	"ProtectControlGroups=yes" "LockPersonality=yes" \
	"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" "CapabilityBoundingSet=" \
	"SystemCallFilter=@system-service" "SystemCallErrorNumber=EPERM" "ProtectProc=invisible" \
	"PrivateDevices=yes"; do
	grep -qxF "$line" "$u" || ko "$u lacks the line '$line'"
done
for key in WatchdogSec RestartSec TimeoutStopSec LimitNOFILE ReadWritePaths; do
	grep -q "^$key=." "$u" || ko "$u does not set $key="
done
grep -q '^ReadWritePaths=.*/var/lib/postgresql' "$u" || ko "$u: ReadWritePaths lacks /var/lib/postgresql"
# RemoveIPC=yes would delete the shared memory of other Postgres servers of
# the same user (Debian's own clusters) when the last baton unit stops.
! grep -q '^RemoveIPC=yes' "$u" || ko "$u sets RemoveIPC=yes (see the comment in the unit)"
ok "unit $u: paths and settings"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	skip "systemd-analyze is not installed (Debian package systemd): the unit is not verified"
	exit "$bad"
fi
# A staged (DESTDIR) unit names the final path of baton, which does not
# exist yet: verify a copy pointing at the staged binary instead.
mkdir "$tmp/units"
sed "s|^ExecStart=$bindir/|ExecStart=$DESTDIR$bindir/|" "$u" >"$tmp/units/baton@.service"
out=$(cd "$tmp/units" && MANPATH=$DESTDIR$mandir systemd-analyze verify "$tmp/units/baton@node1.service" 2>&1)
rc=$?
# verify exits 0 on ignored settings too: any output is a problem
if [ "$rc" = 0 ] && [ -z "$out" ]; then
	ok "systemd-analyze verify baton@node1.service: clean"
else
	ko "systemd-analyze verify (exit $rc): $out"
fi
exit "$bad"
