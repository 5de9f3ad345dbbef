#!/bin/bash
# 34_systemd_live: baton as an operator installs it: the Debian package,
# installed with apt into a fresh Debian 12 root that boots systemd as PID 1
# (systemd-nspawn -b, a private network with only loopback), run by the
# package's baton@.service.
#
#  1. dpkg-buildpackage -us -uc -b builds the package from this source tree
#     (as baton; DEB_BUILD_OPTIONS=nocheck: `make check` ran on this build
#     already); its version is configure.ac's; lintian finds no error or
#     warning that debian/baton.lintian-overrides does not justify;
#     (tests/run.sh builds it in the background as soon as its own build is
#     done, see tests/lib/debian_root.sh; the checks run here);
#  2. the root: Debian 12 with systemd, postgresql-15 and etcd-server: the
#     minbase debootstrap shared with 35_container_image plus apt-get install
#     in a chroot (tests/lib/debian_root.sh), cached under $BATON_NSPAWN_CACHE
#     (default /var/tmp/baton-nspawn-cache) keyed by a hash of its recipe, so
#     a second run reuses it; each run boots an overlay of it (the cache
#     stays clean);
#  3. `apt-get install ./baton_VERSION_ARCH.deb` inside: the user postgres,
#     /var/lib/baton (0700), the example conffile /etc/baton/baton.conf.example;
#     etcd runs as Debian's etcd.service;
#  4. three `baton@nodeN` on loopback: `systemctl start` returns with the unit
#     active (Type=notify: only after READY=1) and its status text set;
#     `systemctl status` shows it; node2 and node3 clone and follow node1;
#  5. `journalctl -u baton@node1` holds the agent's lines with their
#     priorities (info 6, warnings 4, errors 3);
#  6. `systemctl reload` re-reads the file: a changed log.level (debug) shows
#     in the journal at once, without a restart (same main PID);
#  7. `systemctl stop` of the leader hands over: a writer inside the
#     container (one INSERT every 50 ms to whichever node is read-write)
#     sees a gap under the ttl (5 s); the unit ends with Result=success; the
#     old leader, started again, follows the new one;
#  8. `systemctl kill -s KILL --kill-who=main` of a replica's agent: its
#     Postgres is stopped too (KillMode=mixed), the unit restarts
#     (Restart=on-failure) and the node follows again;
#  9. SIGSTOP of the leader's agent, with a drop-in WatchdogSec=12s: the
#     fence process stops its Postgres first (at the lease deadline), then
#     the watchdog kills the hung agent and systemd restarts it; the node
#     comes back as a replica of the new leader;
# 10. systemd-analyze security rates the running baton@node1 at <= 2.0;
# 11. `systemctl reboot` of the container (the units enabled): after the new
#     boot every node runs again, one primary and two replicas, with the
#     rows written before;
# 12. `apt-get purge baton`: prerm stopped every instance (no Postgres left),
#     the binaries, the unit and the example conffile are gone, /var/log/baton
#     is gone, the data under /var/lib/baton and the operator's node files
#     stay.
# Prints the time of each part (package build, lintian, root, boot, ...).
# Skips (77) when systemd-nspawn cannot boot a container on this machine.
. "$(dirname "$0")/../lib/cluster.sh"
. "$(dirname "$0")/../lib/debian_root.sh"
cluster_init systemd_live
debian_prep_boost # the slow steps below may wait for it

for b in systemd-nspawn nsenter debootstrap dpkg-buildpackage lintian flock; do
	command -v "$b" >/dev/null 2>&1 ||
		fail "$b is missing (Debian packages systemd-container, util-linux, debootstrap, dpkg-dev, lintian)"
done
[ -x /lib/systemd/systemd ] || fail "/lib/systemd/systemd is missing (Debian package systemd)"

TIMINGS=()

src=$(mkvar abs_top_srcdir)
version=$(mkvar PACKAGE_VERSION)
[ -n "$src" ] && [ -f "$src/debian/control" ] || fail "no debian/ in the source dir '$src' of $BATON_BUILD"

