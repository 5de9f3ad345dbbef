#!/bin/bash
# 23_sdnotify: the agent speaks systemd's notify protocol (Type=notify,
# WatchdogSec=). A datagram socket stands in for systemd: the agent sends
# READY=1 once started, STATUS= lines with what it does, WATCHDOG=1 every
# loop, and STOPPING=1 when told to stop.
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init sdnotify

etcd_start
node_config 1
sock=$T/notify.sock
cat >"$T/recv.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1.0)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        continue
    for line in msg.split("\n"):
        print("%.3f %s" % (time.time(), line), flush=True)
PY
chown "$BATON_USER:" "$T/recv.py"
bg_start notify setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- /usr/bin/python3 "$T/recv.py" "$sock" 120
wait_for 10 "the notify socket" test -S "$sock"
NOTIFY_SOCKET=$sock WATCHDOG_USEC=5000000 agent_start 1
wait_for 60 "READY=1" grep -q " READY=1$" "$T/notify.out"
wait_for 60 "node1 primary" eval '[ "$(in_recovery 1)" = f ]'
n0=$(grep -c " WATCHDOG=1$" "$T/notify.out")
sleep 3
n1=$(grep -c " WATCHDOG=1$" "$T/notify.out")
[ $((n1 - n0)) -ge 2 ] || fail "only $((n1 - n0)) watchdog pings in 3 s (loop_wait 1 s)"
pass "$((n1 - n0)) watchdog pings in 3 s"
grep -q " STATUS=.*primary holding the leader key" "$T/notify.out" || fail "no STATUS line for the leader: $(grep STATUS "$T/notify.out" | tail -3)"
pass "status: $(grep ' STATUS=' "$T/notify.out" | tail -1 | cut -d' ' -f2-)"
agent_stop 1
wait_for 10 "STOPPING=1" grep -q " STOPPING=1$" "$T/notify.out"
