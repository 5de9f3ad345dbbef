#!/bin/bash
# 06_bad_input: bad input gets a clear error and damages nothing.
#  - a table of bad config files: exit 2, one line naming the file and the key,
#    no data directory created;
#  - running as root: refused (exit 2);
#  - a data directory of another cluster pointed at a running cluster: exit 1
#    with an error about the system identifier, the directory untouched;
#  - etcd unreachable: non-zero exit within ~15 s naming the endpoint, no
#    Postgres started (no initdb either).
. "$(dirname "$0")/../lib/cluster.sh"
cluster_init bad_input

cluster_start 3
wait_healthy 90

# ---- bad config files: name | edit (sed script) | key (regex) in the error
# Each case starts from a valid config of a node that never runs.
node_config 9 "$T/good.conf"
bad_dir="$T/node9"
cases=(
	"unknown top-level key|\$a bogus_option = 1;|bogus_option"
	"unknown key in a group|s/^  bin_dir = /  bin_directory = /|bin_directory"
	"ttl of the wrong type|s/^    ttl = .*/    ttl = \"five\";/|ttl"
	"loop_wait of the wrong type|s/^    loop_wait = .*/    loop_wait = true;/|loop_wait"
	"missing name|/^name = /d|name"
	"missing data_dir|/^  data_dir = /d|data_dir"
	"name with a space|s/^name = .*/name = \"node 9\";/|name"
	"timing rule violated|s/^    ttl = .*/    ttl = 3;/;s/^    loop_wait = .*/    loop_wait = 1;/;s/^    retry_timeout = .*/    retry_timeout = 2;/|ttl|loop_wait|retry_timeout"
	"ttl below etcd's minimum|s/^    ttl = .*/    ttl = 1;/;s/^    loop_wait = .*/    loop_wait = 0.2;/;s/^    retry_timeout = .*/    retry_timeout = 0.2;/|ttl"
	"listen without a port|s/^  listen = .*/  listen = \"localhost\";/|listen"
	"etcd hosts of the wrong type|s/^etcd = .*/etcd = { hosts = 2379; };/|hosts"
	"syntax error|s/^scope = /scope = = /|bad[0-9]+\\.conf:[0-9]+"
)
i=0
for c in "${cases[@]}"; do
	i=$((i + 1))
	what=${c%%|*}
	rest=${c#*|}
	edit=${rest%%|*}
	key=${rest#*|}
	f="$T/bad$i.conf"
	sed -e "$edit" "$T/good.conf" >"$f"
	chown "$BATON_USER:" "$f"
	cmp -s "$f" "$T/good.conf" && fail "case '$what': the edit changed nothing (test bug)"
	rc=0
	err=$(timeout 20 setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
		"$BATON_BUILD/baton" -c "$f" 2>&1 >/dev/null) || rc=$?
	[ "$rc" = 2 ] || fail "case '$what': exit status $rc, expected 2; stderr: $err"
	line=$(grep -E "bad$i\.conf" <<<"$err" | grep -E -- "$key" | head -n1)
	[ -n "$line" ] || fail "case '$what': no error line naming bad$i.conf and /$key/; stderr: $err"
	[ -e "$bad_dir" ] && fail "case '$what': the data directory $bad_dir was created"
	pass "$what -> exit 2: $line"
done

# ---- root
rc=0
err=$(timeout 20 "$BATON_BUILD/baton" -c "$T/good.conf" 2>&1 >/dev/null) || rc=$?
[ "$rc" = 2 ] || fail "as root: exit status $rc, expected 2; stderr: $err"
grep -qi root <<<"$err" || fail "as root: the error does not say why: $err"
[ -e "$bad_dir" ] && fail "as root: the data directory $bad_dir was created"
pass "root refused: $(head -n1 <<<"$err")"

# ---- a data directory of another cluster, with the cluster running
node_config 4
foreign=$(data_dir 4)
printf '%s\n' "other-secret" >"$T/foreign.pw"
chown "$BATON_USER:" "$T/foreign.pw"
as_baton "$PG_BIN/initdb" -D "$foreign" -U postgres --pwfile="$T/foreign.pw" -A scram-sha-256 >"$T/foreign-initdb.log" 2>&1 ||
	fail "initdb of the foreign data dir failed"
sum_before=$(md5sum <"$foreign/global/pg_control")
tree_before=$(cd "$foreign" && find . -type f -print0 | sort -z | xargs -0 md5sum)
agent_start 4
agent_wait_exit 4 60 || fail "the agent on the foreign data dir is still running after 60 s"
log4=$(agent_log 4)
[ "$AGENT_RC" = 1 ] || fail "foreign data dir: exit status $AGENT_RC, expected 1"
grep -qiE 'system.identifier' "$log4" || fail "foreign data dir: no error about the system identifier"
pass "foreign data dir refused: $(grep -iE 'system.identifier' "$log4" | head -n1)"
assert_eq "$sum_before" "$(md5sum <"$foreign/global/pg_control")" "pg_control of the foreign data dir unchanged"
tree_after=$(cd "$foreign" && find . -type f -print0 | sort -z | xargs -0 md5sum)
if [ "$tree_before" != "$tree_after" ]; then
	log "note: files of the foreign data dir changed:"
	diff <(echo "$tree_before") <(echo "$tree_after") | head -n 20
fi
[ -e "$foreign/postmaster.pid" ] && fail "a postmaster.pid was left in the foreign data dir"
grep -q 'database system is ready' "$T/node4.log" 2>/dev/null && fail "Postgres was started on the foreign data dir"
pass "no Postgres ran on the foreign data dir"
wait_healthy 30 "4"
pass "the running cluster is unaffected"

# ---- etcd unreachable
node_config 5
pick_port closed
sed -i "s/^etcd = .*/etcd = { hosts = [ \"127.0.0.1:$closed\" ]; };/" "$T/node5.conf"
t0=$(now_ms)
rc=0
err=$(timeout 30 setpriv --reuid="$BATON_USER" --regid="$BATON_USER" --init-groups -- \
	"$BATON_BUILD/baton" -c "$T/node5.conf" 2>&1 >/dev/null) || rc=$?
dt=$(($(now_ms) - t0))
[ "$rc" != 0 ] || fail "etcd unreachable: exit status 0"
[ "$rc" != 124 ] || fail "etcd unreachable: still running after 30 s"
assert_lt "$dt" 15000 "etcd unreachable: gave up in time (ms, exit status $rc)"
grep -q "127.0.0.1:$closed" <<<"$err" || fail "etcd unreachable: the error does not name 127.0.0.1:$closed: $err"
pass "etcd unreachable: $(grep "127.0.0.1:$closed" <<<"$err" | tail -n1)"
d5=$(data_dir 5)
[ -e "$d5/PG_VERSION" ] && fail "etcd unreachable: a data directory was initialised in $d5"
[ -e "$d5/postmaster.pid" ] && fail "etcd unreachable: a postmaster.pid exists in $d5"
[ -z "$(ss -ltnH "( sport = :${PG_PORT[5]} )")" ] || fail "etcd unreachable: something listens on ${PG_PORT[5]}"
pass "etcd unreachable: no Postgres started"