# ---- 1. the package (BATON_LIVE_DEB=FILE uses that one instead: for
# iterating on the later steps; CI always builds)
t0=$(now_ms)
if [ -n "${BATON_LIVE_DEB:-}" ]; then
	deb=$BATON_LIVE_DEB
	[ -s "$deb" ] || fail "BATON_LIVE_DEB=$deb: no such package"
	log "using the package $deb (BATON_LIVE_DEB): no build, no lintian"
else
	. "$src/tests/lib/packages.sh"
	# tests/run.sh builds it in the background ($BATON_PREP_DIR/pkg, from
	# the same source copy): wait for that build, reuse it if it finished,
	# else build here (and say why it failed).
	pkgdir=
	if [ -n "${BATON_PREP_DIR:-}" ] && [ -e "$BATON_PREP_DIR/pkg.lock" ]; then
		exec 6<"$BATON_PREP_DIR/pkg.lock"
		flock -w 600 6 || log "the background package build holds $BATON_PREP_DIR/pkg.lock for more than 600 s"
		if [ -f "$BATON_PREP_DIR/pkg/.complete" ]; then
			pkgdir=$BATON_PREP_DIR/pkg
			log "the package was built in the background ($pkgdir)"
		else
			log "the background package build did not finish: building here"
		fi
	fi
	if [ -z "$pkgdir" ]; then
		pkgdir=$T/pkg
		deb_build "$src" "$pkgdir" "$version" "$BATON_USER" || fail "cannot build the package in $pkgdir"
	fi
	arch=$(dpkg --print-architecture)
	deb=$pkgdir/baton_${version}_$arch.deb
	[ -s "$deb" ] || fail "dpkg-buildpackage made no $deb: $(ls "$pkgdir")"
	assert_eq "$version" "$(dpkg-deb -f "$deb" Version)" "the package's version is configure.ac's"
	# ... and debian/rules refuses a changelog out of step with configure.ac.
	out=$(cd "$pkgdir/baton-$version" && as_baton make -s -f debian/rules VERSION_AC=9.9.9 override_dh_auto_configure 2>&1)
	rc=$?
	[ "$rc" != 0 ] && grep -qF "debian/changelog says $version but configure.ac's AC_INIT says '9.9.9'" <<<"$out" ||
		fail "debian/rules accepted a configure.ac version (9.9.9) other than the changelog's $version (exit $rc): $out"
	pass "debian/rules refuses to build when debian/changelog and configure.ac disagree"
	timing "package build (or the wait for the background one)" "$t0"
	t0=$(now_ms)
	# As baton: lintian warns when run as root.
	# (from $T: the caller's cwd, a CI clone under /root, is unreadable to baton)
	(cd "$T" && as_baton lintian --fail-on error,warning "$pkgdir/baton_${version}_$arch.changes") >"$T/lintian.out" 2>&1 ||
		{ cat "$T/lintian.out"; fail "lintian found errors or warnings"; }
	pass "lintian: no error or warning ($(grep -c . "$T/lintian.out") lines of other tags)"
	timing "lintian" "$t0"
fi
files=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
for f in ./usr/bin/baton ./usr/bin/batonctl ./lib/systemd/system/baton@.service ./etc/baton/baton.conf.example \
	./usr/share/man/man8/baton.8.gz ./usr/share/man/man1/batonctl.1.gz ./usr/share/man/man5/baton.conf.5.gz; do
	grep -qxF "$f" <<<"$files" || fail "the package lacks $f"
done
pass "the package holds the programs, the unit, the manual pages and the example configuration"

# ---- 2. the root, cached by a hash of its recipe (made in the background
# by tests/run.sh, or here)
t0=$(now_ms)
base=$(debian_nspawn_root "$deb" 2>"$T/root.out") || { tail -n 30 "$T/root.out"; fail "cannot build the nspawn root (log: $T/root.out)"; }
timing "root (debootstrap, or the cache $base)" "$t0"

