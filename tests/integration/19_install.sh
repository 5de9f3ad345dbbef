#!/bin/bash
# 19_install: baton installs like real software.
#
#  1. `make install DESTDIR=STAGE` from $BATON_BUILD (as baton; nothing is
#     rebuilt): exactly the expected files land under the configured paths
#     (programs, manual pages, the systemd unit, README and examples), and
#     doc/installcheck.sh passes on the staged tree: the programs run
#     (--version, --help, `batonctl help COMMAND` for every command), the
#     pages render with groff without warnings, the unit names the
#     configured paths and `systemd-analyze verify` accepts it (SKIP lines
#     when groff or systemd-analyze are not installed), and `systemd-analyze
#     security` rates the unit's exposure at 2.0 or lower;
#  2. the installed example configuration passes `baton -t`;
#  3. `make uninstall DESTDIR=STAGE` leaves no file behind;
#  4. `make distcheck` in a fresh build dir, as baton (check_pg refuses
#     root): the tarball builds out of a read-only tree, passes `make
#     check` (the quick unit tests, see section 4) and `make
#     installcheck`, installs into a temp prefix and uninstalls cleanly.
#     It builds everything once more and runs unit tests, so it runs
#     against the plain build only (not the sanitizer one);
#     BATON_DISTCHECK=0 skips it, =1 forces it.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init install

# A variable of the build's Makefile, expanded by make itself.
mkvar() {
	printf 'print-%%:\n\t@echo $($*)\ninclude Makefile\n' >"$T/printvar.mk"
	(cd "$BATON_BUILD" && as_baton make -s -f "$T/printvar.mk" "print-$1")
}

src=$(mkvar abs_top_srcdir)
version=$(mkvar PACKAGE_VERSION)
bindir=$(mkvar bindir) mandir=$(mkvar mandir) sysconfdir=$(mkvar sysconfdir) docdir=$(mkvar docdir)
unitdir=$(mkvar systemdsystemunitdir)
[ -n "$src" ] && [ -f "$src/configure.ac" ] || fail "cannot find the source dir of $BATON_BUILD"
[ -n "$bindir" ] && [ -n "$mandir" ] && [ -n "$version" ] || fail "cannot read the install paths of $BATON_BUILD"
log "source $src, version $version, bindir $bindir, unit dir ${unitdir:-(none)}"

# ---- 1. a staged install
stage=$T/stage
as_baton make -s -C "$BATON_BUILD" install DESTDIR="$stage" >"$T/install.out" 2>&1 ||
	{ cat "$T/install.out"; fail "make install DESTDIR=$stage failed"; }
expected=$(printf '%s\n' \
	"$bindir/baton" "$bindir/batonctl" \
	"$mandir/man1/batonctl.1" "$mandir/man5/baton.conf.5" "$mandir/man8/baton.8" \
	"$docdir/README.md" "$docdir/examples/node1.conf" "$docdir/examples/node2.conf" \
	"$docdir/examples/node3.conf" "$docdir/examples/callbacks/log_event.sh" \
	"$docdir/examples/callbacks/role_change.sh" "$docdir/examples/callbacks/vip.sh" \
	${unitdir:+"$unitdir/baton@.service"} | sort)
installed=$(cd "$stage" && find . -type f -o -type l | sed 's|^\.||' | sort)
if [ "$installed" != "$expected" ]; then
	diff <(printf '%s\n' "$expected") <(printf '%s\n' "$installed")
	fail "the staged install differs from the expected file list (< expected, > installed)"
fi
pass "make install DESTDIR: the $(printf '%s\n' "$expected" | wc -l) expected files, nothing else"
[ -x "$stage$bindir/baton" ] && [ -x "$stage$bindir/batonctl" ] || fail "the programs are not executable"

as_baton env DESTDIR="$stage" bindir="$bindir" mandir="$mandir" sysconfdir="$sysconfdir" docdir="$docdir" \
	unitdir="$unitdir" version="$version" sh "$src/doc/installcheck.sh" >"$T/installcheck.out" 2>&1
