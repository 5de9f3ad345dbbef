#!/bin/bash
# 32_systemd_unit: the shipped baton@.service, as `make install` renders it,
# runs a cluster under a real systemd with all of its hardening in force.
#
# This machine's own OS is booted in a container (systemd-nspawn
# --volatile=overlay: the host's root read-only under a tmpfs, a private
# network with only loopback, so nothing it starts is reachable from here
# or collides with anything here). Inside it:
#  1. etcd (a transient unit), and a Postgres run as postgres *outside* any
#     unit with User= (as Debian's postgresql@15-main is): the neighbour
#     that RemoveIPC= would hurt;
#  2. baton@node1 and baton@node2 from the staged install: node1 bootstraps
#     (initdb: data checksums on), node2 clones it (pg_basebackup) and
#     streams; both report their state through sd_notify;
#  3. under the system call filter Postgres serves a JIT-compiled query
#     (MemoryDenyWriteExecute= would break it) and a parallel one (dynamic
#     shared memory); no process of either unit is killed by SIGSYS, and
#     only the agent sends sd_notify messages;
#  4. systemd-analyze security rates the running unit at 2.0 or lower;
#  5. the VIP callback with the drop-in its header documents (CAP_NET_ADMIN,
#     BATON_VIP on lo): the address appears on the primary, and is removed
#     by on_stop when `systemctl stop baton@node1` hands over to node2;
#  6. once every baton unit has stopped, the neighbour Postgres still
#     accepts connections and runs a parallel query (its shared memory was
#     not removed).
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init systemd_unit

for b in systemd-nspawn nsenter; do
	command -v "$b" >/dev/null 2>&1 || fail "$b is missing (Debian package systemd-container / util-linux)"
done
[ -x /lib/systemd/systemd ] || fail "/lib/systemd/systemd is missing (Debian package systemd)"

# A variable of the build's Makefile, expanded by make itself (as in 19_install).
mkvar() {
	printf 'print-%%:\n\t@echo $($*)\ninclude Makefile\n' >"$T/printvar.mk"
	(cd "$BATON_BUILD" && as_baton make -s -f "$T/printvar.mk" "print-$1")
}
bindir=$(mkvar bindir) docdir=$(mkvar docdir) unitdir=$(mkvar systemdsystemunitdir) sysconfdir=$(mkvar sysconfdir)
[ -n "$unitdir" ] || fail "the build was configured without a systemd unit"
stage=$T/stage
as_baton make -s -C "$BATON_BUILD" install DESTDIR="$stage" >"$T/install.out" 2>&1 ||
	{ cat "$T/install.out"; fail "make install DESTDIR=$stage failed"; }
for f in "$bindir/baton" "$bindir/batonctl" "$unitdir/baton@.service" "$docdir/examples/callbacks/vip.sh"; do
	[ -s "$stage$f" ] || fail "the staged install lacks $f"
done

# ---- the container
D=$T/nspawn
CG=baton-it-nspawn-$$
MACHINE=baton-it-$$
NSPAWN_PID= P1= MOUNTED=0
mkdir -p "$D/root"
chmod 755 "$D"

nspawn_gone() { ! pid_alive "$NSPAWN_PID"; }
container_cleanup() {
	if [ -n "$P1" ] && pid_alive "$P1"; then
		nsenter -t "$P1" -a systemctl poweroff --no-block >/dev/null 2>&1 || true
	fi
	if [ -n "$NSPAWN_PID" ] && ! poll_until 30 nspawn_gone; then
		# Never SIGKILL: its PID 1 would be orphaned and keep running.
		echo "systemd-nspawn did not stop after poweroff; SIGTERM"
		kill -TERM "$NSPAWN_PID" 2>/dev/null
		poll_until 20 nspawn_gone || echo "WARNING: systemd-nspawn (pid $NSPAWN_PID) still running"
	fi
	wait "$NSPAWN_PID" 2>/dev/null
	NSPAWN_PID= P1=
	[ "$MOUNTED" = 1 ] && umount "$D/root" && MOUNTED=0
	local h
	for h in systemd unified; do
		[ -d "/sys/fs/cgroup/$h/$CG" ] && find "/sys/fs/cgroup/$h/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	return 0
}
trap 'rc=$?; container_cleanup; (exit "$rc"); cluster_cleanup' EXIT