# ---- the container: an overlay of the cached root, booted once (and once
# more for the reboot of step 11)
D=$T/nspawn
CG=baton-it-live-$$
MACHINE=baton-live-$$
NSPAWN_PID= P1= MOUNTED=0 WRITER=
mkdir -p "$D/upper" "$D/work" "$D/root"
chmod 755 "$D"
nspawn_gone() { ! pid_alive "$NSPAWN_PID"; }
container_cleanup() {
	if [ -n "$P1" ] && pid_alive "$P1"; then
		[ "$TEST_FAILED" = 1 ] && nsenter -t "$P1" -a journalctl --no-pager -n 60 -u 'baton@*' 2>/dev/null
		nsenter -t "$P1" -a systemctl poweroff --no-block >/dev/null 2>&1 || true
	fi
	# Within run.sh's grace after a timeout (SIGTERM, SIGKILL 20 s later).
	if [ -n "$NSPAWN_PID" ] && ! poll_until 12 nspawn_gone; then
		# Never SIGKILL: its PID 1 would be orphaned and keep running.
		echo "systemd-nspawn did not stop after poweroff; SIGTERM"
		kill -TERM "$NSPAWN_PID" 2>/dev/null
		poll_until 6 nspawn_gone || echo "WARNING: systemd-nspawn (pid $NSPAWN_PID) still running"
	fi
	[ -n "$NSPAWN_PID" ] && wait "$NSPAWN_PID" 2>/dev/null
	NSPAWN_PID= P1=
	if [ "$MOUNTED" = 1 ]; then umount "$D/root" && MOUNTED=0; fi
	local h
	for h in systemd unified; do
		[ -d "/sys/fs/cgroup/$h/$CG" ] && find "/sys/fs/cgroup/$h/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	# The overlay's upper layer holds a whole Postgres cluster: not kept.
	[ "${KEEP:-0}" = 1 ] || rm -rf "$D/upper" "$D/work"
	return 0
}
trap 'rc=$?; container_cleanup; (exit "$rc"); cluster_cleanup' EXIT

if ! mount -t overlay overlay -o "lowerdir=$base,upperdir=$D/upper,workdir=$D/work" "$D/root" 2>"$T/overlay.err"; then
	# Nested overlays: a machine whose own root is an overlay (a container
	# or a chroot on overlayfs) cannot stack another on it.
	for fs in "$(stat -f -c %T "$base" 2>/dev/null)" "$(stat -f -c %T "$D" 2>/dev/null)"; do
		[ "$fs" = overlayfs ] && skip "cannot stack an overlay on this machine's overlayfs ($(cat "$T/overlay.err"))"
	done
	fail "cannot mount an overlay of $base at $D/root: $(cat "$T/overlay.err")"
fi
MOUNTED=1
in_c() { nsenter -t "$P1" -a -- "$@"; }
pid1_found() { P1=$(pgrep -P "$NSPAWN_PID" -x systemd | head -n1); [ -n "$P1" ]; }
manager_up() { in_c test -S /run/systemd/private; }
booted() { case $(in_c systemctl is-system-running 2>/dev/null) in running | degraded) return 0 ;; esac; return 1; }
boot() {
	# nspawn leaves cgroups behind in its caller's: give it one of its own.
	(
		for h in systemd unified; do
			if [ -d "/sys/fs/cgroup/$h" ]; then
				mkdir -p "/sys/fs/cgroup/$h/$CG" && echo "$BASHPID" >"/sys/fs/cgroup/$h/$CG/cgroup.procs"
			fi
		done
		exec systemd-nspawn -D "$D/root" --private-network -b --register=no \
			--keep-unit --console=pipe -M "$MACHINE" </dev/null >>"$D/nspawn.log" 2>&1
	) &
	NSPAWN_PID=$!
	if ! poll_until 30 pid1_found; then
		if ! pid_alive "$NSPAWN_PID"; then
			skip "systemd-nspawn cannot boot a container here: $(grep -v '^$' "$D/nspawn.log" | tail -n 2 | tr '\n' ' ')"
		fi
		fail "timed out after 30s waiting for: the container's systemd (nspawn runs; see $D/nspawn.log)"
	fi
	wait_for 30 "the container's service manager" manager_up
	wait_for 60 "the container booted" booted
}
t0=$(now_ms)
boot
timing "boot" "$t0"
log "container up: $(in_c systemctl is-system-running), $(in_c systemctl --failed --no-legend | wc -l) failed units"