rc=$?
cat "$T/installcheck.out"
[ "$rc" = 0 ] || fail "installcheck.sh found problems in the staged install"
pass "installcheck.sh on the staged install"
if [ -n "$unitdir" ]; then
	if command -v systemd-analyze >/dev/null 2>&1; then
		grep -q 'ok: systemd-analyze verify' "$T/installcheck.out" || fail "the unit was not verified"
		# The sandbox's exposure as systemd rates it (0 = fully locked
		# down, 10 = none): at most 2.0. An instance of the staged unit,
		# read offline (no running systemd needed).
		mkdir "$T/sa"
		cp "$stage$unitdir/baton@.service" "$T/sa/"
		(cd "$T/sa" && systemd-analyze security --offline=yes --no-pager baton@node1.service) \
			>"$T/security.out" 2>&1
		exposure=$(sed -n 's/.*Overall exposure level for baton@node1.service: \([0-9][0-9]*\.[0-9]\).*/\1/p' \
			"$T/security.out")
		[ -n "$exposure" ] || { cat "$T/security.out"; fail "no exposure level in systemd-analyze security's output"; }
		if ! awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
			grep '✗' "$T/security.out"
			fail "systemd-analyze security: exposure $exposure for baton@.service, more than 2.0 (settings above)"
		fi
		pass "systemd-analyze security: exposure $exposure (at most 2.0), $(grep -c '✗' "$T/security.out") settings open"
	else
		echo "SKIP: systemd-analyze is not installed (Debian package systemd): unit not verified"
	fi
fi

# ---- 2. the example configuration is valid as installed (its TLS files,
# /etc/baton/tls/*, made here with openssl in $T/tls)
mkdir -p "$T/tls"
(
	cd "$T/tls" || exit 1
	set -e
	k=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	openssl req -x509 "${k[@]}" -keyout ca.key -out ca.crt -days 2 -subj /CN=install-test-ca
	openssl req "${k[@]}" -keyout restapi.key -out restapi.csr -subj /CN=install-test
	printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
	openssl x509 -req -in restapi.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out restapi.crt
) >"$T/openssl.log" 2>&1 || fail "openssl could not make the example's TLS files (see $T/openssl.log)"
chown -R "$BATON_USER:" "$T/tls"
sed "s|\"/etc/baton/tls/|\"$T/tls/|" "$stage$docdir/examples/node1.conf" >"$T/example-node1.conf"
chown "$BATON_USER:" "$T/example-node1.conf"
chmod 600 "$T/example-node1.conf"
out=$(as_baton "$stage$bindir/baton" -t -c "$T/example-node1.conf" 2>&1) ||
	fail "baton -t rejects the installed example: $out"
pass "baton -t accepts the installed example ($out)"

# ---- 3. uninstall
as_baton make -s -C "$BATON_BUILD" uninstall DESTDIR="$stage" >"$T/uninstall.out" 2>&1 ||
	{ cat "$T/uninstall.out"; fail "make uninstall failed"; }
left=$(cd "$stage" && find . -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left files behind: $left"
pass "make uninstall DESTDIR: no file left"

# ---- 4. distcheck
dc=${BATON_DISTCHECK:-auto}
if [ "$dc" = auto ]; then
	case " $(mkvar CFLAGS) " in
	*-fsanitize=*) dc=0; echo "SKIP: make distcheck runs against the plain build only (this one is sanitized)" ;;
	*) dc=1 ;;
	esac
elif [ "$dc" = 0 ]; then
	echo "SKIP: make distcheck (BATON_DISTCHECK=0)"
fi
if [ "$dc" = 1 ]; then
	mkdir "$T/dist"
	chown "$BATON_USER:" "$T/dist"
	t0=$(date +%s)
	# TMPDIR: distcheck's unit tests make their temp dirs under /tmp anyway;
	# keep installcheck's inside the test dir.
	# It builds every unit test program but runs only the quick ones: the
	# four that wait on a real etcd, sockets and timers (about 80 s of the
	# run) already ran twice in tests/run.sh, plain and sanitized, on the
	# same source. BATON_DISTCHECK_TESTS=all runs them here too.
	tests=
	for t in $(mkvar TESTS); do
		case $t in
		tests/check_etcd | tests/check_api | tests/check_fence | tests/check_pg)
			[ "${BATON_DISTCHECK_TESTS:-quick}" = all ] && tests+="$t "
			;;
		*) tests+="$t " ;;
		esac
	done
	[ -n "$tests" ] || fail "cannot read TESTS from $BATON_BUILD/Makefile"
	log "distcheck runs: $tests"
	as_baton sh -c "cd '$T/dist' && '$src/configure' -q && make -j2 distcheck TMPDIR='$T/dist' TESTS='$tests'" \
		>"$T/distcheck.out" 2>&1
	rc=$?
	secs=$(($(date +%s) - t0))
	if [ "$rc" != 0 ]; then
		tail -n 60 "$T/distcheck.out"
		find "$T/dist" -name test-suite.log -exec tail -n 40 {} \;
		fail "make distcheck failed after $secs s (exit $rc; log $T/distcheck.out)"
	fi
	grep -E 'installcheck: (ok|SKIP)' "$T/distcheck.out" | sed 's/^/  /'
	grep -q 'archives ready for distribution' "$T/distcheck.out" || fail "distcheck did not report the archive ready"
	pass "make distcheck: $(ls "$T/dist"/*.tar.gz | xargs -n1 basename) ready, in $secs s"
fi
echo "19_install: all checks passed"