mount --bind / "$D/root" || fail "cannot bind-mount / at $D/root"
MOUNTED=1
# nspawn leaves cgroups behind in its caller's: give it one of its own.
(
	for h in systemd unified; do
		if [ -d "/sys/fs/cgroup/$h" ]; then
			mkdir -p "/sys/fs/cgroup/$h/$CG" && echo "$BASHPID" >"/sys/fs/cgroup/$h/$CG/cgroup.procs"
		fi
	done
	exec systemd-nspawn -D "$D/root" --volatile=overlay --private-network -b --register=no \
		--keep-unit --console=pipe -M "$MACHINE" </dev/null >"$D/nspawn.log" 2>&1
) &
NSPAWN_PID=$!
pid1_found() { P1=$(pgrep -P "$NSPAWN_PID" -x systemd | head -n1); [ -n "$P1" ]; }
if ! poll_until 30 pid1_found; then
	# nspawn itself gave up: this machine (e.g. a chroot) cannot boot a
	# container, which is not baton's fault. nspawn still running without a
	# systemd is a failure.
	if ! pid_alive "$NSPAWN_PID"; then
		skip "systemd-nspawn cannot boot a container here: $(grep -v '^$' "$D/nspawn.log" | tail -n 2 | tr '\n' ' ')"
	fi
	fail "timed out after 30s waiting for: the container's systemd (nspawn runs; see $D/nspawn.log)"
fi
in_c() { nsenter -t "$P1" -a -- "$@"; }
manager_up() { in_c test -S /run/systemd/private; }
wait_for 30 "the container's service manager" manager_up
booted() { case $(in_c systemctl is-system-running 2>/dev/null) in running | degraded) return 0 ;; esac; return 1; }
wait_for 60 "the container booted" booted
log "container up: $(in_c systemctl is-system-running) ($(in_c systemctl --failed --no-legend | wc -l) failed units of the host's own)"

# Files into the container (its /run and overlay are its own).
put() { # put MODE DEST < content
	in_c sh -c "mkdir -p \"\$(dirname '$2')\" && cat >'$2' && chmod $1 '$2'"
}
put 755 "$bindir/baton" <"$stage$bindir/baton"
put 755 "$bindir/batonctl" <"$stage$bindir/batonctl"
put 644 /etc/systemd/system/baton@.service <"$stage$unitdir/baton@.service"
put 755 /etc/baton/vip.sh <"$stage$docdir/examples/callbacks/vip.sh"

# ---- 1. etcd, and a neighbour Postgres that is no unit's User=
in_c systemd-run -q --unit=it-etcd /usr/bin/etcd --name it --data-dir /var/lib/it-etcd \
	--listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
	--listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
	--initial-cluster it=http://127.0.0.1:23800 || fail "cannot start etcd in the container"
etcd_up() { in_c env ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:23790 endpoint health >/dev/null 2>&1; }
wait_for 30 "etcd in the container" etcd_up
in_c runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D /var/lib/postgresql/it-neighbour \
	>"$T/neighbour-initdb.out" 2>&1 || { cat "$T/neighbour-initdb.out"; fail "initdb of the neighbour failed"; }
in_c systemd-run -q --unit=it-neighbour -p Type=forking /usr/sbin/runuser -u postgres -- \
	/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/it-neighbour -w \
	-o "-p 5499 -k /tmp -c listen_addresses=''" -l /var/lib/postgresql/it-neighbour.log start ||
	fail "cannot start the neighbour Postgres"
neighbour_sql() { in_c runuser -u postgres -- psql -h /tmp -p 5499 -d postgres -XAtqc "$1" 2>&1; }
PARALLEL="CREATE TABLE IF NOT EXISTS it_par AS SELECT g FROM generate_series(1, 200000) g;
	SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
	SET min_parallel_table_scan_size = 0; EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM it_par"
out=$(neighbour_sql "$PARALLEL")
grep -q 'Workers Launched: [12]' <<<"$out" || fail "the neighbour runs no parallel query: $out"
pass "a neighbour Postgres runs as postgres outside any User= unit, with parallel workers"

# ---- 2. two nodes under the shipped unit
for n in 1 2; do
	put 600 "$sysconfdir/baton/node$n.conf" <<EOF
scope = "main";
name = "node$n";
etcd = { hosts = [ "127.0.0.1:23790" ]; };
restapi = { listen = "127.0.0.1:810$n"; };
bootstrap = { dcs = { ttl = 5; loop_wait = 1; retry_timeout = 2; }; };
postgresql = {
  data_dir = "/var/lib/postgresql/baton-it/node$n";
  listen = "127.0.0.1:553$n";
  socket_dir = "/run/baton/node$n";
  authentication = {
    superuser = { username = "postgres"; password = "su-$$"; };
    replication = { username = "replicator"; password = "repl-$$"; };
  };
  parameters = { shared_buffers = "32MB"; max_parallel_workers_per_gather = 2; };
  pg_hba = [ "host all all 127.0.0.1/32 scram-sha-256",
             "host replication replicator 127.0.0.1/32 scram-sha-256" ];
$([ "$n" = 1 ] && echo '  callbacks = { on_start = "/etc/baton/vip.sh"; on_role_change = "/etc/baton/vip.sh"; on_stop = "/etc/baton/vip.sh"; };')
};
EOF
	in_c chown postgres: "$sysconfdir/baton/node$n.conf"