# ---- 3. the package, installed with apt
t0=$(now_ms)
in_c sh -c "cat >/root/$(basename "$deb")" <"$deb"
in_c env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "/root/$(basename "$deb")" \
	>"$T/apt-install.out" 2>&1 || { cat "$T/apt-install.out"; fail "apt-get install ./$(basename "$deb") failed"; }
timing "apt-get install of the package" "$t0"
assert_eq "install ok installed $version" "$(in_c dpkg-query -W -f='${Status} ${Version}' baton)" \
	"apt-get install ./$(basename "$deb")"
in_c id postgres >/dev/null || fail "postinst left no user postgres"
assert_eq "postgres:postgres 700" "$(in_c stat -c '%U:%G %a' /var/lib/baton)" "postinst made /var/lib/baton"
grep -q '^ /etc/baton/baton.conf.example ' <<<"$(in_c dpkg-query -W -f='${Conffiles}\n' baton)" ||
	fail "/etc/baton/baton.conf.example is not a conffile: $(in_c dpkg-query -W -f='${Conffiles}' baton)"
grep -qF "$version" <<<"$(in_c /usr/bin/baton --version)" || fail "the installed baton is not version $version"
pass "the package installed: user postgres, /var/lib/baton, the example conffile, baton $version"

etcd_up() { in_c env ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 endpoint health >/dev/null 2>&1; }
wait_for 30 "etcd.service answers on 127.0.0.1:2379" etcd_up
assert_eq active "$(in_c systemctl is-active etcd.service)" "etcd runs as Debian's etcd.service"

# ---- 4. three nodes under the package's unit
SU_PW="su-$$" REPL_PW="repl-$$"
node_conf() { # node_conf N LEVEL
	cat <<EOF
scope = "main";
name = "node$1";
etcd = { hosts = [ "127.0.0.1:2379" ]; };
restapi = { listen = "127.0.0.1:810$1"; };
bootstrap = { dcs = { ttl = 5; loop_wait = 1; retry_timeout = 2; }; };
postgresql = {
  data_dir = "/var/lib/baton/node$1";
  listen = "127.0.0.1:553$1";
  socket_dir = "/run/baton/node$1";
  authentication = {
    superuser = { username = "postgres"; password = "$SU_PW"; };
    replication = { username = "replicator"; password = "$REPL_PW"; };
  };
  parameters = { shared_buffers = "16MB"; };
  pg_hba = [ "host all all 127.0.0.1/32 scram-sha-256",
             "host replication replicator 127.0.0.1/32 scram-sha-256" ];
};
log = { level = "$2"; };
EOF
}
put_conf() { # put_conf N LEVEL: as an operator would, mode 600 for the unit's user
	node_conf "$1" "$2" | in_c sh -c "cat >/etc/baton/node$1.conf.new && chown postgres: /etc/baton/node$1.conf.new &&
		chmod 600 /etc/baton/node$1.conf.new && mv /etc/baton/node$1.conf.new /etc/baton/node$1.conf"
}
for n in 1 2 3; do put_conf "$n" info; done
# WatchdogSec=12s instead of the unit's 60 s, so that step 9 takes seconds (more
# than ttl 5 plus the fence's grace for the postmaster to exit):
# a drop-in for every instance, in /run (a reboot drops it). A running
# service keeps the value it started with, hence before the first start.
in_c sh -c "mkdir -p /run/systemd/system/baton@.service.d &&
	printf '[Service]\\nWatchdogSec=12s\\n' >/run/systemd/system/baton@.service.d/watchdog.conf"
in_c systemctl daemon-reload

unit_prop() { in_c systemctl show -p "$2" --value "baton@node$1"; }
# STATUS= of the unit (sd_notify) starts with $2
status_is() { case $(unit_prop "$1" StatusText) in "$2"*) return 0 ;; esac; return 1; }
start_node() {
	local t
	t=$(now_ms)
	in_c systemctl start "baton@node$1" ||
		{ in_c journalctl -u "baton@node$1" --no-pager | tail -n 30; fail "systemctl start baton@node$1 failed"; }
	# Type=notify: start returns once READY=1 came, never while activating.
	assert_eq "active running" "$(unit_prop "$1" ActiveState) $(unit_prop "$1" SubState)" \
		"baton@node$1 is active when systemctl start returns ($(($(now_ms) - t)) ms)"
	[ -n "$(unit_prop "$1" StatusText)" ] || fail "baton@node$1 is active but has no status text (no STATUS= before READY=1)"
}
t0=$(now_ms)
start_node 1
wait_for 60 "baton@node1: primary" status_is 1 "primary holding the leader key"
timing "bootstrap of node1 under systemd" "$t0"
out=$(in_c systemctl status --no-pager baton@node1 2>&1)
grep -q '^ *Status: "primary holding the leader key' <<<"$out" ||
	{ echo "$out"; fail "systemctl status baton@node1 does not show baton's status text"; }
pass "systemctl status baton@node1: $(grep -o 'Status: "[^"]*"' <<<"$out")"
t0=$(now_ms)
for n in 2 3; do start_node "$n"; done
for n in 2 3; do wait_for 90 "baton@node$n: replica of node1" status_is "$n" "replica of node1"; done
timing "clone of node2 and node3 under systemd" "$t0"
pass "baton@node1 bootstrapped and leads, node2 and node3 cloned it and follow (states from sd_notify)"

node_sql() { in_c env PGPASSWORD="$SU_PW" psql -h 127.0.0.1 -p "553$1" -U postgres -d postgres -XAtqc "$2" 2>&1; }
streaming() { [ "$(node_sql "$1" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 2 ]; }
wait_for 30 "node2 and node3 stream from node1" streaming 1

# ---- 5. the journal has the agent's lines with their priorities
prio_count() { # prio_count N PRIORITY: the agent's (baton-nodeN) journal entries of that priority
	in_c journalctl -u "baton@node$1" -o json --no-pager --output-fields=PRIORITY,SYSLOG_IDENTIFIER |
		grep -F "\"SYSLOG_IDENTIFIER\":\"baton-node$1\"" | grep -cF "\"PRIORITY\":\"$2\"" || true
}
n6=$(prio_count 1 6) n4=$(prio_count 1 4)
[ "$n6" -gt 0 ] || fail "no info (priority 6) entry of the agent in journalctl -u baton@node1"
# Every node warns once that it has no /dev/watchdog (PrivateDevices=yes).
[ "$n4" -gt 0 ] || fail "no warning (priority 4) entry of the agent in journalctl -u baton@node1"
warnings=$(in_c journalctl -u baton@node1 -p warning -o cat --no-pager)
grep -q ' WARN  node1: watchdog: /dev/watchdog' <<<"$warnings" ||
	{ echo "$warnings"; fail "journalctl -p warning -u baton@node1 lacks the agent's WARN line"; }
if grep -E ' (INFO|DEBUG) +node1: ' <<<"$warnings"; then
	fail "journalctl -p warning -u baton@node1 shows INFO lines: they were not logged at priority info"
fi
if grep -E '^<[0-7]>' <<<"$(in_c journalctl -u baton@node1 -o cat --no-pager)"; then
	fail "the journal kept the '<N>' priority prefix in the messages (SyslogLevelPrefix did not parse it)"
fi
pass "journalctl -u baton@node1: $n6 agent lines at priority info, $n4 at warning; -p warning shows only WARN/ERROR"

# ---- 6. systemctl reload re-reads the file
pid_before=$(unit_prop 3 MainPID)
put_conf 3 debug
in_c systemctl reload baton@node3 || fail "systemctl reload baton@node3 failed"
debug_lines() { [ "$(prio_count 3 7)" -gt 0 ]; }
wait_for 15 "DEBUG lines (priority 7) of node3 after the reload" debug_lines
assert_eq "$pid_before" "$(unit_prop 3 MainPID)" "systemctl reload re-read node3.conf (log.level = debug) without a restart"
put_conf 3 info
in_c systemctl reload baton@node3 || fail "systemctl reload baton@node3 failed"

# ---- 7. systemctl stop of the leader: a graceful hand-over
in_c sh -c 'cat >/root/writer.sh && chmod 755 /root/writer.sh' <<EOF
#!/bin/bash
# One INSERT every 50 ms into whichever node is read-write, for at most \$1 s
# or until /run/writer.stop exists; "ack MS" per INSERT that committed.
export PGPASSWORD='$SU_PW'
ci="host=127.0.0.1,127.0.0.1,127.0.0.1 port=5531,5532,5533 user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=1"
end=\$((SECONDS + \$1))
while [ \$SECONDS -lt \$end ] && [ ! -e /run/writer.stop ]; do
	if psql "\$ci" -XAtqc "INSERT INTO it_w VALUES (now())" >/dev/null 2>&1; then
		echo "ack \$(date +%s%3N)"
	fi
	sleep 0.05
done
EOF
node_sql 1 "CREATE TABLE it_w (t timestamptz)" >/dev/null
writer_start() {
	in_c rm -f /run/writer.stop
	in_c /root/writer.sh "$1" >"$T/writer.out" 2>&1 &
	WRITER=$!
}
writer_stop() {
	in_c touch /run/writer.stop
	wait "$WRITER" 2>/dev/null
	WRITER=
}
acks() { grep -c '^ack ' "$T/writer.out" || true; }
writer_acks_after() { # writer_acks_after N: more than N acks so far
	[ "$(acks)" -gt "$1" ]
}
writer_start 120
wait_for 10 "the writer's first commits" writer_acks_after 5
t_stop=$(now_ms)
t0=$t_stop
in_c systemctl stop baton@node1 || fail "systemctl stop baton@node1 failed"
stop_ms=$(($(now_ms) - t0))
assert_eq "inactive success" "$(unit_prop 1 ActiveState) $(unit_prop 1 Result)" "baton@node1 stopped cleanly ($stop_ms ms)"
new_leader=
someone_leads() {
	local n
	for n in 2 3; do status_is "$n" "primary holding the leader key" && { new_leader=$n; return 0; }; done
	return 1
}
wait_for 30 "node2 or node3 leads" someone_leads
n_before=$(acks)
wait_for 20 "commits on the new leader node$new_leader" writer_acks_after $((n_before + 10))
writer_stop
gap=$(awk -v t="$t_stop" '$1 == "ack" { if (prev != "" && $2 >= t && $2 - prev > g) g = $2 - prev; prev = $2 } END { printf "%d\n", g }' "$T/writer.out")
last_old=$(awk -v t="$t_stop" '$1 == "ack" && $2 < t { l = $2 } END { printf "%d\n", l }' "$T/writer.out")
log "systemctl stop baton@node1 took $stop_ms ms; the longest write gap after it: $gap ms"
TIMINGS+=("handover under systemd (longest write gap): $gap ms; systemctl stop: $stop_ms ms")
assert_lt "$gap" 5000 "systemctl stop of the leader hands over: the write gap is under the ttl (a lease expiry would take longer)"
[ "$last_old" -gt 0 ] || fail "the writer committed nothing before the stop"
if grep -q 'Watchdog timeout\|SIGKILL\|Killing process' <<<"$(in_c journalctl -u baton@node1 --no-pager)"; then
	fail "node1's unit needed a kill to stop"
fi
start_node 1
wait_for 90 "baton@node1 follows node$new_leader" status_is 1 "replica of node$new_leader"
pass "the old leader, started again, follows node$new_leader"
leader=$new_leader

# ---- 8. systemctl kill -s KILL of an agent (a replica's): its Postgres stops too
victim=1
pm_pid() { in_c head -n1 "/var/lib/baton/node$1/postmaster.pid" 2>/dev/null; }
# pm_alive PID: the container's process PID runs (a zombie does not: a
# postmaster that exited while its parent, the agent, is stopped stays one).
pm_alive() {
	local st
	st=$(in_c sh -c "sed -E 's/^[0-9]+ \\(.*\\) ([A-Za-z]).*/\\1/' /proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pm=$(pm_pid $victim)
[ -n "$pm" ] && pm_alive "$pm" || fail "no running postmaster for node$victim"
restarts=$(unit_prop $victim NRestarts)
main=$(unit_prop $victim MainPID)
in_c systemctl kill -s KILL --kill-who=main "baton@node$victim" || fail "systemctl kill -s KILL baton@node$victim failed"
pm_gone() { ! pm_alive "$pm"; }
wait_for 30 "node$victim's postmaster $pm is gone after its agent was SIGKILLed" pm_gone
restarted() { [ "$(unit_prop $victim NRestarts)" -gt "$restarts" ] && [ "$(unit_prop $victim ActiveState)" = active ]; }
wait_for 30 "baton@node$victim restarted (Restart=on-failure)" restarted
[ "$(unit_prop $victim MainPID)" != "$main" ] || fail "baton@node$victim has the same main PID after the restart"
wait_for 90 "baton@node$victim follows node$leader again" status_is $victim "replica of node$leader"
pass "systemctl kill -s KILL of node$victim's agent stopped its Postgres; the unit restarted and follows node$leader"

# ---- 9. the watchdog restarts a hung agent; the fence stopped its primary first
assert_eq 12s "$(unit_prop "$leader" WatchdogUSec)" "baton@node$leader runs with the drop-in's WatchdogSec=12s"
pm=$(pm_pid "$leader")
main=$(unit_prop "$leader" MainPID)
restarts=$(unit_prop "$leader" NRestarts)
t0=$(now_ms)
in_c kill -STOP "$main" || fail "cannot SIGSTOP the agent $main"
log "SIGSTOP to node$leader's agent (pid $main); its postmaster is $pm"
# One loop watches both: when the postmaster is gone, and when systemd
# takes the unit down (the watchdog fired: ActiveState leaves "active").
pm_gone_at= wd_at= restart_at=
deadline=$(($(now_ms) + 60000))
while [ "$(now_ms)" -lt "$deadline" ]; do
	[ -n "$pm_gone_at" ] || pm_alive "$pm" || pm_gone_at=$(now_ms)
	[ -n "$wd_at" ] || [ "$(unit_prop "$leader" ActiveState)" = active ] || wd_at=$(now_ms)
	if [ -n "$wd_at" ] && [ "$(unit_prop "$leader" NRestarts)" -gt "$restarts" ]; then
		restart_at=$(now_ms)
		break
	fi
	sleep 0.1
done
[ -n "$pm_gone_at" ] || fail "node$leader's postmaster $pm still runs 60 s after its agent was stopped"
[ -n "$restart_at" ] || fail "systemd did not restart baton@node$leader within 60 s of its agent's SIGSTOP"
log "after SIGSTOP: postmaster gone at $((pm_gone_at - t0)) ms, watchdog fired at $((wd_at - t0)) ms, restarted at $((restart_at - t0)) ms"
TIMINGS+=("SIGSTOP of the leader's agent: fence stopped Postgres after $((pm_gone_at - t0)) ms, watchdog after $((wd_at - t0)) ms")
# Which came first, by the journal's own clock: the fence's line (it
# writes to the unit's stderr itself, the agent being frozen) or systemd's
# "Watchdog timeout".
jl=$(in_c journalctl -u "baton@node$leader" --no-pager -o short-unix --since "@$((t0 / 1000 - 1))")
grep -E 'fence process|Watchdog|SIGQUIT|SIGKILL|SIGABRT|immediate' <<<"$jl" | head -n 20
fence_t=$(awk -v pm="$pm" 'index($0, "baton fence process: lease deadline passed and the agent did not renew: SIGQUIT to postmaster " pm) { print $1; exit }' <<<"$jl")
wd_t=$(awk '/Watchdog timeout/ { print $1; exit }' <<<"$jl")
[ -n "$fence_t" ] || fail "node$leader's journal has no line of the fence process sending SIGQUIT to postmaster $pm"
[ -n "$wd_t" ] || fail "node$leader's journal does not say the watchdog fired"
awk -v f="$fence_t" -v w="$wd_t" 'BEGIN { exit !(f < w) }' ||
	fail "the watchdog fired (at $wd_t) before the fence stopped the primary (at $fence_t)"
pass "the fence stopped the primary (journal $fence_t) before the watchdog fired ($wd_t)"
assert_lt "$((pm_gone_at - t0))" "$((wd_at - t0))" "the postmaster was gone before the watchdog fired (ms after SIGSTOP)"
old=$leader
someone_else_leads() {
	local n
	for n in 1 2 3; do [ "$n" != "$old" ] && status_is "$n" "primary holding the leader key" && { leader=$n; return 0; }; done
	return 1
}
wait_for 60 "another node leads after node$old hung" someone_else_leads
wait_for 90 "the restarted node$old follows node$leader" status_is "$old" "replica of node$leader"
n3=$(prio_count "$old" 3)
n4=$(prio_count "$old" 4)
pass "watchdog: node$old's hung agent was restarted, its primary fenced first; it follows node$leader (journal: $n3 error, $n4 warning lines)"
[ $((n3 + n4)) -gt 0 ] || fail "no warning or error priority in node$old's journal after its agent hung"

# ---- 10. the running unit's exposure
sa=$(in_c systemd-analyze security --no-pager baton@node1.service 2>&1 | tail -n1)
exposure=$(sed -n 's/.*Overall exposure level for baton@node1.service: \([0-9][0-9]*\.[0-9]\).*/\1/p' <<<"$sa")
[ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' ||
	fail "systemd-analyze security of the running baton@node1: '$sa'"
pass "systemd-analyze security baton@node1 (installed from the package): exposure $exposure"

# ---- 11. a reboot of the container brings every node back
node_sql "$leader" "INSERT INTO it_w VALUES ('2000-01-01')" >/dev/null
in_c systemctl enable baton@node1 baton@node2 baton@node3 >/dev/null 2>&1 || fail "systemctl enable baton@node1..3 failed"
t0=$(now_ms)
in_c systemctl reboot --no-block || fail "systemctl reboot failed"
# nspawn ends with 133 when its container reboots.
wait_for 150 "the container went down for its reboot" nspawn_gone
wait "$NSPAWN_PID"
rc=$?
[ "$rc" = 133 ] || fail "systemd-nspawn exited $rc, not 133 (reboot)"
NSPAWN_PID= P1=
boot
all_back() {
	local n p=0 r=0
	for n in 1 2 3; do
		[ "$(unit_prop "$n" ActiveState)" = active ] || return 1
		if status_is "$n" "primary holding the leader key"; then p=$((p + 1)); leader=$n; fi
	done
	[ "$p" = 1 ] || return 1
	for n in 1 2 3; do
		[ "$n" = "$leader" ] || status_is "$n" "replica of node$leader" || return 1
	done
}
wait_for 120 "after the reboot: one primary and two replicas" all_back
timing "reboot of the container until the cluster is back" "$t0"
for n in 1 2 3; do
	r=$(node_sql "$n" "SELECT count(*) FROM it_w WHERE t = '2000-01-01'")
	assert_eq 1 "$r" "node$n has the row written before the reboot"
done
pass "systemctl reboot: the enabled units came back, node$leader leads, the others follow"

# ---- 12. apt-get purge
t0=$(now_ms)
in_c env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q baton >"$T/apt-purge.out" 2>&1 ||
	{ cat "$T/apt-purge.out"; fail "apt-get purge baton failed"; }
grep -q 'Stopping baton@' "$T/apt-purge.out" || { cat "$T/apt-purge.out"; fail "prerm did not stop the running instances"; }
for n in 1 2 3; do
	assert_eq inactive "$(in_c systemctl is-active "baton@node$n" 2>/dev/null)" "baton@node$n was stopped by the removal"
done
in_c pgrep -u postgres -x postgres >/dev/null && fail "Postgres still runs after the package was purged"
for f in /usr/bin/baton /usr/bin/batonctl /lib/systemd/system/baton@.service /etc/baton/baton.conf.example /var/log/baton; do
	in_c test -e "$f" && fail "$f is still there after apt-get purge"
done
for f in /var/lib/baton/node1/PG_VERSION /etc/baton/node1.conf; do
	in_c test -e "$f" || fail "apt-get purge removed $f (data and the operator's files must stay)"
done
in_c id postgres >/dev/null || fail "purge removed the user postgres (postgresql-common's too)"
[ "$(in_c dpkg-query -W -f='${Status}' baton 2>/dev/null)" != "install ok installed" ] || fail "baton is still installed"
timing "apt-get purge" "$t0"
pass "apt-get purge: instances stopped, package files and logs gone, data and node files kept"

log "timings:"
for t in "${TIMINGS[@]}"; do log "  $t"; done
echo "34_systemd_live: all checks passed"