done
in_c install -d -o postgres -g postgres -m 700 /var/lib/postgresql/baton-it
# The drop-in vip.sh's header documents, on node1 only: the address on lo.
VIP=10.200.0.10/32
put 644 /etc/systemd/system/baton@node1.service.d/vip.conf <<EOF
[Service]
CapabilityBoundingSet=CAP_NET_ADMIN
AmbientCapabilities=CAP_NET_ADMIN
Environment=BATON_VIP=$VIP BATON_VIP_DEV=lo BATON_VIP_ARPING=no
EOF
in_c systemctl daemon-reload
out=$(in_c systemd-analyze verify /etc/systemd/system/baton@.service 2>&1 | grep -v 'man baton' || true)
[ -z "$out" ] || log "systemd-analyze verify in the container: $out"

# STATUS= of the unit (sd_notify) starts with $2
status_is() { case $(in_c systemctl show -p StatusText --value "baton@node$1") in "$2"*) return 0 ;; esac; return 1; }
in_c systemctl start baton@node1 || { in_c journalctl -u baton@node1 --no-pager | tail -n 30; fail "baton@node1 did not start"; }
wait_for 60 "baton@node1: primary" status_is 1 "primary holding the leader key"
in_c systemctl start baton@node2 || { in_c journalctl -u baton@node2 --no-pager | tail -n 30; fail "baton@node2 did not start"; }
wait_for 90 "baton@node2: replica of node1" status_is 2 "replica of node1"
pass "baton@node1 bootstrapped and leads, baton@node2 cloned it and follows (states from sd_notify)"

node_sql() { in_c env PGPASSWORD="su-$$" psql -h 127.0.0.1 -p "553$1" -U postgres -d postgres -XAtqc "$2" 2>&1; }
assert_eq on "$(node_sql 1 'SHOW data_checksums')" "the bootstrapped cluster has data checksums"
streaming() { [ "$(node_sql 1 "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ]; }
wait_for 30 "node2 streams from node1" streaming

# ---- 3. JIT and parallel query under the system call filter
out=$(node_sql 1 "SET jit = on; SET jit_above_cost = 0; EXPLAIN (ANALYZE) SELECT sum(g) FROM generate_series(1, 100000) g")
grep -q '^JIT:' <<<"$out" && ! grep -qi 'error' <<<"$out" || fail "no JIT-compiled query under the unit: $out"
pass "a JIT-compiled query runs under the unit ($(grep -o 'Functions: [0-9]*' <<<"$out"))"
out=$(node_sql 1 "$PARALLEL")
grep -q 'Workers Launched: [12]' <<<"$out" || fail "no parallel workers under the unit: $out"
pass "a parallel query runs under the unit ($(grep -o 'Workers Launched: [0-9]*' <<<"$out"))"

# ---- 4. the running unit's exposure
sa=$(in_c systemd-analyze security --no-pager baton@node2.service 2>&1 | tail -n1)
exposure=$(sed -n 's/.*Overall exposure level for baton@node2.service: \([0-9][0-9]*\.[0-9]\).*/\1/p' <<<"$sa")
[ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' ||
	fail "systemd-analyze security of the running baton@node2: '$sa'"
pass "systemd-analyze security of the running unit: exposure $exposure"

# ---- 5. the VIP follows node1's role and leaves with on_stop
vip_on_lo() { in_c ip -o addr show dev lo | grep -q " inet ${VIP%/*}/"; }
wait_for 20 "the VIP on lo (node1 is primary)" vip_on_lo
in_c systemctl stop baton@node1 || fail "systemctl stop baton@node1 failed"
vip_on_lo && fail "node1's unit has stopped but the VIP is still there"
in_c journalctl -u baton@node1 --no-pager | grep -q "callback on_stop: main: $VIP removed from lo" ||
	fail "node1's journal lacks the on_stop removal"
pass "systemctl stop baton@node1: on_stop removed the VIP before the unit stopped"
wait_for 60 "baton@node2 took over" status_is 2 "primary holding the leader key"
in_c systemctl stop baton@node2 || fail "systemctl stop baton@node2 failed"

# No SIGSYS, no EPERM from the filter in either unit's journal.
in_c journalctl -u baton@node1 -u baton@node2 --no-pager >"$T/journal.txt"
if grep -Ei 'bad system call|SIGSYS|status=31/SYS' "$T/journal.txt"; then
	fail "a process of the units was killed by the system call filter"
fi
# Only the agent talks to systemd (Postgres gets no NOTIFY_SOCKET).
if grep -E 'Got notification message from PID' "$T/journal.txt"; then
	fail "a child of the agent sent sd_notify messages to systemd"
fi
pass "no SIGSYS, and no notification from any process but the agent, in the units' journal"
for n in 1 2; do
	r=$(in_c systemctl show -p Result --value "baton@node$n")
	assert_eq success "$r" "baton@node$n stopped cleanly"
done

# ---- 6. the neighbour kept its shared memory
out=$(neighbour_sql "$PARALLEL")
grep -q 'Workers Launched: [12]' <<<"$out" ||
	fail "after the baton units stopped the neighbour Postgres is broken (RemoveIPC?): $out"
pass "the neighbour Postgres still runs parallel queries after every baton unit stopped"
echo "32_systemd_unit: all checks passed"
